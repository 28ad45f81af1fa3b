"""Whole jobs through the faults the chaos run's quota waves found (a stack of its own: a tight quota).

- An execution stopped while a chunk waited for quota stayed ``RUNNING``: moto ended it only when the
  parked task's one-hour wait did (AWS ends it at once), so the reconciler, which resumes dead
  executions only, never resumed it. The offline stack now stops executions as AWS does
  (``stack/sfn_stop.py``).
"""

from __future__ import annotations

import time
from pathlib import Path

import boto3

from batch_gateway.models import JobSpec
from batch_gateway.storage.ledger import QuotaLedger, pool_key
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl

LINES = [{"custom_id": f"q-{n}", "user_message": f"Question {n}?"} for n in range(1, 3)]


def test_stopped_execution_while_a_chunk_waits_for_quota_is_resumed_and_completes(tmp_path: Path) -> None:
    # A quota of one Anthropic request: the second one-line chunk parks until the first batch ends.
    with LocalGateway(LocalOptions(chunk_max_items=1, quota=1, scenario="slow")) as gateway:
        spec = JobSpec(provider="anthropic", model="claude-3-5-haiku-latest")
        job_id = gateway.submit_file(write_jsonl(tmp_path / "parked.jsonl", LINES), spec)
        ledger = QuotaLedger(gateway.settings().quota_ledger_table)
        pool = pool_key(spec.provider, spec.model)
        for _ in range(120):
            with gateway.stack.between_invocations():  # type: ignore[union-attr]
                if ledger.waiters(pool):
                    break
            time.sleep(0.5)
        sfn = boto3.client("stepfunctions")
        arn = f"{gateway.outputs['StateMachineArn'].replace(':stateMachine:', ':execution:')}:{job_id}"
        sfn.stop_execution(executionArn=arn, cause="operator")
        for _ in range(60):
            if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                break
            time.sleep(0.5)
        gateway.run_reconciler()  # it resumes dead executions only: the stop must have ended it
        job = gateway.wait(job_id, timeout_s=300)
    assert job.status.value == "completed", job.reason
    assert job.counts.succeeded == 2
