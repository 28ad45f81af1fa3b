"""Job state-change events: the jobs table's stream, turned into EventBridge events.

Every writer of a job row (intake, submit, finalize, mark_failed, the API's cancel, a reconciler)
changes ``status`` through DynamoDB; the table's stream (NEW_AND_OLD_IMAGES) carries each change
to one publisher, in order per job row. So nothing that writes a job has to remember to publish,
and an event is only published for a change that was actually stored (an outbox without the extra
table). Users route the events with EventBridge rules (source ``batch-gateway``, detail-type
``Batch Job State Change``) to e-mail, Slack, a queue - without touching this code.

Records are processed one by one by Powertools' ``BatchProcessor``: a record whose event cannot be
published is reported in ``batchItemFailures`` (the mapping has ``ReportBatchItemFailures``), so
Lambda retries from that record instead of replaying the whole batch. Later records of the same job
are held back (reported too, not published), so a job's events never overtake each other; other
jobs' events go out. The detail is the job as ``BatchJobInfo`` describes it, plus counts, where its
results are, the previous status and the reason. Never the raw provider answer, prompts or keys.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from pydantic import Field

from batch_gateway.models import BatchJobInfo, BatchStatus, JobSummary, ResultCounts
from batch_gateway.observability import MetricUnit, logger, metrics
from batch_gateway.storage.dynamo import from_dynamo
from batch_gateway.storage.jobs import JOB_SK
from batch_gateway.storage.keys import s3_uri, summary_key

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef


EVENT_SOURCE = "batch-gateway"
DETAIL_TYPE = "Batch Job State Change"


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
    """EventBridge refused an event, or an earlier event of the same job was not published."""


def _image(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    return from_dynamo(raw) if raw else None


def _is_job_row(image: dict[str, Any] | None) -> bool:
    return bool(image) and image.get("sk") == JOB_SK  # type: ignore[union-attr]


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
        summary_uri=s3_uri(bucket, summary_key(job.job_id)) if job.results_uri else None,
        errors_uri=job.errors_uri,
        finished_at=job.finished_at,
        changed_at=job.updated_at,
        sequence=stream.sequence_number or "",
    )


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


class OrderedPublisher:
    """The BatchProcessor's record handler: publishes each record's event, in stream order per job.

    Once an event of a job was not published, the job's later records of this batch fail too
    without publishing: Lambda retries from the first failure, so they go out after it, in order.
    """

    def __init__(self, bucket: str, bus_name: str, client: EventBridgeClient | None = None) -> None:
        self._bucket = bucket
        self._bus_name = bus_name
        self._client = client or events_client()
        self._held: set[str] = set()  # jobs with an unpublished event in this batch
        self.published = 0

    def __call__(self, record: DynamoDBRecord) -> None:
        change = state_change(record, self._bucket)
        if change is None:
            return
        if change.job_id in self._held:
            raise PublishError(
                f"the {change.status.value} event of job {change.job_id} waits for an earlier event "
                "of that job, which was not published"
            )
        try:
            self._put(change)
        except Exception:
            self._held.add(change.job_id)
            raise
        self.published += 1
        logger.info(
            "job state change published",
            extra={
                "job_id": change.job_id,
                "status": change.status.value,
                "previous": change.previous_status,
            },
        )

    def _put(self, change: JobStateChange) -> None:
        entry = self._client.put_events(Entries=[_entry(change, self._bus_name)])["Entries"][0]
        if "EventId" not in entry:
            raise PublishError(
                f"EventBridge refused the {change.status.value} event of job {change.job_id}: "
                f"{entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )


def publish_stream_records(
    event: dict[str, Any], bucket: str, bus_name: str, context: LambdaContext | None = None
) -> PartialItemFailureResponse:
    """Publish the job state changes of one stream batch; the records that failed, for Lambda to retry.

    When every record fails, Powertools raises instead (BatchProcessingError) and Lambda retries the
    whole batch, as for any function error.
    """
    publisher = OrderedPublisher(bucket, bus_name)
    response = process_partial_response(
        event=event,
        record_handler=publisher,
        processor=BatchProcessor(event_type=EventType.DynamoDBStreams),
        context=context,
    )
    metrics.add_metric(name="JobEventsPublished", unit=MetricUnit.Count, value=publisher.published)
    return response


def detail_of(event: dict[str, Any]) -> JobStateChange:
    """Parse an EventBridge event (as a rule target receives it) back into its detail."""
    detail = event["detail"]
    return JobStateChange.model_validate(json.loads(detail) if isinstance(detail, str) else detail)
