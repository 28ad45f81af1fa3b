"""The state machine's per-chunk steps: submit once per (round, attempt), poll with backoff.

A chunk's life: round 0 sends every staged item. A batch that fails as a whole (for example over
the enqueued-token limit) is submitted again as attempt 1, 2, … after a backoff. Items that ended
with a retryable error go out again in round 1, 2, … (see ``collection``). Each (round, attempt)
records its provider batch id with a conditional write before anything could submit it twice.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from batch_gateway import storage
from batch_gateway.models import BatchStatus, JobSpec, JobSummary
from batch_gateway.observability import MetricUnit, metrics
from batch_gateway.providers.base import BatchProvider
from batch_gateway.providers.errors import ProviderError, ProviderUnavailableError
from batch_gateway.providers.registry import provider_for
from batch_gateway.providers.types import SubmittedBatch
from batch_gateway.settings import Settings

logger = Logger(child=True)


class ChunkRef(BaseModel):
    """Which chunk, which retry round and which attempt of that round to submit."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    bucket: str
    chunk: int = Field(ge=1)
    round: int = Field(default=0, ge=0)
    attempt: int = Field(default=0, ge=0)


class Backoff(BaseModel):
    """Poll schedule: wait ``initial_seconds``, then multiply by ``factor`` up to ``max_seconds``."""

    initial_seconds: int = Field(ge=0)
    factor: float = Field(ge=1.0)
    max_seconds: int = Field(ge=1)

    def next_wait(self, current: int) -> int:
        return min(self.max_seconds, max(1, math.ceil(current * self.factor)))

    def wait_before_attempt(self, attempt: int) -> int:
        """Wait before resubmitting a failed batch for the ``attempt``-th time (1-based)."""
        return min(self.max_seconds, max(1, math.ceil(max(self.initial_seconds, 1) * self.factor**attempt)))


class RetryPolicy(BaseModel):
    """How hard a chunk tries: whole-batch resubmissions and follow-up rounds for retryable items."""

    failed_batch_retries: int = Field(default=2, ge=0)
    retry_rounds: int = Field(default=1, ge=0)


class ChunkState(ChunkRef):
    """What flows through the wait loop for one chunk (kept small: Step Functions caps payloads)."""

    provider: str
    model: str
    provider_batch_id: str
    status: BatchStatus
    wait_seconds: int
    terminal: bool = False
    polls: int = 0
    next_step: Literal["poll", "submit", "done"] = "poll"


def batch_field(round_: int, attempt: int) -> str:
    """Chunk-row attribute holding the provider batch id of one (round, attempt)."""
    return f"batch_r{round_}_a{attempt}"


def _job(jobs: storage.JobsRepository, job_id: str) -> JobSummary:
    job = jobs.get_job(job_id)
    if job is None:
        raise LookupError(f"job {job_id} has no row in the jobs table")
    return job


def _metadata(ref: ChunkRef) -> dict[str, str]:
    """Provider-side labels: they let a retry find a batch whose creation outlived its caller."""
    return {
        "batch_gateway_job": ref.job_id,
        "chunk": str(ref.chunk),
        "round": str(ref.round),
        "attempt": str(ref.attempt),
    }


def _state(ref: ChunkRef, spec: JobSpec, batch_id: str, status: BatchStatus, wait: int) -> ChunkState:
    return ChunkState(
        **ref.model_dump(),
        provider=spec.provider,
        model=spec.model,
        provider_batch_id=batch_id,
        status=status,
        wait_seconds=wait,
        terminal=status.is_terminal,
    )


def _create_once(provider: BatchProvider, ref: ChunkRef, spec: JobSpec, intent_at: float) -> SubmittedBatch:
    """Create the batch unless an earlier, interrupted call already did (found by its metadata)."""
    metadata = _metadata(ref)
    existing = provider.find_batch(metadata, created_after=intent_at)
    if existing is not None:
        logger.warning(
            "adopting a batch created by an interrupted earlier attempt",
            extra={"provider_batch_id": existing.provider_batch_id},
        )
        return existing
    with tempfile.TemporaryDirectory(prefix="submit-") as tmp:
        path = Path(tmp) / "requests.jsonl"
        key = storage.chunk_requests_key(ref.job_id, ref.chunk, ref.round)
        storage.download_file(ref.bucket, key, path)
        return provider.submit(path, spec, metadata)


