"""Reconciler: repair jobs that cannot finish by themselves, and clean up after finished ones.

A job's workflow can die while the job is unfinished: the execution timed out, failed (even its
catch-all MarkFailed), was stopped, or was never started; or the catch-all ended the job ``failed``
while its provider batches still ran on, paid for, with nothing polling them. The reconciler walks
the recent job rows (the JobsByCreatedAt index, never a Scan) and, for each such job, **resumes**
it from the last recorded step (:mod:`.resume`) or, when it cannot be resumed (``max_resumes``
reached, staged input gone), **ends it failed** with a reason, keeping every collected answer
(:mod:`.forced_end`).

A running execution is left alone; one older than ``stuck_after_hours`` counts toward the metric
``JobsStuck``. Finished jobs older than ``retention_days`` lose their staged chunks and their
provider-side files (OpenAI input/output/error files; Anthropic batches), once.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from batch_gateway.models import JobSummary
from batch_gateway.observability import MetricUnit, logger, metrics
from batch_gateway.providers.registry import provider_for
from batch_gateway.settings import Settings
from batch_gateway.storage import keys, s3
from batch_gateway.storage.aws import stepfunctions_client
from batch_gateway.storage.claims import CLEANED_UP_AT, ReconcileRecords
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.triggers.forced_end import end_failed
from batch_gateway.triggers.resume import (
    ended_by_catch_all,
    execution_name,
    resume_point,
    start_execution,
)
from batch_gateway.workflow.finalize import mark_job_failed
from batch_gateway.workflow.payloads import ChunkRef

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient


_RUNNING = ("RUNNING", "PENDING_REDRIVE")
_DEAD = {"FAILED": "failed", "TIMED_OUT": "timed out", "ABORTED": "was stopped", "SUCCEEDED": "ended"}
HOUR = 3600.0
DAY = 24 * HOUR


class ReconcileOptions(BaseModel):
    """The reconciler's knobs (template parameters, through the function's environment)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    retention_days: float = Field(default=7, gt=0, alias="RETENTION_DAYS")
    # The providers' 24-hour window, plus slack for retries and follow-up rounds.
    stuck_after_hours: float = Field(default=26, gt=0, alias="STUCK_AFTER_HOURS")
    max_resumes: int = Field(default=3, ge=0, alias="MAX_RESUMES")
    # An unfinished job without an execution may still be in intake: 15 minutes a try, and S3's
    # asynchronous invoke retries a failed try twice, minutes apart.
    start_grace_seconds: float = Field(default=3600, ge=0, alias="START_GRACE_SECONDS")

    @classmethod
    def from_environ(cls) -> ReconcileOptions:
        """The options the function's environment sets (defaults for the rest)."""
        return cls.model_validate(dict(os.environ))

    @property
    def lookback_seconds(self) -> float:
        """How far back jobs are read: past retention by more than any job lasts (no job is missed
        between two runs, and old job rows are not read again and again)."""
        return (self.retention_days + 7) * DAY


class JobRepair(BaseModel):
    """What the reconciler did to one job, or why it could not."""

    job_id: str
    detail: str


class ReconcileReport(BaseModel):
    """One run: jobs checked, running, stuck, resumed, ended, cleaned up, and errors."""

    checked: int = 0
    running: int = 0
    stuck: list[str] = Field(default_factory=list)
    resumed: list[JobRepair] = Field(default_factory=list)
    failed: list[JobRepair] = Field(default_factory=list)
    cleaned_up: list[str] = Field(default_factory=list)
    errors: list[JobRepair] = Field(default_factory=list)


