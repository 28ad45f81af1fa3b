"""Run the chaos jobs on one offline stack with faults on, the reconciler on a timer, and count.

Jobs go in by waves of one emulator scenario (the scenario is the emulator's, for every batch at
once): ``ok``, ``item-errors``, ``expire`` and ``quota`` (a provider's quota below the stack's) waves,
each ``concurrency`` jobs at a time; the next wave starts after ``wave_s`` even if stragglers still
run. Throughout, an :class:`ExecutionStopper` stops running executions at random (the reconciler
must resume them) and the reconciler fires every ``reconcile_every_s``. After the last wave every job has ``grace_s`` more to end, faults still on; one
that has not is stuck, and the report says where each chunk of it stands. Faults stop before the
books are read, so counting is never faulted.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from batch_gateway.storage import keys
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway_local.chaos.report import ChaosReport, count_lines, provider_batch_keys
from batch_gateway_local.chaos.workload import ChaosJob, write_jobs
from batch_gateway_local.stack.faults.hooks import installed
from batch_gateway_local.stack.faults.plan import FaultPlan
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions

# Per opportunity. A job makes ~200 AWS calls, ~20 provider calls and ~10 event deliveries, and its
# executions are looked at every `stop_every_s`: these rates hit most jobs at least once and give each
# kind tens of faults over 100 jobs, without making every reconciler run die.
DEFAULT_RATES: dict[str, float] = {
    "crash-before-aws-call": 0.002,
    "crash-after-aws-call": 0.002,
    "crash-before-provider-call": 0.015,
    "crash-after-provider-call": 0.015,
    "lost-provider-answer": 0.015,
    "duplicate-event": 0.04,
    "late-event": 0.04,
    "stopped-execution": 0.01,
}


QUOTA_WAVE_LIMITS = {"openai": 90, "azure-openai": 90, "anthropic": 3, "bedrock": 1}
"""The provider's own quota during a ``quota`` wave, below the stack's parameters (the organisation's
quota used elsewhere): about one 3-line chunk per model at a time (the emulator counts ~20 tokens a
line), so the provider refuses the others and the gateway must requeue them, never fail them."""


@dataclass(frozen=True)
class ChaosOptions:
    jobs: int = 100
    seed: int = 1
    scale: float = 1.0
    """Multiplies every rate of DEFAULT_RATES (0 = no faults at all)."""
    chunk_size: int = 3
    concurrency: int = 6
    scenarios: tuple[str, ...] = ("ok", "item-errors", "expire", "quota")
    """Emulator scenarios by wave; ``quota`` is ``ok`` under :data:`QUOTA_WAVE_LIMITS`."""
    reconcile_every_s: float = 3.0
    stop_every_s: float = 2.0
    wave_s: float = 180.0
    """The next wave starts after this long even if some jobs of this one still run."""
    grace_s: float = 900.0
    """After the last wave, how long every job still has to end (faults stay on): Step Functions'
    retries of a provider outage alone may take ~15 minutes (30 s doubling, 5 attempts)."""


class ExecutionStopper:
    """Stops a running execution now and then (a deploy, an operator, a quota), as the plan decides."""

    def __init__(self, gateway: LocalGateway, plan: FaultPlan, every_s: float) -> None:
        self._gateway, self._plan, self._every_s = gateway, plan, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-execution-stopper", daemon=True)

    def __enter__(self) -> ExecutionStopper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        sfn = boto3.client("stepfunctions")
        arn = self._gateway.outputs["StateMachineArn"]
        while not self._stop.wait(self._every_s):
            with contextlib.suppress(Exception):  # the stack may be going down
                running = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
                for execution in running:
                    if self._plan.decide("stopped-execution", execution["name"]):
                        sfn.stop_execution(executionArn=execution["executionArn"], cause="chaos: stopped")


def _reconcile(gateway: LocalGateway) -> None:
    with contextlib.suppress(Exception):  # a reconciler run that died is retried by the next one
        gateway.run_reconciler()


def _run_wave(gateway: LocalGateway, wave: list[ChaosJob], options: ChaosOptions) -> dict[int, str]:
    quota = wave[0].scenario == "quota"
    gateway.emulator.scenario = "ok" if quota else wave[0].scenario
    for provider, limit in QUOTA_WAVE_LIMITS.items():
        gateway.emulator.set_quota(provider, limit if quota else None)
    ids = {job.number: gateway.submit_file(job.path, job.spec) for job in wave}
    _wait(gateway, list(ids.values()), options, options.wave_s)
    return ids


def _wait(gateway: LocalGateway, job_ids: list[str], options: ChaosOptions, seconds: float) -> None:
    """Until every job ended or ``seconds`` passed, firing the reconciler as its schedule would."""
    started, last_reconcile = time.monotonic(), 0.0
    while time.monotonic() - started < seconds:
        if all(_finished(gateway, job_id) for job_id in job_ids):
            return
        if time.monotonic() - last_reconcile > options.reconcile_every_s:
            _reconcile(gateway)
            last_reconcile = time.monotonic()
        time.sleep(0.5)


def _finished(gateway: LocalGateway, job_id: str) -> bool:
    job = gateway.progress(job_id).job
    return job is not None and job.finished_at is not None and job.status.is_terminal


def _waves(jobs: list[ChaosJob], size: int) -> list[list[ChaosJob]]:
    by_scenario: dict[str, list[ChaosJob]] = {}
    for job in jobs:
        by_scenario.setdefault(job.scenario, []).append(job)
    return [group[i : i + size] for group in by_scenario.values() for i in range(0, len(group), size)]


def _local_options(options: ChaosOptions) -> LocalOptions:
    return LocalOptions(chunk_max_items=options.chunk_size, scenario="ok", retry_rounds=1)


def run_chaos(options: ChaosOptions, workdir: Path | None = None) -> ChaosReport:
    """Run the jobs, faults on; the report of what they did to lines and batches."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        folder = workdir or Path(tmp)
        jobs = write_jobs(options.jobs, options.seed, folder, options.chunk_size, options.scenarios)
        rates = {kind: rate * options.scale for kind, rate in DEFAULT_RATES.items()}
        plan = FaultPlan(seed=options.seed, rate=0.0, rates=rates)
        with LocalGateway(_local_options(options)) as gateway:
            ids: dict[int, str] = {}
            with installed(plan), ExecutionStopper(gateway, plan, options.stop_every_s):
                for wave in _waves(jobs, options.concurrency):
                    ids.update(_run_wave(gateway, wave, options))
                _wait(gateway, list(ids.values()), options, options.grace_s)
            plan.enabled = False
            report = _count(gateway, jobs, ids)
    report.faults = plan.counts()
    report.fault_log = [f"{i.kind} at {i.where}" for i in plan.injected]
    report.wall_seconds = time.monotonic() - started
    return report