def submit_chunk(ref: ChunkRef, backoff: Backoff, settings: Settings) -> ChunkState:
    """Create the provider batch of this (round, attempt) exactly once; a retried call gets the same."""
    jobs = storage.JobsRepository(settings.jobs_table)
    job = _job(jobs, ref.job_id)
    row = jobs.get_chunk(ref.job_id, ref.chunk)
    spec = JobSpec.model_validate({"provider": job.provider, "model": row.get("model") or job.model})
    if job.cancel_requested:
        return _state(ref, spec, "", BatchStatus.CANCELLED, 0)
    field = batch_field(ref.round, ref.attempt)
    if row.get(field):
        logger.info("already submitted", extra={"provider_batch_id": row[field]})
        return _state(ref, spec, row[field], BatchStatus.IN_PROGRESS, backoff.initial_seconds)
    intent_field = f"{field}_intent_at"
    intent_at = float(row.get(intent_field) or time.time())
    jobs.update_chunk(ref.job_id, ref.chunk, {intent_field: intent_at}, only_if_absent=intent_field)
    provider = provider_for(spec.provider, settings)
    try:
        submitted = _create_once(provider, ref, spec, intent_at)
    except ProviderUnavailableError:
        raise  # the state machine retries the task with backoff
    except ProviderError as exc:
        # The provider refused the batch outright (Anthropic reports limits this way): handle it like
        # a batch that failed validation, so it is retried and then its items end with this message.
        jobs.update_chunk(ref.job_id, ref.chunk, {"status": BatchStatus.FAILED.value, "message": str(exc)})
        logger.warning("provider refused the batch", extra={"reason": str(exc)})
        return _state(ref, spec, "", BatchStatus.FAILED, 0)
    recorded = {
        field: submitted.provider_batch_id,
        "provider_batch_id": submitted.provider_batch_id,
        "status": submitted.status.value,
        "round": ref.round,
        "attempt": ref.attempt,
        "submitted_at": time.time(),
    }
    if not jobs.update_chunk(ref.job_id, ref.chunk, recorded, only_if_absent=field):
        # A concurrent duplicate won the race: keep its batch, cancel ours so nothing is paid twice.
        winner = jobs.get_chunk(ref.job_id, ref.chunk)[field]
        if winner != submitted.provider_batch_id:
            provider.cancel(submitted.provider_batch_id)
        return _state(ref, spec, winner, BatchStatus.IN_PROGRESS, backoff.initial_seconds)
    if _job(jobs, ref.job_id).cancel_requested:
        # Cancelled while we were creating it: the poll loop will see this batch end cancelled.
        provider.cancel(submitted.provider_batch_id)
    elif job.status is BatchStatus.PENDING:
        jobs.set_job_status(ref.job_id, BatchStatus.IN_PROGRESS)
    metrics.add_dimension(name="provider", value=spec.provider)
    metrics.add_metric(name="BatchesSubmitted", unit=MetricUnit.Count, value=1)
    if ref.round == 0 and ref.attempt == 0:
        metrics.add_metric(name="ItemsSubmitted", unit=MetricUnit.Count, value=int(row.get("item_count", 0)))
    logger.info(
        "submitted",
        extra={"provider_batch_id": submitted.provider_batch_id, "round": ref.round, "attempt": ref.attempt},
    )
    return _state(ref, spec, submitted.provider_batch_id, submitted.status, backoff.initial_seconds)


def poll_chunk(state: ChunkState, backoff: Backoff, settings: Settings) -> ChunkState:
    """Ask the provider where the batch stands; schedule the next wait with exponential backoff."""
    if state.terminal or not state.provider_batch_id:
        return state.model_copy(update={"terminal": True})
    provider = provider_for(state.provider, settings)
    started = time.perf_counter()
    progress = provider.poll(state.provider_batch_id)
    metrics.add_dimension(name="provider", value=state.provider)
    metrics.add_metric(
        name="ProviderCallLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )
    fields = {
        "status": progress.status.value,
        "provider_status": progress.provider_status,
        "request_counts": progress.request_counts,
        "polls": state.polls + 1,
        "polled_at": time.time(),
    }
    if progress.message:
        fields["message"] = progress.message
    storage.JobsRepository(settings.jobs_table).update_chunk(state.job_id, state.chunk, fields)
    return state.model_copy(
        update={
            "status": progress.status,
            "terminal": progress.status.is_terminal,
            "polls": state.polls + 1,
            "wait_seconds": backoff.next_wait(state.wait_seconds),
        }
    )
