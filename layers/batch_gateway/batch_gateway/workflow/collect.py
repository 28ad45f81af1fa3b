"""Collect a provider batch into one BatchResult per item, decide what happens next, finish the chunk.

Provider output comes in any order. It is spooled to local disk with an offset per provider id, then
the round's index (input order) is walked and each item's result read back: memory holds offsets,
not answers, so it stays flat however large the answers are.

After each round: a batch that failed as a whole is resubmitted (``failed_batch_retries``); items
that ended with a retryable error (expired, 429, 5xx, overloaded, an answer that does not match the
request's response schema) go out again in a follow-up round
(``retry_rounds``); otherwise the rounds are merged, the later round winning for a retried line,
into the chunk's results file and results-table rows. A batch that failed for the provider's
quota (``token_limit_exceeded``) is requeued instead: a new attempt slot, the chunk waits for
room in the quota ledger, and FailedBatchRetries does not count it (``ChunkState.failures`` does
the counting of the other failures).
"""

from __future__ import annotations

import heapq
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import BatchResult, BatchStatus, ResultCounts, add_usage
from batch_gateway.observability import MetricUnit, logger, metrics
from batch_gateway.providers.registry import provider_for
from batch_gateway.providers.structured import check_answer
from batch_gateway.providers.types import Outcome, ProviderResult
from batch_gateway.settings import Settings
from batch_gateway.storage import keys, s3
from batch_gateway.storage.chunk_index import decode_index_line
from batch_gateway.storage.chunk_row import BATCH_END_FAILED, BATCH_END_QUOTA, ChunkRow, RoundReport
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.storage.results import (
    ResultsRepository,
    StagedWriter,
    keyed_result,
    split_keyed_result,
    upload_staged,
)
from batch_gateway.workflow.capacity import Capacity
from batch_gateway.workflow.payloads import Backoff, ChunkState, RetryPolicy


def min_batch_items(provider: str, settings: Settings) -> int:
    """The fewest items a provider batch may hold: a follow-up round below it would only be refused,
    so its items keep their (retryable) errors instead. Bedrock has a per-job minimum; others none."""
    return settings.bedrock_min_records if provider == "bedrock" else 1


def _missing(state: ChunkState, message: str | None, cancel_requested: bool) -> tuple[Outcome, str, bool]:
    """Outcome, error and retryability of an item the provider returned nothing for."""
    if state.quota_wait_expired:
        return "errored", message or "not submitted: the chunk waited too long for provider quota", False
    if state.status is BatchStatus.FAILED:
        return "errored", f"the provider batch failed: {message or 'no reason given'}", False
    if not state.provider_batch_id:
        return "cancelled", "cancelled: the job was cancelled before this request was submitted", False
    if state.status is BatchStatus.EXPIRED:
        return (
            "expired",
            "expired: the provider did not run this request within the batch's completion window",
            True,
        )
    if state.status is BatchStatus.CANCELLED:
        reason = "the job was cancelled" if cancel_requested else "the batch was cancelled"
        return "cancelled", f"cancelled: {reason} before this request ran", False
    return "errored", "the provider returned no result for this request", True


class _Spool:
    """Provider results on local disk, addressable by provider custom_id."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offsets: dict[str, tuple[int, int]] = {}

    def fill(self, results: Iterator[ProviderResult]) -> int:
        with self._path.open("wb") as out:
            for result in results:
                data = result.model_dump_json().encode()
                # A re-sent line (a restarted download) replaces, never duplicates.
                self._offsets[result.provider_custom_id] = (out.tell(), len(data))
                out.write(data)
        return len(self._offsets)

    def reader(self) -> IO[bytes]:
        return self._path.open("rb")

    def get(self, handle: IO[bytes], provider_custom_id: str) -> ProviderResult | None:
        where = self._offsets.get(provider_custom_id)
        if where is None:
            return None
        handle.seek(where[0])
        return ProviderResult.model_validate_json(handle.read(where[1]))


class _RoundFiles:
    """Where one round writes: its results, and the next round's requests and index."""

    def __init__(self, tmp: Path) -> None:
        self.results = (tmp / "round-results.jsonl").open("wb")
        self.next_requests = (tmp / "next-requests.jsonl").open("wb")
        self.next_index = (tmp / "next-index.jsonl").open("wb")

    def close(self) -> None:
        for handle in (self.results, self.next_requests, self.next_index):
            handle.close()


