"""``batch-gateway estimate FILE``: what a job of this file would be, and cost, before anything is sent.

Runs intake's own checks and chunking on the local file (``batch_gateway.intake.estimate``) with the
stack's defaults, or the chunk size and quota given: requests, invalid lines with line numbers,
provider batches, estimated input tokens and the method, the output-token ceiling, the cost range at
batch prices (or unknown), and how many chunks the quota lets run at once. Nothing leaves the
machine. Exits 0 when intake would accept the file, 1 when it would reject it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, get_args

from batch_gateway.models import Provider
from batch_gateway_local.cli.client_commands import RESPONSE_SCHEMA_HELP
from batch_gateway_local.cli.file_formats import add_format_arguments
from batch_gateway_local.cli.run import job_from_args

_QUOTA_VARIABLES = {
    "openai": "OPENAI_ENQUEUED_TOKENS_QUOTA",
    "azure-openai": "AZURE_ENQUEUED_TOKENS_QUOTA",
    "anthropic": "ANTHROPIC_BATCH_REQUESTS_QUOTA",
    "bedrock": "BEDROCK_CONCURRENT_JOBS_QUOTA",
}


def add_estimate(commands: Any) -> None:
    estimate = commands.add_parser(
        "estimate", help="what a job of FILE would send and cost, checked as intake checks it (sends nothing)"
    )
    estimate.add_argument("file", type=Path, help="the input file (JSONL, a provider's batch file, or CSV)")
    estimate.add_argument("--provider", required=True, choices=get_args(Provider))
    estimate.add_argument("--model", required=True)
    estimate.add_argument("--system-prompt", default=None)
    estimate.add_argument("--on-invalid", choices=["reject", "skip"], default="reject")
    estimate.add_argument("--chunk-size", type=int, default=None, help="most items per provider batch")
    estimate.add_argument("--quota", type=int, default=None, help="the stack's quota for this provider")
    estimate.add_argument(
        "--expected-output-tokens",
        type=int,
        default=None,
        help="tokens an answer is expected to take, for the middle of the cost range (default 200)",
    )
    estimate.add_argument("--response-schema", type=Path, default=None, help=RESPONSE_SCHEMA_HELP)
    estimate.add_argument("--json", action="store_true", help="print the estimate as JSON")
    add_format_arguments(estimate)


def _settings(args: argparse.Namespace) -> Any:
    from batch_gateway.settings import Settings

    values = {"DATA_BUCKET": "estimate", "JOBS_TABLE": "estimate"}
    if args.chunk_size:
        values["CHUNK_MAX_ITEMS"] = str(args.chunk_size)
    if args.quota:
        values[_QUOTA_VARIABLES[args.provider]] = str(args.quota)
    return Settings.model_validate(values)


def _usd(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:,.2f}" if value >= 1 else f"${value:.6f}"


def _text(estimate: Any) -> str:
    rows = [
        f"file: {estimate.lines} line(s) in format {estimate.format}; "
        + ("accepted" if estimate.accepted else f"REJECTED: {estimate.reason}"),
        f"requests: {estimate.requests}; invalid lines: {estimate.invalid_lines}; "
        f"provider batches: {estimate.provider_batches}",
        f"input tokens (estimated): {estimate.estimated_input_tokens:,}; output ceiling: "
        f"{estimate.output_tokens_ceiling:,} (sum of max tokens); expected output: {estimate.expected_output_tokens:,}",
    ]
    if estimate.cost is not None:
        cost = estimate.cost
        unpriced = f" (no price for {', '.join(cost.unpriced_models)})" if cost.unpriced_models else ""
        rows.append(
            f"cost at batch prices: input {_usd(cost.input_usd)}; expected {_usd(cost.expected_usd)}; "
            f"at most {_usd(cost.ceiling_usd)}{unpriced}"
        )
    if estimate.quota is not None:
        quota = estimate.quota
        rows.append(
            f"quota: {quota.per_model:,} {quota.unit} per model: {quota.chunks_at_once} of "
            f"{estimate.provider_batches} batch(es) can run at once"
        )
    rows += [f"  line {e.line}: {e.reason}" for e in estimate.errors[:20]]
    rows.append(f"estimator: {estimate.estimator}")
    return "\n".join(rows)


def run_estimate(args: argparse.Namespace) -> int:
    from batch_gateway.intake.estimate import EXPECTED_OUTPUT_TOKENS, estimate_file
    from batch_gateway.providers.structured import prepare_schema

    if (given := job_from_args(args)) is None:
        return 2
    spec, schema = given
    if schema is not None:  # no intake here to prepare it: the estimate counts what the provider gets
        spec.response_schema = prepare_schema(schema, spec.provider)
    with args.file.open("rb") as stream:
        estimate = estimate_file(
            stream, spec, _settings(args), args.expected_output_tokens or EXPECTED_OUTPUT_TOKENS
        )
    print(json.dumps(estimate.model_dump(mode="json"), indent=2) if args.json else _text(estimate))
    return 0 if estimate.accepted else 1
