"""A chunk that fails ends its job with a reason that names the chunk and its error.

Each chunk runs as a child execution of the job's Distributed Map. When one of its tasks fails
for good, the child's catch-all (RecordChunkFailure) calls MarkFailed with the chunk: the error,
made readable, is recorded on the chunk row and the child fails. The job's execution then ends
the job through its own MarkFailed (on AWS the map fails with ``States.ExceedToleratedFailureThreshold``,
which says nothing about why; moto's interpreter lets the map succeed and Finalize finds the chunk
uncollected): :func:`mark_failed` gives that job the recorded chunk failure as its reason.
"""

from __future__ import annotations

import time
from typing import Any

from batch_gateway.models import BatchStatus
from batch_gateway.settings import Settings
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.workflow.finalize import mark_job_failed, readable_failure
from batch_gateway.workflow.payloads import MarkFailedInput, MarkFailedOutput


def record_chunk_failure(job_id: str, chunk: int, error: dict[str, Any] | None, settings: Settings) -> str:
    """Record why a chunk's child execution failed on its row; returns the readable reason."""
    reason = readable_failure(error)
    JobsRepository(settings.jobs_table).update_chunk(
        job_id, chunk, {"failure": reason, "failed_at": time.time()}
    )
    return reason


def chunk_failure(job_id: str, settings: Settings) -> dict[str, str] | None:
    """The latest failure an uncollected chunk recorded, as a Catch-like ``{Error, Cause}``."""
    failed = [
        row
        for row in JobsRepository(settings.jobs_table).chunk_rows(job_id)
        if row.failure and not row.collected
    ]
    if not failed:
        return None
    latest = max(failed, key=lambda row: row.failed_at or 0.0)
    return {"Error": f"chunk {latest.chunk} failed", "Cause": latest.failure or ""}


def mark_failed(event: MarkFailedInput, settings: Settings) -> MarkFailedOutput:
    """MarkFailed: a chunk's failure is recorded on its row; a job's catch-all ends the job failed,
    with the failure a chunk recorded as its reason when there is one."""
    if event.chunk is not None:
        reason = record_chunk_failure(event.job_id, event.chunk, event.error, settings)
        return MarkFailedOutput(job_id=event.job_id, status=BatchStatus.FAILED, reason=reason)
    error = chunk_failure(event.job_id, settings) or event.error
    job = mark_job_failed(event.job_id, event.bucket, error, settings)
    return MarkFailedOutput(job_id=job.job_id, status=job.status, reason=job.reason)
