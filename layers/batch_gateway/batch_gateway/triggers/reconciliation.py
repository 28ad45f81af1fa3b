"""Reconciler: repair jobs that cannot finish by themselves, and clean up after finished ones.

A job's workflow can die while the job is unfinished: the execution timed out, failed (even its
catch-all MarkFailed), was stopped, or was never started; or the catch-all ended the job ``failed``
while its provider batches still ran on, paid for, with nothing polling them. The reconciler walks
the recent job rows (the JobsByCreatedAt index, never a Scan) and, for each such job:

- **resumes** it from the last recorded step: a new execution ``<job>-resume-<n>`` gets only the
  chunks not yet collected, each at its latest (round, attempt). Submit is exactly-once per
  (round, attempt) (a recorded batch is adopted, never created again) and collected chunks are
  not in the input at all, so nothing collected is redone or lost, and nothing is paid twice;
- or, when it cannot be resumed (``max_resumes`` reached, staged input gone), **ends it failed**
  with a reason, keeping every collected answer: each uncollected chunk's lines get the results
  of the rounds already collected, the rest an error result; Finalize then writes results.jsonl
  (one line per input line), summary.json and the job row as for any job.

A running execution is left alone; one older than ``stuck_after_hours`` counts toward the metric
``JobsStuck``. Finished jobs older than ``retention_days`` lose their staged chunks and their
provider-side files (OpenAI input/output/error files; Anthropic batches), once.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from batch_gateway import storage
from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import BatchResult, BatchStatus, JobSummary, ResultCounts, add_usage
from batch_gateway.observability import MetricUnit, metrics
from batch_gateway.providers.base import BatchProvider
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.registry import provider_for
from batch_gateway.settings import Settings
from batch_gateway.storage.chunk_index import read_index
from batch_gateway.storage.claims import CLEANED_UP_AT, ReconcileRecords
from batch_gateway.workflow.finalize import finalize_job, mark_job_failed

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

    from batch_gateway.providers.anthropic.batch import AnthropicBatchProvider
    from batch_gateway.providers.openai.batch import OpenAIBatchProvider

logger = Logger(child=True)

# Chunk-row attributes recording a (round, attempt): its provider batch id, or the intent to create it.
_STEP_FIELD = re.compile(r"batch_r(\d+)_a(\d+)(_intent_at)?")
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
        return cls.model_validate(dict(os.environ))

    @property
    def lookback_seconds(self) -> float:
        """How far back jobs are read: past retention by more than any job lasts (no job is missed
        between two runs, and old job rows are not read again and again)."""
        return (self.retention_days + 7) * DAY


class JobRepair(BaseModel):
    job_id: str
    detail: str


class ReconcileReport(BaseModel):
    checked: int = 0
    running: int = 0
    stuck: list[str] = Field(default_factory=list)
    resumed: list[JobRepair] = Field(default_factory=list)
    failed: list[JobRepair] = Field(default_factory=list)
    cleaned_up: list[str] = Field(default_factory=list)
    errors: list[JobRepair] = Field(default_factory=list)


def execution_name(job_id: str, resumes: int) -> str:
    """Intake names the first execution after the job; each resume gets the next number."""
    return job_id if resumes == 0 else f"{job_id}-resume-{resumes}"


def latest_step(chunk: dict[str, Any]) -> tuple[int, int]:
    """The latest (round, attempt) a chunk row records a batch, or the intent to create one, for."""
    steps = [(int(m[1]), int(m[2])) for m in map(_STEP_FIELD.fullmatch, chunk) if m]
    return max(steps, default=(0, 0))


def ended_by_catch_all(job: JobSummary) -> bool:
    """The workflow's MarkFailed ended it: failed, with staged chunks, and no results file written."""
    return job.status is BatchStatus.FAILED and job.chunk_count > 0 and job.results_uri is None


def _object_exists(bucket: str, key: str) -> bool:
    try:
        storage.s3_client().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def resume_point(job_id: str, bucket: str, chunk: dict[str, Any]) -> dict[str, Any] | str:
    """Where an uncollected chunk resumes (the Map item for it), or why it cannot."""
    round_, attempt = latest_step(chunk)
    next_round_staged = _object_exists(
        bucket, storage.chunk_requests_key(job_id, int(chunk["chunk"]), round_ + 1)
    )
    if f"round_{round_}" in chunk and next_round_staged:
        round_, attempt = round_ + 1, 0  # its round was collected and the follow-up round staged
    for key in (
        storage.chunk_requests_key(job_id, int(chunk["chunk"]), round_),
        storage.chunk_index_key(job_id, int(chunk["chunk"]), round_),
    ):
        if not _object_exists(bucket, key):
            return f"its staged input {key} no longer exists"
    return {
        "job_id": job_id,
        "bucket": bucket,
        "chunk": int(chunk["chunk"]),
        "round": round_,
        "attempt": attempt,
    }


