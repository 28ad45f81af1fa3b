"""Waking a chunk's waiting execution as soon as its provider says the batch has ended.

Between polls, a chunk of a provider that can notify us (OpenAI webhooks; Bedrock's EventBridge
events later) waits in a Step Functions callback task instead of a plain ``Wait``: the task hands
its token to :func:`park`, which stores it on the chunk row, and times out after the usual backoff
(the poll loop stays the fallback). A notification calls :func:`wake`, which finds the chunk by the
provider's batch id (the jobs table's ``ChunksByProviderBatch`` index) and sends the token back, so
the poll runs at once instead of up to ``PollMaxWaitSeconds`` later.

The race between the two is closed on the chunk row itself, which DynamoDB updates atomically:
``wake`` records ``reported_batch`` and reads the token in one update; ``park`` stores the token only
while no report for the same batch is recorded. Whichever comes second sees the other's write: a
notification that arrives before the token is parked makes ``park`` fail with
:class:`ProviderAlreadyReported`, which the state machine catches to poll at once.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from pydantic import BaseModel

from batch_gateway.observability import MetricUnit, logger, metrics
from batch_gateway.storage.aws import dynamodb_table, stepfunctions_client
from batch_gateway.storage.chunk_row import ChunkRow
from batch_gateway.storage.dynamo import from_dynamo, to_dynamo
from batch_gateway.storage.jobs import chunk_sk
from batch_gateway.workflow.payloads import AwaitProviderInput

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

_DESERIALIZER = TypeDeserializer()

CHUNKS_BY_PROVIDER_BATCH_INDEX = "ChunksByProviderBatch"
# Chunk-row attributes (fields of ChunkRow): the parked task token and the batch it waits for; the
# provider's report.
WAIT_TOKEN = "wait_token"  # noqa: S105 - an attribute name, not a secret
WAIT_BATCH = "wait_batch"
REPORTED_BATCH = "reported_batch"
REPORTED_EVENT = "reported_event"
REPORTED_AT = "reported_at"


class ProviderAlreadyReported(Exception):  # noqa: N818 - the state machine catches it by this name
    """The provider reported the batch ended before the wait began: poll now instead of waiting."""


class ChunkNotWaiting(Exception):  # noqa: N818 - named for the state machine's history
    """The chunk row waits for another batch than the task's: wait on the timer, do not park."""


class WakeOutcome(BaseModel):
    """What a notification did: ``woken`` (a waiting execution resumed), ``recorded`` (nothing was
    waiting yet: the next wait ends at once), or ``unknown_batch`` (not a batch of ours, or an old
    one a resubmission replaced)."""

    outcome: str
    job_id: str | None = None
    chunk: int | None = None


def _old_row(exc: ClientError) -> ChunkRow | None:
    """The row as it was when a condition failed (ReturnValuesOnConditionCheckFailure), if it existed."""
    wire: dict[str, Any] = dict(exc.response.get("Item") or {})  # type: ignore[call-overload]
    if not wire:
        return None
    return ChunkRow.model_validate(from_dynamo({k: _DESERIALIZER.deserialize(v) for k, v in wire.items()}))


