"""AWS cost per million items, from the calls counted in an offline run (``e2e.py``), beside the
provider's batch bill for the same items.

The counted run uses a provider that answers at once (one poll per chunk). The wait loop is then
re-priced for provider batches that take 1 minute, 1 hour and 24 hours: the polls per chunk come
from ``orchestration.py`` (the real ASL and template defaults), and each poll costs what a poll
cost in the run (a Poll invocation and its GB-seconds, its DynamoDB update, 3 state transitions)
plus, at worst, one Secrets Manager read (the secret is cached for 5 minutes per container).

Lambda GB-seconds are the in-process handler durations times each function's configured memory:
they include moto's emulation of S3 and DynamoDB calls (a stand-in for network round trips) and
this machine's speed, not Lambda's. DynamoDB write units are estimated from item sizes (1 per
started KB). Monthly charges (S3 storage, custom metrics, Secrets Manager's $0.40 per secret) are
not per item and are left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PRICES = Path(__file__).resolve().parent / "aws_prices.json"
MILLION = 1_000_000
PROVIDER_FUNCTIONS = ("SubmitFunction", "PollFunction", "CollectFunction")


def prices() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(PRICES.read_text())
    return table


def provider_cost_per_million(run: dict[str, Any], table: dict[str, Any]) -> float:
    p = table["provider"]
    usage = run["usage"]
    cached = usage.get("cached_tokens", 0)
    dollars = (
        (usage.get("prompt_tokens", 0) - cached) * p["input_per_million_tokens"]
        + cached * p["cached_input_per_million_tokens"]
        + usage.get("completion_tokens", 0) * p["output_per_million_tokens"]
    ) / MILLION
    return dollars * MILLION / run["items"]


def aws_cost_per_million(
    run: dict[str, Any], polls_per_chunk: int, transitions_per_poll: int, table: dict[str, Any]
) -> dict[str, float]:
    """Dollars per million items, by service, for provider batches that need ``polls_per_chunk`` polls."""
    aws = {name: entry["price"] for name, entry in table["aws"].items()}
    functions = run["functions"]
    poll = functions.get("PollFunction", {"count": 0, "gb_s": 0.0, "log_bytes": 0})
    polls_run = max(int(poll["count"]), 1)
    chunks = run["chunks"]
    extra_polls = chunks * polls_per_chunk - poll["count"]  # more (or fewer) polls than the run made
    invocations = sum(f["count"] for f in functions.values()) + extra_polls
    gb_s = sum(f["gb_s"] for f in functions.values()) + extra_polls * poll["gb_s"] / polls_run
    log_bytes = sum(f["log_bytes"] for f in functions.values()) + extra_polls * poll["log_bytes"] / polls_run
    poll_updates = run["calls_by_function"].get("PollFunction", {}).get("dynamodb:UpdateItem", 0)
    write_units = run["dynamodb_write_units"] + extra_polls * poll_updates / polls_run
    transitions = run["transitions"] + extra_polls * transitions_per_poll
    provider_calls = sum(functions.get(name, {"count": 0})["count"] for name in PROVIDER_FUNCTIONS)
    secret_reads = max(run["calls"].get("secretsmanager:GetSecretValue", 0), provider_calls + extra_polls)
    per_run = {
        "lambda": gb_s * aws["lambda_gb_second_arm64"] + invocations * aws["lambda_request"],
        "stepfunctions": transitions * aws["stepfunctions_standard_transition"],
        "dynamodb": write_units * aws["dynamodb_on_demand_write_unit"]
        + run["dynamodb_read_units"] * aws["dynamodb_on_demand_read_unit"],
        "s3": run["s3_put_class"] * aws["s3_put_class_request"]
        + run["s3_get_class"] * aws["s3_get_class_request"],
        "secretsmanager": secret_reads * aws["secretsmanager_api_call"],
        "cloudwatch_logs": log_bytes / 1024**3 * aws["cloudwatch_logs_ingested_gb"],
        "xray": aws["xray_trace_recorded"] * 2,  # the intake call's trace and the execution's trace
    }
    scale = MILLION / run["items"]
    figures = {service: dollars * scale for service, dollars in per_run.items()}
    figures["total"] = sum(figures.values())
    return figures


def results_row_units(run: dict[str, Any]) -> int:
    """Write units spent on results-table rows (BatchWriteItem; older runs: all but 1 per other write)."""
    by_operation = run.get("dynamodb_write_units_by_operation")
    if by_operation is not None:
        return int(by_operation.get("BatchWriteItem", 0))
    others = sum(n for key, n in run["calls"].items() if key in ("dynamodb:PutItem", "dynamodb:UpdateItem"))
    return int(run["dynamodb_write_units"] - others)


def run(e2e: dict[str, Any], orchestration: dict[str, Any]) -> dict[str, Any]:
    from orchestration import DURATIONS, load_asl, polls_for, template_defaults

    table = prices()
    defaults = template_defaults()
    definition = load_asl(defaults)
    provider = provider_cost_per_million(e2e, table)
    per_poll = orchestration["transitions_per_poll"]
    by_duration = {}
    for label, seconds in DURATIONS.items():
        figures = aws_cost_per_million(e2e, polls_for(definition, seconds), per_poll, table)
        figures["share_of_provider_bill"] = figures["total"] / provider
        by_duration[label] = {k: round(v, 6) for k, v in figures.items()}
    # What the proposals would give: no results-table rows (results.jsonl in S3 holds every
    # result), and the poll cap orchestration.py proposes.
    without_rows = {**e2e, "dynamodb_write_units": e2e["dynamodb_write_units"] - results_row_units(e2e)}
    cap = orchestration.get("proposal", {}).get("PollMaxWaitSeconds")
    capped = load_asl({**defaults, "PollMaxWaitSeconds": str(cap)}) if cap else definition
    what_if: dict[str, dict[str, float]] = {"without_results_table": {}, "with_proposed_cap": {}, "both": {}}
    for label, seconds in DURATIONS.items():
        for name, run_, asl in (
            ("without_results_table", without_rows, definition),
            ("with_proposed_cap", e2e, capped),
            ("both", without_rows, capped),
        ):
            total = aws_cost_per_million(run_, polls_for(asl, seconds), per_poll, table)["total"]
            what_if[name][label] = round(total / provider, 4)
    items = e2e["items"]
    return {
        "provider_cost_per_million_usd": round(provider, 4),
        "tokens_per_item": {
            "prompt": round(e2e["usage"].get("prompt_tokens", 0) / items, 1),
            "completion": round(e2e["usage"].get("completion_tokens", 0) / items, 1),
        },
        "by_provider_time": by_duration,
        "job_items": items,
        "prices_as_of": table["as_of"],
        "largest_item": max(
            (k for k in by_duration["1h"] if k not in ("total", "share_of_provider_bill")),
            key=lambda k: by_duration["1h"][k],
        ),
        "dynamodb_write_units_per_item": round(e2e["dynamodb_write_units"] / items, 3),
        "results_rows_per_item_usd_per_million": round(
            e2e["dynamodb_write_units"]
            / items
            * MILLION
            * table["aws"]["dynamodb_on_demand_write_unit"]["price"],
            4,
        ),
        "share_if": what_if,
        "note": "per million items in jobs the size of the e2e job; Lambda time measured in-process on moto",
    }