class Reconciler:
    def __init__(self, settings: Settings, options: ReconcileOptions) -> None:
        self.settings, self.options = settings, options
        self.jobs = storage.JobsRepository(settings.jobs_table)
        self.records = ReconcileRecords(settings.jobs_table)
        self.sfn: SFNClient = storage.stepfunctions_client()
        self.report = ReconcileReport()

    def run(self, now: float | None = None) -> ReconcileReport:
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
        if status in ("RUNNING", "PENDING_REDRIVE"):
            self.report.running += 1
            if now - job.created_at > self.options.stuck_after_hours * HOUR:
                self.report.stuck.append(job.job_id)
                logger.warning(
                    "job stuck", extra={"job_id": job.job_id, "age_hours": (now - job.created_at) / HOUR}
                )
            return
        last_activity = job.updated_at or job.created_at
        if status is None and now - last_activity < self.options.start_grace_seconds:
            return  # intake may still be staging the file and about to start the execution
        if job.chunk_count == 0:
            self._end_unstaged(job)
            return
        chunks = sorted(self.jobs.list_chunks(job.job_id), key=lambda c: int(c["chunk"]))
        what = _DEAD.get(status or "", "never started")
        points = [
            resume_point(job.job_id, self.settings.data_bucket, c) for c in chunks if "collected_at" not in c
        ]
        obstacle = next((p for p in points if isinstance(p, str)), None)
        if obstacle is None and (status is None or resumes < self.options.max_resumes):
            # A missing execution under a recorded resume is that resume's start, retried by name.
            next_resumes = resumes if status is None else resumes + 1
            self._resume(job, next_resumes, [p for p in points if isinstance(p, dict)], what)
            return
        why = obstacle or f"it was resumed {resumes} time(s) already"
        earlier = f" ({job.reason})" if ended_by_catch_all(job) and job.reason else ""
        self._end_failed(job, chunks, f"the job's workflow {what}{earlier} and could not be resumed: {why}")

    def _resume(self, job: JobSummary, resumes: int, points: list[dict[str, Any]], what: str) -> None:
        if resumes and not self.records.record_resume(job.job_id, resumes):
            return  # a concurrent reconciler run resumed it
        if job.finished_at is not None:
            self.records.reopen_job(job.job_id, f"resumed after the workflow {what}: {job.reason}")
        name = execution_name(job.job_id, resumes)
        execution_input = {"job_id": job.job_id, "bucket": self.settings.data_bucket, "chunks": points}
        # Already there: an earlier attempt of this same resume started it (the name is the key).
        with suppress(self.sfn.exceptions.ExecutionAlreadyExists):
            self.sfn.start_execution(
                stateMachineArn=self.settings.state_machine_arn, name=name, input=json.dumps(execution_input)
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

    def _end_failed(self, job: JobSummary, chunks: list[dict[str, Any]], reason: str) -> None:
        """End the job failed, every collected answer kept and every other line given an error result."""
        provider = self._provider_or_none(job.provider)
        for chunk in chunks:
            if "collected_at" not in chunk:
                _cancel_quietly(provider, chunk)
                close_chunk(job.job_id, chunk, reason, self.settings)
        final = finalize_job(job.job_id, self.settings.data_bucket, self.settings)
        final.status, final.reason = BatchStatus.FAILED, reason
        self.jobs.save_job(final)
        storage.put_json(
            self.settings.data_bucket,
            storage.summary_key(job.job_id),
            final.model_dump(mode="json", exclude={"raw"}),
        )
        logger.warning("job ended by the reconciler", extra={"job_id": job.job_id, "reason": reason})
        self.report.failed.append(JobRepair(job_id=job.job_id, detail=reason))

    def _provider_or_none(self, name: str) -> BatchProvider | None:
        try:
            return provider_for(name, self.settings)
        except (ProviderError, ValueError) as exc:
            logger.warning(
                "provider unavailable to the reconciler", extra={"provider": name, "reason": str(exc)}
            )
            return None

    # ------------------------------------------------------------ finished jobs
    def _clean_up(self, job: JobSummary) -> None:
        storage.delete_prefix(self.settings.data_bucket, storage.staging_prefix(job.job_id))
        batch_ids = sorted(
            {
                str(v)
                for c in self.jobs.list_chunks(job.job_id)
                for k, v in c.items()
                if v and _is_batch_field(k)
            }
        )
        if batch_ids:
            provider = provider_for(job.provider, self.settings)  # no key: an error, retried next run
            delete_provider_data(provider, batch_ids)
        self.records.mark_cleaned_up(job.job_id)
        logger.info("job cleaned up", extra={"job_id": job.job_id, "provider_batches": len(batch_ids)})
        self.report.cleaned_up.append(job.job_id)


def _is_batch_field(name: str) -> bool:
    match = _STEP_FIELD.fullmatch(name)
    return match is not None and not match[3]


def _cancel_quietly(provider: BatchProvider | None, chunk: dict[str, Any]) -> None:
    """A batch nobody will collect should not run on and be billed."""
    batch_id = chunk.get("provider_batch_id")
    if provider is None or not batch_id or BatchStatus(chunk.get("status", "pending")).is_terminal:
        return
    try:
        provider.cancel(str(batch_id))
    except ProviderError as exc:
        logger.warning("cancel refused", extra={"provider_batch_id": batch_id, "reason": str(exc)})


# ------------------------------------------------------------ ending a chunk without its workflow
def _keyed(bucket: str, key: str, priority: int) -> Iterator[tuple[int, int, str, bytes]]:
    for _, raw in iter_numbered_lines(storage.open_object(bucket, key)):
        line, outcome, payload = storage.split_keyed_result(raw)
        yield line, priority, outcome, payload


def _unanswered(bucket: str, key: str, error: str) -> Iterator[tuple[int, int, str, bytes]]:
    """Every line of the chunk as an error result: used where no round has an answer for it."""
    for entry in read_index(storage.open_object(bucket, key)):
        result = BatchResult(custom_id=entry.custom_id, line=entry.line, error=error)
        yield entry.line, 1, "errored", result.model_dump_json().encode()


def chunk_lines(
    job_id: str, bucket: str, chunk: dict[str, Any], error: str
) -> Iterator[tuple[int, str, bytes]]:
    """One result per line of the chunk, in line order: the latest collected round's, else ``error``."""
    number = int(chunk["chunk"])
    collected = [r for r in range(latest_step(chunk)[0] + 1) if f"round_{r}" in chunk]
    streams = [_keyed(bucket, storage.chunk_round_results_key(job_id, number, r), -r) for r in collected]
    streams.append(_unanswered(bucket, storage.chunk_index_key(job_id, number), error))
    previous = None
    for line, _, outcome, payload in heapq.merge(*streams):
        if line != previous:
            previous = line
            yield line, outcome, payload


def close_chunk(job_id: str, chunk: dict[str, Any], reason: str, settings: Settings) -> None:
    """Write an uncollected chunk's results and row as Collect would, so Finalize can take it."""
    bucket, number = settings.data_bucket, int(chunk["chunk"])
    counts, usage = ResultCounts(), dict[str, int]()
    collected_rounds = [r for r in range(latest_step(chunk)[0] + 1) if f"round_{r}" in chunk]
    for round_ in collected_rounds:
        add_usage(usage, chunk[f"round_{round_}"].get("usage") or {})
    results = storage.ResultsRepository.for_writing(settings, bucket)
    with tempfile.TemporaryDirectory(prefix="reconcile-") as tmp:
        path = Path(tmp) / "results.jsonl"
        with path.open("wb") as out:

            def answered() -> Iterator[BatchResult]:
                for line, outcome, payload in chunk_lines(job_id, bucket, chunk, f"no result: {reason}"):
                    setattr(counts, outcome, getattr(counts, outcome) + 1)
                    out.write(storage.keyed_result(line, payload, outcome))
                    yield BatchResult.model_validate_json(payload)

            results.write(job_id, answered())
        storage.upload_file(path, bucket, storage.chunk_results_key(job_id, number))
    storage.JobsRepository(settings.jobs_table).update_chunk(
        job_id,
        number,
        {
            "counts": counts.model_dump(),
            "usage": usage,
            "final_status": BatchStatus.FAILED.value,
            "message": reason,
            "rounds": max(collected_rounds, default=0),  # follow-up rounds that ran (for retry_rounds)
            "collected_at": time.time(),
        },
    )


# ------------------------------------------------------------ provider-side retention
def delete_provider_data(provider: BatchProvider, batch_ids: list[str]) -> None:
    """Delete what the provider keeps of these ended batches (files, or the batch itself)."""
    # Imported here: the provider modules import no SDK, but only cleanup needs them at all.
    from batch_gateway.providers.anthropic.batch import AnthropicBatchProvider
    from batch_gateway.providers.openai.batch import OpenAIBatchProvider

    if isinstance(provider, OpenAIBatchProvider):  # Azure OpenAI too: the same Files API
        _delete_openai_files(provider, batch_ids)
    elif isinstance(provider, AnthropicBatchProvider):
        _delete_anthropic_batches(provider, batch_ids)
    else:
        logger.info("no provider-side cleanup for this provider", extra={"provider": provider.name})


def _delete_openai_files(provider: OpenAIBatchProvider, batch_ids: list[str]) -> None:
    import openai

    client = provider.client
    for batch_id in batch_ids:
        try:
            batch = client.batches.retrieve(batch_id)
        except openai.NotFoundError:
            continue
        for file_id in {batch.input_file_id, batch.output_file_id, batch.error_file_id}:
            if not file_id:
                continue  # OpenAI gives null or "" for a file it did not write
            with suppress(openai.NotFoundError):  # gone already: OpenAI expires batch files itself
                client.files.delete(file_id)


def _delete_anthropic_batches(provider: AnthropicBatchProvider, batch_ids: list[str]) -> None:
    import anthropic

    client = provider.client
    for batch_id in batch_ids:
        with suppress(anthropic.NotFoundError):
            client.messages.batches.delete(batch_id)
