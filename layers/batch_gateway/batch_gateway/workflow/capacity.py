"""Provider quota shared by every job of the stack: reserve before submitting, release when it ends.

Each provider batch holds units of its pool (``<provider>#<model>``) in the quota ledger
(``storage.ledger``) from Submit to its end: input tokens for OpenAI and Azure (intake's estimate),
requests for Anthropic, one job for Bedrock. Submit reserves; a chunk that does not fit waits
without polling: AwaitCapacity parks its task token as a waiter, then runs :meth:`Capacity.wake`
once itself (closing the race with a release that came in between). Every release (Poll or
Collect seeing the batch end, a refused submit, cancel, finalize, a failed job) wakes the oldest
waiters that now fit. A quota refusal also teaches the pool a lower usable limit (what was in use
without the refused batch) for ``QuotaCooldownSeconds``.
"""

from __future__ import annotations

import json
import time

from botocore.exceptions import ClientError

from batch_gateway.models import JobSummary, ProviderBatches
from batch_gateway.observability import MetricUnit, logger, metrics
from batch_gateway.settings import Settings
from batch_gateway.storage.aws import stepfunctions_client
from batch_gateway.storage.chunk_row import ChunkRow
from batch_gateway.storage.ledger import Hold, PoolRow, QuotaLedger, Reservation, holder_key, pool_key
from batch_gateway.workflow.payloads import ChunkRef

# Providers whose quota counts enqueued input tokens (the others: requests, or jobs).
TOKEN_PROVIDERS = frozenset({"openai", "azure-openai"})
QUOTA_UNITS = {"openai": "tokens", "azure-openai": "tokens", "anthropic": "requests", "bedrock": "jobs"}


class CapacityFreed(Exception):  # noqa: N818 - the state machine catches it by this name
    """Room came free while the chunk parked itself: submit now instead of waiting."""


def chunk_amount(provider: str, item_count: int, estimated_tokens: int | None) -> int:
    """The units a chunk holds of its provider's quota while its batch runs."""
    if provider in TOKEN_PROVIDERS:
        return max(1, estimated_tokens or 0)
    if provider == "anthropic":
        return max(1, item_count)
    return 1


