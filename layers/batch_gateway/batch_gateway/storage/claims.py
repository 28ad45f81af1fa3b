"""Jobs-table rows of the scheduler and the reconciler, beside the job rows and never inside them.

``save_job`` writes a job row whole (intake, MarkFailed, Finalize), so anything kept on it that the
``JobSummary`` model does not carry would be erased by the next save. Bookkeeping that must survive
that lives in rows of its own:

- ``scheduled:<claim id>`` / ``SCHEDULED``: one per scheduled file version, written with a
  conditional put, so two overlapping scheduler runs cannot both submit the file;
- ``<job id>`` / ``RECONCILE``: how often the reconciler resumed the job's workflow (the resumed
  execution is named after that count), written conditionally, so two runs cannot both resume it.

Neither row has ``record_type``, so neither appears in the JobsByCreatedAt index (the job listing).
The one mark kept on the job row is ``cleaned_up_at``: it is set only on finished jobs, which
nothing saves again, and the reconciler reads it from the index without another request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError
from pydantic import BaseModel

from batch_gateway.storage import jobs
from batch_gateway.storage.aws import dynamodb_table
from batch_gateway.storage.dynamo import from_dynamo, to_dynamo

SCHEDULED_SK = "SCHEDULED"
RECONCILE_SK = "RECONCILE"
CLEANED_UP_AT = "cleaned_up_at"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class ScheduledClaim(BaseModel):
    """Who took a scheduled file version, and what became of it."""

    state: str  # "claimed" (being submitted) or "submitted"
    claimed_at: float
    source: str
    started_job_id: str | None = None
    inbox_key: str | None = None
    submitted_at: float | None = None


class ScheduledClaims:
    """At most one submission per scheduled file version, even across overlapping runs."""

    def __init__(self, table_name: str) -> None:
        self._table = dynamodb_table(table_name)

    @staticmethod
    def _key(claim_id: str) -> dict[str, str]:
        return {"job_id": f"scheduled:{claim_id}", "sk": SCHEDULED_SK}

    def claim(self, claim_id: str, source: str, lease_seconds: float) -> bool:
        """Take the file version; False when it was submitted or another run holds a live claim.

        A claim left ``claimed`` by a run that died expires after ``lease_seconds`` (longer than the
        scheduler may run), so the file is not lost; the copy step is idempotent for that case.
        """
        now = time.time()
        try:
            self._table.put_item(
                Item=self._key(claim_id)
                | to_dynamo({"state": "claimed", "claimed_at": now, "source": source}),
                ConditionExpression=Attr("job_id").not_exists()
                | (Attr("state").eq("claimed") & Attr("claimed_at").lt(to_dynamo(now - lease_seconds))),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def get(self, claim_id: str) -> ScheduledClaim | None:
        """The claim of a file version, or None when nobody took it yet."""
        item = self._table.get_item(Key=self._key(claim_id), ConsistentRead=True).get("Item")
        return ScheduledClaim.model_validate(from_dynamo(item)) if item else None

    def mark_submitted(self, claim_id: str, job_id: str, inbox_key: str) -> None:
        """The file version was copied to the inbox as ``inbox_key`` and started ``job_id``."""
        self._table.update_item(
            Key=self._key(claim_id),
            UpdateExpression="SET #s = :s, started_job_id = :j, inbox_key = :k, submitted_at = :t",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={
                ":s": "submitted",
                ":j": job_id,
                ":k": inbox_key,
                ":t": to_dynamo(time.time()),
            },
        )


class ReconcileRecord(BaseModel):
    """How often the reconciler resumed a job, and when it last did."""

    resumes: int = 0
    resumed_at: float | None = None


class ReconcileRecords:
    """The reconciler's memory per job, and the job rows it walks."""

    def __init__(self, table_name: str) -> None:
        self._table = dynamodb_table(table_name)

    def get(self, job_id: str) -> ReconcileRecord:
        """The job's record (an empty one before its first resume)."""
        item = self._table.get_item(Key={"job_id": job_id, "sk": RECONCILE_SK}, ConsistentRead=True).get(
            "Item"
        )
        return ReconcileRecord.model_validate(from_dynamo(item)) if item else ReconcileRecord()

    def record_resume(self, job_id: str, resumes: int) -> bool:
        """Count resume number ``resumes``; False when another run counted it first."""
        previous = Attr("resumes").eq(resumes - 1) if resumes > 1 else Attr("job_id").not_exists()
        try:
            self._table.put_item(
                Item={"job_id": job_id, "sk": RECONCILE_SK, "resumes": resumes}
                | to_dynamo({"resumed_at": time.time()}),
                ConditionExpression=previous,
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def mark_cleaned_up(self, job_id: str) -> None:
        """Mark a finished job's staged and provider-side data as deleted (on the job row)."""
        self._table.update_item(
            Key={"job_id": job_id, "sk": jobs.JOB_SK},
            UpdateExpression=f"SET {CLEANED_UP_AT} = :t",
            ExpressionAttributeValues={":t": to_dynamo(time.time())},
        )

    def reopen_job(self, job_id: str, reason: str) -> None:
        """A job the workflow's catch-all ended is running again: clear its ending."""
        self._table.update_item(
            Key={"job_id": job_id, "sk": jobs.JOB_SK},
            UpdateExpression="SET #s = :s, reason = :r, updated_at = :u REMOVE finished_at",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": "in_progress",
                ":r": reason,
                ":u": to_dynamo(time.time()),
            },
        )

    def jobs_created_since(self, created_after: float) -> Iterator[dict[str, Any]]:
        """Job rows created after ``created_after``, oldest first (the JobsByCreatedAt index, no Scan)."""
        kwargs: dict[str, Any] = {
            "IndexName": jobs.JOBS_BY_CREATED_AT_INDEX,
            "KeyConditionExpression": Key("record_type").eq(jobs.JOB_RECORD_TYPE)
            & Key("created_at").gt(to_dynamo(created_after)),
        }
        while True:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                yield from_dynamo(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
