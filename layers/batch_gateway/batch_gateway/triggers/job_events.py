"""Job state-change events: the jobs table's stream, turned into EventBridge events.

Every writer of a job row (intake, submit, finalize, mark_failed, the API's cancel, a reconciler)
changes ``status`` through DynamoDB; the table's stream (NEW_AND_OLD_IMAGES) carries each change
to one publisher, in order per job row. So nothing that writes a job has to remember to publish,
and an event is only published for a change that was actually stored (an outbox without the extra
table). Users route the events with EventBridge rules (source ``batch-gateway``, detail-type
``Batch Job State Change``) to e-mail, Slack, a queue - without touching this code.

The detail is the job as ``BatchJobInfo`` describes it, plus counts, where its results are, the
previous status and the reason. Never the raw provider answer, prompts or keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from pydantic import Field

from batch_gateway import storage
from batch_gateway.models import BatchJobInfo, BatchStatus, JobSummary, ResultCounts
from batch_gateway.observability import MetricUnit, metrics

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

logger = Logger(child=True)

EVENT_SOURCE = "batch-gateway"
DETAIL_TYPE = "Batch Job State Change"
# PutEvents takes at most 10 entries a call.
PUT_EVENTS_MAX_ENTRIES = 10


class JobStateChange(BatchJobInfo):
    """The ``detail`` of a ``Batch Job State Change`` event."""

    previous_status: BatchStatus | None = Field(
        default=None, description="None when the job row was just created."
    )
    model: str
    counts: ResultCounts
    chunk_count: int = 0
    invalid_count: int = 0
    reason: str | None = None
    cancel_requested: bool = False
    results_uri: str | None = None
    summary_uri: str | None = None
    errors_uri: str | None = None
    finished_at: float | None = None
    changed_at: float | None = Field(default=None, description="When the row changed (epoch s).")
    sequence: str = Field(description="The stream sequence number: orders the changes of one job.")


class PublishError(RuntimeError):
    """EventBridge refused some events; the stream retries the batch from the failed record on."""


def _image(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    return storage.from_dynamo(raw) if raw else None


def _is_job_row(image: dict[str, Any] | None) -> bool:
    return bool(image) and image.get("sk") == storage.JOB_SK  # type: ignore[union-attr]


def state_change(record: DynamoDBRecord, bucket: str) -> JobStateChange | None:
    """The event a stream record stands for, or None when it is no job status change.

    The event-source filter already keeps only job rows; this check repeats it, so the publisher is
    correct without the filter too (moto, for one, does not apply filters).
    """
    if record.event_name not in (DynamoDBRecordEventName.INSERT, DynamoDBRecordEventName.MODIFY):
        return None
    stream = record.dynamodb
    if stream is None:
        return None
    new, old = _image(stream.new_image), _image(stream.old_image)
    if new is None or not _is_job_row(new):
        return None
    previous = old.get("status") if old else None
    if previous == new.get("status"):
        return None  # a progress or timestamp update, not a state change
    job = JobSummary.model_validate(new)
    return JobStateChange(
        **job.model_dump(include=set(BatchJobInfo.model_fields) - {"raw"}),
        previous_status=previous,
        model=job.model,
        counts=job.counts,
        chunk_count=job.chunk_count,
        invalid_count=job.invalid_count,
        reason=job.reason,
        cancel_requested=job.cancel_requested,
        results_uri=job.results_uri,
        summary_uri=storage.s3_uri(bucket, storage.summary_key(job.job_id)) if job.results_uri else None,
        errors_uri=job.errors_uri,
        finished_at=job.finished_at,
        changed_at=job.updated_at,
        sequence=stream.sequence_number or "",
    )


def state_changes(records: Iterable[DynamoDBRecord], bucket: str) -> Iterator[JobStateChange]:
    for record in records:
        change = state_change(record, bucket)
        if change is not None:
            yield change


def _entry(change: JobStateChange, bus_name: str) -> PutEventsRequestEntryTypeDef:
    return {
        "Source": EVENT_SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": change.model_dump_json(),
        "EventBusName": bus_name,
        "Resources": [],
    }


def events_client() -> EventBridgeClient:
    return boto3.client("events")


def publish(changes: Iterable[JobStateChange], bus_name: str) -> int:
    """Put the events in stream order, ten a call; returns how many were published.

    A call stops at the first refused entry: the caller's failure makes the stream retry from the
    unpublished record, so a job's events never overtake each other (at least once, in order).
    """
    pending = list(changes)
    client = events_client()
    published = 0
    for start in range(0, len(pending), PUT_EVENTS_MAX_ENTRIES):
        batch = pending[start : start + PUT_EVENTS_MAX_ENTRIES]
        response = client.put_events(Entries=[_entry(change, bus_name) for change in batch])
        refused = [
            (change, entry)
            for change, entry in zip(batch, response["Entries"], strict=True)
            if "EventId" not in entry
        ]
        if refused:
            change, entry = refused[0]
            raise PublishError(
                f"EventBridge refused the {change.status.value} event of job {change.job_id}: "
                f"{entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )
        published += len(batch)
        for change in batch:
            logger.info(
                "job state change published",
                extra={
                    "job_id": change.job_id,
                    "status": change.status.value,
                    "previous": change.previous_status,
                },
            )
    metrics.add_metric(name="JobEventsPublished", unit=MetricUnit.Count, value=published)
    return published


def detail_of(event: dict[str, Any]) -> JobStateChange:
    """Parse an EventBridge event (as a rule target receives it) back into its detail."""
    detail = event["detail"]
    return JobStateChange.model_validate(json.loads(detail) if isinstance(detail, str) else detail)
