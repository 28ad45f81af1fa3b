"""PollChunk: ask the provider where a chunk's batch stands and schedule the next wait.

The wait grows by the backoff factor from the first wait up to its cap (``Backoff``); between polls
the state machine waits on a timer or, for providers that notify us, in a callback task that a
notification ends early (:mod:`.wakeup`). Every poll records the provider's view on the chunk row
(status, its own status name, request counts, a message), which the API shows as progress.
A state that is already terminal, or has no batch (a cancelled or refused submit), passes through.
A batch seen ending gives its units of the provider quota back at once (:mod:`.capacity`), so
waiting chunks go out before this one is even collected.
"""

from __future__ import annotations

import time
from typing import Any

from batch_gateway.observability import MetricUnit, metrics
from batch_gateway.providers.registry import provider_for
from batch_gateway.settings import Settings
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.workflow.capacity import Capacity
from batch_gateway.workflow.payloads import Backoff, ChunkState


def poll_chunk(state: ChunkState, backoff: Backoff, settings: Settings) -> ChunkState:
    """Ask the provider where the batch stands; schedule the next wait with exponential backoff."""
    if state.terminal or not state.provider_batch_id:
        return state.model_copy(update={"terminal": True})
    provider = provider_for(state.provider, settings)
    started = time.perf_counter()
    progress = provider.poll(state.provider_batch_id)
    metrics.add_dimension(name="provider", value=state.provider)
    metrics.add_metric(
        name="ProviderCallLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )
    fields: dict[str, Any] = {
        "status": progress.status.value,
        "provider_status": progress.provider_status,
        "request_counts": progress.request_counts,
        "polls": state.polls + 1,
        "polled_at": time.time(),
    }
    if progress.message:
        fields["message"] = progress.message
    JobsRepository(settings.jobs_table).update_chunk(state.job_id, state.chunk, fields)
    # A quota failure is requeued, unless nothing else held the pool: then it counts as a failure.
    quota_exceeded = progress.quota_exceeded
    if progress.status.is_terminal:
        alone = Capacity(settings).end_batch(state, state.provider, state.model, quota_exceeded)
        quota_exceeded = quota_exceeded and not alone
    return state.model_copy(
        update={
            "status": progress.status,
            "terminal": progress.status.is_terminal,
            "polls": state.polls + 1,
            "wait_seconds": backoff.next_wait(state.wait_seconds),
            "quota_exceeded": quota_exceeded,
        }
    )
