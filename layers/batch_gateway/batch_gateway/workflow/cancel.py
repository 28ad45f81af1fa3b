"""Cancel a job: stop every provider batch it has running; the workflow then collects what finished.

Cancelling is a request, not an ending: the job is marked ``cancelling`` and each running provider
batch is asked to cancel. The state machine keeps polling; each batch ends ``cancelled`` with the
requests it had finished, Collect turns the rest into ``cancelled`` result lines (no retry rounds
run for a cancelled job, and chunks not yet submitted are never submitted), and Finalize ends the
job ``cancelled`` with every line accounted for.
"""

from __future__ import annotations

from batch_gateway.models import JobSummary
from batch_gateway.observability import logger
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.registry import provider_for
from batch_gateway.settings import Settings
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.workflow.capacity import Capacity


def cancel_job(job_id: str, settings: Settings) -> JobSummary:
    """Request cancellation of ``job_id`` (idempotent; a finished job is returned unchanged)."""
    repo = JobsRepository(settings.jobs_table)
    job = repo.get_job(job_id)
    if job is None:
        raise LookupError(f"job {job_id} does not exist")
    if job.finished_at is not None:
        return job
    repo.request_cancel(job_id)
    chunks = repo.chunk_rows(job_id)
    running = [
        chunk.provider_batch_id
        for chunk in chunks
        if chunk.provider_batch_id and not chunk.collected and not chunk.batch_ended
    ]
    # Chunks waiting for provider quota go to Submit now, which sees the cancel and ends them.
    Capacity(settings).wake_job(job_id, job.provider, {chunk.model or job.model for chunk in chunks})
    if running:
        provider = provider_for(job.provider, settings)
        for batch_id in running:
            try:
                provider.cancel(batch_id)
            except ProviderError as exc:  # it may have ended meanwhile: the poll loop will see that
                logger.warning(
                    "cancel request refused", extra={"provider_batch_id": batch_id, "reason": str(exc)}
                )
    logger.info("cancellation requested", extra={"job_id": job_id, "batches": len(running)})
    refreshed = repo.get_job(job_id)
    assert refreshed is not None
    return refreshed
