"""What the console's pages show, as plain data computed from the API's answers (no I/O here).

A job's progress (items finished of all), the status history derived from its timestamps (the API
keeps no history: created → pending, the first chunk submitted → in_progress, finished → the
final status), the bars of the outcome chart, failed rows grouped by reason with a few example
custom_ids, an answer's raw line and structured answer (``response.parsed``), and the formatting
of times, durations and costs. Kept apart from the routes so each piece is tested without a browser.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from batch_gateway_local.cli.progress import api_job_progress

OUTCOMES = ("succeeded", "errored", "expired", "cancelled", "invalid")
STATUSES = ("pending", "in_progress", "completed", "partially_completed", "failed", "cancelled", "expired")
EXAMPLES_PER_REASON = 3


@dataclass
class Progress:
    done: int
    total: int

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 and self.done == 0 else int(100 * self.done / max(1, self.total))


def progress(job: dict[str, Any]) -> Progress:
    done, total, _ = api_job_progress(job)
    if not job.get("chunks") and not job.get("finished_at"):
        done = sum(int(v) for v in (job.get("counts") or {}).values())
    return Progress(min(done, total), total)


def is_running(job: dict[str, Any]) -> bool:
    return not job.get("finished_at")


def history(job: dict[str, Any]) -> list[tuple[str, float]]:
    """(status, when) steps: pending at creation, in_progress at the first submit, the end."""
    steps: list[tuple[str, float]] = [("pending", float(job["created_at"]))]
    submitted = [c["submitted_at"] for c in job.get("chunks", []) if c.get("submitted_at")]
    if submitted:
        steps.append(("in_progress", float(min(submitted))))
    if job.get("finished_at"):
        steps.append((str(job["status"]), float(job["finished_at"])))
    return steps


@dataclass
class Bar:
    name: str
    count: int
    x: float
    width: float


def outcome_bars(counts: dict[str, Any], width: float = 100.0) -> list[Bar]:
    """Stacked bar segments (in percent of ``width``) of the outcomes that occurred."""
    values = [(name, int(counts.get(name) or 0)) for name in OUTCOMES]
    total = sum(count for _, count in values)
    bars: list[Bar] = []
    x = 0.0
    for name, count in values:
        if count and total:
            share = width * count / total
            bars.append(Bar(name, count, round(x, 3), round(share, 3)))
            x += share
    return bars


@dataclass
class ErrorGroup:
    reason: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


def group_errors(rows: Iterable[dict[str, Any]]) -> list[ErrorGroup]:
    """Failed rows grouped by their error text, most frequent first."""
    groups: dict[str, ErrorGroup] = {}
    for row in rows:
        reason = str(row.get("error") or "no answer")
        group = groups.setdefault(reason, ErrorGroup(reason))
        group.count += 1
        if len(group.examples) < EXAMPLES_PER_REASON:
            group.examples.append(str(row["custom_id"]))
    return sorted(groups.values(), key=lambda g: (-g.count, g.reason))


def when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def duration(job: dict[str, Any], now: float | None = None) -> str:
    end = job.get("finished_at") or (now if now is not None else time.time())
    seconds = max(0, int(float(end) - float(job["created_at"])))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def usd(value: float) -> str:
    """Dollars: four decimals under one, cents above."""
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def cost(job: dict[str, Any]) -> str:
    amount = (job.get("cost") or {}).get("usd")
    if amount is None:
        return "-" if not (job.get("cost") or {}).get("unpriced_models") else "unpriced"
    return usd(amount)


def answer_lines(record: dict[str, Any] | None, row: dict[str, Any] | None = None) -> dict[str, str | None]:
    """The result page's raw line of results.jsonl and its structured answer (``response.parsed``,
    set when the job had a response schema: the results row carries it, results.jsonl too once the
    job ended), pretty-printed; None where there is none."""
    response = record.get("response") if record is not None else None
    parsed = (row or {}).get("parsed")
    if parsed is None and isinstance(response, dict):
        parsed = response.get("parsed")
    return {
        "line": None if record is None else json.dumps(record, ensure_ascii=False, indent=2),
        "parsed": None if parsed is None else json.dumps(parsed, ensure_ascii=False, indent=2),
    }
