"""The Bedrock provider through boto3 against the emulator's Bedrock control plane, with S3 on moto.

The emulator reads the job's input from and writes its output to moto's in-process S3, exactly where
the real service would (the same bucket and keys), so these tests exercise the provider's S3 layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from batch_gateway.models import BatchItem, BatchStatus, FinishReason, JobSpec
from batch_gateway.providers.bedrock.batch import BedrockBatchProvider
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.registry import get_provider
from batch_gateway.providers.requests import encode_request_line
from batch_gateway.storage.keys import chunk_requests_key
from batch_gateway.storage.s3 import upload_file
from batch_gateway_local.emulator import EmulatorServer

BUCKET = "bedrock-test-bucket"
ROLE = "arn:aws:iam::123456789012:role/bedrock-batch"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
SPEC = JobSpec(provider="bedrock", model=MODEL, system_prompt="Answer briefly.")


@pytest.fixture
def emu(mocked_aws: None) -> Iterator[EmulatorServer]:
    with EmulatorServer(polls_to_complete=2, bedrock_min_records=3) as server:
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield server


def provider_for(emu: EmulatorServer, min_records: int = 3) -> BedrockBatchProvider:
    provider = get_provider(
        "bedrock",
        api_key="",
        base_url=emu.bedrock_endpoint_url,
        max_retries=1,
        bucket=BUCKET,
        role_arn=ROLE,
        min_records=min_records,
    )
    assert isinstance(provider, BedrockBatchProvider)
    return provider


def stage(tmp_path: Path, provider: BedrockBatchProvider, messages: list[str], round_: int = 0) -> Path:
    """Stage a chunk's request file where intake puts it (Bedrock reads it there) and keep a local copy."""
    path = tmp_path / "requests.jsonl"
    with path.open("wb") as fh:
        for line, text in enumerate(messages, start=1):
            item = BatchItem(custom_id=f"user id {line}", user_message=text, max_tokens=200)
            fh.write(
                encode_request_line(provider.build_request(provider.provider_custom_id("", line), item, SPEC))
            )
    upload_file(path, BUCKET, chunk_requests_key("job-1", 1, round_))
    return path


def metadata(attempt: int = 0) -> dict[str, str]:
    return {"batch_gateway_job": "job-1", "chunk": "1", "round": "0", "attempt": str(attempt)}


def run_to_end(provider: BedrockBatchProvider, job_arn: str) -> str:
    for _ in range(10):
        progress = provider.poll(job_arn)
        if progress.status.is_terminal:
            return progress.provider_status
    raise AssertionError("the job never ended")


def test_a_job_runs_to_completed_and_every_record_has_a_claude_answer(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    provider = provider_for(emu)
    path = stage(tmp_path, provider, ["What is S3?", "What is IAM?", "What is Lambda?"])

    submitted = provider.submit(path, SPEC, metadata())
    assert submitted.status is BatchStatus.PENDING
    assert run_to_end(provider, submitted.provider_batch_id) == "Completed"
    results = {r.provider_custom_id: r for r in provider.iter_results(submitted.provider_batch_id)}

    assert sorted(results) == ["R0000000001", "R0000000002", "R0000000003"]
    first = results["R0000000001"]
    assert first.outcome == "succeeded"
    assert first.response is not None
    assert first.response.content
    assert "What is S3?" in first.response.content
    assert first.response.finish_reason is FinishReason.STOP
    assert first.response.usage["total_tokens"] > 0
    assert "modelInput" not in first.raw  # the prompt is not copied into every result row


def test_the_same_submission_retried_returns_the_same_job(emu: EmulatorServer, tmp_path: Path) -> None:
    provider = provider_for(emu)
    path = stage(tmp_path, provider, ["a", "b", "c"])

    first = provider.submit(path, SPEC, metadata())
    again = provider.submit(path, SPEC, metadata())  # a Lambda retry after a lost answer
    next_attempt = provider.submit(path, SPEC, metadata(attempt=1))

    assert again.provider_batch_id == first.provider_batch_id
    assert next_attempt.provider_batch_id != first.provider_batch_id
    assert emu.batches_created["bedrock"] == 2


def test_item_errors_come_back_as_per_record_errors_with_their_status(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    emu.scenario = "item-errors"
    provider = provider_for(emu)
    path = stage(tmp_path, provider, [f"question {n}" for n in range(10)])

    submitted = provider.submit(path, SPEC, metadata())
    assert run_to_end(provider, submitted.provider_batch_id) == "PartiallyCompleted"
    results = {r.provider_custom_id: r for r in provider.iter_results(submitted.provider_batch_id)}

    permanent, transient = results["R0000000004"], results["R0000000008"]  # positions 3 and 7
    assert permanent.outcome == "errored"
    assert not permanent.retryable
    assert permanent.error is not None
    assert permanent.error.startswith("HTTP 400: ")
    assert transient.outcome == "errored"
    assert transient.retryable
    assert sum(r.outcome == "succeeded" for r in results.values()) == 8


def test_a_failed_job_says_why_and_an_expired_one_keeps_what_finished(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    provider = provider_for(emu)
    emu.scenario = "fail"
    failed = provider.submit(stage(tmp_path, provider, ["a", "b", "c", "d"]), SPEC, metadata())
    assert run_to_end(provider, failed.provider_batch_id) == "Failed"
    assert "Enqueued token limit reached" in (provider.poll(failed.provider_batch_id).message or "")

    emu.scenario = "expire"
    expired = provider.submit(stage(tmp_path, provider, ["e", "f", "g", "h"]), SPEC, metadata(attempt=1))
    assert run_to_end(provider, expired.provider_batch_id) == "Expired"
    assert provider.poll(expired.provider_batch_id).status is BatchStatus.EXPIRED
    assert len(list(provider.iter_results(expired.provider_batch_id))) == 2  # the first half


def test_a_stopped_job_ends_cancelled(emu: EmulatorServer, tmp_path: Path) -> None:
    provider = provider_for(emu)
    submitted = provider.submit(stage(tmp_path, provider, ["a", "b", "c"]), SPEC, metadata())

    assert provider.cancel(submitted.provider_batch_id).status is BatchStatus.CANCELLING
    assert run_to_end(provider, submitted.provider_batch_id) == "Stopped"
    assert provider.poll(submitted.provider_batch_id).status is BatchStatus.CANCELLED
    assert list(provider.iter_results(submitted.provider_batch_id)) == []


def test_below_the_minimum_records_the_provider_refuses_before_any_call(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    provider = provider_for(emu, min_records=5)
    path = stage(tmp_path, provider, ["a", "b"])

    with pytest.raises(ProviderError, match="at least 5 records per job and this batch has 2"):
        provider.submit(path, SPEC, metadata())
    assert emu.batches_created.get("bedrock", 0) == 0


def test_the_emulator_fails_a_job_below_its_account_minimum_like_bedrock(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    provider = provider_for(emu, min_records=1)  # a misconfigured gateway: Bedrock itself refuses
    submitted = provider.submit(stage(tmp_path, provider, ["a", "b"]), SPEC, metadata())

    progress = provider.poll(submitted.provider_batch_id)
    assert progress.status is BatchStatus.FAILED
    assert progress.message is not None
    assert "minimum of 3 records" in progress.message


def test_an_unknown_job_is_a_readable_error(emu: EmulatorServer) -> None:
    with pytest.raises(ProviderError, match="ResourceNotFoundException"):
        provider_for(emu).poll("arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdefabcdef")
