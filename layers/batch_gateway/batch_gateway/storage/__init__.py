"""Storage: every S3 key, object access and DynamoDB row of the gateway.

- :mod:`.keys`: the S3 key layout (staging/ and results/ of each job);
- :mod:`.s3`: streamed reads, uploads, JSON documents, prefix deletes;
- :mod:`.jobs`: the jobs table (job rows, the :class:`~.jobs.ChunkRow` model of chunk rows);
- :mod:`.results`: the results table and the keyed result lines staged in S3;
- :mod:`.claims`: bookkeeping rows of the scheduler and the reconciler;
- :mod:`.chunk_index`: the index line of each staged request;
- :mod:`.aws`: the shared boto3 clients.

This package re-exports the public names of those modules, so ``storage.open_object(...)`` keeps
working; modules inside the package import the submodules directly.
"""

from batch_gateway.storage.aws import dynamodb_table, s3_client, stepfunctions_client
from batch_gateway.storage.jobs import (
    CHUNK_SK_PREFIX,
    FILTERED_QUERY_MAX_READS,
    JOB_RECORD_TYPE,
    JOB_SK,
    JOBS_BY_CREATED_AT_INDEX,
    ChunkRow,
    JobsRepository,
    RoundReport,
    chunk_sk,
    counts_of,
    from_dynamo,
    query_page,
    to_dynamo,
)
from batch_gateway.storage.keys import (
    chunk_index_key,
    chunk_requests_key,
    chunk_results_key,
    chunk_round_results_key,
    errors_key,
    invalid_results_key,
    large_result_key,
    results_key,
    s3_uri,
    staging_prefix,
    summary_key,
)
from batch_gateway.storage.results import (
    SECONDS_PER_DAY,
    ResultsRepository,
    keyed_result,
    split_keyed_result,
)
from batch_gateway.storage.s3 import (
    delete_prefix,
    download_file,
    object_exists,
    open_object,
    put_json,
    upload_file,
    upload_stream,
)

__all__ = [
    "CHUNK_SK_PREFIX",
    "FILTERED_QUERY_MAX_READS",
    "JOBS_BY_CREATED_AT_INDEX",
    "JOB_RECORD_TYPE",
    "JOB_SK",
    "SECONDS_PER_DAY",
    "ChunkRow",
    "JobsRepository",
    "ResultsRepository",
    "RoundReport",
    "chunk_index_key",
    "chunk_requests_key",
    "chunk_results_key",
    "chunk_round_results_key",
    "chunk_sk",
    "counts_of",
    "delete_prefix",
    "download_file",
    "dynamodb_table",
    "errors_key",
    "from_dynamo",
    "invalid_results_key",
    "keyed_result",
    "large_result_key",
    "object_exists",
    "open_object",
    "put_json",
    "query_page",
    "results_key",
    "s3_client",
    "s3_uri",
    "split_keyed_result",
    "staging_prefix",
    "stepfunctions_client",
    "summary_key",
    "to_dynamo",
    "upload_file",
    "upload_stream",
]
