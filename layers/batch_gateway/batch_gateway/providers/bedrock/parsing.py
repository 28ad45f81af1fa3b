"""Bedrock batch inference jobs and output records turned into gateway models (pure: no SDK, no I/O).

A job (``GetModelInvocationJob``) has one of ten states; an output file (``<input>.jsonl.out``) has
one line per processed record: ``{recordId, modelInput, modelOutput}`` or ``{recordId, modelInput,
error: {errorCode, errorMessage}}``. Records a job never processed (it expired or was stopped) have
no line at all: collection reports those from the job's status.
"""

from __future__ import annotations

import json
from typing import Any

from batch_gateway.models import BatchStatus
from batch_gateway.providers.anthropic.parsing import parse_anthropic_message
from batch_gateway.providers.errors import ProviderError, is_transient_status
from batch_gateway.providers.types import BatchProgress, ProviderResult

BEDROCK_STATUS: dict[str, BatchStatus] = {
    "Submitted": BatchStatus.PENDING,
    "Validating": BatchStatus.PENDING,
    "Scheduled": BatchStatus.PENDING,
    "InProgress": BatchStatus.IN_PROGRESS,
    # Every record was processed; the failed ones carry their own error line.
    "Completed": BatchStatus.COMPLETED,
    "PartiallyCompleted": BatchStatus.COMPLETED,
    "Failed": BatchStatus.FAILED,
    "Stopping": BatchStatus.CANCELLING,
    "Stopped": BatchStatus.CANCELLED,
    "Expired": BatchStatus.EXPIRED,
}

_COUNT_FIELDS = {
    "totalRecordCount": "total",
    "processedRecordCount": "processed",
    "successRecordCount": "succeeded",
    "errorRecordCount": "errored",
}


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def bedrock_progress(job: dict[str, Any]) -> BatchProgress:
    """BatchProgress of a ``GetModelInvocationJob`` answer (JSON form)."""
    provider_status = str(job.get("status") or "unknown")
    # An unknown (new) state is treated as still running: polling goes on rather than guessing an end.
    status = BEDROCK_STATUS.get(provider_status, BatchStatus.IN_PROGRESS)
    counts = {
        name: value for field, name in _COUNT_FIELDS.items() if (value := _count(job.get(field))) is not None
    }
    message = None
    if status is BatchStatus.FAILED:
        message = f"Bedrock failed the job: {job.get('message') or 'no reason given'}"
    elif status is BatchStatus.EXPIRED:
        message = "the Bedrock job reached its timeout before processing every record"
    return BatchProgress(
        status=status, provider_status=provider_status, request_counts=counts, message=message, raw=job
    )


def decode_record_line(text: str | bytes, *, source: str, number: int) -> dict[str, Any]:
    """One output line as a dict; ProviderError (readable) when it is not a JSON object with a recordId."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ProviderError(f"{source} line {number} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ProviderError(f"{source} line {number} is not a JSON object")
    if not isinstance(value.get("recordId"), str) or not value["recordId"]:
        raise ProviderError(f"{source} line {number} has no recordId")
    return value


def _error_code(error: dict[str, Any]) -> int:
    code = error.get("errorCode")
    try:
        return int(str(code))  # a number in the documented examples; tolerate "400"
    except (TypeError, ValueError):
        return 0


def parse_bedrock_line(line: dict[str, Any]) -> ProviderResult:
    """One record of a Bedrock output file (Claude ``modelOutput`` = an Anthropic Messages answer).

    ``raw`` drops ``modelInput``: it repeats the prompt the user already has, and would double the
    size of every result row.
    """
    record_id = str(line.get("recordId", ""))
    raw = {key: value for key, value in line.items() if key != "modelInput"}
    error = line.get("error")
    if isinstance(error, dict) and error:
        code = _error_code(error)
        message = str(error.get("errorMessage") or "no message given")
        return ProviderResult(
            provider_custom_id=record_id,
            outcome="errored",
            error=f"HTTP {code}: {message}" if code else message,
            retryable=is_transient_status(code),
            raw=raw,
        )
    output = line.get("modelOutput")
    if not isinstance(output, dict):
        return ProviderResult(
            provider_custom_id=record_id,
            outcome="errored",
            error="Bedrock returned neither a modelOutput nor an error for this record",
            raw=raw,
        )
    return ProviderResult(
        provider_custom_id=record_id, outcome="succeeded", response=parse_anthropic_message(output), raw=raw
    )
