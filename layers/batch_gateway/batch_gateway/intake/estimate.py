"""An estimate of a file before anything is sent: intake's own checks and chunks, no S3, no provider.

:func:`estimate_file` runs the file through what intake runs (format detection, ``LineValidator``,
``split.stage_records`` and the chunk writers with the stack's chunk sizes and quota), with a
:class:`_CountingSink` that reads each closed chunk instead of uploading it. It answers: requests,
invalid lines with their line numbers, provider batches, estimated input tokens (the quota ledger's
own estimator, ``providers.token_estimate``), the output-token ceiling (each request's max tokens),
the cost at batch prices as a range, and how many chunks the stack's quota lets run at once. The
CLI's ``batch-gateway estimate`` and the API's ``POST /batches/estimate`` both answer with it (the
:class:`~batch_gateway.models.Estimate` model, which lives with the other contracts for the client).
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

from batch_gateway.cost import PER_TOKENS, model_prices
from batch_gateway.intake.bedrock_minimum import below_minimum_reason
from batch_gateway.intake.chunk_writer import ChunkManifest
from batch_gateway.intake.formats.csv_rows import FormatError
from batch_gateway.intake.formats.detect import open_records
from batch_gateway.intake.line_validator import LineValidator
from batch_gateway.intake.seen_ids import SeenIds
from batch_gateway.intake.split import chunk_writers_for, stage_records
from batch_gateway.models import Estimate, EstimatedCost, EstimatedLineError, JobSpec, QuotaFit
from batch_gateway.providers.requests import request_builder_for
from batch_gateway.providers.token_estimate import estimate_request_line
from batch_gateway.settings import Settings
from batch_gateway.workflow.capacity import QUOTA_UNITS, chunk_amount

# Without a better guess, an answer is expected to use this many tokens (capped by its max tokens).
EXPECTED_OUTPUT_TOKENS = 200
# The estimate lists this many line errors (errors.jsonl of the real job has them all).
MAX_LISTED_ERRORS = 100


class _Tally:
    input_tokens: int = 0
    ceiling: int = 0
    expected: int = 0


def _max_tokens(request: dict[str, Any]) -> int:
    body = request.get("body") or request.get("params") or request.get("modelInput") or {}
    value = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return int(value) if isinstance(value, int) else 0


class _CountingSink:
    """Reads each closed chunk's request lines (tokens and max tokens per model) and drops the files."""

    def __init__(self, spec: JobSpec, expected_per_request: int) -> None:
        self._spec, self._expected = spec, expected_per_request
        self.by_model: dict[str, _Tally] = defaultdict(_Tally)

    def put(self, path: Path, bucket: str, key: str) -> None:
        if key.endswith("requests.jsonl"):
            with path.open("rb") as lines:
                for line in lines:
                    self._count(line)
        path.unlink()

    def _count(self, line: bytes) -> None:
        request = json.loads(line)
        body = request.get("body") or request.get("params") or {}
        tally = self.by_model[str(body.get("model") or self._spec.model)]
        tally.input_tokens += estimate_request_line(line, self._spec.provider)
        most = _max_tokens(request)
        tally.ceiling += most
        tally.expected += min(most, self._expected) if most else 0

    def wait(self) -> None:
        pass

    def close(self) -> None:
        pass


def _errors(path: Path) -> tuple[list[EstimatedLineError], int]:
    """The first line errors, and how many lines have one (a line may have several errors)."""
    listed: list[EstimatedLineError] = []
    lines: set[int] = set()
    with path.open("rb") as errors:
        for raw in errors:
            error = EstimatedLineError.model_validate_json(raw)
            lines.add(error.line)
            if len(listed) < MAX_LISTED_ERRORS:
                listed.append(error)
    return listed, len(lines)


def _cost(spec: JobSpec, by_model: dict[str, _Tally]) -> EstimatedCost:
    totals, unpriced = [0.0, 0.0, 0.0], []
    for model, tally in sorted(by_model.items()):
        prices = model_prices(spec.provider, model)
        if prices is None:
            unpriced.append(model)
            continue
        spent = tally.input_tokens * prices["input"]
        for i, output in enumerate((0, tally.expected, tally.ceiling)):
            totals[i] += (spent + output * prices["output"]) / PER_TOKENS
    if unpriced:
        return EstimatedCost(input_usd=None, expected_usd=None, ceiling_usd=None, unpriced_models=unpriced)
    return EstimatedCost(input_usd=totals[0], expected_usd=totals[1], ceiling_usd=totals[2])


