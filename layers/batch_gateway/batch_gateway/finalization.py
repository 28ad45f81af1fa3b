"""Finalize a job: one results file in input order, the summary, the jobs-table row."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import IO, Any

from aws_lambda_powertools import Logger

from batch_gateway import storage
from batch_gateway.models import BatchStatus, JobSummary, ResultCounts, add_usage
from batch_gateway.settings import Settings

logger = Logger(child=True)

# When chunks end differently, the job reports the most severe ending; counts tell the detail.
_SEVERITY = [BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED, BatchStatus.FAILED]


class ConcatenatedObjects(io.RawIOBase):
    """S3 objects read one after another as a single stream (for a streamed multipart upload)."""

    def __init__(self, bucket: str, keys: list[str]) -> None:
        self._bucket = bucket
        self._keys: Iterator[str] = iter(keys)
        self._current: IO[bytes] | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._current is None:
                key = next(self._keys, None)
                if key is None:
                    return 0
                self._current = storage.open_object(self._bucket, key)
            data = self._current.read(len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)
            self._current.close()
            self._current = None


def job_status(chunk_statuses: list[BatchStatus]) -> BatchStatus:
    worst = max(chunk_statuses, key=lambda s: _SEVERITY.index(s) if s in _SEVERITY else 0)
    return worst if worst in _SEVERITY else BatchStatus.COMPLETED


def finalize_job(job_id: str, bucket: str, settings: Settings) -> JobSummary:
    jobs = storage.JobsRepository(settings.jobs_table)
    job = jobs.get_job(job_id)
    if job is None:
        raise LookupError(f"job {job_id} has no row in the jobs table")
    chunks = sorted(jobs.list_chunks(job_id), key=lambda c: int(c["chunk"]))
    not_collected = [c["chunk"] for c in chunks if "collected_at" not in c]
    if not_collected:
        raise RuntimeError(f"chunks {not_collected} of job {job_id} were never collected")
    keys = [storage.chunk_results_key(job_id, int(c["chunk"])) for c in chunks]
    stream = io.BufferedReader(ConcatenatedObjects(bucket, keys), buffer_size=8 * 1024 * 1024)
    storage.upload_stream(stream, bucket, storage.results_key(job_id), "application/x-ndjson")
    counts, usage = ResultCounts(), dict[str, int]()
    for chunk in chunks:
        counts = counts.add(storage.counts_of(chunk))
        add_usage(usage, chunk.get("usage") or {})
    job.status = job_status([BatchStatus(c["status"]) for c in chunks])
    job.counts, job.usage, job.chunk_count = counts, usage, len(chunks)
    job.results_uri = storage.s3_uri(bucket, storage.results_key(job_id))
    job.finished_at = time.time()
    job.reason = (
        None
        if counts.total == job.request_count
        else (
            f"{job.request_count - counts.total} line(s) have no result"  # never expected: surfaced loudly
        )
    )
    jobs.save_job(job)
    storage.put_json(bucket, storage.summary_key(job_id), job.model_dump(mode="json", exclude={"raw"}))
    logger.info("job finalized", extra={"status": job.status.value, "counts": counts.model_dump()})
    return job


def readable_failure(error: dict[str, Any] | None) -> str:
    """Turn a Step Functions Catch payload ({Error, Cause}) into one readable sentence."""
    if not error:
        return "the job's workflow failed without a reason"
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        kind = parsed.get("errorType") or error.get("Error") or "Error"
        return f"{kind}: {parsed['errorMessage']}"
    return f"{error.get('Error', 'Error')}: {cause}".rstrip(": ")


def mark_job_failed(job_id: str, bucket: str, error: dict[str, Any] | None, settings: Settings) -> JobSummary:
    """The workflow's catch-all: the job ends failed with a reason; inputs and staged chunks are kept."""
    jobs = storage.JobsRepository(settings.jobs_table)
    job = jobs.get_job(job_id)
    if job is None:
        raise LookupError(f"job {job_id} has no row in the jobs table")
    job.status = BatchStatus.FAILED
    job.reason = readable_failure(error)
    job.finished_at = time.time()
    jobs.save_job(job)
    storage.put_json(bucket, storage.summary_key(job_id), job.model_dump(mode="json", exclude={"raw"}))
    logger.error("job failed", extra={"reason": job.reason})
    return job
