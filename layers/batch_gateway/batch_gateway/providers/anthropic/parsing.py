"""Anthropic Message Batches answers turned into gateway models (pure: no SDK, no I/O); Bedrock's too.

A results file has one line per request, ``{custom_id, result: {type, ...}}`` with type
``succeeded`` (a Messages ``message``), ``errored`` (an ErrorResponse), ``canceled`` or ``expired``;
:func:`parse_anthropic_line` reads it into a ``ProviderResult``. :func:`parse_anthropic_message`
reads one ``message`` (text blocks joined, thinking, tool_use calls, stop reason, usage normalised so
``prompt_tokens`` counts cached input too, as OpenAI's does); Bedrock's Claude output is the same
message, so ``bedrock/parsing`` uses it. :func:`anthropic_progress` reads a ``message_batch``
(``in_progress``, ``canceling``, ``ended``) into ``BatchProgress``, telling a cancelled or wholly
expired batch from a completed one by its request counts. A structured answer (the input of the
gateway's forced tool, ``providers.structured``) becomes ``parsed``, and its JSON the ``content``.
"""

from __future__ import annotations

import json
from typing import Any

from batch_gateway.models import BatchStatus, FinishReason, LLMResponse, ToolCall
from batch_gateway.providers.parsing import (
    as_dict,
    as_int,
    as_list,
    as_str,
    extract_json,
    json_text,
    tool_arguments,
)
from batch_gateway.providers.structured import ANSWER_NAME
from batch_gateway.providers.types import BatchProgress, ProviderResult

_ANTHROPIC_STOP = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALL,
    "refusal": FinishReason.CONTENT_FILTER,
}


def anthropic_usage(usage: Any) -> dict[str, int]:
    """Message usage normalised: ``prompt_tokens`` counts every input token, cached or not (as OpenAI's
    does), so ``prompt_tokens = input_tokens + cache_creation_input_tokens + cache_read_input_tokens``;
    the two cache counts are kept as given; ``reasoning_tokens`` from ``output_tokens_details``."""
    usage = as_dict(usage)
    input_tokens = as_int(usage.get("input_tokens")) or 0
    output_tokens = as_int(usage.get("output_tokens")) or 0
    cache_creation = as_int(usage.get("cache_creation_input_tokens"))
    cache_read = as_int(usage.get("cache_read_input_tokens"))
    prompt_tokens = input_tokens + (cache_creation or 0) + (cache_read or 0)
    out = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": prompt_tokens + output_tokens,
    }
    if cache_creation is not None:
        out["cache_creation_input_tokens"] = cache_creation
    if cache_read is not None:
        out["cache_read_input_tokens"] = cache_read
    thinking_tokens = as_int(as_dict(usage.get("output_tokens_details")).get("thinking_tokens"))
    if thinking_tokens is not None:
        out["reasoning_tokens"] = thinking_tokens
    return out


def parse_anthropic_message(message: dict[str, Any]) -> LLMResponse:
    """LLMResponse from an Anthropic ``message`` object."""
    texts: list[str] = []
    thinking: list[str] = []
    tool_calls: list[ToolCall] = []
    answer: Any = None  # the structured answer: the input of the gateway's forced tool
    for block in as_list(message.get("content")):
        block = as_dict(block)
        kind = block.get("type")
        if kind == "text":
            texts.append(as_str(block.get("text")) or "")
        elif kind == "thinking":
            thinking.append(as_str(block.get("thinking")) or "")
        elif kind == "tool_use" and block.get("name") == ANSWER_NAME and answer is None:
            answer = block.get("input")
        elif kind == "tool_use":
            tool_calls.append(
                ToolCall(
                    id=as_str(block.get("id")) or "",
                    name=as_str(block.get("name")) or "",
                    arguments=tool_arguments(block.get("input")),
                )
            )
    # Text blocks are consecutive pieces of one answer (citations split them): join without separator.
    content = "".join(texts) if texts else None
    stop_reason = as_str(message.get("stop_reason")) or "end_turn"
    finish_reason = _ANTHROPIC_STOP.get(stop_reason, FinishReason.STOP)
    parsed = extract_json(content)
    if answer is not None:
        # A structured answer reads as OpenAI's does: the JSON is the content, the call was the means.
        parsed = answer if isinstance(answer, dict | list) else None
        content = json.dumps(answer, ensure_ascii=False)
        if finish_reason is FinishReason.TOOL_CALL and not tool_calls:
            finish_reason = FinishReason.STOP
    return LLMResponse(
        content=content,
        thinking="\n\n".join(t for t in thinking if t) or None,
        parsed=parsed,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        usage=anthropic_usage(message.get("usage")),
        raw=None,
    )