def _collect_round(
    state: ChunkState, spool: _Spool, files: _RoundFiles, message: str | None, cancel_requested: bool
) -> RoundReport:
    """Write this round's results in input order; queue retryable items for the next round."""
    report = RoundReport()
    index = s3.open_object(state.bucket, keys.chunk_index_key(state.job_id, state.chunk, state.round))
    requests = s3.open_object(state.bucket, keys.chunk_requests_key(state.job_id, state.chunk, state.round))
    with spool.reader() as handle:
        # The index and requests files were written in the same order: line i describes request i.
        for (_, raw_index), (_, raw_request) in zip(
            iter_numbered_lines(index), iter_numbered_lines(requests), strict=True
        ):
            entry = decode_index_line(raw_index)
            found = spool.get(handle, entry.provider_custom_id)
            if found is not None:  # an answer that does not match the request's schema: retryable
                found = check_answer(found, raw_request)
            if found is None:
                outcome, error, retryable = _missing(state, message, cancel_requested)
                result = BatchResult(custom_id=entry.custom_id, line=entry.line, error=error)
            else:
                outcome, retryable = found.outcome, found.retryable
                result = BatchResult(
                    custom_id=entry.custom_id,
                    line=entry.line,
                    response=found.response,
                    error=found.error,
                    raw=found.raw,
                )
                if found.response is not None:
                    add_usage(report.usage, found.response.usage)
            report.items += 1
            setattr(report.counts, outcome, getattr(report.counts, outcome) + 1)
            files.results.write(keyed_result(entry.line, result.model_dump_json().encode(), outcome))
            if retryable:
                report.retryable += 1
                files.next_requests.write(raw_request + b"\n")
                files.next_index.write(raw_index + b"\n")
    return report


def _round_lines(bucket: str, key: str, round_: int) -> Iterator[tuple[int, int, str, bytes]]:
    for _, raw in iter_numbered_lines(s3.open_object(bucket, key)):
        line, outcome, payload = split_keyed_result(raw)
        yield line, -round_, outcome, payload  # for the same line, the latest round sorts first


def _final_results(state: ChunkState, counts: ResultCounts, out: StagedWriter) -> Iterator[BatchResult]:
    """Merge every round's results (latest round wins per line) into the chunk's results file."""
    streams = [
        _round_lines(state.bucket, keys.chunk_round_results_key(state.job_id, state.chunk, r), r)
        for r in range(state.round + 1)
    ]
    previous_line = None
    for line, _, outcome, payload in heapq.merge(*streams):
        if line == previous_line:
            continue  # an earlier round's answer for a line a later round retried
        previous_line = line
        setattr(counts, outcome, getattr(counts, outcome) + 1)
        out.write(line, payload)
        yield BatchResult.model_validate_json(payload)


def _final_status(state: ChunkState, counts: ResultCounts, cancel_requested: bool) -> BatchStatus:
    if counts.cancelled and (cancel_requested or state.status is BatchStatus.CANCELLED):
        return BatchStatus.CANCELLED
    if state.status is BatchStatus.FAILED:
        return BatchStatus.FAILED
    if counts.expired:
        return BatchStatus.EXPIRED
    return BatchStatus.COMPLETED


def _finish_chunk(state: ChunkState, row: ChunkRow, settings: Settings, cancel_requested: bool) -> ChunkState:
    """Merge the rounds into the chunk's results file and results-table rows; record its totals."""
    counts = ResultCounts()
    usage: dict[str, int] = {}
    for round_ in range(state.round + 1):
        add_usage(usage, row.round_report(round_).usage)
    with tempfile.TemporaryDirectory(prefix="finish-") as tmp:
        path = Path(tmp) / "results.jsonl"
        with path.open("wb") as out:
            staged = StagedWriter(out)
            rows = ResultsRepository.for_writing(settings, state.bucket)
            rows.write(state.job_id, _final_results(state, counts, staged))
        upload_staged(path, staged, state.bucket, keys.chunk_results_key(state.job_id, state.chunk))
    final_status = _final_status(state, counts, cancel_requested)
    JobsRepository(settings.jobs_table).update_chunk(
        state.job_id,
        state.chunk,
        {
            "counts": counts.model_dump(),
            "usage": usage,
            "final_status": final_status.value,
            "rounds": state.round,
            "collected_at": time.time(),
        },
    )
    logger.info("chunk collected", extra={"counts": counts.model_dump(), "rounds": state.round})
    return state.model_copy(update={"next_step": "done", "status": final_status})


def _resubmission(state: ChunkState, policy: RetryPolicy, cancel_requested: bool) -> bool:
    """Whether a batch that failed as a whole is submitted again (after a backoff)."""
    return (
        state.status is BatchStatus.FAILED
        and not state.quota_wait_expired
        and state.failures < policy.failed_batch_retries
        and not cancel_requested
    )


