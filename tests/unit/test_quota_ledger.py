"""The quota ledger every job of a stack shares (moto's DynamoDB): reservations, releases, lessons
from refusals, waiters woken in order, and the chunk that waited too long."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from batch_gateway.models import BatchStatus, JobSummary
from batch_gateway.providers.bedrock.batch import _readable_aws_errors as bedrock_errors
from batch_gateway.providers.errors import ProviderQuotaError, ProviderUnavailableError, readable_sdk_errors
from batch_gateway.providers.openai.parsing import openai_progress
from batch_gateway.settings import Settings
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.storage.ledger import QuotaLedger, holder_key, pool_key
from batch_gateway.workflow.capacity import Capacity, CapacityFreed
from batch_gateway.workflow.payloads import Backoff, ChunkRef
from batch_gateway.workflow.submit import submit_chunk
from tests.conftest import create_table

POOL = pool_key("openai", "gpt-4o-mini")
QUOTA = 300


@pytest.fixture
def settings(mocked_aws: None) -> Settings:
    create_table("ledger", "pool", "sk")  # as template.yaml's QuotaLedgerTable
    create_table("jobs", "job_id", "sk")  # and JobsTable (without its index)
    return Settings.model_validate(
        {
            "QUOTA_LEDGER_TABLE": "ledger",
            "JOBS_TABLE": "jobs",
            "OPENAI_ENQUEUED_TOKENS_QUOTA": str(QUOTA),
            "CAPACITY_MAX_WAIT_SECONDS": str(7 * 86400),
        }
    )


def test_a_reservation_is_idempotent_per_holder_and_released_exactly_once(settings: Settings) -> None:
    ledger = QuotaLedger(settings.quota_ledger_table)
    assert ledger.reserve(POOL, "job#1#0#0", 200, QUOTA, "job") == "reserved"
    assert ledger.reserve(POOL, "job#1#0#0", 200, QUOTA, "job") == "held"  # a retried Submit
    assert ledger.pool(POOL).in_use == 200
    assert ledger.reserve(POOL, "job#2#0#0", 200, QUOTA, "job") == "no_room"
    assert ledger.release(POOL, "job#1#0#0") == 200
    assert ledger.release(POOL, "job#1#0#0") is None  # Poll and Collect both see the end
    assert ledger.pool(POOL).in_use == 0
    assert ledger.reserve(POOL, "job#2#0#0", 200, QUOTA, "job") == "reserved"


def test_an_empty_pool_takes_a_chunk_bigger_than_its_limit(settings: Settings) -> None:
    ledger = QuotaLedger(settings.quota_ledger_table)
    assert ledger.reserve(POOL, "job#1#0#0", QUOTA * 2, QUOTA, "job") == "reserved"
    assert ledger.reserve(POOL, "job#2#0#0", 1, QUOTA, "job") == "no_room"


def test_a_quota_refusal_lowers_the_usable_limit_to_what_others_held(settings: Settings) -> None:
    capacity = Capacity(settings)
    refs = [ChunkRef(job_id="job", bucket="b", chunk=n) for n in (1, 2, 3)]
    assert capacity.reserve(refs[0], "openai", "gpt-4o-mini", 100) == "reserved"
    assert capacity.reserve(refs[1], "openai", "gpt-4o-mini", 100) == "reserved"
    capacity.end_batch(refs[1], "openai", "gpt-4o-mini", quota_refused=True)  # the provider refused chunk 2

    assert capacity.ledger.pool(POOL).learned_limit == 100  # chunk 1 alone was fine
    assert capacity.reserve(refs[2], "openai", "gpt-4o-mini", 100) == "no_room"  # 200 > 100 now
    capacity.end_batch(refs[0], "openai", "gpt-4o-mini", quota_refused=False)
    assert capacity.reserve(refs[2], "openai", "gpt-4o-mini", 100) == "reserved"


def test_a_release_wakes_the_oldest_waiters_that_fit_in_order(settings: Settings) -> None:
    capacity = Capacity(settings)
    running = ChunkRef(job_id="job", bucket="b", chunk=1)
    assert capacity.reserve(running, "openai", "gpt-4o-mini", QUOTA) == "reserved"
    now = time.time()
    for chunk, since in ((4, now - 1), (2, now - 3), (3, now - 2)):  # parked out of order
        ref = ChunkRef(job_id="job", bucket="b", chunk=chunk, waiting_since=since)
        capacity.park(ref, "openai", "gpt-4o-mini", 150, f"token-{chunk}")  # no room: stays parked
    assert [w.task_token for w in capacity.ledger.waiters(POOL)] == ["token-2", "token-3", "token-4"]

    capacity.end_batch(running, "openai", "gpt-4o-mini", quota_refused=False)

    # 300 free: the two oldest (150 each) are woken; the youngest still waits.
    assert [w.task_token for w in capacity.ledger.waiters(POOL)] == ["token-4"]


def test_cancelling_a_job_wakes_its_waiting_chunks_only(settings: Settings) -> None:
    capacity = Capacity(settings)
    assert (
        capacity.reserve(ChunkRef(job_id="busy", bucket="b", chunk=1), "openai", "gpt-4o-mini", QUOTA)
        == "reserved"
    )
    for job_id, chunk in (("cancelled", 1), ("other", 1), ("cancelled", 2)):
        ref = ChunkRef(job_id=job_id, bucket="b", chunk=chunk, waiting_since=time.time())
        capacity.park(ref, "openai", "gpt-4o-mini", 100, f"token-{job_id}-{chunk}")

    assert capacity.wake_job("cancelled", "openai", {"gpt-4o-mini"}) == 2

    assert [w.task_token for w in capacity.ledger.waiters(POOL)] == ["token-other-1"]


def test_a_chunk_parking_just_after_a_release_is_told_to_submit_at_once(settings: Settings) -> None:
    capacity = Capacity(settings)
    ref = ChunkRef(job_id="job", bucket="b", chunk=1, waiting_since=time.time())
    with pytest.raises(CapacityFreed):
        capacity.park(ref, "openai", "gpt-4o-mini", 100, "token-1")  # the pool is empty
    assert capacity.ledger.waiters(POOL) == []


def _staged_job(settings: Settings) -> ChunkRef:
    jobs = JobsRepository(settings.jobs_table)
    jobs.create_job(
        JobSummary(
            job_id="job", provider="openai", model="gpt-4o-mini", status=BatchStatus.PENDING, created_at=0
        )
    )
    jobs.put_chunk(
        "job", 1, {"status": "staged", "item_count": 10, "quota_amount": 200, "estimated_tokens": 200}
    )
    QuotaLedger(settings.quota_ledger_table).reserve(POOL, holder_key("other", 1, 0, 0), 200, QUOTA, "other")
    return ChunkRef(job_id="job", bucket="b", chunk=1)


def test_a_chunk_without_room_waits_then_fails_after_the_longest_wait_saying_so(settings: Settings) -> None:
    ref = _staged_job(settings)
    backoff = Backoff(initial_seconds=1, factor=2, max_seconds=60)

    waiting = submit_chunk(ref, backoff, settings)
    assert waiting.next_step == "wait_capacity"
    assert waiting.waiting_since is not None

    eight_days_ago = time.time() - 8 * 86400
    expired = submit_chunk(ref.model_copy(update={"waiting_since": eight_days_ago}), backoff, settings)
    assert expired.quota_wait_expired
    assert expired.status is BatchStatus.FAILED
    message = JobsRepository(settings.jobs_table).chunk_row("job", 1).message or ""
    assert "waited 8.0 days for room in the stack's openai quota for gpt-4o-mini" in message
    assert "CapacityMaxWaitSeconds" in message


def test_each_provider_s_quota_refusal_is_recognised() -> None:
    failed = {
        "status": "failed",
        "errors": {"data": [{"code": "token_limit_exceeded", "message": "Enqueued…"}]},
    }
    assert openai_progress(failed).quota_exceeded
    invalid = {
        "status": "failed",
        "errors": {"data": [{"code": "invalid_json", "line": 2, "message": "bad"}]},
    }
    assert not openai_progress(invalid).quota_exceeded

    class StatusError(Exception):
        def __init__(self, status_code: int) -> None:
            self.status_code, self.body = status_code, {"error": {"message": "queue full"}}

    with (
        pytest.raises(ProviderQuotaError, match="queue full"),
        readable_sdk_errors(
            "Anthropic", "the batch", StatusError, ConnectionError, RuntimeError, quota_on_429=True
        ),
    ):
        raise StatusError(429)
    with (
        pytest.raises(ProviderUnavailableError) as raised,
        readable_sdk_errors("Anthropic", "the status request", StatusError, ConnectionError, RuntimeError),
    ):
        raise StatusError(429)  # a 429 on any other call is a rate limit: retried, not a quota refusal
    assert not isinstance(raised.value, ProviderQuotaError)

    quota = ClientError(
        {"Error": {"Code": "ServiceQuotaExceededException", "Message": "too many jobs"}},
        "CreateModelInvocationJob",
    )
    with (
        pytest.raises(ProviderQuotaError, match="too many jobs"),
        bedrock_errors("the job", quota_refusal=True),
    ):
        raise quota


def test_crash_after_aws_call_between_a_release_and_its_wake_still_wakes_the_waiters(
    settings: Settings,
) -> None:
    # Found by the chaos run: Poll released the batch's units, died before waking anyone, and its
    # retry found them released and returned; the parked chunks slept until their safety net.
    capacity = Capacity(settings)
    running = ChunkRef(job_id="job", bucket="b", chunk=1)
    assert capacity.reserve(running, "openai", "gpt-4o-mini", QUOTA) == "reserved"
    waiting = ChunkRef(job_id="job", bucket="b", chunk=2, waiting_since=time.time())
    capacity.park(waiting, "openai", "gpt-4o-mini", 150, "token-2")
    capacity.ledger.release(POOL, holder_key("job", 1, 0, 0))  # the try that died after this call

    capacity.end_batch(running, "openai", "gpt-4o-mini", quota_refused=False)  # its retry

    assert capacity.ledger.waiters(POOL) == []
