"""The state machine's per-chunk steps: submit once, poll with backoff."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

from aws_lambda_powertools import Logger
from pydantic import BaseModel, Field

from batch_gateway import storage
from batch_gateway.credentials import provider_for
from batch_gateway.models import BatchStatus, JobSpec
from batch_gateway.settings import Settings

logger = Logger(child=True)


class ChunkRef(BaseModel):
    job_id: str
    bucket: str
    chunk: int = Field(ge=1)


class Backoff(BaseModel):
    """Poll schedule: wait ``initial_seconds``, then multiply by ``factor`` up to ``max_seconds``."""

    initial_seconds: int = Field(ge=0)
    factor: float = Field(ge=1.0)
    max_seconds: int = Field(ge=1)

    def next_wait(self, current: int) -> int:
        return min(self.max_seconds, max(1, math.ceil(current * self.factor)))


class ChunkState(ChunkRef):
    """What flows through the wait loop for one chunk (kept small: Step Functions caps payloads)."""

    provider: str
    provider_batch_id: str
    status: BatchStatus
    wait_seconds: int
    terminal: bool = False
    polls: int = 0


def _job_spec(jobs: storage.JobsRepository, job_id: str) -> JobSpec:
    job = jobs.get_job(job_id)
    if job is None:
        raise LookupError(f"job {job_id} has no row in the jobs table")
    return JobSpec.model_validate({"provider": job.provider, "model": job.model})


def submit_chunk(ref: ChunkRef, backoff: Backoff, settings: Settings) -> ChunkState:
    """Create the chunk's provider batch exactly once; a retried call returns the recorded batch."""
    jobs = storage.JobsRepository(settings.jobs_table)
    spec = _job_spec(jobs, ref.job_id)
    recorded = jobs.get_chunk(ref.job_id, ref.chunk).get("provider_batch_id")
    if recorded:
        logger.info("chunk already submitted", extra={"provider_batch_id": recorded})
        return ChunkState(
            **ref.model_dump(),
            provider=spec.provider,
            provider_batch_id=recorded,
            status=BatchStatus.IN_PROGRESS,
            wait_seconds=backoff.initial_seconds,
        )
    provider = provider_for(spec.provider, settings)
    with tempfile.TemporaryDirectory(prefix="submit-") as tmp:
        path = Path(tmp) / "requests.jsonl"
        storage.download_file(ref.bucket, storage.chunk_requests_key(ref.job_id, ref.chunk), path)
        submitted = provider.submit(path, spec, {"batch_gateway_job": ref.job_id, "chunk": str(ref.chunk)})
    fields = {
        "provider_batch_id": submitted.provider_batch_id,
        "status": submitted.status.value,
        "submitted_at": time.time(),
    }
    if not jobs.update_chunk(ref.job_id, ref.chunk, fields, only_if_absent="provider_batch_id"):
        # A concurrent duplicate won the race: keep its batch, cancel ours so nothing is paid twice.
        provider.cancel(submitted.provider_batch_id)
        winner = jobs.get_chunk(ref.job_id, ref.chunk)["provider_batch_id"]
        return ChunkState(
            **ref.model_dump(),
            provider=spec.provider,
            provider_batch_id=winner,
            status=BatchStatus.IN_PROGRESS,
            wait_seconds=backoff.initial_seconds,
        )
    jobs.set_job_status(ref.job_id, BatchStatus.IN_PROGRESS)
    logger.info("chunk submitted", extra={"provider_batch_id": submitted.provider_batch_id})
    return ChunkState(
        **ref.model_dump(),
        provider=spec.provider,
        provider_batch_id=submitted.provider_batch_id,
        status=submitted.status,
        wait_seconds=backoff.initial_seconds,
    )


def poll_chunk(state: ChunkState, backoff: Backoff, settings: Settings) -> ChunkState:
    """Ask the provider where the batch stands; schedule the next wait with exponential backoff."""
    provider = provider_for(state.provider, settings)
    progress = provider.poll(state.provider_batch_id)
    storage.JobsRepository(settings.jobs_table).update_chunk(
        state.job_id,
        state.chunk,
        {
            "status": progress.status.value,
            "provider_status": progress.provider_status,
            "request_counts": progress.request_counts,
            "message": progress.message,
            "polled_at": time.time(),
        },
    )
    return state.model_copy(
        update={
            "status": progress.status,
            "terminal": progress.status.is_terminal,
            "polls": state.polls + 1,
            "wait_seconds": backoff.next_wait(state.wait_seconds),
        }
    )
