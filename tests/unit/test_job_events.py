"""Which jobs-table stream records become state-change events, and what their detail says."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from boto3.dynamodb.types import TypeSerializer

from batch_gateway.triggers.job_events import state_change

SERIALIZER = TypeSerializer()


def job_row(status: str, **fields: Any) -> dict[str, Any]:
    row = {"job_id": "j1", "sk": "JOB", "provider": "openai", "model": "gpt-4o-mini", "status": status}
    row.update(created_at=1, request_count=2, **fields)
    return {name: SERIALIZER.serialize(value) for name, value in row.items()}


def record(event_name: str, new: dict[str, Any] | None, old: dict[str, Any] | None = None) -> DynamoDBRecord:
    stream: dict[str, Any] = {"Keys": {"job_id": {"S": "j1"}, "sk": {"S": "JOB"}}, "SequenceNumber": "7"}
    if new is not None:
        stream["NewImage"] = new
    if old is not None:
        stream["OldImage"] = old
    return DynamoDBRecord({"eventName": event_name, "dynamodb": stream})


def test_a_new_job_row_is_a_change_from_nothing() -> None:
    change = state_change(record("INSERT", job_row("pending")), "bucket")
    assert change is not None
    assert (change.previous_status, change.status.value, change.sequence) == (None, "pending", "7")


def test_a_finished_job_says_where_its_results_are() -> None:
    new = job_row("completed", results_uri="s3://bucket/results/j1/results.jsonl", finished_at=5)
    change = state_change(record("MODIFY", new, job_row("in_progress")), "bucket")
    assert change is not None
    assert change.previous_status is not None
    assert change.previous_status.value == "in_progress"
    assert change.summary_uri == "s3://bucket/results/j1/summary.json"


def test_updates_that_keep_the_status_chunk_rows_and_deletes_are_not_events() -> None:
    assert (
        state_change(record("MODIFY", job_row("in_progress", chunk_count=2), job_row("in_progress")), "b")
        is None
    )
    chunk = {"job_id": {"S": "j1"}, "sk": {"S": "CHUNK#0001"}, "status": {"S": "completed"}}
    assert state_change(record("MODIFY", chunk, {**chunk, "status": {"S": "in_progress"}}), "b") is None
    assert state_change(record("REMOVE", None, job_row("completed")), "b") is None
