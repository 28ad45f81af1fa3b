"""What a chaos run did to the users' lines and money, counted from the outside.

Lines come from each job's results.jsonl (lost: an input custom_id with no result line; duplicate: a
custom_id with more than one). Money comes from the emulator's own records: a provider batch per
(job, chunk, round, attempt) more than once is a batch paid twice - OpenAI and Azure batches carry that
key in their metadata, Bedrock jobs in their name (``clientRequestToken`` dedups them); Anthropic
batches carry nothing, so a request answered successfully by two Anthropic batches counts as paid
twice (a follow-up round re-sends only requests that did not succeed). An orphan is a provider batch
that no chunk row records and nobody cancelled: paid for, never collected.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ChaosReport:
    jobs: int = 0
    jobs_ended: int = 0
    jobs_by_status: dict[str, int] = field(default_factory=dict)
    stuck_jobs: list[str] = field(default_factory=list)
    lines_in: int = 0
    result_lines_out: int = 0
    lines_lost: int = 0
    duplicate_lines: int = 0
    provider_batches: int = 0
    batches_paid_twice: int = 0
    anthropic_requests_answered_twice: int = 0
    orphan_batches: int = 0
    anthropic_window_batches: int = 0
    """Anthropic batches created by a Submit that died before recording them: Anthropic batches carry
    no metadata, so the retried Submit cannot find them (the known window, counted apart)."""
    anthropic_batches: int = 0
    quota_requeues: int = 0
    """Batches the provider refused (or failed) for quota, which the gateway requeued."""
    faults: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    examples: list[str] = field(default_factory=list)
    fault_log: list[str] = field(default_factory=list)
    """Every fault injected: kind, where, and in which function (JSON report only)."""

    @property
    def ok(self) -> bool:
        return not (
            self.lines_lost
            or self.duplicate_lines
            or self.batches_paid_twice
            or self.anthropic_requests_answered_twice
            or self.orphan_batches
            or self.stuck_jobs
        )

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def text(self) -> str:
        faults = ", ".join(f"{kind} {count}" for kind, count in self.faults.items())
        statuses = ", ".join(f"{status} {count}" for status, count in sorted(self.jobs_by_status.items()))
        rows = [
            f"jobs: {self.jobs} ({self.jobs_ended} ended: {statuses}); stuck: {len(self.stuck_jobs)}",
            f"lines in: {self.lines_in}; result lines out: {self.result_lines_out}",
            f"lines lost: {self.lines_lost}; duplicate result lines: {self.duplicate_lines}",
            f"provider batches: {self.provider_batches}; paid twice: {self.batches_paid_twice}; "
            f"Anthropic requests answered twice: {self.anthropic_requests_answered_twice}; "
            f"orphans: {self.orphan_batches}",
            f"Anthropic's known window (created, never recorded): {self.anthropic_window_batches} of "
            f"{self.anthropic_batches} Anthropic batches",
            f"provider quota refusals requeued: {self.quota_requeues}",
            f"faults injected: {sum(self.faults.values())} ({faults})",
            f"wall time: {self.wall_seconds:.0f} s",
            "verdict: " + ("ok" if self.ok else "FAILED"),
        ]
        return "\n".join(rows + [f"  e.g. {example}" for example in self.examples[:20]])


def count_lines(report: ChaosReport, expected: list[str], results_jsonl: bytes, job_id: str) -> None:
    """Add one job's lines: what it was given against what its results.jsonl says."""
    seen = Counter(json.loads(line)["custom_id"] for line in results_jsonl.splitlines() if line.strip())
    report.lines_in += len(expected)
    report.result_lines_out += sum(seen.values())
    lost = [custom_id for custom_id in expected if custom_id not in seen]
    twice = [custom_id for custom_id, n in seen.items() if n > 1]
    report.lines_lost += len(lost)
    report.duplicate_lines += sum(seen[c] - 1 for c in twice)
    if lost:
        report.examples.append(f"{job_id}: {len(lost)} line(s) lost, e.g. {lost[0]}")
    if twice:
        report.examples.append(f"{job_id}: {len(twice)} custom_id(s) answered twice, e.g. {twice[0]}")


def provider_batch_keys(emulator: Any) -> tuple[Counter[tuple[str, ...]], Counter[str], dict[str, str]]:
    """From the emulator's records: batches per gateway key, succeeded Anthropic answers per custom_id,
    and every batch id with its final status."""
    store = emulator.store
    keys: Counter[tuple[str, ...]] = Counter()
    answered: Counter[str] = Counter()
    statuses: dict[str, str] = {}
    with store.lock:
        for provider, batches in (
            ("openai", store.openai_batches),
            ("azure-openai", store.azure_openai_batches),
        ):
            for batch in batches.values():
                statuses[batch.id] = batch.status
                meta = batch.metadata or {}
                key = (
                    meta.get("batch_gateway_job", ""),
                    meta.get("chunk", ""),
                    meta.get("round", ""),
                    meta.get("attempt", ""),
                )
                if batch.status != "cancelled":
                    keys[(provider, *key)] += 1
        for batch in store.anthropic_batches.values():
            statuses[batch.id] = "cancelled" if batch.cancel_initiated_at else batch.processing_status
            answered.update(_anthropic_succeeded(batch.results or b""))
    for job in emulator._bedrock.jobs.values():
        statuses[job.arn] = job.status
        if job.status not in ("Stopped", "Stopping"):
            keys[("bedrock", job.name)] += 1
    return keys, answered, statuses


def _anthropic_succeeded(results: bytes) -> list[str]:
    """The custom_ids an ended Anthropic batch answered successfully (what was billed as an answer)."""
    lines = (json.loads(line) for line in results.splitlines() if line.strip())
    return [line["custom_id"] for line in lines if line.get("result", {}).get("type") == "succeeded"]