def _requeue(state: ChunkState, repo: JobsRepository, backoff: Backoff) -> ChunkState:
    """The batch failed for quota: a new attempt slot after a backoff (the chunk then waits for room)."""
    repo.update_chunk(
        state.job_id, state.chunk, {ChunkRow.end_field(state.round, state.attempt): BATCH_END_QUOTA}
    )
    logger.warning("provider batch failed for quota; requeued")
    return state.model_copy(
        update={
            "attempt": state.attempt + 1,
            "next_step": "submit",
            "terminal": False,
            "quota_exceeded": False,
            "waiting_since": state.waiting_since or time.time(),
            "wait_seconds": backoff.wait_before_attempt(state.attempt + 1),
        }
    )


def _collect_and_stage(
    state: ChunkState, row: ChunkRow, policy: RetryPolicy, settings: Settings, cancel_requested: bool
) -> tuple[RoundReport, bool]:
    """Collect this round into its results file; stage a follow-up round if one should run."""
    with tempfile.TemporaryDirectory(prefix="collect-") as tmp_name:
        tmp = Path(tmp_name)
        spool = _Spool(tmp / "provider-results.bin")
        has_output = state.provider_batch_id and state.status is not BatchStatus.FAILED
        if has_output:
            spool.fill(provider_for(state.provider, settings).iter_results(state.provider_batch_id))
        else:
            spool.fill(iter(()))
        files = _RoundFiles(tmp)
        try:
            report = _collect_round(state, spool, files, row.message, cancel_requested)
        finally:
            files.close()
        key = keys.chunk_round_results_key(state.job_id, state.chunk, state.round)
        s3.upload_file(tmp / "round-results.jsonl", state.bucket, key)
        another_round = (
            report.retryable >= min_batch_items(state.provider, settings)
            and state.round < policy.retry_rounds
            and not cancel_requested
        )
        if another_round:
            next_round = state.round + 1
            s3.upload_file(
                tmp / "next-requests.jsonl",
                state.bucket,
                keys.chunk_requests_key(state.job_id, state.chunk, next_round),
            )
            s3.upload_file(
                tmp / "next-index.jsonl",
                state.bucket,
                keys.chunk_index_key(state.job_id, state.chunk, next_round),
            )
    return report, another_round


def collect_chunk(state: ChunkState, policy: RetryPolicy, backoff: Backoff, settings: Settings) -> ChunkState:
    """Collect this round; return the next step: ``submit`` again (a resubmission or a round) or ``done``."""
    repo = JobsRepository(settings.jobs_table)
    job = repo.get_job(state.job_id)
    cancel_requested = bool(job and job.cancel_requested)
    row = repo.chunk_row(state.job_id, state.chunk)
    # Released here too when Poll did not see the end (idempotent: the ledger releases once).
    Capacity(settings).end_batch(state, state.provider, state.model, quota_refused=state.quota_exceeded)
    if state.quota_exceeded and not cancel_requested:
        return _requeue(state, repo, backoff)
    if state.status is BatchStatus.FAILED and not state.quota_wait_expired:
        repo.update_chunk(
            state.job_id, state.chunk, {ChunkRow.end_field(state.round, state.attempt): BATCH_END_FAILED}
        )
    if _resubmission(state, policy, cancel_requested):
        logger.warning("provider batch failed; resubmitting", extra={"reason": row.message})
        return state.model_copy(
            update={
                "attempt": state.attempt + 1,
                "failures": state.failures + 1,
                "next_step": "submit",
                "terminal": False,
                "wait_seconds": backoff.wait_before_attempt(state.attempt + 1),
            }
        )
    report, another_round = _collect_and_stage(state, row, policy, settings, cancel_requested)
    repo.update_chunk(
        state.job_id, state.chunk, {ChunkRow.round_field(state.round): report.model_dump(mode="json")}
    )
    metrics.add_dimension(name="provider", value=state.provider)
    metrics.add_metric(name="ItemsCollected", unit=MetricUnit.Count, value=report.items)
    metrics.add_metric(
        name="ItemsRetried", unit=MetricUnit.Count, value=report.retryable if another_round else 0
    )
    if another_round:
        logger.info(
            "retrying items in a follow-up round", extra={"items": report.retryable, "round": state.round + 1}
        )
        return state.model_copy(
            update={
                "round": state.round + 1,
                "attempt": 0,
                "failures": 0,
                "waiting_since": None,
                "next_step": "submit",
                "terminal": False,
                "wait_seconds": 1,
            }
        )
    return _finish_chunk(state, repo.chunk_row(state.job_id, state.chunk), settings, cancel_requested)
