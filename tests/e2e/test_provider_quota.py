"""Jobs under a tight provider quota: chunks wait for room instead of failing, and every job of the
stack shares the quota (the ledger), as ``local run --quota N`` runs them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_gateway.models import JobSpec, JobSummary
from batch_gateway.storage.ledger import Hold, QuotaLedger, pool_key
from batch_gateway_local.emulator import Limits
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl

MODEL = "small-model"
# Each line is estimated at 17 input tokens, a chunk of 4 lines at 68: two chunks fit in 150.
QUOTA = 150
CHUNK = 4
LINES = 8


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=CHUNK, quota=QUOTA)) as local:
        yield local


def _file(tmp_path: Path, name: str, lines: int) -> Path:
    items = [
        {"custom_id": f"{name}-{n}", "user_message": f"Summarise ticket {n}: the printer jams."}
        for n in range(lines)
    ]
    return write_jsonl(tmp_path / f"{name}.jsonl", items)


def _units_in_flight(holds: list[Hold]) -> int:
    """The most quota units the holds ever held at once."""
    edges = sorted(
        [(h.reserved_at, h.amount) for h in holds] + [(h.released_at or 0.0, -h.amount) for h in holds],
        key=lambda e: (e[0], e[1]),
    )
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def _assert_all_ok(job: JobSummary, lines: int) -> None:
    assert job.status.value == "completed", job.reason
    assert job.counts.succeeded == lines
    assert job.provider_batches.failed == 0
    assert job.provider_batches.requeued_for_quota == 0  # the estimate kept every batch within the quota
    assert job.provider_batches.submitted == job.chunk_count


def test_two_jobs_under_one_quota_complete_and_never_exceed_it_together(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    spec = JobSpec(provider="openai", model=MODEL)
    paths = [_file(tmp_path, "a", LINES), _file(tmp_path, "b", LINES)]
    job_ids: list[str] = []
    threads = [
        threading.Thread(target=lambda p=p: job_ids.append(gateway.submit_file(p, spec))) for p in paths
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    jobs = [gateway.wait(job_id, timeout_s=300) for job_id in job_ids]

    for job in jobs:
        _assert_all_ok(job, LINES)
        assert job.provider_batches.max_in_flight <= 2  # the quota holds two chunks at a time
    ledger = QuotaLedger(gateway.settings().quota_ledger_table)
    pool = pool_key("openai", MODEL)
    holds = [hold for job_id in job_ids for hold in ledger.holds_of_job(pool, job_id)]
    assert len(holds) == 4  # 2 chunks per job, each one provider batch
    assert max(h.amount for h in holds) <= QUOTA
    assert _units_in_flight(holds) <= QUOTA
    assert ledger.pool(pool).in_use == 0  # every batch gave its units back


def test_a_provider_refusing_for_quota_requeues_chunks_instead_of_failing_them(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    # The provider's real limit is below the stack's parameter (someone else uses the organisation's
    # quota too): the emulator counts 40 tokens a chunk, so a second chunk in flight is refused.
    config = gateway.emulator.config
    config.limits = Limits(openai_enqueued_tokens=60)
    try:
        job = gateway.wait(
            gateway.submit_file(_file(tmp_path, "c", LINES), JobSpec(provider="openai", model=MODEL)),
            timeout_s=300,
        )
    finally:
        config.limits = Limits(openai_enqueued_tokens=QUOTA)

    assert job.status.value == "completed", job.reason
    assert job.counts.succeeded == LINES
    assert job.provider_batches.failed == 0  # refusals never burn FailedBatchRetries
    assert job.provider_batches.requeued_for_quota >= 1
    assert job.provider_batches.submitted == job.chunk_count + job.provider_batches.requeued_for_quota
