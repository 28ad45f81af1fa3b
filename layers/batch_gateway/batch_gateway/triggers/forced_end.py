"""Ending a job failed without its workflow, keeping every answer already collected.

When a job cannot be resumed (``max_resumes`` reached, staged input gone) the reconciler ends it
here: each uncollected chunk's running batch is cancelled (nobody would collect it, so it should
not run on and be billed), and its lines get the results of the rounds already collected, the
rest an error result, written as Collect would (the chunk's results file, results-table rows and
totals on the chunk row). Finalize then writes results.jsonl (one line per input line),
summary.json and the job row as for any job, and the job is marked failed with the reason.
"""

from __future__ import annotations

import heapq
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import BatchResult, BatchStatus, JobSummary, ResultCounts, add_usage
from batch_gateway.observability import logger
from batch_gateway.providers.base import BatchProvider
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.registry import provider_for
from batch_gateway.settings import Settings
from batch_gateway.storage import keys, s3
from batch_gateway.storage.chunk_index import read_index
from batch_gateway.storage.chunk_row import ChunkRow
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.storage.results import ResultsRepository, StagedWriter, split_keyed_result, upload_staged
from batch_gateway.workflow.finalize import finalize_job


def provider_or_none(name: str, settings: Settings) -> BatchProvider | None:
    """The job's provider, or None when it cannot be made (no key): the job still ends."""
    try:
        return provider_for(name, settings)
    except (ProviderError, ValueError) as exc:
        logger.warning("provider unavailable to the reconciler", extra={"provider": name, "reason": str(exc)})
        return None


def cancel_quietly(provider: BatchProvider | None, chunk: ChunkRow) -> None:
    """A batch nobody will collect should not run on and be billed."""
    batch_id = chunk.provider_batch_id
    if provider is None or not batch_id or chunk.batch_ended:
        return
    try:
        provider.cancel(batch_id)
    except ProviderError as exc:
        logger.warning("cancel refused", extra={"provider_batch_id": batch_id, "reason": str(exc)})


def _keyed(bucket: str, key: str, priority: int) -> Iterator[tuple[int, int, str, bytes]]:
    for _, raw in iter_numbered_lines(s3.open_object(bucket, key)):
        line, outcome, payload = split_keyed_result(raw)
        yield line, priority, outcome, payload


def _unanswered(bucket: str, key: str, error: str) -> Iterator[tuple[int, int, str, bytes]]:
    """Every line of the chunk as an error result: used where no round has an answer for it."""
    for entry in read_index(s3.open_object(bucket, key)):
        result = BatchResult(custom_id=entry.custom_id, line=entry.line, error=error)
        yield entry.line, 1, "errored", result.model_dump_json().encode()


def chunk_lines(job_id: str, bucket: str, chunk: ChunkRow, error: str) -> Iterator[tuple[int, str, bytes]]:
    """One result per line of the chunk, in line order: the latest collected round's, else ``error``."""
    streams = [
        _keyed(bucket, keys.chunk_round_results_key(job_id, chunk.chunk, r), -r)
        for r in chunk.collected_rounds()
    ]
    streams.append(_unanswered(bucket, keys.chunk_index_key(job_id, chunk.chunk), error))
    previous = None
    for line, _, outcome, payload in heapq.merge(*streams):
        if line != previous:
            previous = line
            yield line, outcome, payload


def close_chunk(job_id: str, chunk: ChunkRow, reason: str, settings: Settings) -> None:
    """Write an uncollected chunk's results and row as Collect would, so Finalize can take it."""
    bucket = settings.data_bucket
    counts, usage = ResultCounts(), dict[str, int]()
    collected_rounds = chunk.collected_rounds()
    for round_ in collected_rounds:
        add_usage(usage, chunk.round_report(round_).usage)
    rows = ResultsRepository.for_writing(settings, bucket)
    with tempfile.TemporaryDirectory(prefix="reconcile-") as tmp:
        path = Path(tmp) / "results.jsonl"
        with path.open("wb") as out:
            staged = StagedWriter(out)

            def answered() -> Iterator[BatchResult]:
                for line, outcome, payload in chunk_lines(job_id, bucket, chunk, f"no result: {reason}"):
                    setattr(counts, outcome, getattr(counts, outcome) + 1)
                    staged.write(line, payload)
                    yield BatchResult.model_validate_json(payload)

            rows.write(job_id, answered())
        upload_staged(path, staged, bucket, keys.chunk_results_key(job_id, chunk.chunk))
    JobsRepository(settings.jobs_table).update_chunk(
        job_id,
        chunk.chunk,
        {
            "counts": counts.model_dump(),
            "usage": usage,
            "final_status": BatchStatus.FAILED.value,
            "message": reason,
            "rounds": max(collected_rounds, default=0),  # follow-up rounds that ran (for retry_rounds)
            "collected_at": time.time(),
        },
    )


def end_failed(job: JobSummary, chunks: list[ChunkRow], reason: str, settings: Settings) -> None:
    """End the job failed, every collected answer kept and every other line given an error result."""
    provider = provider_or_none(job.provider, settings)
    for chunk in chunks:
        if not chunk.collected:
            cancel_quietly(provider, chunk)
            close_chunk(job.job_id, chunk, reason, settings)
    final = finalize_job(job.job_id, settings.data_bucket, settings)
    final.status, final.reason = BatchStatus.FAILED, reason
    JobsRepository(settings.jobs_table).save_job(final)
    s3.put_json(
        settings.data_bucket, keys.summary_key(job.job_id), final.model_dump(mode="json", exclude={"raw"})
    )
    logger.warning("job ended by the reconciler", extra={"job_id": job.job_id, "reason": reason})
