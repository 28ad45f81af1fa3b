"""Every Step Functions step's input and output, one model each (statemachine/batch_job.asl.json).

Each handler parses its event with one of these models and returns one: a name here matches a key
of a ``Payload`` block of the state machine (or of the execution input intake and the reconciler
build), so the contract between the state machine and the Lambda functions is read in one place.

- execution input: :class:`ExecutionInput` (the Distributed Map reads the job's manifest, a JSON array of
  :class:`ChunkRef`, from S3: each item is one chunk's child execution, see ``storage.manifests``);
- SubmitChunk: :class:`SubmitInput` -> :class:`ChunkState`; PollChunk: :class:`PollInput` -> ChunkState;
- AwaitProvider: :class:`AwaitProviderInput` -> :class:`AwaitProviderOutput`;
- AwaitCapacity: :class:`AwaitCapacityInput` -> :class:`AwaitProviderOutput`;
- CollectChunk: :class:`CollectInput` -> ChunkState; Finalize: :class:`FinalizeInput` ->
  :class:`FinalizeOutput`; MarkFailed: :class:`MarkFailedInput` -> :class:`MarkFailedOutput`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from batch_gateway.models import BatchStatus, ResultCounts


class ChunkRef(BaseModel):
    """Which chunk, which retry round and which attempt of that round to submit."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    bucket: str
    chunk: int = Field(ge=1)
    round: int = Field(default=0, ge=0)
    attempt: int = Field(default=0, ge=0)
    # Batches of this round that failed for a reason other than quota (FailedBatchRetries counts
    # these; a quota refusal takes a new attempt slot without counting here).
    failures: int = Field(default=0, ge=0)
    # When the chunk began to wait for quota without a batch getting through (None: not waiting).
    waiting_since: float | None = None


class Backoff(BaseModel):
    """Poll schedule: wait ``initial_seconds``, then multiply by ``factor`` up to ``max_seconds``."""

    initial_seconds: int = Field(ge=0)
    factor: float = Field(ge=1.0)
    max_seconds: int = Field(ge=1)

    def next_wait(self, current: int) -> int:
        """The wait after one of ``current`` seconds."""
        return min(self.max_seconds, max(1, math.ceil(current * self.factor)))

    def wait_before_attempt(self, attempt: int) -> int:
        """Wait before resubmitting a failed batch for the ``attempt``-th time (1-based)."""
        return min(self.max_seconds, max(1, math.ceil(max(self.initial_seconds, 1) * self.factor**attempt)))


class RetryPolicy(BaseModel):
    """How hard a chunk tries: whole-batch resubmissions and follow-up rounds for retryable items."""

    failed_batch_retries: int = Field(default=2, ge=0)
    retry_rounds: int = Field(default=1, ge=0)


class ChunkState(ChunkRef):
    """What flows through the wait loop for one chunk (kept small: Step Functions caps payloads)."""

    provider: str
    model: str
    provider_batch_id: str
    status: BatchStatus
    wait_seconds: int
    terminal: bool = False
    polls: int = 0
    next_step: Literal["poll", "submit", "done", "wait_capacity"] = "poll"
    # The provider refused or failed the batch for quota (requeued, not counted as a failure).
    quota_exceeded: bool = False
    # The chunk waited longer than CapacityMaxWaitSeconds for quota: its items end with row.message.
    quota_wait_expired: bool = False


class ExecutionInput(BaseModel):
    """What an execution starts with: the job and where its manifest is (the chunk list stays in S3).

    The input is the same size whatever the chunk count (Step Functions caps a state's input at
    256 KiB); the Distributed Map reads the manifest's items, one :class:`ChunkRef` each.
    """

    job_id: str
    bucket: str
    manifest_key: str = Field(min_length=1)


class SubmitInput(BaseModel):
    """SubmitChunk's Payload: the Map item (or the collected state going round again) and the backoff."""

    chunk: ChunkRef
    backoff: Backoff


class PollInput(BaseModel):
    """PollChunk's Payload."""

    state: ChunkState
    backoff: Backoff


class CollectInput(BaseModel):
    """CollectChunk's Payload."""

    state: ChunkState
    backoff: Backoff
    policy: RetryPolicy


class AwaitProviderInput(BaseModel):
    """AwaitProvider's Payload: which chunk waits for which batch, and the callback task's token."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    chunk: int = Field(ge=1)
    provider_batch_id: str = Field(min_length=1)
    task_token: str = Field(min_length=1)


class AwaitCapacityInput(BaseModel):
    """AwaitCapacity's Payload: the chunk waiting for quota (Submit's state) and the task's token."""

    state: ChunkState
    task_token: str = Field(min_length=1)


class AwaitProviderOutput(BaseModel):
    """What AwaitProvider returns once the token is parked (the task then waits for the token)."""

    parked: str


class FinalizeInput(BaseModel):
    """Finalize's Payload."""

    job_id: str
    bucket: str


class FinalizeOutput(BaseModel):
    """What Finalize returns: how the job ended."""

    job_id: str
    status: BatchStatus
    counts: ResultCounts


class MarkFailedInput(BaseModel):
    """MarkFailed's Payload: the job and the Catch's ``{Error, Cause}`` (None when there is none).

    With ``chunk`` it is a chunk's child execution reporting why that chunk failed (RecordChunkFailure):
    the error is recorded on the chunk row and the job's execution ends the job.
    """

    job_id: str
    bucket: str
    error: dict[str, Any] | None = None
    chunk: int | None = Field(default=None, ge=1)


class MarkFailedOutput(BaseModel):
    """What MarkFailed returns: the job, failed, and why."""

    job_id: str
    status: BatchStatus
    reason: str | None
