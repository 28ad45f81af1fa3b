"""The reconciler on the offline stack: jobs whose workflow died are resumed, or ended keeping every answer."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import boto3
import openai
import pytest

from batch_gateway.models import JobSpec
from batch_gateway.storage.keys import chunk_requests_key, results_key, staging_prefix, summary_key
from batch_gateway.triggers.reconciliation import ReconcileOptions, Reconciler
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl
from tests.stack_helpers import event, execution_arn, invoke, until

MARKER_ERROR_500 = "[[emulator:error-500]]"


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=5)) as local:
        yield local


def submit(
    gateway: LocalGateway, tmp_path: Path, name: str, provider: str = "openai", follow_up_round: bool = True
) -> str:
    """Eight lines in two chunks; line 7 fails with a retryable 500, so chunk 2 runs a follow-up round."""
    marked = 7 if follow_up_round else None
    items = [
        {
            "custom_id": f"{name}-{n}",
            "user_message": f"Question {n}" + (MARKER_ERROR_500 if n == marked else ""),
        }
        for n in range(1, 9)
    ]
    spec = JobSpec(
        provider=provider, model="gpt-4o-mini" if provider == "openai" else "claude-3-5-haiku-latest"
    )
    return gateway.submit_file(write_jsonl(tmp_path / f"{name}.jsonl", items), spec, f"inbox/{name}.jsonl")


def chunk(gateway: LocalGateway, job_id: str, number: int) -> dict[str, Any]:
    return next(c for c in gateway.progress(job_id).chunks if int(c["chunk"]) == number)


def reconcile(gateway: LocalGateway) -> dict[str, Any]:
    return invoke(gateway, "ReconcilerFunction", event("eventbridge_scheduled_reconcile.json"))


def results(gateway: LocalGateway, job_id: str) -> list[dict[str, Any]]:
    body = boto3.client("s3").get_object(Bucket=gateway.bucket, Key=results_key(job_id))["Body"]
    return [json.loads(line) for line in body.read().decode().splitlines()]


def fail_chunk_2_after_chunk_1_was_collected(gateway: LocalGateway, job_id: str) -> bytes:
    """Remove chunk 2's follow-up round input once chunk 1 is collected: its round fails, the workflow's
    catch-all ends the job. Returns the removed object, to put back."""
    until(lambda: "collected_at" in chunk(gateway, job_id, 1), "chunk 1 collected")
    until(lambda: "round_0" in chunk(gateway, job_id, 2), "chunk 2's follow-up round staged")
    key = chunk_requests_key(job_id, 2, 1)
    s3 = boto3.client("s3")
    body: bytes = s3.get_object(Bucket=gateway.bucket, Key=key)["Body"].read()
    s3.delete_object(Bucket=gateway.bucket, Key=key)
    failed = gateway.wait(job_id, timeout_s=60)
    assert failed.status.value == "failed"
    # The reason names the chunk that failed and why (its child execution recorded it on the chunk row).
    assert failed.reason is not None
    assert failed.reason.startswith("chunk 2 failed: "), failed.reason
    assert "collected_at" not in chunk(gateway, job_id, 2)
    return body


def test_a_job_whose_execution_was_stopped_mid_wait_is_resumed_and_completes(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    gateway.emulator.scenario = "slow"  # the batches stay in progress: the workflow sits in its Wait
    try:
        job_id = submit(gateway, tmp_path, "stopped", provider="anthropic", follow_up_round=False)
        until(lambda: all("provider_batch_id" in c for c in gateway.progress(job_id).chunks), "submission")
    finally:
        gateway.emulator.scenario = "ok"
    batches = dict(gateway.emulator.batches_created)
    sfn = boto3.client("stepfunctions")
    sfn.stop_execution(executionArn=execution_arn(gateway, job_id), cause="operator stopped it by mistake")
    # On AWS the execution ends ABORTED; moto 5.2.5's interpreter, stopped inside the callback task
    # that awaits the provider, ends it FAILED. The reconciler treats both alike.
    until(
        lambda: sfn.describe_execution(executionArn=execution_arn(gateway, job_id))["status"] != "RUNNING",
        "the execution to stop",
    )

    report = reconcile(gateway)

    assert [r["job_id"] for r in report["resumed"]] == [job_id]
    assert f"resumed as {job_id}-resume-1" in report["resumed"][0]["detail"]
    job = gateway.wait(job_id, timeout_s=120)
    assert job.status.value == "completed", job.reason
    lines = results(gateway, job_id)
    assert [r["custom_id"] for r in lines] == [f"stopped-{n}" for n in range(1, 9)]
    assert all(r["error"] is None for r in lines)
    # The resumed workflow adopted the provider batches of the stopped one: nothing was paid twice.
    assert gateway.emulator.batches_created["anthropic"] == batches["anthropic"]
    # A second run finds nothing to repair.
    again = reconcile(gateway)
    assert job_id not in [r["job_id"] for r in again["resumed"] + again["failed"]]


def test_a_job_whose_execution_failed_after_partial_collection_resumes_without_redoing_it(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    job_id = submit(gateway, tmp_path, "partly")
    removed = fail_chunk_2_after_chunk_1_was_collected(gateway, job_id)
    chunk_1_collected_at = chunk(gateway, job_id, 1)["collected_at"]
    batches = gateway.emulator.batches_created["openai"]
    # The cause was passing (here: the staged input is back), so the workflow can go on where it stopped.
    boto3.client("s3").put_object(Bucket=gateway.bucket, Key=chunk_requests_key(job_id, 2, 1), Body=removed)

    report = reconcile(gateway)

    assert [r["job_id"] for r in report["resumed"]] == [job_id]
    assert "the workflow failed; resumed as" in report["resumed"][0]["detail"]
    job = gateway.wait(job_id, timeout_s=120)
    assert job.status.value == "completed", job.reason
    lines = results(gateway, job_id)
    assert [r["line"] for r in lines] == list(range(1, 9))
    assert [r["custom_id"] for r in lines if r["error"]] == ["partly-7"]
    assert job.counts.succeeded == 7
    assert chunk(gateway, job_id, 1)["collected_at"] == chunk_1_collected_at  # not collected again
    assert gateway.emulator.batches_created["openai"] - batches <= 1  # at most chunk 2's round 1, once


def test_a_job_that_cannot_be_resumed_ends_failed_with_every_collected_answer(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    job_id = submit(gateway, tmp_path, "lost")
    fail_chunk_2_after_chunk_1_was_collected(gateway, job_id)  # and its input stays gone

    report = reconcile(gateway)

    ended = [r for r in report["failed"] if r["job_id"] == job_id]
    assert len(ended) == 1
    assert "could not be resumed: its staged input" in ended[0]["detail"]
    job = gateway.progress(job_id).job
    assert job is not None
    assert job.status.value == "failed"
    assert job.reason == ended[0]["detail"]
    lines = results(gateway, job_id)
    # One result per input line, in input order: chunk 1's answers, chunk 2's round-0 answers, and
    # line 7 with the error it was collected with before the workflow died.
    assert [r["line"] for r in lines] == list(range(1, 9))
    assert [r["custom_id"] for r in lines if r["error"]] == ["lost-7"]
    assert "500" in lines[6]["error"]
    assert job.counts.succeeded == 7
    assert job.counts.errored == 1
    rows = {row["custom_id"]: row for row in gateway.results_table_rows(job_id)}
    assert len(rows) == 8
    assert rows["lost-8"]["ok"] is True
    summary = boto3.client("s3").get_object(Bucket=gateway.bucket, Key=summary_key(job_id))["Body"]
    assert json.loads(summary.read())["reason"] == job.reason
    # Ended for good: later runs leave it alone.
    assert job_id not in [r["job_id"] for r in reconcile(gateway)["failed"]]


def test_a_running_job_older_than_the_threshold_counts_as_stuck(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    gateway.emulator.scenario = "slow"
    try:
        job_id = submit(gateway, tmp_path, "slowpoke", provider="anthropic")
        until(lambda: all("provider_batch_id" in c for c in gateway.progress(job_id).chunks), "submission")
        report = Reconciler(gateway.settings(), ReconcileOptions(stuck_after_hours=1e-6)).run()
    finally:
        gateway.emulator.scenario = "ok"
    assert job_id in report.stuck
    assert job_id not in [r.job_id for r in report.resumed]  # a running workflow is left alone
    gateway.cancel(job_id)  # done with it: do not let it hold up the next test
    assert gateway.wait(job_id, timeout_s=120).status.value == "cancelled"


def test_finished_jobs_past_retention_lose_staging_and_provider_files_once(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    jobs = {
        provider: submit(gateway, tmp_path, f"old-{provider}", provider, follow_up_round=False)
        for provider in ("openai", "anthropic")
    }
    for job_id in jobs.values():
        assert gateway.wait(job_id, timeout_s=120).status.value == "completed"
    batch_ids = {
        provider: [
            c[k] for c in gateway.progress(job_id).chunks for k in c if re.fullmatch(r"batch_r\d+_a\d+", k)
        ]
        for provider, job_id in jobs.items()
    }
    assert len(batch_ids["openai"]) == len(batch_ids["anthropic"]) == 2  # two chunks
    oai = openai.OpenAI(api_key="sk-emulator-local", base_url=gateway.emulator.openai_base_url, max_retries=0)
    openai_batches = [oai.batches.retrieve(batch_id) for batch_id in batch_ids["openai"]]
    files = [f for b in openai_batches for f in (b.input_file_id, b.output_file_id, b.error_file_id) if f]
    assert len(files) == 4  # an input and an output file per batch
    a_week_later = time.time() + 7 * 24 * 3600 + 60

    report = Reconciler(gateway.settings(), ReconcileOptions(retention_days=7)).run(now=a_week_later)

    assert set(jobs.values()) <= set(report.cleaned_up)
    s3 = boto3.client("s3")
    for job_id in jobs.values():
        assert s3.list_objects_v2(Bucket=gateway.bucket, Prefix=staging_prefix(job_id))["KeyCount"] == 0
        assert gateway.job_row(job_id)["cleaned_up_at"]
        assert len(results(gateway, job_id)) == 8  # results stay
    for file_id in files:
        with pytest.raises(openai.NotFoundError):
            oai.files.retrieve(file_id)
    ant = anthropic.Anthropic(
        api_key="sk-emulator-local", base_url=gateway.emulator.anthropic_base_url, max_retries=0
    )
    for batch_id in batch_ids["anthropic"]:
        with pytest.raises(anthropic.NotFoundError):
            ant.messages.batches.retrieve(batch_id)
    again = Reconciler(gateway.settings(), ReconcileOptions(retention_days=7)).run(now=a_week_later)
    assert not set(jobs.values()) & set(again.cleaned_up)
