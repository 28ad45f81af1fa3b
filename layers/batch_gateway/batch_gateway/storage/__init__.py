"""S3 and DynamoDB access: the only module that knows object keys, table keys and item shapes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.streaming import S3Object
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from batch_gateway.models import BatchResult, BatchStatus, JobSummary, ResultCounts

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_stepfunctions.client import SFNClient

    from batch_gateway.settings import Settings

JOB_SK = "JOB"
CHUNK_SK_PREFIX = "CHUNK#"
# Job rows (not chunk rows) carry record_type = "JOB": the partition key of the jobs table's
# JobsByCreatedAt index (template.yaml), which lists jobs newest first without a Scan.
JOB_RECORD_TYPE = "JOB"
JOBS_BY_CREATED_AT_INDEX = "JobsByCreatedAt"


# ---------------------------------------------------------------- object keys
def staging_prefix(job_id: str) -> str:
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
    return _chunk_file(job_id, chunk, round_, "round-results")


def chunk_results_key(job_id: str, chunk: int) -> str:
    return f"{staging_prefix(job_id)}chunk-{chunk:04d}.results.jsonl"


def invalid_results_key(job_id: str) -> str:
    """Error results of the lines skipped at intake (on_invalid=skip), keyed like chunk results."""
    return f"{staging_prefix(job_id)}invalid.results.jsonl"


def results_key(job_id: str) -> str:
    return f"results/{job_id}/results.jsonl"


def summary_key(job_id: str) -> str:
    return f"results/{job_id}/summary.json"


def errors_key(job_id: str) -> str:
    return f"results/{job_id}/errors.jsonl"


def large_result_key(job_id: str, line: int) -> str:
    return f"results/{job_id}/items/{line:09d}.json"


def keyed_result(line: int, result_json: bytes, outcome: str = "errored") -> bytes:
    """A staged result line: ``line<TAB>outcome<TAB>BatchResult JSON``.

    The merge key and the outcome come first, so merging and counting never parse the JSON.
    """
    return b"%010d\t%s\t%s\n" % (line, outcome.encode(), result_json)


def split_keyed_result(raw: bytes) -> tuple[int, str, bytes]:
    line, outcome, payload = raw.split(b"\t", 2)
    return int(line), outcome.decode(), payload


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


# ---------------------------------------------------------------- S3
def s3_client() -> S3Client:
    return boto3.client("s3")


def open_object(bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
    """A seekable stream over an object (Powertools streaming: range reads, never the whole body)."""
    return S3Object(bucket=bucket, key=key, version_id=version_id, boto3_client=s3_client())


def upload_file(path: Path, bucket: str, key: str, content_type: str = "application/x-ndjson") -> None:
    """Upload a local file; large files go up as a multipart upload streamed from disk."""
    s3_client().upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})


def upload_stream(stream: IO[bytes], bucket: str, key: str, content_type: str) -> None:
    s3_client().upload_fileobj(stream, bucket, key, ExtraArgs={"ContentType": content_type})


def download_file(bucket: str, key: str, path: Path) -> None:
    s3_client().download_file(bucket, key, str(path))


def put_json(bucket: str, key: str, document: Any) -> None:
    body = json.dumps(document, indent=2, default=str).encode()
    s3_client().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def delete_prefix(bucket: str, prefix: str) -> None:
    client = s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})  # type: ignore[typeddict-item]


# ---------------------------------------------------------------- DynamoDB
def to_dynamo(document: Any) -> Any:
    """DynamoDB takes Decimal, not float."""
    return json.loads(json.dumps(document, default=str), parse_float=Decimal)


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def _table(name: str) -> Table:
    return boto3.resource("dynamodb").Table(name)


def chunk_sk(chunk: int) -> str:
    return f"{CHUNK_SK_PREFIX}{chunk:04d}"


class JobsRepository:
    """The jobs table: one ``JOB`` row per job and one ``CHUNK#NNNN`` row per provider batch."""

    def __init__(self, table_name: str) -> None:
        self._table = _table(table_name)

    def create_job(self, job: JobSummary) -> bool:
        """Insert the job row; False when it already exists (a re-delivered event)."""
        item = _job_item(job)
        try:
            self._table.put_item(Item=item, ConditionExpression=Attr("job_id").not_exists())
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_job(self, job_id: str) -> JobSummary | None:
        item = self._table.get_item(Key={"job_id": job_id, "sk": JOB_SK}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return JobSummary.model_validate(from_dynamo(item))

    def save_job(self, job: JobSummary) -> None:
        job.updated_at = time.time()
        self._table.put_item(Item=_job_item(job))

    def list_jobs(
        self, limit: int, status: BatchStatus | None = None, start_key: dict[str, Any] | None = None
    ) -> tuple[list[JobSummary], dict[str, Any] | None]:
        """Jobs newest first (the JobsByCreatedAt index, never a Scan): at most ``limit`` of them and
        the key to continue from (None at the end; a page may be short, even empty, when a status
        filter matched few of the index entries read for it)."""
        kwargs: dict[str, Any] = {
            "IndexName": JOBS_BY_CREATED_AT_INDEX,
            "KeyConditionExpression": Key("record_type").eq(JOB_RECORD_TYPE),
            "ScanIndexForward": False,
        }
        if status is not None:
            kwargs["FilterExpression"] = Attr("status").eq(status.value)
        if start_key:
            kwargs["ExclusiveStartKey"] = to_dynamo(start_key)
        items, last_key = query_page(
            self._table, kwargs, limit, ("job_id", "sk", "record_type", "created_at"), filtered=bool(status)
        )
        return [JobSummary.model_validate(item) for item in items], last_key

    def set_job_status(self, job_id: str, status: BatchStatus, reason: str | None = None) -> None:
        self._table.update_item(
            Key={"job_id": job_id, "sk": JOB_SK},
            UpdateExpression="SET #s = :s, reason = :r, updated_at = :u",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status.value, ":r": reason, ":u": to_dynamo(time.time())},
        )

    def request_cancel(self, job_id: str) -> None:
        """Flag the job for cancellation; a job that already finished keeps its status."""
        try:
            self._table.update_item(
                Key={"job_id": job_id, "sk": JOB_SK},
                UpdateExpression="SET cancel_requested = :t, #s = :s, updated_at = :u",
                ConditionExpression=Attr("finished_at").not_exists()
                | Attr("finished_at").attribute_type("NULL"),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":t": True,
                    ":s": BatchStatus.CANCELLING.value,
                    ":u": to_dynamo(time.time()),
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def put_chunk(self, job_id: str, chunk: int, fields: dict[str, Any]) -> None:
        self._table.put_item(
            Item={"job_id": job_id, "sk": chunk_sk(chunk), "chunk": chunk, **to_dynamo(fields)}
        )

    def get_chunk(self, job_id: str, chunk: int) -> dict[str, Any]:
        item = self._table.get_item(Key={"job_id": job_id, "sk": chunk_sk(chunk)}, ConsistentRead=True).get(
            "Item"
        )
        if item is None:
            raise LookupError(f"job {job_id} has no chunk {chunk}")
        result: dict[str, Any] = from_dynamo(item)
        return result

    def update_chunk(
        self, job_id: str, chunk: int, fields: dict[str, Any], only_if_absent: str | None = None
    ) -> bool:
        """Set fields on a chunk row; with ``only_if_absent`` the write happens once (False if it was set)."""
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": to_dynamo(value) for i, value in enumerate(fields.values())}
        kwargs: dict[str, Any] = {
            "Key": {"job_id": job_id, "sk": chunk_sk(chunk)},
            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if only_if_absent:
            kwargs["ConditionExpression"] = Attr(only_if_absent).not_exists()
        try:
            self._table.update_item(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def list_chunks(self, job_id: str) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("job_id").eq(job_id) & Key("sk").begins_with(CHUNK_SK_PREFIX),
            "ConsistentRead": True,
        }
        while True:
            page = self._table.query(**kwargs)
            chunks.extend(from_dynamo(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return chunks
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# A filtered page reads at most this many index pages: a filter that matches little returns a short
# page and a continuation key instead of reading a whole partition in one request.
FILTERED_QUERY_MAX_READS = 10


def query_page(
    table: Table, kwargs: dict[str, Any], limit: int, key_names: tuple[str, ...], filtered: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Up to ``limit`` items of a query and the key to continue after the last one returned.

    Unfiltered, one read of ``limit`` items. Filtered, reads of at least 100 items each (a filter
    applies after the read) until ``limit`` items matched, the query ended, or the read budget is
    spent; the continuation key is built from the last item returned, so nothing is skipped.
    """
    items: list[dict[str, Any]] = []
    request = dict(kwargs)
    for _ in range(FILTERED_QUERY_MAX_READS if filtered else 1):
        page = table.query(Limit=max(limit, 100) if filtered else limit, **request)
        for item in page.get("Items", []):
            items.append(from_dynamo(item))
            if len(items) == limit:
                last = page["Items"][-1] is item
                more = "LastEvaluatedKey" in page or not last
                return items, ({k: items[-1][k] for k in key_names} if more else None)
        last_key = page.get("LastEvaluatedKey")
        if last_key is None:
            return items, None
        request["ExclusiveStartKey"] = last_key
    return items, from_dynamo(request["ExclusiveStartKey"])


def _job_item(job: JobSummary) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "sk": JOB_SK,
        "record_type": JOB_RECORD_TYPE,
        **to_dynamo(job.model_dump(mode="json", exclude={"raw"})),
    }


def counts_of(chunk: dict[str, Any]) -> ResultCounts:
    return ResultCounts.model_validate(chunk.get("counts") or {})


SECONDS_PER_DAY = 86_400


class ResultsRepository:
    """The results table: one row per input line, keyed by job id and custom_id.

    With ``retention_days`` every row written carries ``expires_at`` (epoch seconds), the table's
    TTL attribute: DynamoDB deletes the row after it, as S3's lifecycle does with results/ objects.
    """

    def __init__(self, table_name: str, bucket: str, row_max_bytes: int, retention_days: int = 0) -> None:
        self._table = _table(table_name)
        self._bucket = bucket
        self._row_max_bytes = row_max_bytes
        self._expires_at = int(time.time()) + retention_days * SECONDS_PER_DAY if retention_days else None

    @classmethod
    def for_writing(cls, settings: Settings, bucket: str) -> ResultsRepository:
        """The repository writers use: the configured row size cap and retention (TTL)."""
        return cls(
            settings.results_table, bucket, settings.result_row_max_bytes, settings.results_retention_days
        )

    def row_for(self, job_id: str, result: BatchResult) -> dict[str, Any]:
        response = result.response
        row: dict[str, Any] = {
            "job_id": job_id,
            "custom_id": result.custom_id,
            "line": result.line,
            "ok": result.ok,
            "error": result.error,
            "content": response.content if response else None,
            "finish_reason": response.finish_reason.value if response else None,
            "usage": response.usage if response else {},
            "expires_at": self._expires_at,
        }
        if response and (response.tool_calls or response.parsed is not None):
            row["tool_calls"] = [call.model_dump(mode="json") for call in response.tool_calls]
        if len(json.dumps(row, default=str).encode()) > self._row_max_bytes:
            key = large_result_key(job_id, result.line or 0)
            put_json(self._bucket, key, result.model_dump(mode="json"))
            row.update(content=None, tool_calls=None, result_uri=s3_uri(self._bucket, key))
        return {k: v for k, v in to_dynamo(row).items() if v is not None}

    def write(self, job_id: str, results: Iterator[BatchResult]) -> None:
        # Rows are keyed by (job_id, custom_id): a retried write overwrites the same row, never duplicates.
        with self._table.batch_writer(overwrite_by_pkeys=["job_id", "custom_id"]) as writer:
            for result in results:
                writer.put_item(Item=self.row_for(job_id, result))

    def get(self, job_id: str, custom_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"job_id": job_id, "custom_id": custom_id}).get("Item")
        return from_dynamo(item) if item is not None else None

    def page(
        self, job_id: str, limit: int, start_key: dict[str, Any] | None = None, errors_only: bool = False
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """At most ``limit`` rows of a job (in custom_id order), and the key to continue from."""
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("job_id").eq(job_id)}
        if errors_only:
            kwargs["FilterExpression"] = Attr("ok").eq(False)
        if start_key:
            kwargs["ExclusiveStartKey"] = to_dynamo(start_key)
        return query_page(self._table, kwargs, limit, ("job_id", "custom_id"), filtered=errors_only)

    def query(self, job_id: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("job_id").eq(job_id)}
        while True:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                yield from_dynamo(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def stepfunctions_client() -> SFNClient:
    return boto3.client("stepfunctions")
