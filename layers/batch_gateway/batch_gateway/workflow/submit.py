"""SubmitChunk: create the provider batch of one (round, attempt) of a chunk, exactly once.

A chunk's life: round 0 sends every staged item. A batch that fails as a whole (for example over
the enqueued-token limit) is submitted again as attempt 1, 2, … after a backoff. Items that ended
with a retryable error go out again in round 1, 2, … (see :mod:`.collect`). Each (round, attempt)
records its provider batch id with a conditional write before anything could submit it twice, and
the intent to create it before the provider call: a retried Submit whose first try died after
the provider created the batch finds that batch by its metadata and adopts it instead of paying
for a second one.

Before creating, Submit reserves the chunk's units of its provider's quota (:mod:`.capacity`);
without room it returns ``next_step = "wait_capacity"`` (AwaitCapacity parks the chunk) or, past
CapacityMaxWaitSeconds of waiting, fails the chunk saying so. A quota refusal on create (Anthropic's
429, Bedrock's ServiceQuotaExceededException) releases the units and requeues the chunk in a new
attempt slot that FailedBatchRetries does not count.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from batch_gateway.models import BatchStatus, JobSpec, JobSummary
from batch_gateway.observability import MetricUnit, logger, metrics
from batch_gateway.providers.base import BatchProvider
from batch_gateway.providers.errors import ProviderError, ProviderQuotaError, ProviderUnavailableError
from batch_gateway.providers.registry import provider_for
from batch_gateway.providers.types import SubmittedBatch
from batch_gateway.settings import Settings
from batch_gateway.storage import keys, s3
from batch_gateway.storage.chunk_row import BATCH_END_QUOTA, ChunkRow
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.workflow.capacity import QUOTA_UNITS, Capacity, row_amount
from batch_gateway.workflow.payloads import Backoff, ChunkRef, ChunkState


def _job(repo: JobsRepository, job_id: str) -> JobSummary:
    job = repo.get_job(job_id)
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
        s3.download_file(ref.bucket, keys.chunk_requests_key(ref.job_id, ref.chunk, ref.round), path)
        return provider.submit(path, spec, metadata)


def _record_intent(repo: JobsRepository, ref: ChunkRef, row: ChunkRow) -> float:
    """Record (once) when this (round, attempt) set out to create its batch; return that time."""
    intent_at = row.intent_at(ref.round, ref.attempt) or time.time()
    field = ChunkRow.intent_field(ref.round, ref.attempt)
    repo.update_chunk(ref.job_id, ref.chunk, {field: intent_at}, only_if_absent=field)
    return intent_at


def _record_submitted(
    repo: JobsRepository, provider: BatchProvider, ref: ChunkRef, submitted: SubmittedBatch
) -> str | None:
    """Record the batch of this (round, attempt) once; None if recorded, else the batch that won."""
    field = ChunkRow.batch_field(ref.round, ref.attempt)
    recorded = {
        field: submitted.provider_batch_id,
        "provider_batch_id": submitted.provider_batch_id,
        "status": submitted.status.value,
        "round": ref.round,
        "attempt": ref.attempt,
        "submitted_at": time.time(),
    }
    if repo.update_chunk(ref.job_id, ref.chunk, recorded, only_if_absent=field):
        return None
    # A concurrent duplicate won the race: keep its batch, cancel ours so nothing is paid twice.
    winner = repo.chunk_row(ref.job_id, ref.chunk).batch_id(ref.round, ref.attempt) or ""
    if winner != submitted.provider_batch_id:
        provider.cancel(submitted.provider_batch_id)
    return winner


def _count_submitted(ref: ChunkRef, spec: JobSpec, row: ChunkRow) -> None:
    metrics.add_dimension(name="provider", value=spec.provider)
    metrics.add_metric(name="BatchesSubmitted", unit=MetricUnit.Count, value=1)
    if ref.round == 0 and ref.attempt == 0:
        metrics.add_metric(name="ItemsSubmitted", unit=MetricUnit.Count, value=row.item_count or 0)


def _waited_too_long(ref: ChunkRef, settings: Settings) -> bool:
    """Waiting (or refused for quota) since longer than CapacityMaxWaitSeconds: also bounds a loop of refusals."""
    return (
        ref.waiting_since is not None and time.time() - ref.waiting_since > settings.capacity_max_wait_seconds
    )


def _wait_for_capacity(
    repo: JobsRepository, ref: ChunkRef, spec: JobSpec, settings: Settings, last_refusal: str | None
) -> ChunkState:
    """No room in the quota: wait (AwaitCapacity), or give up after CapacityMaxWaitSeconds."""
    now = time.time()
    since = ref.waiting_since or now
    waited = now - since
    if waited > settings.capacity_max_wait_seconds:
        message = (
            f"not submitted: the chunk waited {waited / 86400:.1f} days for room in the stack's "
            f"{spec.provider} quota for {spec.model} ({settings.quota_for(spec.provider):,} "
            f"{QUOTA_UNITS.get(spec.provider, 'units')}), longer than CapacityMaxWaitSeconds "
            f"({settings.capacity_max_wait_seconds:,} s); raise the quota parameter or resubmit later"
        )
        if ref.waiting_since is not None and last_refusal:
            message += f". The provider's last refusal: {last_refusal}"
        repo.update_chunk(ref.job_id, ref.chunk, {"status": BatchStatus.FAILED.value, "message": message})
        logger.warning("gave up waiting for quota", extra={"waited_seconds": waited})
        state = _state(ref, spec, "", BatchStatus.FAILED, 0)
        return state.model_copy(update={"quota_wait_expired": True})
    # wait_seconds: the parked task's safety-net timeout (and the timer wait should parking fail).
    state = _state(ref, spec, "", BatchStatus.PENDING, settings.capacity_wait_timeout_seconds)
    return state.model_copy(update={"next_step": "wait_capacity", "waiting_since": since})


def _requeue_for_quota(
    repo: JobsRepository, ref: ChunkRef, spec: JobSpec, backoff: Backoff, exc: ProviderQuotaError
) -> ChunkState:
    """The provider refused the batch for quota: a new attempt slot, after a backoff, not a failure."""
    repo.update_chunk(
        ref.job_id,
        ref.chunk,
        {ChunkRow.end_field(ref.round, ref.attempt): BATCH_END_QUOTA, "message": str(exc)},
    )
    logger.warning("provider refused the batch for quota; requeued", extra={"reason": str(exc)})
    state = _state(ref, spec, "", BatchStatus.PENDING, backoff.wait_before_attempt(ref.attempt + 1))
    return state.model_copy(
        update={
            "attempt": ref.attempt + 1,
            "next_step": "submit",
            "waiting_since": ref.waiting_since or time.time(),
        }
    )


def submit_chunk(ref: ChunkRef, backoff: Backoff, settings: Settings) -> ChunkState:
    """Create the provider batch of this (round, attempt) exactly once; a retried call gets the same."""
    repo = JobsRepository(settings.jobs_table)
    job = _job(repo, ref.job_id)
    row = repo.chunk_row(ref.job_id, ref.chunk)
    spec = JobSpec.model_validate({"provider": job.provider, "model": row.model or job.model})
    if job.cancel_requested:
        return _state(ref, spec, "", BatchStatus.CANCELLED, 0)
    already = row.batch_id(ref.round, ref.attempt)
    if already:
        logger.info("already submitted", extra={"provider_batch_id": already})
        return _state(ref, spec, already, BatchStatus.IN_PROGRESS, backoff.initial_seconds)
    capacity = Capacity(settings)
    amount = row_amount(spec.provider, row)
    if (
        _waited_too_long(ref, settings)
        or capacity.reserve(ref, spec.provider, spec.model, amount) == "no_room"
    ):
        return _wait_for_capacity(repo, ref, spec, settings, row.message)
    intent_at = _record_intent(repo, ref, row)
    provider = provider_for(spec.provider, settings)
    try:
        submitted = _create_once(provider, ref, spec, intent_at)
    except ProviderQuotaError as exc:
        if not capacity.end_batch(ref, spec.provider, spec.model, quota_refused=True):
            return _requeue_for_quota(repo, ref, spec, backoff, exc)
        return _refused(repo, ref, spec, exc)  # refused with nothing else in flight: a failure
    except ProviderUnavailableError:
        raise  # the state machine retries the task with backoff (the reservation is kept for it)
    except ProviderError as exc:
        capacity.end_batch(ref, spec.provider, spec.model, quota_refused=False)
        return _refused(repo, ref, spec, exc)
    return _after_create(repo, provider, ref, spec, job, row, submitted, backoff)


def _refused(repo: JobsRepository, ref: ChunkRef, spec: JobSpec, exc: ProviderError) -> ChunkState:
    """The provider refused the batch outright (Anthropic reports limits this way): handle it like
    a batch that failed validation, so it is retried and then its items end with this message."""
    repo.update_chunk(ref.job_id, ref.chunk, {"status": BatchStatus.FAILED.value, "message": str(exc)})
    logger.warning("provider refused the batch", extra={"reason": str(exc)})
    return _state(ref, spec, "", BatchStatus.FAILED, 0)


def _after_create(
    repo: JobsRepository,
    provider: BatchProvider,
    ref: ChunkRef,
    spec: JobSpec,
    job: JobSummary,
    row: ChunkRow,
    submitted: SubmittedBatch,
    backoff: Backoff,
) -> ChunkState:
    winner = _record_submitted(repo, provider, ref, submitted)
    if winner is not None:
        return _state(ref, spec, winner, BatchStatus.IN_PROGRESS, backoff.initial_seconds)
    if _job(repo, ref.job_id).cancel_requested:
        # Cancelled while we were creating it: the poll loop will see this batch end cancelled.
        provider.cancel(submitted.provider_batch_id)
    elif job.status is BatchStatus.PENDING:
        repo.set_job_status(ref.job_id, BatchStatus.IN_PROGRESS)
    _count_submitted(ref, spec, row)
    logger.info(
        "submitted",
        extra={"provider_batch_id": submitted.provider_batch_id, "round": ref.round, "attempt": ref.attempt},
    )
    return _state(ref, spec, submitted.provider_batch_id, submitted.status, backoff.initial_seconds)
