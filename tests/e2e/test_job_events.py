"""Every job status change reaches EventBridge, in order, with what a notification needs.

A user's rule (source batch-gateway) routes the events to an SQS queue, as a rule with an SNS or
e-mail target would; the job runs through the offline stack end to end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from batch_gateway.models import JobSpec
from batch_gateway.triggers.job_events import DETAIL_TYPE, EVENT_SOURCE, JobStateChange, detail_of
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(stack_name="job-events")) as gw:
        yield gw


@pytest.fixture
def job_events_queue(gateway: LocalGateway) -> str:
    """A rule on the default bus sending every Batch Job State Change to a queue."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue_url = sqs.create_queue(QueueName="job-state-changes")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="job-state-changes",
        EventPattern=json.dumps({"source": [EVENT_SOURCE], "detail-type": [DETAIL_TYPE]}),
    )
    events.put_targets(Rule="job-state-changes", Targets=[{"Id": "queue", "Arn": queue_arn}])
    return str(queue_url)


def received_until_final(queue_url: str, job_id: str, timeout_s: float = 60) -> list[JobStateChange]:
    sqs = boto3.client("sqs")
    changes: list[JobStateChange] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            changes.append(detail_of(json.loads(message["Body"])))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        mine = [c for c in changes if c.job_id == job_id]
        if mine and mine[-1].finished_at is not None:
            return mine
        time.sleep(0.1)
    raise AssertionError(f"no final event for {job_id}; got {[c.status.value for c in changes]}")


def test_a_whole_job_emits_its_state_changes_in_order(
    gateway: LocalGateway, job_events_queue: str, tmp_path: Path
) -> None:
    secret_prompt = "Summarise the confidential ticket"
    rows = [{"custom_id": f"t{n}", "user_message": f"{secret_prompt} {n}"} for n in range(4)]
    job_id = gateway.submit_file(
        write_jsonl(tmp_path / "tickets.jsonl", rows),
        JobSpec(provider="openai", model="gpt-4o-mini", system_prompt="Be terse."),
    )
    gateway.wait(job_id, timeout_s=120)

    changes = received_until_final(job_events_queue, job_id)

    assert [(c.previous_status, c.status) for c in changes] == [
        (None, "pending"),
        ("pending", "in_progress"),
        ("in_progress", "completed"),
    ]
    final = changes[-1]
    assert (final.provider, final.model, final.request_count) == ("openai", "gpt-4o-mini", 4)
    assert final.counts.succeeded == 4
    bucket = gateway.bucket
    assert final.results_uri == f"s3://{bucket}/results/{job_id}/results.jsonl"
    assert final.summary_uri == f"s3://{bucket}/results/{job_id}/summary.json"
    assert changes[0].results_uri is None
    assert all(
        secret_prompt not in c.model_dump_json() and "Be terse" not in c.model_dump_json() for c in changes
    )


def test_a_rejected_file_ends_with_a_failed_event_and_its_reason(
    gateway: LocalGateway, job_events_queue: str, tmp_path: Path
) -> None:
    rows = [{"custom_id": "ok", "user_message": "fine"}, {"custom_id": "bad", "user_message": ""}]
    job_id = gateway.submit_file(
        write_jsonl(tmp_path / "rejected.jsonl", rows), JobSpec(provider="openai", model="gpt-4o-mini")
    )
    gateway.wait(job_id, timeout_s=60)

    final = received_until_final(job_events_queue, job_id)[-1]

    assert final.status == "failed"
    assert final.reason
    assert final.errors_uri == f"s3://{gateway.bucket}/results/{job_id}/errors.jsonl"
