"""Bedrock's job state-change events wake a chunk's waiting execution at once; other events change nothing.

The stack waits 600 s between polls here, so a job that finishes within the test's wait was woken by
the event, not by its next poll. Events are the real-shaped EventBridge event from events/, sent to
the deployed BedrockEventsFunction the way the stack's rule delivers them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from batch_gateway.models import BatchStatus, JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway
from tests.stack_helpers import event, first_chunk_row, invoke, parked_options
from tests.stack_helpers import start_parked_job as parked_job

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(parked_options("bedrock-events")) as gw:
        yield gw


def state_change(job_arn: str, status: str) -> dict[str, Any]:
    sample = event("eventbridge_bedrock_job_state_change.json")
    sample["resources"] = [job_arn]
    sample["detail"].update(batchJobArn=job_arn, status=status)
    return sample


def deliver(gw: LocalGateway, job_arn: str, status: str) -> dict[str, Any]:
    return invoke(gw, "BedrockEventsFunction", state_change(job_arn, status))


def start_parked_job(gw: LocalGateway, tmp_path: Path, name: str) -> tuple[str, dict[str, Any]]:
    """A 3-item Bedrock job whose chunk waits for Bedrock in the callback task."""
    return parked_job(gw, tmp_path, name, JobSpec(provider="bedrock", model=MODEL))


def bedrock_status(gw: LocalGateway, job_arn: str) -> str:
    """Bedrock's view of the job (the emulator advances a job one step per status request)."""
    client = boto3.client("bedrock", endpoint_url=gw.emulator.bedrock_endpoint_url)
    return str(client.get_model_invocation_job(jobIdentifier=job_arn)["status"])


def test_a_job_state_change_event_finishes_the_job_before_its_next_poll(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    job_id, chunk = start_parked_job(gateway, tmp_path, "woken")
    assert chunk.get("polls", 0) == 0
    job_arn = chunk["provider_batch_id"]
    assert job_arn.startswith("arn:aws:bedrock:")  # the event names the job by its ARN: the same id
    assert bedrock_status(gateway, job_arn) == "Completed"

    assert deliver(gateway, job_arn, "Completed") == {"outcome": "woken", "job_id": job_id, "chunk": 1}

    job = gateway.wait(job_id, timeout_s=60)  # the next poll was 600 s away
    assert job.status is BatchStatus.COMPLETED
    assert job.counts.succeeded == 3
    row = first_chunk_row(gateway, job_id)
    assert row["polls"] == 1
    assert row["reported_event"] == "bedrock.Completed"


def test_non_terminal_and_unknown_job_events_change_nothing(gateway: LocalGateway, tmp_path: Path) -> None:
    job_id, chunk = start_parked_job(gateway, tmp_path, "waiting")
    job_arn = chunk["provider_batch_id"]

    assert deliver(gateway, job_arn, "InProgress") == {"outcome": "ignored"}
    assert deliver(gateway, job_arn, "Stopping") == {"outcome": "ignored"}
    unknown = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/000000000000"
    assert deliver(gateway, unknown, "Completed") == {"outcome": "unknown_batch"}
    malformed = state_change(job_arn, "Completed")
    del malformed["detail"]["batchJobArn"]
    assert invoke(gateway, "BedrockEventsFunction", malformed) == {"outcome": "ignored"}

    row = first_chunk_row(gateway, job_id)
    assert "reported_batch" not in row
    assert row["wait_token"] == chunk["wait_token"]  # still waiting for its (600 s) poll
    assert gateway.progress(job_id).job.finished_at is None  # type: ignore[union-attr]

    # Bedrock then ends the job: its event wakes the chunk, which polls and collects at once.
    assert bedrock_status(gateway, job_arn) == "Completed"
    assert deliver(gateway, job_arn, "Completed")["outcome"] == "woken"
    assert gateway.wait(job_id, timeout_s=60).status is BatchStatus.COMPLETED


def put_on_default_bus(sample: dict[str, Any]) -> None:
    """What Bedrock does: put the event on the account's default bus (the stack's rule routes it)."""
    entry = {
        "Source": sample["source"],
        "DetailType": sample["detail-type"],
        "Detail": json.dumps(sample["detail"]),
        "Resources": sample["resources"],
    }
    assert boto3.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0


def test_the_stacks_rule_delivers_ended_jobs_events_from_the_default_bus(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    """Through the deployed rule (moto's EventBridge matches its pattern), not a direct invoke."""
    job_id, chunk = start_parked_job(gateway, tmp_path, "routed")
    job_arn = chunk["provider_batch_id"]

    put_on_default_bus(state_change(job_arn, "InProgress"))  # not an end: changes nothing
    assert bedrock_status(gateway, job_arn) == "Completed"
    put_on_default_bus(state_change(job_arn, "Completed"))

    job = gateway.wait(job_id, timeout_s=60)  # the next poll was 600 s away
    assert job.status is BatchStatus.COMPLETED
    row = first_chunk_row(gateway, job_id)
    assert (row["polls"], row["reported_event"]) == (1, "bedrock.Completed")