def row_amount(provider: str, row: ChunkRow) -> int:
    """The units of a staged chunk (rows staged before the ledger: estimated from their bytes)."""
    if row.quota_amount is not None:
        return row.quota_amount
    return chunk_amount(provider, row.item_count or 1, (row.byte_count or 4) // 4)


def effective_limit(configured: int, pool: PoolRow, now: float) -> int:
    """The quota bought, or less while the pool remembers a refusal."""
    if pool.learned_limit is not None and (pool.learned_until or 0) > now:
        return min(configured, pool.learned_limit)
    return configured


def _send_token(token: str) -> bool:
    try:
        stepfunctions_client().send_task_success(taskToken=token, output=json.dumps({"woken_by": "capacity"}))
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
            return False  # its safety-net timeout already sent it to Submit
        raise
    return True


class Capacity:
    """The stack's provider quotas, as the workflow uses them."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.ledger = QuotaLedger(settings.quota_ledger_table)

    def limit(self, provider: str, pool: PoolRow) -> int:
        return effective_limit(self._settings.quota_for(provider), pool, time.time())

    def reserve(self, ref: ChunkRef, provider: str, model: str, amount: int) -> Reservation:
        """Hold ``amount`` units for this (round, attempt) of the chunk, if they fit."""
        pool = pool_key(provider, model)
        limit = self.limit(provider, self.ledger.pool(pool))
        holder = holder_key(ref.job_id, ref.chunk, ref.round, ref.attempt)
        outcome = self.ledger.reserve(pool, holder, amount, limit, ref.job_id)
        logger.info(
            "quota reservation", extra={"pool": pool, "amount": amount, "limit": limit, "outcome": outcome}
        )
        return outcome

    def end_batch(self, ref: ChunkRef, provider: str, model: str, quota_refused: bool) -> bool:
        """The batch of this (round, attempt) ended: release its units (once), learn, wake waiters.

        True when the provider refused it for quota although nothing else of the stack held any of
        the pool: not explained by our own load (the quota parameter is above what the provider
        allows, or the organisation's quota is used elsewhere), so the caller counts it as a failure
        (FailedBatchRetries) instead of requeueing it for days."""
        pool = pool_key(provider, model)
        in_use = self.ledger.pool(pool).in_use if quota_refused else 0
        released = self.ledger.release(pool, holder_key(ref.job_id, ref.chunk, ref.round, ref.attempt))
        if released is None:
            # Released already: by Poll before Collect, or by a try of this handler that died before
            # it woke anyone (found by the chaos run: the waiters then slept until their safety net).
            # Waking is idempotent, so wake again.
            self.wake(pool)
            return False
        alone = False
        if quota_refused:
            # The provider took what others held but not this batch on top: use no more for a while.
            learned = in_use - released
            alone = learned <= 0
            self.ledger.learn(pool, learned, time.time() + self._settings.quota_cooldown_seconds)
            metrics.add_metric(name="QuotaRefusals", unit=MetricUnit.Count, value=1)
            logger.warning(
                "provider refused for quota; pool limit lowered",
                extra={"pool": pool, "limit": learned, "alone": alone},
            )
        self.wake(pool)
        return alone

    def wake(self, pool: str, own_waiter: str | None = None) -> bool:
        """Wake the oldest waiters that fit now, in order; True when ``own_waiter`` is one of them
        (it is taken off the queue but not sent: the caller submits at once instead)."""
        provider = pool.split("#", 1)[0]
        row = self.ledger.pool(pool)
        free = self.limit(provider, row) - row.in_use
        woken, own = 0, False
        for waiter in self.ledger.waiters(pool):
            # An empty pool always takes one: a chunk never waits for a quota it could never fit.
            if waiter.amount > free and not (row.in_use <= 0 and woken == 0):
                break  # first come, first served: no overtaking by smaller chunks
            if waiter.sk == own_waiter:
                if not self.ledger.unpark(pool, waiter.sk):
                    continue  # another release woke it
                own = True
            else:
                # Sent, then taken off the queue: a waker that dies in between leaves a spent token,
                # which the next wake drops; the other order would leave a waiter nobody wakes.
                sent = _send_token(waiter.task_token)
                self.ledger.unpark(pool, waiter.sk)
                if not sent:
                    continue  # woken by another release, or its timeout sent it on already
            woken += 1
            free -= waiter.amount
        if woken:
            metrics.add_metric(name="ChunksWokenForCapacity", unit=MetricUnit.Count, value=woken)
        return own

    def park(self, ref: ChunkRef, provider: str, model: str, amount: int, task_token: str) -> None:
        """Queue the chunk as a waiter, then wake whoever fits (raises CapacityFreed if that is us)."""
        pool = pool_key(provider, model)
        since = ref.waiting_since or time.time()
        holder = holder_key(ref.job_id, ref.chunk, ref.round, ref.attempt)
        sk = self.ledger.park(pool, since, holder, amount, task_token, ref.job_id)
        if self.wake(pool, own_waiter=sk):
            raise CapacityFreed(f"room in the {provider} quota for {model} came free: submitting now")

    def job_pools(self, provider: str, models: set[str]) -> list[str]:
        return [pool_key(provider, model) for model in sorted(models)]

    def release_job(self, job_id: str, provider: str, models: set[str]) -> int:
        """Release whatever a job still holds (a failed or finished job); the batches released."""
        released = 0
        for pool in self.job_pools(provider, models):
            for hold in self.ledger.holds_of_job(pool, job_id):
                holder = hold.sk.removeprefix("HOLD#")
                if hold.released_at is None and self.ledger.release(pool, holder) is not None:
                    released += 1
            if released:
                self.wake(pool)
        return released

    def wake_job(self, job_id: str, provider: str, models: set[str]) -> int:
        """Wake every waiting chunk of a job (cancelled: its chunks end without a batch)."""
        woken = 0
        for pool in self.job_pools(provider, models):
            for waiter in self.ledger.waiters(pool, limit=None):
                if waiter.job_id == job_id:
                    woken += _send_token(waiter.task_token)  # sent first, as in wake
                    self.ledger.unpark(pool, waiter.sk)
        return woken

    def job_holds(self, job_id: str, provider: str, models: set[str]) -> list[Hold]:
        return [
            h for pool in self.job_pools(provider, models) for h in self.ledger.holds_of_job(pool, job_id)
        ]


def max_in_flight(holds: list[Hold]) -> int:
    """The most provider batches of one job that held quota at the same time."""
    now = time.time()
    edges = sorted(
        [(h.reserved_at, 1) for h in holds] + [(h.released_at or now, -1) for h in holds],
        key=lambda edge: (edge[0], edge[1]),  # a release at the same instant counts first
    )
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def provider_batch_report(job: JobSummary, chunks: list[ChunkRow], settings: Settings) -> ProviderBatches:
    """``summary.json``'s ``provider_batches``; whatever the job still holds is released (a leak
    otherwise: every batch ended before Finalize)."""
    capacity = Capacity(settings)
    models = {chunk.model or job.model for chunk in chunks}
    leaked = capacity.release_job(job.job_id, job.provider, models)
    if leaked:
        logger.warning("released quota the job still held", extra={"batches": leaked})
    return ProviderBatches(
        submitted=sum(len(chunk.batch_ids()) for chunk in chunks),
        failed=sum(chunk.failed_batches for chunk in chunks),
        requeued_for_quota=sum(chunk.quota_requeues for chunk in chunks),
        max_in_flight=max_in_flight(capacity.job_holds(job.job_id, job.provider, models)),
    )