def _count(gateway: LocalGateway, jobs: list[ChaosJob], ids: dict[int, str]) -> ChaosReport:
    report = ChaosReport(jobs=len(jobs))
    s3 = boto3.client("s3")
    repo = JobsRepository(gateway.outputs["JobsTableName"])
    recorded: set[str] = set()
    for job in jobs:
        job_id = ids[job.number]
        summary = gateway.progress(job_id).job
        status = summary.status.value if summary else "missing"
        if summary is not None:
            report.quota_requeues += summary.provider_batches.requeued_for_quota
        if summary is not None and summary.finished_at is not None:
            report.jobs_ended += 1
            report.jobs_by_status[status] = report.jobs_by_status.get(status, 0) + 1
        else:
            report.stuck_jobs.append(job_id)
            report.examples.append(_stuck(gateway, job_id))
        expected = [f"c{job.number}-{line}" for line in range(1, job.lines + 1)]
        body = _results(s3, gateway.bucket, job_id)
        count_lines(report, expected, body, job_id)
        with gateway.stack.between_invocations():  # type: ignore[union-attr]
            for row in repo.chunk_rows(job_id):
                recorded |= row.batch_ids()
    _count_batches(report, gateway, recorded)
    return report


def _stuck(gateway: LocalGateway, job_id: str) -> str:
    """Where a stuck job stands: its status and each chunk's status, step and batch."""
    progress = gateway.progress(job_id)
    status = progress.job.status.value if progress.job else "no job row"
    chunks = "; ".join(
        f"chunk {c.get('chunk')}: {c.get('status')} r{c.get('round')}a{c.get('attempt')} "
        f"{c.get('provider_batch_id') or 'no batch'}{' collected' if c.get('collected_at') else ''}"
        for c in progress.chunks
    )
    return f"stuck {job_id} ({status}, stage {progress.stage}): {chunks or 'no chunk rows'}"


def _results(s3: Any, bucket: str, job_id: str) -> bytes:
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=keys.results_key(job_id))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return b""
    return body


def _count_batches(report: ChaosReport, gateway: LocalGateway, recorded: set[str]) -> None:
    per_key, answered, statuses = provider_batch_keys(gateway.emulator)
    report.provider_batches = len(statuses)
    twice = [key for key, n in per_key.items() if n > 1]
    report.batches_paid_twice = sum(per_key[key] - 1 for key in twice)
    report.examples.extend(f"paid twice: {'/'.join(key)}" for key in twice)
    report.anthropic_requests_answered_twice = sum(n - 1 for n in answered.values() if n > 1)
    report.examples.extend(f"Anthropic answered {c} {n} times" for c, n in answered.items() if n > 1)
    orphans = [
        batch
        for batch, status in statuses.items()
        if batch not in recorded and status not in ("cancelled", "Stopped")
    ]
    window = [batch for batch in orphans if batch.startswith("msgbatch_")]
    report.anthropic_batches = sum(1 for batch in statuses if batch.startswith("msgbatch_"))
    report.anthropic_window_batches = len(window)
    orphans = [batch for batch in orphans if batch not in window]
    report.orphan_batches = len(orphans)
    report.examples.extend(f"orphan batch {batch} ({statuses[batch]})" for batch in orphans)
