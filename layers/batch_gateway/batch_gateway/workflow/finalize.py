"""Finalize a job: one results file in input order, the summary, the jobs-table row."""

from __future__ import annotations

import heapq
import io
import json
import time
from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools import Logger

from batch_gateway import storage
from batch_gateway.cost import job_cost
from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import BatchStatus, JobSummary, ResultCounts, add_usage
from batch_gateway.observability import MetricUnit, metrics
from batch_gateway.settings import Settings

logger = Logger(child=True)

# When chunks end differently, the job reports the most severe ending; counts tell the detail.
_SEVERITY = [BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED, BatchStatus.FAILED]


class IteratorStream(io.RawIOBase):
    """A readable stream over an iterator of byte strings (feeds a streamed multipart upload)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _keyed_lines(bucket: str, key: str) -> Iterator[tuple[int, bytes]]:
    for _, raw in iter_numbered_lines(storage.open_object(bucket, key)):
        line, _, payload = storage.split_keyed_result(raw)
        yield line, payload


def merged_results(bucket: str, keys: list[str]) -> Iterator[bytes]:
    """Result lines of every staged results file, merged into input-line order.

    Each staged file is already in line order; chunks of different models (and skipped invalid
    lines) interleave, so a k-way merge restores the input order while holding one line per file.
    """
    for _, payload in heapq.merge(*(_keyed_lines(bucket, key) for key in keys)):
        yield payload + b"\n"


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
    if job.invalid_count:  # lines skipped at intake (on_invalid=skip) have staged error results
        keys.append(storage.invalid_results_key(job_id))
    stream = io.BufferedReader(IteratorStream(merged_results(bucket, keys)), buffer_size=8 * 1024 * 1024)
    storage.upload_stream(stream, bucket, storage.results_key(job_id), "application/x-ndjson")
    counts, usage = ResultCounts(invalid=job.invalid_count), dict[str, int]()
    for chunk in chunks:
        counts = counts.add(storage.counts_of(chunk))
        add_usage(usage, chunk.get("usage") or {})
    job.status = job_status([BatchStatus(c.get("final_status") or c["status"]) for c in chunks])
    job.counts, job.usage, job.chunk_count = counts, usage, len(chunks)
    job.retry_rounds = retry_round_report(chunks)
    job.cost = job_cost(job.provider, usage_by_model(job, chunks))
    job.results_uri = storage.s3_uri(bucket, storage.results_key(job_id))
    job.finished_at = time.time()
    job.reason = _reason(job, chunks)
    jobs.save_job(job)
    storage.put_json(bucket, storage.summary_key(job_id), job.model_dump(mode="json", exclude={"raw"}))
    _record_metrics(job)
    logger.info("job finalized", extra={"status": job.status.value, "counts": counts.model_dump()})
    return job


def _record_metrics(job: JobSummary) -> None:
    metrics.add_dimension(name="provider", value=job.provider)
    for outcome, count in job.counts.model_dump().items():
        metrics.add_metric(name=f"Items{outcome.capitalize()}", unit=MetricUnit.Count, value=count)
    if job.finished_at is not None:
        metrics.add_metric(
            name="JobDuration", unit=MetricUnit.Seconds, value=job.finished_at - job.created_at
        )
    if job.cost.usd is not None:
        metrics.add_metric(name="JobCostUSD", unit=MetricUnit.NoUnit, value=job.cost.usd)


def usage_by_model(job: JobSummary, chunks: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Token usage per model (items may choose their model, so chunks may differ)."""
    by_model: dict[str, dict[str, int]] = {}
    for chunk in chunks:
        add_usage(by_model.setdefault(chunk.get("model") or job.model, {}), chunk.get("usage") or {})
    return by_model


def retry_round_report(chunks: list[dict[str, Any]]) -> list[dict[str, int]]:
    """Per follow-up round over all chunks: how many items were sent again and how many succeeded."""
    rounds: dict[int, dict[str, int]] = {}
    for chunk in chunks:
        for round_ in range(1, int(chunk.get("rounds") or 0) + 1):
            report = chunk.get(f"round_{round_}") or {}
            totals = rounds.setdefault(round_, {"round": round_, "retried": 0, "recovered": 0})
            totals["retried"] += int(report.get("items", 0))
            totals["recovered"] += int((report.get("counts") or {}).get("succeeded", 0))
    return [rounds[r] for r in sorted(rounds)]


def _reason(job: JobSummary, chunks: list[dict[str, Any]]) -> str | None:
    missing = job.request_count + job.invalid_count - job.counts.total
    if missing:
        return f"{missing} line(s) have no result"  # never expected: surfaced loudly
    failed = [c for c in chunks if c.get("final_status") == BatchStatus.FAILED.value]
    if failed:
        return f"{len(failed)} provider batch(es) failed: {failed[0].get('message') or 'no reason given'}"
    if job.cancel_requested:
        return "cancelled on request"
    return None


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
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
    logger.error("job failed", extra={"reason": job.reason})
    return job
