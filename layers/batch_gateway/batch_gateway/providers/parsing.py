"""Provider result lines and batch objects turned into gateway models (pure: no SDK, no I/O).

Everything here works on the JSON the providers send (decoded into dicts), so it can be tested with
real-format lines and is independent of how the SDK types evolve. Error strings are always built from
the provider's own message text, never from Python reprs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from batch_gateway.models import BatchStatus, FinishReason, LLMResponse, ToolCall
from batch_gateway.providers.base import (
    BatchProgress,
    Outcome,
    ProviderError,
    ProviderResult,
    is_transient_status,
)

# --------------------------------------------------------------------------------------------- helpers


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _json_text(value: Any) -> str:
    """Readable text for an unexpected value: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return type(value).__name__


def decode_result_line(text: str | bytes, *, source: str, number: int) -> dict[str, Any]:
    """Decode one JSONL result line; ProviderError (readable) when it is not a JSON object."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ProviderError(f"{source} line {number} is not valid JSON ({detail})") from None
    if not isinstance(value, dict):
        raise ProviderError(f"{source} line {number} is not a JSON object")
    custom_id = value.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise ProviderError(f"{source} line {number} has no custom_id")
    return value


# ------------------------------------------------------------------------------------------ JSON answer

_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)\r?\n?```", re.DOTALL)


def _json_container(text: str) -> dict[str, Any] | list[Any] | None:
    text = text.strip()
    if not text or text[0] not in "{[":
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def extract_json(content: str | None) -> dict[str, Any] | list[Any] | None:
    """The JSON object/array an answer consists of, or None.

    Accepted: the whole answer is JSON, or the answer holds exactly one fenced code block (```json or
    bare ```) whose body is JSON. ``content`` itself is never changed: this only reads it.
    """
    if not content:
        return None
    direct = _json_container(content)
    if direct is not None:
        return direct
    fences = _FENCE.findall(content)
    if len(fences) != 1:
        return None
    language, body = fences[0]
    if language.lower() not in ("", "json", "jsonc", "json5"):
        return None
    return _json_container(body)


# --------------------------------------------------------------------------------------------- OpenAI

_OPENAI_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALL,
    "function_call": FinishReason.TOOL_CALL,
    "content_filter": FinishReason.CONTENT_FILTER,
}


def _tool_arguments(raw: Any) -> dict[str, Any]:
    """JSON-decoded tool arguments; the raw text under ``_raw`` when it is not a JSON object."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return {"_raw": _json_text(raw)}
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


def openai_usage(usage: Any) -> dict[str, int]:
    """Chat-completion usage: prompt/completion/total plus cached_tokens and reasoning_tokens."""
    usage = _dict(usage)
    out: dict[str, int] = {}
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = _int(usage.get(key))
        if value is not None:
            out[key] = value
    if "total_tokens" not in out and ("prompt_tokens" in out or "completion_tokens" in out):
        out["total_tokens"] = out.get("prompt_tokens", 0) + out.get("completion_tokens", 0)
    cached = _int(_dict(usage.get("prompt_tokens_details")).get("cached_tokens"))
    if cached is not None:
        out["cached_tokens"] = cached
    reasoning = _int(_dict(usage.get("completion_tokens_details")).get("reasoning_tokens"))
    if reasoning is not None:
        out["reasoning_tokens"] = reasoning
    return out


def parse_chat_completion(body: dict[str, Any]) -> LLMResponse:
    """LLMResponse from a ``chat.completion`` object (first choice). Raises ValueError without one."""
    choices = _list(body.get("choices"))
    if not choices or not isinstance(choices[0], dict):
        raise ValueError("the response has no choices")
    choice = choices[0]
    message = _dict(choice.get("message"))
    content = _str(message.get("content"))
    finish_reason = _OPENAI_FINISH.get(_str(choice.get("finish_reason")) or "stop", FinishReason.STOP)
    refusal = _str(message.get("refusal"))
    if content is None and refusal:
        # A refusal replaces the answer; keep the model's words and say why there is no answer.
        content = refusal
        finish_reason = FinishReason.CONTENT_FILTER

    tool_calls: list[ToolCall] = []
    for call in _list(message.get("tool_calls")):
        call = _dict(call)
        if call.get("type", "function") == "function":
            function = _dict(call.get("function"))
            name = _str(function.get("name")) or ""
            arguments = _tool_arguments(function.get("arguments"))
        elif call.get("type") == "custom":
            # Custom tools take free text, not JSON: keep it verbatim under _raw.
            custom = _dict(call.get("custom"))
            name = _str(custom.get("name")) or ""
            arguments = {"_raw": _str(custom.get("input")) or ""}
        else:
            continue
        tool_calls.append(ToolCall(id=_str(call.get("id")) or "", name=name, arguments=arguments))
    legacy = _dict(message.get("function_call"))
    if legacy and not tool_calls:
        tool_calls.append(
            ToolCall(name=_str(legacy.get("name")) or "", arguments=_tool_arguments(legacy.get("arguments")))
        )

    return LLMResponse(
        content=content,
        thinking=_str(message.get("reasoning_content")) or None,
        parsed=extract_json(content),
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        usage=openai_usage(body.get("usage")),
        raw=None,
    )


