"""The S3 key layout: where every object of a job lives in the data bucket.

A job's objects sit under two prefixes. ``staging/<job>/`` holds the working files the workflow
reads and writes (each chunk's requests and index, per round, the results of each round and the
chunk's merged results, the error results of lines skipped at intake, the chunk list each execution
reads); the reconciler deletes it once the job is past retention. ``results/<job>/`` holds what users read: results.jsonl,
summary.json, errors.jsonl and the results too large for a results-table row.

Every key is built here, so the layout has one home; nothing here talks to S3.
"""

from __future__ import annotations


def staging_prefix(job_id: str) -> str:
    """The prefix of a job's working files (deleted after retention)."""
    return f"staging/{job_id}/"


def _chunk_file(job_id: str, chunk: int, round_: int, kind: str) -> str:
    # Round 0 holds every staged item; retry round r holds the items retried in it.
    round_part = f".r{round_}" if round_ else ""
    return f"{staging_prefix(job_id)}chunk-{chunk:04d}{round_part}.{kind}.jsonl"


def chunk_requests_key(job_id: str, chunk: int, round_: int = 0) -> str:
    """Provider-ready request lines of a chunk (round 0) or of one of its retry rounds."""
    return _chunk_file(job_id, chunk, round_, "requests")


def chunk_index_key(job_id: str, chunk: int, round_: int = 0) -> str:
    """Line number, user custom_id and provider custom_id of each request line, in the same order."""
    return _chunk_file(job_id, chunk, round_, "index")


def chunk_round_results_key(job_id: str, chunk: int, round_: int) -> str:
    """The keyed result lines one round of a chunk collected, in input order."""
    return _chunk_file(job_id, chunk, round_, "round-results")


def chunk_results_key(job_id: str, chunk: int) -> str:
    """A chunk's final result lines (its rounds merged, the latest winning), in input order."""
    return f"{staging_prefix(job_id)}chunk-{chunk:04d}.results.jsonl"


def invalid_results_key(job_id: str) -> str:
    """Error results of the lines skipped at intake (on_invalid=skip), keyed like chunk results."""
    return f"{staging_prefix(job_id)}invalid.results.jsonl"


def manifest_prefix(job_id: str) -> str:
    """Where a job's manifests sit: the only objects the state machine's role may read."""
    return f"{staging_prefix(job_id)}manifests/"


def manifest_key(job_id: str, execution_name: str) -> str:
    """The chunk list one execution's Distributed Map reads (a JSON array of ChunkRef)."""
    return f"{manifest_prefix(job_id)}{execution_name}.json"


def results_key(job_id: str) -> str:
    """The job's results.jsonl: one BatchResult per input line, in input order."""
    return f"results/{job_id}/results.jsonl"


def summary_key(job_id: str) -> str:
    """The job's summary.json: the final job row."""
    return f"results/{job_id}/summary.json"


def errors_key(job_id: str) -> str:
    """The job's errors.jsonl: the lines intake rejected, and why."""
    return f"results/{job_id}/errors.jsonl"


def large_result_key(job_id: str, line: int) -> str:
    """A result too large for a results-table row, stored whole (the row points at it)."""
    return f"results/{job_id}/items/{line:09d}.json"


# Response schemas (structured answers) named by an upload's ``response-schema`` metadata key live
# here; an API submission's under ``schemas/api/`` (named by the schema's hash).
SCHEMAS_PREFIX = "schemas/"


def schema_key(name: str) -> str:
    """The key of the response schema ``name`` (a relative name such as ``tickets.json``)."""
    return SCHEMAS_PREFIX + name


def s3_uri(bucket: str, key: str) -> str:
    """``s3://bucket/key``."""
    return f"s3://{bucket}/{key}"
