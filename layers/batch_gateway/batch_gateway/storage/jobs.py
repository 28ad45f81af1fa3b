"""The jobs table: one ``JOB`` row per job and one ``CHUNK#NNNN`` row per chunk (provider batch).

Job rows are :class:`~batch_gateway.models.JobSummary` objects, written whole; the job listing reads
the ``JobsByCreatedAt`` index, newest first, never a Scan. Chunk rows are written a few attributes
at a time by each step and read as a :class:`~batch_gateway.storage.chunk_row.ChunkRow` (that module
holds the model and the names of its flat per-round attributes). Conditional writes make the steps
idempotent: a re-delivered intake finds its job row, a once-only chunk field is set once. The
DynamoDB conversions and the paginated query are :mod:`.dynamo`'s.
"""

from __future__ import annotations

import time
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from batch_gateway.models import BatchStatus, JobSummary
from batch_gateway.storage.aws import dynamodb_table
from batch_gateway.storage.chunk_row import ChunkRow
from batch_gateway.storage.dynamo import from_dynamo, query_page, to_dynamo

JOB_SK = "JOB"
CHUNK_SK_PREFIX = "CHUNK#"
# Job rows (not chunk rows) carry record_type = "JOB": the partition key of the jobs table's
# JobsByCreatedAt index (template.yaml), which lists jobs newest first without a Scan.
JOB_RECORD_TYPE = "JOB"
JOBS_BY_CREATED_AT_INDEX = "JobsByCreatedAt"


def chunk_sk(chunk: int) -> str:
    """The sort key of a chunk row."""
    return f"{CHUNK_SK_PREFIX}{chunk:04d}"


# ---------------------------------------------------------------- the repository
class JobsRepository:
    """The jobs table: one ``JOB`` row per job and one ``CHUNK#NNNN`` row per provider batch."""

    def __init__(self, table_name: str) -> None:
        self._table = dynamodb_table(table_name)

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
        """The job row (a consistent read), or None."""
        item = self._table.get_item(Key={"job_id": job_id, "sk": JOB_SK}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return JobSummary.model_validate(from_dynamo(item))

    def save_job(self, job: JobSummary) -> None:
        """Write the job row whole (stamping ``updated_at``)."""
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
        """Set the job's status and reason without rewriting the row."""
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
        """Write a chunk row whole (intake stages it)."""
        self._table.put_item(
            Item={"job_id": job_id, "sk": chunk_sk(chunk), "chunk": chunk, **to_dynamo(fields)}
        )

    def get_chunk(self, job_id: str, chunk: int) -> dict[str, Any]:
        """A chunk row as the stored item (a consistent read); LookupError when there is none."""
        item = self._table.get_item(Key={"job_id": job_id, "sk": chunk_sk(chunk)}, ConsistentRead=True).get(
            "Item"
        )
        if item is None:
            raise LookupError(f"job {job_id} has no chunk {chunk}")
        result: dict[str, Any] = from_dynamo(item)
        return result

    def chunk_row(self, job_id: str, chunk: int) -> ChunkRow:
        """A chunk row as a :class:`ChunkRow` (a consistent read); LookupError when there is none."""
        return ChunkRow.model_validate(self.get_chunk(job_id, chunk))

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
        """Every chunk row of a job as stored items, in chunk order (consistent reads)."""
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

    def chunk_rows(self, job_id: str) -> list[ChunkRow]:
        """Every chunk row of a job as :class:`ChunkRow`, in chunk order."""
        rows = [ChunkRow.model_validate(item) for item in self.list_chunks(job_id)]
        return sorted(rows, key=lambda row: row.chunk)


def _job_item(job: JobSummary) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "sk": JOB_SK,
        "record_type": JOB_RECORD_TYPE,
        **to_dynamo(job.model_dump(mode="json", exclude={"raw"})),
    }
