"""Whole Bedrock jobs through the offline stack: the real template (service role, env), ASL and handlers,
the emulator's Bedrock control plane reading and writing moto's S3, and the minimum-records quota."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import read_jsonl, write_jsonl

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
MIN_RECORDS = 5


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    options = LocalOptions(chunk_max_items=10, bedrock_min_records=MIN_RECORDS, stack_name="bg-bedrock")
    with LocalGateway(options) as local:
        yield local


def items(count: int, prefix: str) -> list[dict[str, str]]:
    # Ids Bedrock could not take as recordIds (spaces, dots, any length): mapped and mapped back.
    return [{"custom_id": f"{prefix} no.{n}", "user_message": f"{prefix} question {n}"} for n in range(count)]


def test_a_job_whose_last_chunk_is_short_is_balanced_and_every_line_is_answered(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    lines = items(23, "balance")  # chunks of 10 would leave 3 for the last job: below the minimum of 5
    before = gateway.emulator.batches_created.get("bedrock", 0)
    spec = JobSpec(provider="bedrock", model=MODEL, system_prompt="Answer in one sentence.")

    job_id = gateway.submit_file(write_jsonl(tmp_path / "balance.jsonl", lines), spec)
    job = gateway.wait(job_id, timeout_s=300)
    files = gateway.export(job_id, tmp_path / "out")
    results = read_jsonl(files["results.jsonl"])
    chunks = gateway.progress(job_id).chunks

    assert job.status.value == "completed"
    assert [r["custom_id"] for r in results] == [line["custom_id"] for line in lines]
    assert all(r["response"]["content"].startswith(f"[{MODEL}]") for r in results)
    assert sorted(int(c["item_count"]) for c in chunks) == [5, 8, 10]
    assert gateway.emulator.batches_created["bedrock"] - before == 3
    summary = json.loads(files["summary.json"].read_text())
    assert summary["cost"]["usd"] is not None
    assert summary["cost"]["usd"] > 0  # priced at Bedrock's batch rate for this model
    # Bedrock read each job's input and wrote its output as the job's service role: checked against
    # that role's policy (the emulator acts for it through the hook the gateway gives it).
    assert gateway.stack is not None
    assert gateway.stack.iam_check is not None
    bedrock_calls = {c.operation for c in gateway.stack.iam_check.checked if c.function == "BedrockBatchRole"}
    assert {"GetObject", "PutObject"} <= bedrock_calls


def test_a_file_below_the_minimum_is_rejected_before_any_bedrock_job_with_what_to_do(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    before = gateway.emulator.batches_created.get("bedrock", 0)

    job_id = gateway.submit_file(
        write_jsonl(tmp_path / "tiny.jsonl", items(3, "tiny")), JobSpec(provider="bedrock", model=MODEL)
    )
    job = gateway.wait(job_id, timeout_s=120)

    assert job.status.value == "failed"
    assert job.reason is not None
    assert f"needs at least {MIN_RECORDS} records per job and this file has 3 for {MODEL}" in job.reason
    assert "provider anthropic" in job.reason
    assert gateway.emulator.batches_created.get("bedrock", 0) == before
