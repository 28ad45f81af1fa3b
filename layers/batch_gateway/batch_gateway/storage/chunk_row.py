"""The chunk row of the jobs table (``CHUNK#NNNN``, one per provider batch) as one model: :class:`ChunkRow`.

Chunk rows are written a few attributes at a time by each step (intake stages it, Submit records
each batch, Poll its progress, Collect each round's report and the chunk's totals, the wake-up its
token) and read whole through :class:`ChunkRow`. Some attributes are per (round, attempt) or per
round, stored flat (``batch_r<r>_a<a>``, ``batch_r<r>_a<a>_intent_at``, ``_end``, ``round_<n>``):
their names are built and parsed only here. The model sits apart from the table's repository
(:mod:`.jobs`) because the workflow steps read rows far more often than they touch the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from batch_gateway.models import BatchStatus, ResultCounts

# A (round, attempt) of a chunk: round 0 sends every item, later rounds the retried ones; attempt n
# is the n-th resubmission of a round whose batch failed as a whole.
Step = tuple[int, int]
_STEP_FIELD = re.compile(r"batch_r(\d+)_a(\d+)(_intent_at|_end)?")
# How a (round, attempt) ended when it did not end in results (``batch_r<r>_a<a>_end``).
BATCH_END_QUOTA = "quota"  # refused or failed for the provider's quota: requeued
BATCH_END_FAILED = "failed"  # failed as a whole for another reason: FailedBatchRetries counts it
_ROUND_FIELD = re.compile(r"round_(\d+)")


class RoundReport(BaseModel):
    """What one round of a chunk did (kept on the chunk row as ``round_<n>``)."""

    items: int = 0
    counts: ResultCounts = Field(default_factory=ResultCounts)
    usage: dict[str, int] = Field(default_factory=dict)
    retryable: int = 0


def _gather_steps(item: Mapping[str, Any]) -> dict[str, Any]:
    """The flat per-(round, attempt) and per-round attributes of a stored item, grouped."""
    batches: dict[Step, Any] = {}
    intents: dict[Step, Any] = {}
    ends: dict[Step, Any] = {}
    reports: dict[int, Any] = {}
    for name, value in item.items():
        if step := _STEP_FIELD.fullmatch(name):
            {None: batches, "_intent_at": intents, "_end": ends}[step[3]][int(step[1]), int(step[2])] = value
        elif report := _ROUND_FIELD.fullmatch(name):
            reports[int(report[1])] = value
    return {"batches": batches, "intents": intents, "batch_ends": ends, "round_reports": reports}


def latest_step(item: Mapping[str, Any]) -> Step:
    """The latest (round, attempt) a stored chunk item records a batch, or the intent to create one, for."""
    steps = _gather_steps(item)
    return max([*steps["batches"], *steps["intents"]], default=(0, 0))


class ChunkRow(BaseModel):
    """A chunk row as stored; every reader of chunk rows reads it through this model.

    Attribute names are those stored (rows written before this model read the same). ``batches``,
    ``intents`` and ``round_reports`` gather the flat ``batch_r<r>_a<a>``, ``…_intent_at`` and
    ``round_<n>`` attributes; writers name them with :meth:`batch_field`, :meth:`intent_field`
    and :meth:`round_field`.
    """

    model_config = ConfigDict(extra="ignore")

    chunk: int
    # Staged by intake.
    status: str | None = None  # "staged", then the latest poll's BatchStatus value
    model: str | None = None
    item_count: int | None = None
    byte_count: int | None = None
    # Intake's estimate: input tokens (OpenAI / Azure), and the units the chunk holds of its
    # provider's quota while its batch runs (tokens, requests for Anthropic, 1 job for Bedrock).
    estimated_tokens: int | None = None
    quota_amount: int | None = None
    # Submit: the latest batch, which (round, attempt) it is, and every batch per (round, attempt).
    provider_batch_id: str | None = None
    round: int | None = None
    attempt: int | None = None
    submitted_at: float | None = None
    batches: dict[Step, str | None] = Field(default_factory=dict)
    intents: dict[Step, float | None] = Field(default_factory=dict)
    # How a (round, attempt) ended when not in results: BATCH_END_QUOTA or BATCH_END_FAILED.
    batch_ends: dict[Step, str] = Field(default_factory=dict)
    # Poll.
    provider_status: str | None = None
    request_counts: dict[str, int] | None = None
    polls: int | None = None
    polled_at: float | None = None
    message: str | None = None
    # Collect: each round's report, then the chunk's totals.
    round_reports: dict[int, RoundReport] = Field(default_factory=dict)
    counts: ResultCounts | None = None
    usage: dict[str, int] | None = None
    final_status: str | None = None
    rounds: int | None = None
    collected_at: float | None = None
    # The wake-up (workflow.wakeup): the parked task token and the provider's report.
    wait_token: str | None = None
    wait_batch: str | None = None
    reported_batch: str | None = None
    reported_event: str | None = None
    reported_at: float | None = None
    # A chunk whose child execution failed (RecordChunkFailure): why, readable, and when.
    failure: str | None = None
    failed_at: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _group_flat_attributes(cls, item: Any) -> Any:
        if not isinstance(item, Mapping):
            return item
        return {**item, **_gather_steps(item)}

    @staticmethod
    def batch_field(round_: int, attempt: int) -> str:
        """The attribute holding the provider batch id of one (round, attempt)."""
        return f"batch_r{round_}_a{attempt}"

    @staticmethod
    def intent_field(round_: int, attempt: int) -> str:
        """The attribute recording when Submit set out to create the batch of one (round, attempt)."""
        return f"{ChunkRow.batch_field(round_, attempt)}_intent_at"

    @staticmethod
    def end_field(round_: int, attempt: int) -> str:
        """The attribute recording how a (round, attempt) ended (quota refusal or failure)."""
        return f"{ChunkRow.batch_field(round_, attempt)}_end"

    @property
    def quota_requeues(self) -> int:
        """Provider batches refused or failed for quota (each requeued the chunk)."""
        return sum(1 for end in self.batch_ends.values() if end == BATCH_END_QUOTA)

    @property
    def failed_batches(self) -> int:
        """Provider batches that failed as a whole for another reason than quota."""
        return sum(1 for end in self.batch_ends.values() if end == BATCH_END_FAILED)

    @staticmethod
    def round_field(round_: int) -> str:
        """The attribute holding the :class:`RoundReport` of one round."""
        return f"round_{round_}"

    def batch_id(self, round_: int, attempt: int) -> str | None:
        """The provider batch id recorded for a (round, attempt), if any."""
        return self.batches.get((round_, attempt)) or None

    def intent_at(self, round_: int, attempt: int) -> float | None:
        """When Submit recorded its intent to create the batch of a (round, attempt), if it did."""
        return self.intents.get((round_, attempt)) or None

    def batch_ids(self) -> set[str]:
        """Every provider batch id the chunk recorded, over all rounds and attempts."""
        return {batch for batch in self.batches.values() if batch}

    def latest_step(self) -> Step:
        """The latest (round, attempt) with a recorded batch, or the intent to create one."""
        return max([*self.batches, *self.intents], default=(0, 0))

    def round_report(self, round_: int) -> RoundReport:
        """The report of a round (empty when the round was not collected)."""
        return self.round_reports.get(round_) or RoundReport()

    def collected_rounds(self) -> list[int]:
        """The rounds up to the latest step whose report is recorded, in order."""
        return [r for r in range(self.latest_step()[0] + 1) if r in self.round_reports]

    @property
    def collected(self) -> bool:
        """Whether Collect (or the reconciler) finished the chunk."""
        return self.collected_at is not None

    @property
    def batch_ended(self) -> bool:
        """Whether the latest poll saw the provider batch end."""
        return BatchStatus(self.status or BatchStatus.PENDING.value).is_terminal


def counts_of(chunk: Mapping[str, Any]) -> ResultCounts:
    """The result counts of a stored chunk item (zero before it was collected)."""
    return ResultCounts.model_validate(chunk.get("counts") or {})