def _quota(spec: JobSpec, settings: Settings, chunks: list[ChunkManifest]) -> QuotaFit:
    """How many chunks fit the quota together, taken in order, per model (as the ledger admits them)."""
    limit = settings.quota_for(spec.provider)
    used: dict[str, int] = defaultdict(int)
    running = 0
    for chunk in chunks:
        amount = chunk_amount(spec.provider, chunk.item_count, chunk.estimated_tokens)
        model = chunk.model or spec.model
        if used[model] and used[model] + amount > limit:
            continue
        used[model] += amount
        running += 1
    return QuotaFit(unit=QUOTA_UNITS[spec.provider], per_model=limit, chunks_at_once=running)


def estimate_file(
    stream: IO[bytes], spec: JobSpec, settings: Settings, expected_per_request: int = EXPECTED_OUTPUT_TOKENS
) -> Estimate:
    """What intake would make of ``stream`` under ``spec`` and the stack's ``settings``, and its price."""
    estimate = Estimate(provider=spec.provider, model=spec.model, accepted=False)
    with tempfile.TemporaryDirectory(prefix="estimate-") as tmp:
        workdir = Path(tmp)
        try:
            records = open_records(stream, spec, settings.max_line_bytes)
        except FormatError as exc:
            estimate.reason = f"rejected: {exc}"
            return estimate
        estimate.format = records.format
        sink = _CountingSink(spec, expected_per_request)
        writers = chunk_writers_for("estimate", spec, settings, workdir, sink)
        seen = SeenIds(workdir / "seen-ids.spill")
        errors_path = workdir / "errors.jsonl"
        try:
            with errors_path.open("wb") as errors, (workdir / "invalid.jsonl").open("wb") as invalid:
                builder = request_builder_for(spec.provider)
                # Every valid line is staged, as `skip` would: the estimate says what runs once the
                # file is accepted, and whether `reject` refuses it.
                skipping = spec.model_copy(update={"on_invalid": "skip"})
                validator = LineValidator(builder, skipping, errors, invalid, seen, settings.max_line_bytes)
                estimate.lines = stage_records(records, validator, writers)
        finally:
            seen.close()
        chunks = writers.finish()
        estimate.errors, estimate.invalid_lines = _errors(errors_path)
        _conclude(estimate, validator, spec, settings, chunks, sink)
    return estimate


def _conclude(
    estimate: Estimate,
    validator: LineValidator,
    spec: JobSpec,
    settings: Settings,
    chunks: list[ChunkManifest],
    sink: _CountingSink,
) -> None:
    estimate.requests = sum(c.item_count for c in chunks)
    estimate.provider_batches = len(chunks)
    estimate.estimated_input_tokens = sum(t.input_tokens for t in sink.by_model.values())
    estimate.output_tokens_ceiling = sum(t.ceiling for t in sink.by_model.values())
    estimate.expected_output_tokens = sum(t.expected for t in sink.by_model.values())
    estimate.cost = _cost(spec, sink.by_model)
    estimate.quota = _quota(spec, settings, chunks)
    if validator.duplicate_count:  # a duplicate custom_id rejects the file under either policy
        estimate.reason = f"rejected: {_first_errors(estimate)}"
    elif estimate.invalid_lines and spec.on_invalid == "reject":
        estimate.reason = (
            f"rejected: {estimate.invalid_lines} invalid line(s) — {_first_errors(estimate)}; fix them, "
            f"or send the file with on_invalid=skip to run the other {estimate.requests} line(s)"
        )
    elif spec.provider == "bedrock" and chunks:
        estimate.reason = below_minimum_reason(chunks, settings.bedrock_min_records)
    elif not estimate.requests:
        estimate.reason = "rejected: nothing to submit: no valid line"
    estimate.accepted = estimate.reason is None


def _first_errors(estimate: Estimate) -> str:
    return "; ".join(f"line {e.line}: {e.reason}" for e in estimate.errors[:3])
