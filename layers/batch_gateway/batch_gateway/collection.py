"""Collect a finished provider batch into one BatchResult per staged line, in input order.

Provider output comes in any order. It is spooled to local disk with an offset per provider id, then
the chunk's index (input order) is walked and each line's result read back: memory holds offsets, not
answers, so it stays flat however large the answers are.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from batch_gateway import storage
from batch_gateway.chunks import ChunkState
from batch_gateway.credentials import provider_for
from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import BatchResult, BatchStatus, ResultCounts, add_usage
from batch_gateway.providers.base import Outcome, ProviderResult
from batch_gateway.settings import Settings

logger = Logger(child=True)

MISSING_RESULT_ERRORS: dict[BatchStatus, tuple[Outcome, str]] = {
    BatchStatus.EXPIRED: (
        "expired",
        "expired: the provider did not run this request before the batch's completion window ended",
    ),
    BatchStatus.CANCELLED: ("cancelled", "cancelled: the batch was cancelled before this request ran"),
}


class CollectedChunk(BaseModel):
    job_id: str
    chunk: int
    counts: ResultCounts


def _missing(status: BatchStatus, message: str | None) -> tuple[Outcome, str]:
    if status in MISSING_RESULT_ERRORS:
        return MISSING_RESULT_ERRORS[status]
    if status is BatchStatus.FAILED:
        return "errored", f"the provider batch failed: {message or 'no reason given'}"
    return "errored", "the provider returned no result for this request"


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


def _ordered_results(
    state: ChunkState, spool: _Spool, message: str | None, tally: ResultCounts, usage: dict[str, int]
) -> Iterator[BatchResult]:
    index = storage.open_object(state.bucket, storage.chunk_index_key(state.job_id, state.chunk))
    with spool.reader() as handle:
        for _, raw in iter_numbered_lines(index):
            entry = json.loads(raw)
            found = spool.get(handle, entry["provider_custom_id"])
            if found is None:
                outcome, error = _missing(state.status, message)
                result = BatchResult(custom_id=entry["custom_id"], line=entry["line"], error=error)
            else:
                outcome = found.outcome
                result = BatchResult(
                    custom_id=entry["custom_id"],
                    line=entry["line"],
                    response=found.response,
                    error=found.error,
                    raw=found.raw,
                )
                if found.response is not None:
                    add_usage(usage, found.response.usage)
            setattr(tally, outcome, getattr(tally, outcome) + 1)
            yield result


def _write_lines(results: Iterator[BatchResult], out: IO[bytes]) -> Iterator[BatchResult]:
    for result in results:
        out.write(result.model_dump_json().encode() + b"\n")
        yield result


def collect_chunk(state: ChunkState, settings: Settings) -> CollectedChunk:
    """Write the chunk's ordered results file and results-table rows; record counts on the chunk row."""
    jobs = storage.JobsRepository(settings.jobs_table)
    chunk_row = jobs.get_chunk(state.job_id, state.chunk)
    provider = provider_for(state.provider, settings)
    tally, usage = ResultCounts(), dict[str, int]()
    with tempfile.TemporaryDirectory(prefix="collect-") as tmp:
        spool = _Spool(Path(tmp) / "provider-results.bin")
        received = spool.fill(provider.iter_results(state.provider_batch_id))
        results_path = Path(tmp) / "results.jsonl"
        with results_path.open("wb") as out:
            ordered = _ordered_results(state, spool, chunk_row.get("message"), tally, usage)
            storage.ResultsRepository(
                settings.results_table, state.bucket, settings.result_row_max_bytes
            ).write(state.job_id, _write_lines(ordered, out))
        storage.upload_file(results_path, state.bucket, storage.chunk_results_key(state.job_id, state.chunk))
    jobs.update_chunk(
        state.job_id,
        state.chunk,
        {
            "counts": tally.model_dump(),
            "usage": usage,
            "collected_at": time.time(),
            "results_received": received,
        },
    )
    logger.info("chunk collected", extra={"counts": tally.model_dump(), "provider_results": received})
    return CollectedChunk(job_id=state.job_id, chunk=state.chunk, counts=tally)
