"""Finalize and MarkFailed: how a job ends, whichever way it ends.

Finalize joins every chunk's staged results (and the error results of lines skipped at intake)
into one results.jsonl in input order, sums the chunks' counts, usage and retry rounds into the
job row, prices the usage, and writes summary.json. When each staged file is one run of input
lines (one model per job, no skipped lines between), the files are concatenated server-side
(``UploadPartCopy``): no result byte passes through the function. Otherwise (several models, or
skipped lines interleaving) each file, already in input order, feeds a k-way merge by line number
streamed into a multipart upload: neither memory nor /tmp grows with the job.

MarkFailed is the workflow's catch-all: the job ends failed with a readable reason (the Catch's
``{Error, Cause}`` made into one sentence); staged inputs and collected chunks are kept, so the
reconciler can still resume it.
"""

from __future__ import annotations

import heapq
import io
import json
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

from batch_gateway.cost import job_cost
from batch_gateway.models import BatchStatus, JobSummary, ResultCounts, add_usage
from batch_gateway.observability import MetricUnit, logger, metrics
from batch_gateway.settings import Settings
from batch_gateway.storage import keys, s3
from batch_gateway.storage.chunk_row import ChunkRow
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.storage.results import StagedSpan, iter_staged, staged_spans
from batch_gateway.workflow.capacity import provider_batch_report

NDJSON = "application/x-ndjson"
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


def merged_results(bucket: str, spans: list[StagedSpan]) -> Iterator[bytes]:
    """Result lines of every staged results file, merged into input-line order.

    Each staged file is already in line order; chunks of different models (and skipped invalid
    lines) interleave, so a k-way merge restores the input order while holding one line per file.
    """
    for _, payload in heapq.merge(*(iter_staged(bucket, span.key, span.keyed) for span in spans)):
        yield payload + b"\n"


def in_input_order(spans: list[StagedSpan]) -> list[StagedSpan] | None:
    """The staged files in input order if each is one run of lines and no two overlap, else None."""
    if not all(span.contiguous for span in spans):
        return None
    ordered = sorted((span for span in spans if span.count), key=lambda span: span.first)
    for before, after in pairwise(ordered):
        if after.first < before.first + before.count:
            return None
    return ordered


def write_results(bucket: str, staged: list[str], key: str) -> str:
    """Write results.jsonl from the staged files: copied server-side where order allows, else merged.

    Returns how: ``copy`` or ``merge``.
    """
    spans = staged_spans(bucket, staged)
    ordered = in_input_order(spans)
    if ordered is not None:
        parts = s3.concatenate([(span.key, span.size) for span in ordered], bucket, key, NDJSON)
        logger.info("results copied server-side", extra={"files": len(ordered), "parts": parts})
        return "copy"
    stream = io.BufferedReader(IteratorStream(merged_results(bucket, spans)), buffer_size=8 * 1024 * 1024)
    s3.upload_stream(stream, bucket, key, NDJSON)
    logger.info("results merged by line", extra={"files": len(staged)})
    return "merge"


def job_status(chunk_statuses: list[BatchStatus]) -> BatchStatus:
    """The most severe of the chunks' endings (completed < expired < cancelled < failed)."""
    worst = max(chunk_statuses, key=lambda s: _SEVERITY.index(s) if s in _SEVERITY else 0)
    return worst if worst in _SEVERITY else BatchStatus.COMPLETED


def finalize_job(job_id: str, bucket: str, settings: Settings) -> JobSummary:
    """Write results.jsonl, summary.json and the final job row from the collected chunks."""
    repo = JobsRepository(settings.jobs_table)
    job = repo.get_job(job_id)
    if job is None:
        raise LookupError(f"job {job_id} has no row in the jobs table")
    chunks = repo.chunk_rows(job_id)
    not_collected = [c.chunk for c in chunks if not c.collected]
    if not_collected:
        raise RuntimeError(f"chunks {not_collected} of job {job_id} were never collected")
    staged = [keys.chunk_results_key(job_id, c.chunk) for c in chunks]
    if job.invalid_count:  # lines skipped at intake (on_invalid=skip) have staged error results
        staged.append(keys.invalid_results_key(job_id))
    write_results(bucket, staged, keys.results_key(job_id))
    counts, usage = ResultCounts(invalid=job.invalid_count), dict[str, int]()
    for chunk in chunks:
        counts = counts.add(chunk.counts or ResultCounts())
        add_usage(usage, chunk.usage or {})
    job.status = job_status([BatchStatus(c.final_status or c.status) for c in chunks])
    job.counts, job.usage, job.chunk_count = counts, usage, len(chunks)
    job.retry_rounds = retry_round_report(chunks)
    job.cost = job_cost(job.provider, usage_by_model(job, chunks))
    job.results_uri = keys.s3_uri(bucket, keys.results_key(job_id))
    job.finished_at = time.time()
    job.reason = _reason(job, chunks)
    job.provider_batches = provider_batch_report(job, chunks, settings)
    estimates = [c.estimated_tokens for c in chunks if c.estimated_tokens is not None]
    job.estimated_input_tokens = sum(estimates) if estimates else None
    repo.save_job(job)
    s3.put_json(bucket, keys.summary_key(job_id), job.model_dump(mode="json", exclude={"raw"}))
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


def usage_by_model(job: JobSummary, chunks: list[ChunkRow]) -> dict[str, dict[str, int]]:
    """Token usage per model (items may choose their model, so chunks may differ)."""
    by_model: dict[str, dict[str, int]] = {}
    for chunk in chunks:
        add_usage(by_model.setdefault(chunk.model or job.model, {}), chunk.usage or {})
    return by_model


def retry_round_report(chunks: list[ChunkRow]) -> list[dict[str, int]]:
    """Per follow-up round over all chunks: how many items were sent again and how many succeeded."""
    rounds: dict[int, dict[str, int]] = {}
    for chunk in chunks:
        for round_ in range(1, (chunk.rounds or 0) + 1):
            report = chunk.round_report(round_)
            totals = rounds.setdefault(round_, {"round": round_, "retried": 0, "recovered": 0})
            totals["retried"] += report.items
            totals["recovered"] += report.counts.succeeded
    return [rounds[r] for r in sorted(rounds)]


def _reason(job: JobSummary, chunks: list[ChunkRow]) -> str | None:
    missing = job.request_count + job.invalid_count - job.counts.total
    if missing:
        return f"{missing} line(s) have no result"  # never expected: surfaced loudly
    failed = [c for c in chunks if c.final_status == BatchStatus.FAILED.value]
    if failed:
        return f"{len(failed)} provider batch(es) failed: {failed[0].message or 'no reason given'}"
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
    repo = JobsRepository(settings.jobs_table)
    job = repo.get_job(job_id)
    if job is None:
        raise LookupError(f"job {job_id} has no row in the jobs table")
    job.status = BatchStatus.FAILED
    job.reason = readable_failure(error)
    job.finished_at = time.time()
    # The job's batches in flight give their provider quota back to the stack's other jobs.
    job.provider_batches = provider_batch_report(job, repo.chunk_rows(job_id), settings)
    repo.save_job(job)
    s3.put_json(bucket, keys.summary_key(job_id), job.model_dump(mode="json", exclude={"raw"}))
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
    logger.error("job failed", extra={"reason": job.reason})
    return job