def _openai_http_error(status_code: int, body: Any) -> str:
    error = _dict(body).get("error", body)
    if isinstance(error, dict):
        kind = "/".join(str(part) for part in (error.get("type"), error.get("code")) if part)
        message = _str(error.get("message")) or _json_text(error)
    else:
        kind = ""
        message = _json_text(error) if error not in (None, "") else "no error details given"
    return f"HTTP {status_code} {kind}: {message}" if kind else f"HTTP {status_code}: {message}"


_OPENAI_LINE_ERROR_OUTCOME: dict[str, Outcome] = {
    "batch_expired": "expired",
    "batch_cancelled": "cancelled",
}


def parse_openai_line(line: dict[str, Any]) -> ProviderResult:
    """One line of an OpenAI batch output or error file (``{id, custom_id, response, error}``)."""
    custom_id = str(line.get("custom_id", ""))
    error = line.get("error")
    response = line.get("response")
    if isinstance(error, dict) and error:
        code = _str(error.get("code")) or ""
        message = _str(error.get("message")) or "no message given"
        outcome = _OPENAI_LINE_ERROR_OUTCOME.get(code, "errored")
        return ProviderResult(
            provider_custom_id=custom_id,
            outcome=outcome,
            error=f"{code}: {message}" if code else message,
            retryable=outcome == "expired",
            raw=line,
        )
    if not isinstance(response, dict):
        return ProviderResult(
            provider_custom_id=custom_id,
            outcome="errored",
            error=_json_text(error) if error else "OpenAI returned neither a response nor an error",
            raw=line,
        )
    status_code = _int(response.get("status_code")) or 0
    body = response.get("body")
    if not 200 <= status_code < 300:
        error_text = _openai_http_error(status_code, body)
        return ProviderResult(
            provider_custom_id=custom_id,
            outcome="errored",
            error=error_text,
            retryable=is_transient_status(status_code),
            raw=line,
        )
    try:
        llm_response = parse_chat_completion(_dict(body))
    except ValueError as exc:
        return ProviderResult(
            provider_custom_id=custom_id,
            outcome="errored",
            error=f"HTTP {status_code} but unreadable chat completion: {exc}",
            raw=line,
        )
    return ProviderResult(provider_custom_id=custom_id, outcome="succeeded", response=llm_response, raw=line)


_OPENAI_STATUS = {
    "validating": BatchStatus.PENDING,
    "in_progress": BatchStatus.IN_PROGRESS,
    "finalizing": BatchStatus.FINALIZING,
    "completed": BatchStatus.COMPLETED,
    "failed": BatchStatus.FAILED,
    "expired": BatchStatus.EXPIRED,
    "cancelling": BatchStatus.CANCELLING,
    "cancelled": BatchStatus.CANCELLED,
}

MAX_REPORTED_ERRORS = 20


def openai_batch_errors(batch: dict[str, Any], label: str = "OpenAI") -> str:
    """Readable summary of ``batch.errors.data`` (line numbers, messages, codes); ``label`` names the
    provider as users know it (Azure OpenAI speaks the same API)."""
    data = [_dict(entry) for entry in _list(_dict(batch.get("errors")).get("data"))]
    if not data:
        return f"{label} failed the batch without giving a reason"
    parts = []
    for entry in data[:MAX_REPORTED_ERRORS]:
        line = _int(entry.get("line"))
        message = _str(entry.get("message")) or "no message given"
        tags = ", ".join(str(entry[key]) for key in ("code", "param") if entry.get(key))
        text = f"line {line}: {message}" if line is not None else message
        parts.append(f"{text} ({tags})" if tags else text)
    if len(data) > MAX_REPORTED_ERRORS:
        parts.append(f"and {len(data) - MAX_REPORTED_ERRORS} more")
    return f"{label} failed the batch: " + "; ".join(parts)


def openai_progress(batch: dict[str, Any], label: str = "OpenAI") -> BatchProgress:
    """BatchProgress of an OpenAI ``batch`` object (JSON form)."""
    provider_status = _str(batch.get("status")) or "unknown"
    # An unknown (new) state is treated as still running: polling goes on rather than guessing an end.
    status = _OPENAI_STATUS.get(provider_status, BatchStatus.IN_PROGRESS)
    counts = {
        key: value
        for key, value in ((k, _int(v)) for k, v in _dict(batch.get("request_counts")).items())
        if value is not None
    }
    message = openai_batch_errors(batch, label) if status is BatchStatus.FAILED else None
    return BatchProgress(
        status=status, provider_status=provider_status, request_counts=counts, message=message, raw=batch
    )


