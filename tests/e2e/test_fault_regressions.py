"""Whole jobs through the faults the chaos run found, one aimed fault each (``FaultPlan.only``/``limit``).

- A Lambda crash (timeout, out of memory) in any step failed the whole job: every Lambda task now
  retries ``Sandbox.Timedout`` and its kin (statemachine/batch_job.asl.json).
- A Submit that died after the provider created the batch must adopt that batch, not pay for a second.
- An intake that died after staging every chunk and before StartExecution: Lambda's retry of the S3
  event found the job's chunks and took it for a duplicate delivery, so the job stayed ``pending``
  until the reconciler's hour. The retry now starts the execution (once: it is named after the job).
- A reconciler run that died after recording a resume and before starting its execution: the next
  runs took the missing execution for intake still staging (an hour's grace) and then for a
  concurrent run's resume, so the job never resumed. A recorded resume's missing execution is now
  started by the next run, by its name.
- An execution stopped while a chunk waited for quota: see test_fault_regressions_quota.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.faults.hooks import installed
from batch_gateway_local.stack.faults.plan import FaultPlan
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import read_jsonl, write_jsonl
from tests.stack_helpers import execution_arn, until

LINES = [{"custom_id": f"q-{n}", "user_message": f"Question {n}?"} for n in range(1, 4)]


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=10)) as local:
        yield local


def _run(gateway: LocalGateway, tmp_path: Path, plan: FaultPlan, name: str) -> list[str]:
    with installed(plan):
        job_id = gateway.submit_file(
            write_jsonl(tmp_path / f"{name}.jsonl", LINES), JobSpec(provider="openai", model="gpt-4o-mini")
        )
        job = gateway.wait(job_id, timeout_s=300)
    assert job.status.value == "completed", job.reason
    results = read_jsonl(gateway.export(job_id, tmp_path / name, results_table=False)["results.jsonl"])
    assert all(r["error"] is None for r in results)
    return [r["custom_id"] for r in results]


def test_crash_before_aws_call_in_collect_is_retried_and_the_job_completes(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    plan = FaultPlan(rate=0.0, rates={"crash-before-aws-call": 1.0}, only=("CollectFunction",), limit=1)
    assert _run(gateway, tmp_path, plan, "collect-crash") == ["q-1", "q-2", "q-3"]
    assert plan.counts()["crash-before-aws-call"] == 1


def test_crash_after_provider_call_in_submit_adopts_the_batch_instead_of_paying_twice(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    before = gateway.emulator.batches_created["openai"]
    plan = FaultPlan(
        rate=0.0, rates={"crash-after-provider-call": 1.0}, only=(": POST /v1/batches",), limit=1
    )
    assert _run(gateway, tmp_path, plan, "submit-crash") == ["q-1", "q-2", "q-3"]
    assert plan.counts()["crash-after-provider-call"] == 1
    assert gateway.emulator.batches_created["openai"] - before == 1  # the retry found and adopted it


def test_crash_before_start_execution_in_intake_is_started_by_the_retry(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    plan = FaultPlan(
        rate=0.0,
        rates={"crash-before-aws-call": 1.0},
        only=("stepfunctions.StartExecution",),  # only intake starts executions here
        limit=1,
    )
    assert _run(gateway, tmp_path, plan, "intake-crash") == ["q-1", "q-2", "q-3"]
    assert plan.counts()["crash-before-aws-call"] == 1


def test_crash_before_start_execution_in_the_reconciler_is_started_by_its_next_run(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    gateway.emulator.scenario = "slow"  # the batch stays in progress: the workflow waits on it
    try:
        job_id = gateway.submit_file(
            write_jsonl(tmp_path / "stopped.jsonl", LINES), JobSpec(provider="openai", model="gpt-4o-mini")
        )
        until(lambda: all("provider_batch_id" in c for c in gateway.progress(job_id).chunks), "submission")
    finally:
        gateway.emulator.scenario = "ok"
    batches = gateway.emulator.batches_created["openai"]
    sfn = boto3.client("stepfunctions")
    sfn.stop_execution(executionArn=execution_arn(gateway, job_id), cause="chaos: stopped")
    until(
        lambda: sfn.describe_execution(executionArn=execution_arn(gateway, job_id))["status"] != "RUNNING",
        "stop",
    )
    plan = FaultPlan(
        rate=0.0,
        rates={"crash-before-aws-call": 1.0},
        only=("stepfunctions.StartExecution",),  # intake's start is long done: the reconciler's
        limit=1,
    )
    with installed(plan), pytest.raises(RuntimeError, match="offline fault injection"):
        gateway.run_reconciler()  # it recorded resume 1 and died before starting it
    assert [i.function and "ReconcilerFunction" in i.function for i in plan.injected] == [True]

    report = gateway.run_reconciler()

    assert [r["job_id"] for r in report["resumed"]] == [job_id], report
    assert f"as {job_id}-resume-1 " in report["resumed"][0]["detail"]
    job = gateway.wait(job_id, timeout_s=120)
    assert job.status.value == "completed", job.reason
    results = read_jsonl(gateway.export(job_id, tmp_path / "stopped", results_table=False)["results.jsonl"])
    assert [r["custom_id"] for r in results] == ["q-1", "q-2", "q-3"]
    assert gateway.emulator.batches_created["openai"] == batches  # the resume adopted the batch
