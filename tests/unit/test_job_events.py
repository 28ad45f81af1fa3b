"""Which jobs-table stream records become state-change events, and what their detail says."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from boto3.dynamodb.types import TypeSerializer

from batch_gateway.triggers import job_events
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


class FakeEventBridge:
    """put_events that refuses every event of the jobs in ``refuse`` and records the others."""

    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.published: list[tuple[str, str]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        answers = []
        for entry in Entries:
            detail = json.loads(entry["Detail"])
            if detail["job_id"] in self.refuse:
                answers.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                self.published.append((detail["job_id"], detail["status"]))
                answers.append({"EventId": f"event-{len(self.published)}"})
        return {"FailedEntryCount": sum("ErrorCode" in a for a in answers), "Entries": answers}


def stream_record(job_id: str, sequence: str, status: str, previous: str | None = None) -> dict[str, Any]:
    def image(value: str) -> dict[str, Any]:
        return {**job_row(value), "job_id": {"S": job_id}}

    stream: dict[str, Any] = {
        "Keys": {"job_id": {"S": job_id}, "sk": {"S": "JOB"}},
        "NewImage": image(status),
        "SequenceNumber": sequence,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if previous is not None:
        stream["OldImage"] = image(previous)
    return {
        "eventID": f"id-{sequence}",
        "eventName": "MODIFY" if previous else "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": stream,
    }


def test_a_record_that_fails_to_publish_is_reported_while_other_jobs_publish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bus = FakeEventBridge(refuse={"j2"})
    monkeypatch.setattr(job_events, "events_client", lambda: bus)
    event = {
        "Records": [
            stream_record("j1", "100", "pending"),
            stream_record("j2", "200", "pending"),
            stream_record("j3", "300", "pending"),
            stream_record("j2", "400", "in_progress", previous="pending"),  # after j2's failed event
            stream_record("j1", "500", "in_progress", previous="pending"),
        ]
    }

    response = job_events.publish_stream_records(event, "bucket", "default")

    # Lambda retries from the first failure; j2's later event waits for it, so j2's stay in order.
    assert response == {"batchItemFailures": [{"itemIdentifier": "200"}, {"itemIdentifier": "400"}]}
    assert bus.published == [("j1", "pending"), ("j3", "pending"), ("j1", "in_progress")]