# ------------------------------------------------------------------------------------------ Anthropic

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
    usage = _dict(usage)
    input_tokens = _int(usage.get("input_tokens")) or 0
    output_tokens = _int(usage.get("output_tokens")) or 0
    cache_creation = _int(usage.get("cache_creation_input_tokens"))
    cache_read = _int(usage.get("cache_read_input_tokens"))
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
    thinking_tokens = _int(_dict(usage.get("output_tokens_details")).get("thinking_tokens"))
    if thinking_tokens is not None:
        out["reasoning_tokens"] = thinking_tokens
    return out


def parse_anthropic_message(message: dict[str, Any]) -> LLMResponse:
    """LLMResponse from an Anthropic ``message`` object."""
    texts: list[str] = []
    thinking: list[str] = []
    tool_calls: list[ToolCall] = []
    for block in _list(message.get("content")):
        block = _dict(block)
        kind = block.get("type")
        if kind == "text":
            texts.append(_str(block.get("text")) or "")
        elif kind == "thinking":
            thinking.append(_str(block.get("thinking")) or "")
        elif kind == "tool_use":
            tool_calls.append(
                ToolCall(
                    id=_str(block.get("id")) or "",
                    name=_str(block.get("name")) or "",
                    arguments=_tool_arguments(block.get("input")),
                )
            )
    # Text blocks are consecutive pieces of one answer (citations split them): join without separator.
    content = "".join(texts) if texts else None
    stop_reason = _str(message.get("stop_reason")) or "end_turn"
    return LLMResponse(
        content=content,
        thinking="\n\n".join(t for t in thinking if t) or None,
        parsed=extract_json(content),
        tool_calls=tool_calls,
        finish_reason=_ANTHROPIC_STOP.get(stop_reason, FinishReason.STOP),
        usage=anthropic_usage(message.get("usage")),
        raw=None,
    )


def _anthropic_error_text(error: Any) -> str:
    """``<error type>: <message>`` from an ErrorResponse (``{type: error, error: {type, message}}``)."""
    outer = _dict(error)
    inner = outer.get("error") if isinstance(outer.get("error"), dict) else outer
    inner = _dict(inner)
    kind = _str(inner.get("type")) or "error"
    message = _str(inner.get("message")) or (_json_text(error) if error else "no message given")
    return f"{kind}: {message}"


# Error types worth sending again in a follow-up batch; invalid_request_error and friends are permanent.
ANTHROPIC_TRANSIENT_ERRORS = frozenset({"api_error", "overloaded_error", "rate_limit_error", "timeout_error"})


def parse_anthropic_line(line: dict[str, Any]) -> ProviderResult:
    """One line of a Message Batch results file (``{custom_id, result: {type, ...}}``)."""
    custom_id = str(line.get("custom_id", ""))
    result = _dict(line.get("result"))
    kind = result.get("type")
    if kind == "succeeded":
        return ProviderResult(
            provider_custom_id=custom_id,
            outcome="succeeded",
            response=parse_anthropic_message(_dict(result.get("message"))),
            raw=line,
        )
    if kind == "errored":
        error = _dict(result.get("error"))
        error_type = _dict(error.get("error")).get("type", error.get("type"))
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
        error=f"unknown result type {_json_text(kind)}",
        raw=line,
    )


ANTHROPIC_COUNT_KEYS = ("processing", "succeeded", "errored", "canceled", "expired")


def anthropic_progress(batch: dict[str, Any]) -> BatchProgress:
    """BatchProgress of an Anthropic ``message_batch`` object (JSON form).

    ``ended`` is never blindly ``completed``: a canceled batch (cancel initiated and requests canceled)
    is ``cancelled``, a batch whose every request expired is ``expired``, anything else is
    ``completed`` and the mixed outcomes are reported per line.
    """
    provider_status = _str(batch.get("processing_status")) or "unknown"
    raw_counts = _dict(batch.get("request_counts"))
    counts = {key: _int(raw_counts.get(key)) or 0 for key in ANTHROPIC_COUNT_KEYS}
    counts.update(
        {k: v for k, v in ((k, _int(v)) for k, v in raw_counts.items()) if v is not None and k not in counts}
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


# --------------------------------------------------------------------------------------- API errors


def api_error_message(body: Any, fallback: str) -> str:
    """The provider's own message from an error body (``{error: {message}}`` or ``{message}``)."""
    outer = _dict(body)
    inner = _dict(outer.get("error")) or outer
    message = _str(inner.get("message"))
    if message:
        return message
    if isinstance(body, str) and body.strip():
        return body.strip()
    return fallback