def park(request: AwaitProviderInput, jobs_table: str) -> None:
    """Store the task token on the chunk row unless the provider already reported this batch."""
    table = dynamodb_table(jobs_table)
    try:
        table.update_item(
            Key={"job_id": request.job_id, "sk": chunk_sk(request.chunk)},
            UpdateExpression="SET #token = :token, #batch = :batch",
            ConditionExpression=Attr("provider_batch_id").eq(request.provider_batch_id)
            & (Attr(REPORTED_BATCH).not_exists() | Attr(REPORTED_BATCH).ne(request.provider_batch_id)),
            ExpressionAttributeNames={"#token": WAIT_TOKEN, "#batch": WAIT_BATCH},
            ExpressionAttributeValues={":token": request.task_token, ":batch": request.provider_batch_id},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        old = _old_row(exc)
        current = old.provider_batch_id if old else None
        if current != request.provider_batch_id:
            # Not waiting for this batch any more: the state machine falls back to the timer wait.
            raise ChunkNotWaiting(
                f"chunk {request.chunk} of job {request.job_id} waits for batch {current}, "
                f"not {request.provider_batch_id}"
            ) from None
        _consume_report(table, request)
        raise ProviderAlreadyReported(
            f"the provider already reported batch {request.provider_batch_id} ended: polling it now"
        ) from None


def _consume_report(table: Table, request: AwaitProviderInput) -> None:
    """A report ends one wait only: should the poll still see the batch running (the provider's view
    catching up), the next wait runs its full timeout instead of polling in a tight loop."""
    try:
        table.update_item(
            Key={"job_id": request.job_id, "sk": chunk_sk(request.chunk)},
            UpdateExpression="REMOVE #batch",
            ConditionExpression=Attr(REPORTED_BATCH).eq(request.provider_batch_id),
            ExpressionAttributeNames={"#batch": REPORTED_BATCH},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def _chunk_key(jobs_table: str, provider_batch_id: str) -> dict[str, Any] | None:
    page = dynamodb_table(jobs_table).query(
        IndexName=CHUNKS_BY_PROVIDER_BATCH_INDEX,
        KeyConditionExpression=Key("provider_batch_id").eq(provider_batch_id),
        Limit=1,
    )
    items = page.get("Items", [])
    return {"job_id": items[0]["job_id"], "sk": items[0]["sk"]} if items else None


def _record_report(jobs_table: str, key: dict[str, Any], provider_batch_id: str, event: str) -> ChunkRow:
    """Mark the batch as reported and read the parked token in the same atomic update."""
    response = dynamodb_table(jobs_table).update_item(
        Key=key,
        UpdateExpression="SET #batch = :batch, #event = :event, #at = :at",
        # Only while the chunk still waits for this batch: a report of a replaced batch changes nothing.
        ConditionExpression=Attr("provider_batch_id").eq(provider_batch_id),
        ExpressionAttributeNames={"#batch": REPORTED_BATCH, "#event": REPORTED_EVENT, "#at": REPORTED_AT},
        ExpressionAttributeValues={
            ":batch": provider_batch_id,
            ":event": event,
            ":at": to_dynamo(time.time()),
        },
        ReturnValues="ALL_NEW",
    )
    return ChunkRow.model_validate(from_dynamo(response["Attributes"]))


def _send_token(token: str, provider_batch_id: str, event: str) -> bool:
    """Resume the waiting task; False when it no longer waits (timed out into a poll, or finished)."""
    try:
        stepfunctions_client().send_task_success(
            taskToken=token,
            output=json.dumps({"woken_by": event, "provider_batch_id": provider_batch_id}),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
            return False
        raise
    return True


def wake(provider_batch_id: str, event: str, jobs_table: str) -> WakeOutcome:
    """The provider says ``provider_batch_id`` ended (``event`` names how): resume its chunk's wait."""
    key = _chunk_key(jobs_table, provider_batch_id)
    if key is None:
        logger.info(
            "notification for a batch that is not ours", extra={"provider_batch_id": provider_batch_id}
        )
        return WakeOutcome(outcome="unknown_batch")
    try:
        row = _record_report(jobs_table, key, provider_batch_id, event)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return WakeOutcome(outcome="unknown_batch", job_id=key["job_id"])
    chunk = row.chunk
    token = row.wait_token if row.wait_batch == provider_batch_id else None
    woken = bool(token) and _send_token(str(token), provider_batch_id, event)
    metrics.add_metric(
        name="ChunksWoken" if woken else "ChunkReportsRecorded", unit=MetricUnit.Count, value=1
    )
    logger.info(
        "provider notification",
        extra={
            "job_id": key["job_id"],
            "chunk": chunk,
            "provider_batch_id": provider_batch_id,
            "woken": woken,
        },
    )
    return WakeOutcome(outcome="woken" if woken else "recorded", job_id=key["job_id"], chunk=chunk)
