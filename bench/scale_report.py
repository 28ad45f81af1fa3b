"""The rows ``bench/scale.py`` adds to ``make bench``: its goals and its docs/performance.md tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

GOAL_MINUTES = 8
GOAL_AWS_SHARE = 0.01


def goals(scale: dict[str, Any]) -> list[tuple[str, bool, str]]:
    intake, finalize = scale["intake"]["template"], scale["finalize"]
    checks = [
        (
            f"intake of {scale['intake']['max_input_gib']} GiB < 8 min on Lambda (uploads queued)",
            intake["minutes_uploads_queued"] < GOAL_MINUTES,
            f"{intake['minutes_uploads_queued']} min at {intake['memory_mb']} MB "
            f"({intake['minutes']} min with uploads in the loop)",
        ),
        (
            f"finalize of {finalize['chunks']} chunks < 8 min (contiguous: server-side copy)",
            finalize["copy_minutes"] < GOAL_MINUTES,
            f"{finalize['copy_minutes']} min; interleaved (merge) {finalize['merge_minutes']} min",
        ),
    ]
    if "cost" in scale:
        share = scale["cost"]["by_batch_time"]["24h"]["share_of_provider_bill"]
        checks.append(
            (
                "AWS <= 1% of the provider bill at 24 h (no results rows)",
                share <= GOAL_AWS_SHARE,
                f"{share:.2%}",
            )
        )
    return checks


def table_row(label: str, cells: Iterable[str], goal: str = "") -> str:
    """One row of a markdown table: the measure, a cell per column, the goal (may be empty)."""
    return f"| {label} | " + " | ".join(cells) + (f" | {goal} |" if goal else " | |")


def table_head(title: str, columns: list[str]) -> list[str]:
    """A markdown table's header and its rule: numbers right-aligned, the goal column left."""
    return [f"| {title} | " + " | ".join(columns) + " | goal |", "|---|" + "---:|" * len(columns) + "---|"]


def _span(days: float) -> str:
    return f"{days * 24:.0f} h" if days < 2 else f"{days:.1f} days"


def markdown(scale: dict[str, Any]) -> str:
    """The scale rows of docs/performance.md."""
    intake, before, fin = scale["intake"]["template"], scale["intake"]["before_1024mb"], scale["finalize"]
    m = scale["measured"]
    rows = [
        "| largest input | before | now | goal |",
        "|---|---:|---:|---|",
        f"| intake of {scale['intake']['max_input_gib']} GiB ({intake['lines']:,} bench lines), min | "
        f"{before['minutes']} ({before['memory_mb']} MB) | {intake['minutes_uploads_queued']} "
        f"({intake['memory_mb']} MB, uploads queued; {intake['minutes']} in the loop) | < 8 |",
        f"| finalize of {fin['chunks']:,} chunks ({fin['lines']:,} results, {fin['gb']} GB), min | "
        f"{fin['merge_minutes_512mb']} (merge, 512 MB) | {fin['copy_minutes']} (copy, {fin['parts']} parts); "
        f"interleaved: {fin['merge_minutes']} (merge, {fin['memory_mb']} MB) | < 8 |",
        "",
        f"Measured here: intake {m['intake']['cpu_us_per_line']:.1f} CPU µs a line "
        f"({m['intake']['input_bytes_per_line']:.0f} bytes), the merge {m['merge']['cpu_us_per_line']:.1f} CPU µs "
        f"a result ({m['merge']['result_bytes_per_line']:.0f} bytes).",
    ]
    if "cost" in scale:
        cost = scale["cost"]
        times = list(cost["by_batch_time"])
        by = cost["by_batch_time"]
        rows += [
            "",
            *table_head(
                f"per 1M items, ChunkMaxItems {cost['chunk_items']:,}, Distributed Map, no results rows",
                times,
            ),
            table_row("state transitions per chunk", (str(by[t]["transitions_per_chunk"]) for t in times)),
            table_row(
                "state transitions per 1M items", (f"{by[t]['transitions_per_million']:,}" for t in times)
            ),
            table_row("AWS $ per 1M items", (f"{by[t]['usd_per_million']:.3f}" for t in times)),
            table_row(
                "share of the provider bill",
                (f"{by[t]['share_of_provider_bill']:.2%}" for t in times),
                "<= 1% at 24 h",
            ),
        ]
    if "quota_10m" in scale:
        q = scale["quota_10m"]
        rows += [
            "",
            "| 10M lines, gpt-4o-mini, OpenAI quota | chunk items | chunks | in flight | "
            "1 h batches: job takes | transitions (waiting) | 24 h batches: job takes | transitions (waiting) | "
            "chunks past the 7-day wait (24 h) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for tier, f in q.items():
            rows.append(
                f"| {tier} ({f['quota_tokens']:,} tokens) | {f['chunk_items']:,} | {f['chunks']} | {f['in_flight']} | "
                f"{_span(f['1h']['days'])} | {f['1h']['transitions']:,} ({f['1h']['transitions_while_waiting']:,}) | "
                f"{_span(f['24h']['days'])} | {f['24h']['transitions']:,} ({f['24h']['transitions_while_waiting']:,}) | "
                f"{f['24h']['chunks_over_max_wait']} |"
            )
    return "\n".join(rows)
