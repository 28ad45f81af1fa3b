"""Retries after a crash between two external calls end as a clean run would: no second paid batch,
no duplicate result rows, the same files."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import openai
import pytest

from batch_gateway.models import JobSpec
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.storage.keys import chunk_requests_key, chunk_results_key, results_key
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl
from tests.stack_helpers import invoke


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=5)) as local:
        yield local


@pytest.fixture(scope="module")
def finished_job(gateway: LocalGateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    items = [{"custom_id": f"q{n}", "user_message": f"question {n}"} for n in range(8)]
    source = write_jsonl(tmp_path_factory.mktemp("in") / "once.jsonl", items)
    job_id = gateway.submit_file(source, JobSpec(provider="openai", model="gpt-4o-mini"))
    assert gateway.wait(job_id, timeout_s=120).status.value == "completed"
    return job_id


def s3_text(gateway: LocalGateway, key: str) -> str:
    return boto3.client("s3").get_object(Bucket=gateway.bucket, Key=key)["Body"].read().decode()


def test_a_submit_that_died_after_openai_created_the_batch_adopts_it_on_retry(
    gateway: LocalGateway, finished_job: str, tmp_path: Path
) -> None:
    jobs = JobsRepository(gateway.outputs["JobsTableName"])
    ref = {"job_id": finished_job, "bucket": gateway.bucket, "chunk": 1, "round": 5, "attempt": 0}
    requests = s3_text(gateway, chunk_requests_key(finished_job, 1))
    boto3.client("s3").put_object(
        Bucket=gateway.bucket, Key=chunk_requests_key(finished_job, 1, 5), Body=requests.encode()
    )
    # The first attempt recorded its intent, uploaded and created the batch, then its Lambda died.
    jobs.update_chunk(finished_job, 1, {"batch_r5_a0_intent_at": time.time() - 1})
    client = openai.OpenAI(api_key="sk-emulator", base_url=gateway.emulator.openai_base_url)
    uploaded = client.files.create(file=("requests.jsonl", requests.encode()), purpose="batch")
    orphan = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"batch_gateway_job": finished_job, "chunk": "1", "round": "5", "attempt": "0"},
    )
    created_before = gateway.emulator.batches_created.get("openai", 0)

    state = invoke(
        gateway,
        "SubmitFunction",
        {"chunk": ref, "backoff": {"initial_seconds": 1, "factor": 1, "max_seconds": 1}},
    )

    assert state["provider_batch_id"] == orphan.id
    assert gateway.emulator.batches_created.get("openai", 0) == created_before
    assert jobs.get_chunk(finished_job, 1)["batch_r5_a0"] == orphan.id


def test_collect_run_twice_writes_the_same_results_and_no_duplicate_rows(
    gateway: LocalGateway, finished_job: str
) -> None:
    chunk = JobsRepository(gateway.outputs["JobsTableName"]).get_chunk(finished_job, 2)
    before_file = s3_text(gateway, chunk_results_key(finished_job, 2))
    rows_before = list(gateway.results_table_rows(finished_job))
    state = {
        "job_id": finished_job,
        "bucket": gateway.bucket,
        "chunk": 2,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "provider_batch_id": chunk["batch_r0_a0"],
        "status": "completed",
        "wait_seconds": 1,
        "terminal": True,
    }
    payload = {
        "state": state,
        "backoff": {"initial_seconds": 1, "factor": 1, "max_seconds": 1},
        "policy": {"failed_batch_retries": 2, "retry_rounds": 1},
    }

    first = invoke(gateway, "CollectFunction", payload)
    second = invoke(gateway, "CollectFunction", payload)

    assert first == second
    assert first["next_step"] == "done"
    assert s3_text(gateway, chunk_results_key(finished_job, 2)) == before_file
    rows_after = list(gateway.results_table_rows(finished_job))
    assert len(rows_after) == len(rows_before) == 8


def test_finalize_run_twice_leaves_the_same_results_file_and_summary(
    gateway: LocalGateway, finished_job: str
) -> None:
    results_before = s3_text(gateway, results_key(finished_job))

    first = invoke(gateway, "FinalizeFunction", {"job_id": finished_job, "bucket": gateway.bucket})
    second = invoke(gateway, "FinalizeFunction", {"job_id": finished_job, "bucket": gateway.bucket})

    assert first == second
    assert first["counts"]["succeeded"] == 8
    assert s3_text(gateway, results_key(finished_job)) == results_before
    assert [json.loads(line)["custom_id"] for line in results_before.splitlines()] == [
        f"q{n}" for n in range(8)
    ]