def _anthropic_error_text(error: Any) -> str:
    """``<error type>: <message>`` from an ErrorResponse (``{type: error, error: {type, message}}``)."""
    outer = as_dict(error)
    inner = outer.get("error") if isinstance(outer.get("error"), dict) else outer
    inner = as_dict(inner)
    kind = as_str(inner.get("type")) or "error"
    message = as_str(inner.get("message")) or (json_text(error) if error else "no message given")
    return f"{kind}: {message}"


# Error types worth sending again in a follow-up batch; invalid_request_error and friends are permanent.
ANTHROPIC_TRANSIENT_ERRORS = frozenset({"api_error", "overloaded_error", "rate_limit_error", "timeout_error"})


def parse_anthropic_line(line: dict[str, Any]) -> ProviderResult:
    """One line of a Message Batch results file (``{custom_id, result: {type, ...}}``)."""
    custom_id = str(line.get("custom_id", ""))
    result = as_dict(line.get("result"))
    kind = result.get("type")
    if kind == "succeeded":
        return ProviderResult(
            provider_custom_id=custom_id,
            outcome="succeeded",
            response=parse_anthropic_message(as_dict(result.get("message"))),
            raw=line,
        )
    if kind == "errored":
        error = as_dict(result.get("error"))
        error_type = as_dict(error.get("error")).get("type", error.get("type"))
        return ProviderResult(
            provider_custom_id=custom_id,
            outcome="errored",
            error=_anthropic_error_text(result.get("error")),
            retryable=error_type in ANTHROPIC_TRANSIENT_ERRORS,
            raw=line,
        )
    if kind == "canceled":
        return ProviderResult(
            provider_custom_id=custom_id,
            outcome="cancelled",
            error="canceled: the batch was canceled before this request was processed",
            raw=line,
        )
    if kind == "expired":
        return ProviderResult(
            provider_custom_id=custom_id,
            outcome="expired",
            error="expired: the batch reached its 24-hour limit before this request was processed",
            retryable=True,
            raw=line,
        )
    return ProviderResult(
        provider_custom_id=custom_id,
        outcome="errored",
        error=f"unknown result type {json_text(kind)}",
        raw=line,
    )


ANTHROPIC_COUNT_KEYS = ("processing", "succeeded", "errored", "canceled", "expired")


def anthropic_progress(batch: dict[str, Any]) -> BatchProgress:
    """BatchProgress of an Anthropic ``message_batch`` object (JSON form).

    ``ended`` is never blindly ``completed``: a canceled batch (cancel initiated and requests canceled)
    is ``cancelled``, a batch whose every request expired is ``expired``, anything else is
    ``completed`` and the mixed outcomes are reported per line.
    """
    provider_status = as_str(batch.get("processing_status")) or "unknown"
    raw_counts = as_dict(batch.get("request_counts"))
    counts = {key: as_int(raw_counts.get(key)) or 0 for key in ANTHROPIC_COUNT_KEYS}
    counts.update(
        {
            k: v
            for k, v in ((k, as_int(v)) for k, v in raw_counts.items())
            if v is not None and k not in counts
        }
    )
    total = sum(counts[key] for key in ANTHROPIC_COUNT_KEYS)
    message = None
    if provider_status == "in_progress":
        status = BatchStatus.IN_PROGRESS
    elif provider_status == "canceling":
        status = BatchStatus.CANCELLING
    elif provider_status == "ended":
        if counts["canceled"] > 0 and batch.get("cancel_initiated_at"):
            status = BatchStatus.CANCELLED
        elif total > 0 and counts["expired"] == total:
            status = BatchStatus.EXPIRED
            message = f"All {total} requests expired before Anthropic processed them"
        else:
            status = BatchStatus.COMPLETED
    else:
        status = BatchStatus.IN_PROGRESS  # unknown (new) state: keep polling rather than guess an end
    return BatchProgress(
        status=status, provider_status=provider_status, request_counts=counts, message=message, raw=batch
    )