class Reconciler:
    """One reconciler run over the recent jobs (:meth:`run`)."""

    def __init__(self, settings: Settings, options: ReconcileOptions) -> None:
        self.settings, self.options = settings, options
        self.jobs = JobsRepository(settings.jobs_table)
        self.records = ReconcileRecords(settings.jobs_table)
        self.sfn: SFNClient = stepfunctions_client()
        self.report = ReconcileReport()

    def run(self, now: float | None = None) -> ReconcileReport:
        """Reconcile every job created within the lookback; one job's error never stops the run."""
        now = time.time() if now is None else now
        for row in self.records.jobs_created_since(now - self.options.lookback_seconds):
            job = JobSummary.model_validate(row)
            self.report.checked += 1
            try:
                self._reconcile(job, row, now)
            except Exception as exc:
                logger.exception("could not reconcile job", extra={"job_id": job.job_id})
                self.report.errors.append(JobRepair(job_id=job.job_id, detail=f"{type(exc).__name__}: {exc}"))
        metrics.add_metric(name="JobsStuck", unit=MetricUnit.Count, value=len(self.report.stuck))
        metrics.add_metric(name="JobsResumed", unit=MetricUnit.Count, value=len(self.report.resumed))
        metrics.add_metric(name="JobsEndedByReconciler", unit=MetricUnit.Count, value=len(self.report.failed))
        return self.report

    def _reconcile(self, job: JobSummary, row: dict[str, Any], now: float) -> None:
        if job.finished_at is None or ended_by_catch_all(job):
            self._check_workflow(job, now)
        elif job.finished_at < now - self.options.retention_days * DAY and not row.get(CLEANED_UP_AT):
            self._clean_up(job)

    # ------------------------------------------------------------ unfinished jobs
    def _execution_status(self, name: str) -> str | None:
        arn = f"{self.settings.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
        try:
            return str(self.sfn.describe_execution(executionArn=arn)["status"])
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return None

    def _check_workflow(self, job: JobSummary, now: float) -> None:
        resumes = self.records.get(job.job_id).resumes
        status = self._execution_status(execution_name(job.job_id, resumes))
        if status in _RUNNING:
            self._note_running(job, now)
        elif (
            status is None
            and resumes == 0
            and now - (job.updated_at or job.created_at) < self.options.start_grace_seconds
        ):
            return  # intake may still be staging the file and about to start the execution
        elif job.chunk_count == 0:
            self._end_unstaged(job)
        else:
            self._resume_or_end(job, status, resumes)

    def _note_running(self, job: JobSummary, now: float) -> None:
        self.report.running += 1
        if now - job.created_at > self.options.stuck_after_hours * HOUR:
            self.report.stuck.append(job.job_id)
            logger.warning(
                "job stuck", extra={"job_id": job.job_id, "age_hours": (now - job.created_at) / HOUR}
            )

    def _resume_or_end(self, job: JobSummary, status: str | None, resumes: int) -> None:
        """The workflow is gone (``status``, None if never started): resume the job, else end it failed."""
        chunks = self.jobs.chunk_rows(job.job_id)
        what = _DEAD.get(status or "", "never started")
        points = [resume_point(job.job_id, self.settings.data_bucket, c) for c in chunks if not c.collected]
        obstacle = next((p for p in points if isinstance(p, str)), None)
        if obstacle is None and (status is None or resumes < self.options.max_resumes):
            # A missing execution is a start that never happened: intake's (past its grace), or a
            # recorded resume's whose reconciler run died before StartExecution (found by the chaos
            # run: it waited forever). Either is started now, by its name, without counting a resume.
            chunk_refs = [p for p in points if isinstance(p, ChunkRef)]
            if status is None:
                self._start(job, resumes, chunk_refs, what)
            elif self.records.record_resume(job.job_id, resumes + 1):  # False: a concurrent run did
                self._start(job, resumes + 1, chunk_refs, what)
            return
        why = obstacle or f"it was resumed {resumes} time(s) already"
        earlier = f" ({job.reason})" if ended_by_catch_all(job) and job.reason else ""
        reason = f"the job's workflow {what}{earlier} and could not be resumed: {why}"
        end_failed(job, chunks, reason, self.settings)
        self.report.failed.append(JobRepair(job_id=job.job_id, detail=reason))

    def _start(self, job: JobSummary, resumes: int, points: list[ChunkRef], what: str) -> None:
        """Start execution number ``resumes`` of the job (idempotent: by name), reopening a job that
        the workflow's catch-all ended."""
        if job.finished_at is not None:
            self.records.reopen_job(job.job_id, f"resumed after the workflow {what}: {job.reason}")
        name = execution_name(job.job_id, resumes)
        start_execution(
            self.sfn, self.settings.state_machine_arn, name, job.job_id, self.settings.data_bucket, points
        )
        detail = f"the workflow {what}; resumed as {name} with {len(points)} uncollected chunk(s)"
        logger.info("job resumed", extra={"job_id": job.job_id, "execution": name, "chunks": len(points)})
        self.report.resumed.append(JobRepair(job_id=job.job_id, detail=detail))

    def _end_unstaged(self, job: JobSummary) -> None:
        cause = "intake did not finish staging the file and no workflow started: upload the file again"
        mark_job_failed(
            job.job_id,
            self.settings.data_bucket,
            {"Error": "IntakeIncomplete", "Cause": cause},
            self.settings,
        )
        self.report.failed.append(JobRepair(job_id=job.job_id, detail=cause))

    # ------------------------------------------------------------ finished jobs
    def _clean_up(self, job: JobSummary) -> None:
        s3.delete_prefix(self.settings.data_bucket, keys.staging_prefix(job.job_id))
        batch_ids = sorted({batch for row in self.jobs.chunk_rows(job.job_id) for batch in row.batch_ids()})
        if batch_ids:
            provider = provider_for(job.provider, self.settings)  # no key: an error, retried next run
            provider.delete_batch_data(batch_ids)  # files, or the batch itself: the provider knows
        self.records.mark_cleaned_up(job.job_id)
        logger.info("job cleaned up", extra={"job_id": job.job_id, "provider_batches": len(batch_ids)})
        self.report.cleaned_up.append(job.job_id)
