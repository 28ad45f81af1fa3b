"""Each handler on the deployed offline stack, driven with the real-shaped events in events/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl
from tests.stack_helpers import event, invoke


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=5)) as local:
        yield local


def finished_job(gateway: LocalGateway, tmp_path: Path, key: str, count: int = 7) -> tuple[str, str]:
    items = [{"custom_id": f"c{n}", "user_message": f"question {n}"} for n in range(count)]
    job_id = gateway.submit_file(
        write_jsonl(tmp_path / "in.jsonl", items), JobSpec(provider="openai", model="m"), key
    )
    gateway.wait(job_id, timeout_s=120)
    version = boto3.client("s3").head_object(Bucket=gateway.bucket, Key=key)["VersionId"]
    return job_id, version


def test_a_redelivered_s3_event_starts_no_second_job(gateway: LocalGateway, tmp_path: Path) -> None:
    job_id, version = finished_job(gateway, tmp_path, "inbox/redelivered.jsonl")
    batches_before = dict(gateway.emulator.batches_created)
    redelivery = event("s3_object_created_inbox.json", BUCKET=gateway.bucket, VERSION=version)
    redelivery["Records"][0]["s3"]["object"]["key"] = "inbox/redelivered.jsonl"

    body = invoke(gateway, "IntakeFunction", redelivery)

    assert body["jobs"] == [
        {
            "job_id": job_id,
            "status": "duplicate",
            "reason": "this object version already has a job",
            "execution_arn": None,
        }
    ]
    assert gateway.emulator.batches_created == batches_before


def test_a_key_with_spaces_and_plus_signs_is_decoded_like_s3_does(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    job_id, _ = finished_job(gateway, tmp_path, "inbox/support tickets+notes.jsonl")
    job = gateway.progress(job_id).job
    assert job is not None
    assert job.status.value == "completed"
    assert job.source == f"s3://{gateway.bucket}/inbox/support tickets+notes.jsonl"


def test_an_object_without_a_jsonl_suffix_is_ignored(gateway: LocalGateway) -> None:
    boto3.client("s3").put_object(Bucket=gateway.bucket, Key="inbox/readme.txt", Body=b"not a batch")
    notice = event("s3_object_created_inbox.json", BUCKET=gateway.bucket, VERSION="null")
    notice["Records"][0]["s3"]["object"]["key"] = "inbox/readme.txt"

    body = invoke(gateway, "IntakeFunction", notice)

    assert body["jobs"][0]["status"] == "ignored"
    assert "does not end in .jsonl or .ndjson" in body["jobs"][0]["reason"]


def test_submitting_a_submitted_chunk_again_creates_no_second_provider_batch(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    job_id, _ = finished_job(gateway, tmp_path, "inbox/resubmit.jsonl")
    first = gateway.progress(job_id).chunks[0]
    batches_before = dict(gateway.emulator.batches_created)

    body = invoke(
        gateway, "SubmitFunction", event("sfn_submit_chunk.json", JOB=job_id, BUCKET=gateway.bucket)
    )

    assert body["provider_batch_id"] == first["provider_batch_id"]
    assert gateway.emulator.batches_created == batches_before


def test_poll_reports_the_provider_state_and_backs_off_to_the_cap(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    job_id, _ = finished_job(gateway, tmp_path, "inbox/poll.jsonl")
    batch_id = gateway.progress(job_id).chunks[0]["provider_batch_id"]
    payload = event("sfn_poll_chunk.json", JOB=job_id, BUCKET=gateway.bucket, BATCH=batch_id)

    waits = []
    for _ in range(4):
        answer = invoke(gateway, "PollFunction", payload)
        waits.append(answer["wait_seconds"])
        payload["state"] = {**answer, "terminal": False}  # keep asking, as the loop does while a batch runs

    assert answer["status"] == "completed"
    assert answer["terminal"] is True
    assert waits == [2, 4, 4, 4]  # factor 2 from 1 s, capped at 4 s (events/sfn_poll_chunk.json)


def test_mark_failed_records_a_readable_reason_without_the_stack_trace(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    job_id, _ = finished_job(gateway, tmp_path, "inbox/failing.jsonl")

    body = invoke(
        gateway, "MarkFailedFunction", event("sfn_mark_failed.json", JOB=job_id, BUCKET=gateway.bucket)
    )

    assert body["status"] == "failed"
    assert body["reason"] == "ProviderError: OpenAI rejected the batch: Incorrect API key provided (HTTP 401)"
    summary = json.loads(
        boto3.client("s3")
        .get_object(Bucket=gateway.bucket, Key=f"results/{job_id}/summary.json")["Body"]
        .read()
    )
    assert summary["reason"] == body["reason"]
