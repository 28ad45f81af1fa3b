"""The jobs table: one ``JOB`` row per job and one ``CHUNK#NNNN`` row per chunk (provider batch).

Job rows are :class:`~batch_gateway.models.JobSummary` objects, written whole. Chunk rows are
written a few attributes at a time by each step (intake stages it, Submit records each batch,
Poll its progress, Collect each round's report and the chunk's totals, the wake-up its token) and
read as one :class:`ChunkRow`. Some attributes are per (round, attempt) or per round, stored flat
(``batch_r<r>_a<a>``, ``batch_r<r>_a<a>_intent_at``, ``round_<n>``): their names are built and
parsed only here. The DynamoDB conversions (Decimal in, int/float out) and the paginated query
that the results table shares live here too.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from batch_gateway.models import BatchStatus, JobSummary, ResultCounts
from batch_gateway.storage.aws import dynamodb_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

JOB_SK = "JOB"
CHUNK_SK_PREFIX = "CHUNK#"
# Job rows (not chunk rows) carry record_type = "JOB": the partition key of the jobs table's
# JobsByCreatedAt index (template.yaml), which lists jobs newest first without a Scan.
JOB_RECORD_TYPE = "JOB"
JOBS_BY_CREATED_AT_INDEX = "JobsByCreatedAt"

# A (round, attempt) of a chunk: round 0 sends every item, later rounds the retried ones; attempt n
# is the n-th resubmission of a round whose batch failed as a whole.
Step = tuple[int, int]
_STEP_FIELD = re.compile(r"batch_r(\d+)_a(\d+)(_intent_at|_end)?")
# How a (round, attempt) ended when it did not end in results (``batch_r<r>_a<a>_end``).
BATCH_END_QUOTA = "quota"  # refused or failed for the provider's quota: requeued
BATCH_END_FAILED = "failed"  # failed as a whole for another reason: FailedBatchRetries counts it
_ROUND_FIELD = re.compile(r"round_(\d+)")


# ---------------------------------------------------------------- DynamoDB conversions
def to_dynamo(document: Any) -> Any:
    """A JSON-like document as DynamoDB takes it (Decimal, not float)."""
    return json.loads(json.dumps(document, default=str), parse_float=Decimal)


def from_dynamo(value: Any) -> Any:
    """A DynamoDB value as plain Python (Decimal back to int or float), recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def chunk_sk(chunk: int) -> str:
    """The sort key of a chunk row."""
    return f"{CHUNK_SK_PREFIX}{chunk:04d}"


# ---------------------------------------------------------------- the chunk row
class RoundReport(BaseModel):
    """What one round of a chunk did (kept on the chunk row as ``round_<n>``)."""

    items: int = 0
    counts: ResultCounts = Field(default_factory=ResultCounts)
    usage: dict[str, int] = Field(default_factory=dict)
    retryable: int = 0


def _gather_steps(item: Mapping[str, Any]) -> dict[str, Any]:
    """The flat per-(round, attempt) and per-round attributes of a stored item, grouped."""
    batches: dict[Step, Any] = {}
    intents: dict[Step, Any] = {}
    ends: dict[Step, Any] = {}
    reports: dict[int, Any] = {}
    for name, value in item.items():
        if step := _STEP_FIELD.fullmatch(name):
            {None: batches, "_intent_at": intents, "_end": ends}[step[3]][int(step[1]), int(step[2])] = value
        elif report := _ROUND_FIELD.fullmatch(name):
            reports[int(report[1])] = value
    return {"batches": batches, "intents": intents, "batch_ends": ends, "round_reports": reports}


def latest_step(item: Mapping[str, Any]) -> Step:
    """The latest (round, attempt) a stored chunk item records a batch, or the intent to create one, for."""
    steps = _gather_steps(item)
    return max([*steps["batches"], *steps["intents"]], default=(0, 0))


class ChunkRow(BaseModel):
    """A chunk row as stored; every reader of chunk rows reads it through this model.

    Attribute names are those stored (rows written before this model read the same). ``batches``,
    ``intents`` and ``round_reports`` gather the flat ``batch_r<r>_a<a>``, ``…_intent_at`` and
    ``round_<n>`` attributes; writers name them with :meth:`batch_field`, :meth:`intent_field`
    and :meth:`round_field`.
    """

    model_config = ConfigDict(extra="ignore")

    chunk: int
    # Staged by intake.
    status: str | None = None  # "staged", then the latest poll's BatchStatus value
    model: str | None = None
    item_count: int | None = None
    byte_count: int | None = None
    # Intake's estimate: input tokens (OpenAI / Azure), and the units the chunk holds of its
    # provider's quota while its batch runs (tokens, requests for Anthropic, 1 job for Bedrock).
    estimated_tokens: int | None = None
    quota_amount: int | None = None
    # Submit: the latest batch, which (round, attempt) it is, and every batch per (round, attempt).
    provider_batch_id: str | None = None
    round: int | None = None
    attempt: int | None = None
    submitted_at: float | None = None
    batches: dict[Step, str | None] = Field(default_factory=dict)
    intents: dict[Step, float | None] = Field(default_factory=dict)
    # How a (round, attempt) ended when not in results: BATCH_END_QUOTA or BATCH_END_FAILED.
    batch_ends: dict[Step, str] = Field(default_factory=dict)
    # Poll.
    provider_status: str | None = None
    request_counts: dict[str, int] | None = None
    polls: int | None = None
    polled_at: float | None = None
    message: str | None = None
    # Collect: each round's report, then the chunk's totals.
    round_reports: dict[int, RoundReport] = Field(default_factory=dict)
    counts: ResultCounts | None = None
    usage: dict[str, int] | None = None
    final_status: str | None = None
    rounds: int | None = None
    collected_at: float | None = None
    # The wake-up (workflow.wakeup): the parked task token and the provider's report.
    wait_token: str | None = None
    wait_batch: str | None = None
    reported_batch: str | None = None
    reported_event: str | None = None
    reported_at: float | None = None
    # A chunk whose child execution failed (RecordChunkFailure): why, readable, and when.
    failure: str | None = None
    failed_at: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _group_flat_attributes(cls, item: Any) -> Any:
        if not isinstance(item, Mapping):
            return item
        return {**item, **_gather_steps(item)}

    @staticmethod
    def batch_field(round_: int, attempt: int) -> str:
        """The attribute holding the provider batch id of one (round, attempt)."""
        return f"batch_r{round_}_a{attempt}"

    @staticmethod
    def intent_field(round_: int, attempt: int) -> str:
        """The attribute recording when Submit set out to create the batch of one (round, attempt)."""
        return f"{ChunkRow.batch_field(round_, attempt)}_intent_at"

    @staticmethod
    def end_field(round_: int, attempt: int) -> str:
        """The attribute recording how a (round, attempt) ended (quota refusal or failure)."""
        return f"{ChunkRow.batch_field(round_, attempt)}_end"

    @property
    def quota_requeues(self) -> int:
        """Provider batches refused or failed for quota (each requeued the chunk)."""
        return sum(1 for end in self.batch_ends.values() if end == BATCH_END_QUOTA)

    @property
    def failed_batches(self) -> int:
        """Provider batches that failed as a whole for another reason than quota."""
        return sum(1 for end in self.batch_ends.values() if end == BATCH_END_FAILED)

    @staticmethod
    def round_field(round_: int) -> str:
        """The attribute holding the :class:`RoundReport` of one round."""
        return f"round_{round_}"

    def batch_id(self, round_: int, attempt: int) -> str | None:
        """The provider batch id recorded for a (round, attempt), if any."""
        return self.batches.get((round_, attempt)) or None

    def intent_at(self, round_: int, attempt: int) -> float | None:
        """When Submit recorded its intent to create the batch of a (round, attempt), if it did."""
        return self.intents.get((round_, attempt)) or None

    def batch_ids(self) -> set[str]:
        """Every provider batch id the chunk recorded, over all rounds and attempts."""
        return {batch for batch in self.batches.values() if batch}

    def latest_step(self) -> Step:
        """The latest (round, attempt) with a recorded batch, or the intent to create one."""
        return max([*self.batches, *self.intents], default=(0, 0))

    def round_report(self, round_: int) -> RoundReport:
        """The report of a round (empty when the round was not collected)."""
        return self.round_reports.get(round_) or RoundReport()

    def collected_rounds(self) -> list[int]:
        """The rounds up to the latest step whose report is recorded, in order."""
        return [r for r in range(self.latest_step()[0] + 1) if r in self.round_reports]

    @property
    def collected(self) -> bool:
        """Whether Collect (or the reconciler) finished the chunk."""
        return self.collected_at is not None

    @property
    def batch_ended(self) -> bool:
        """Whether the latest poll saw the provider batch end."""
        return BatchStatus(self.status or BatchStatus.PENDING.value).is_terminal


def counts_of(chunk: Mapping[str, Any]) -> ResultCounts:
    """The result counts of a stored chunk item (zero before it was collected)."""
    return ResultCounts.model_validate(chunk.get("counts") or {})


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
