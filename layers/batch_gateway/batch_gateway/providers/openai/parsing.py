"""OpenAI Batch API answers turned into gateway models (pure: no SDK, no I/O); Azure OpenAI too.

A batch input line gets one line in the batch's output file (``{id, custom_id, response: {status_code,
body}}``, the body a ``chat.completion``, or an embeddings ``list`` on ``/v1/embeddings``) or in its
error file (``{custom_id, error: {code, message}}``, e.g. ``batch_expired``, or a non-2xx response).
:func:`parse_openai_line` reads either into a ``ProviderResult``: the first choice's text, tool calls,
refusal, usage (with cached and reasoning tokens) or the embedding vector, and a readable error
with ``retryable`` set for what may succeed when sent again.
:func:`openai_progress` reads a ``batch`` object (eight states) into ``BatchProgress``, with the
batch's own validation errors (line numbers, messages) when it failed as a whole.

Azure OpenAI speaks the same API: ``label`` names the provider in messages.
"""

from __future__ import annotations

from typing import Any

from batch_gateway.models import BatchStatus, FinishReason, LLMResponse, ToolCall
from batch_gateway.providers.errors import OPENAI_QUOTA_ERROR_CODE, is_transient_status
from batch_gateway.providers.openai.embeddings import is_embeddings_body, parse_embeddings_body
from batch_gateway.providers.parsing import (
    as_dict,
    as_int,
    as_list,
    as_str,
    extract_json,
    json_text,
    tool_arguments,
)
from batch_gateway.providers.types import BatchProgress, Outcome, ProviderResult

_OPENAI_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALL,
    "function_call": FinishReason.TOOL_CALL,
    "content_filter": FinishReason.CONTENT_FILTER,
}


def openai_usage(usage: Any) -> dict[str, int]:
    """Chat-completion usage: prompt/completion/total plus cached_tokens and reasoning_tokens."""
    usage = as_dict(usage)
    out: dict[str, int] = {}
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = as_int(usage.get(key))
        if value is not None:
            out[key] = value
    if "total_tokens" not in out and ("prompt_tokens" in out or "completion_tokens" in out):
        out["total_tokens"] = out.get("prompt_tokens", 0) + out.get("completion_tokens", 0)
    cached = as_int(as_dict(usage.get("prompt_tokens_details")).get("cached_tokens"))
    if cached is not None:
        out["cached_tokens"] = cached
    reasoning = as_int(as_dict(usage.get("completion_tokens_details")).get("reasoning_tokens"))
    if reasoning is not None:
        out["reasoning_tokens"] = reasoning
    return out


def parse_chat_completion(body: dict[str, Any]) -> LLMResponse:
    """LLMResponse from a ``chat.completion`` object (first choice). Raises ValueError without one."""
    choices = as_list(body.get("choices"))
    if not choices or not isinstance(choices[0], dict):
        raise ValueError("the response has no choices")
    choice = choices[0]
    message = as_dict(choice.get("message"))
    content = as_str(message.get("content"))
    finish_reason = _OPENAI_FINISH.get(as_str(choice.get("finish_reason")) or "stop", FinishReason.STOP)
    refusal = as_str(message.get("refusal"))
    if content is None and refusal:
        # A refusal replaces the answer; keep the model's words and say why there is no answer.
        content = refusal
        finish_reason = FinishReason.CONTENT_FILTER

    tool_calls: list[ToolCall] = []
    for call in as_list(message.get("tool_calls")):
        call = as_dict(call)
        if call.get("type", "function") == "function":
            function = as_dict(call.get("function"))
            name = as_str(function.get("name")) or ""
            arguments = tool_arguments(function.get("arguments"))
        elif call.get("type") == "custom":
            # Custom tools take free text, not JSON: keep it verbatim under _raw.
            custom = as_dict(call.get("custom"))
            name = as_str(custom.get("name")) or ""
            arguments = {"_raw": as_str(custom.get("input")) or ""}
        else:
            continue
        tool_calls.append(ToolCall(id=as_str(call.get("id")) or "", name=name, arguments=arguments))
    legacy = as_dict(message.get("function_call"))
    if legacy and not tool_calls:
        tool_calls.append(
            ToolCall(name=as_str(legacy.get("name")) or "", arguments=tool_arguments(legacy.get("arguments")))
        )

    return LLMResponse(
        content=content,
        thinking=as_str(message.get("reasoning_content")) or None,
        parsed=extract_json(content),
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        usage=openai_usage(body.get("usage")),
        raw=None,
    )


def _openai_http_error(status_code: int, body: Any) -> str:
    error = as_dict(body).get("error", body)
    if isinstance(error, dict):
        kind = "/".join(str(part) for part in (error.get("type"), error.get("code")) if part)
        message = as_str(error.get("message")) or json_text(error)
    else:
        kind = ""
        message = json_text(error) if error not in (None, "") else "no error details given"
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
        code = as_str(error.get("code")) or ""
        message = as_str(error.get("message")) or "no message given"
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
            error=json_text(error) if error else "OpenAI returned neither a response nor an error",
            raw=line,
        )
    status_code = as_int(response.get("status_code")) or 0
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
    if is_embeddings_body(body):
        return ProviderResult(
            provider_custom_id=custom_id, outcome="succeeded", response=parse_embeddings_body(body), raw=line
        )
    try:
        llm_response = parse_chat_completion(as_dict(body))
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
    data = [as_dict(entry) for entry in as_list(as_dict(batch.get("errors")).get("data"))]
    if not data:
        return f"{label} failed the batch without giving a reason"
    parts = []
    for entry in data[:MAX_REPORTED_ERRORS]:
        line = as_int(entry.get("line"))
        message = as_str(entry.get("message")) or "no message given"
        tags = ", ".join(str(entry[key]) for key in ("code", "param") if entry.get(key))
        text = f"line {line}: {message}" if line is not None else message
        parts.append(f"{text} ({tags})" if tags else text)
    if len(data) > MAX_REPORTED_ERRORS:
        parts.append(f"and {len(data) - MAX_REPORTED_ERRORS} more")
    return f"{label} failed the batch: " + "; ".join(parts)


def openai_progress(batch: dict[str, Any], label: str = "OpenAI") -> BatchProgress:
    """BatchProgress of an OpenAI ``batch`` object (JSON form)."""
    provider_status = as_str(batch.get("status")) or "unknown"
    # An unknown (new) state is treated as still running: polling goes on rather than guessing an end.
    status = _OPENAI_STATUS.get(provider_status, BatchStatus.IN_PROGRESS)
    counts = {
        key: value
        for key, value in ((k, as_int(v)) for k, v in as_dict(batch.get("request_counts")).items())
        if value is not None
    }
    message = openai_batch_errors(batch, label) if status is BatchStatus.FAILED else None
    return BatchProgress(
        status=status,
        provider_status=provider_status,
        request_counts=counts,
        message=message,
        quota_exceeded=status is BatchStatus.FAILED and _quota_failure(batch),
        raw=batch,
    )


def _quota_failure(batch: dict[str, Any]) -> bool:
    """Whether the batch failed over the enqueued-token limit (``token_limit_exceeded``)."""
    data = [as_dict(entry) for entry in as_list(as_dict(batch.get("errors")).get("data"))]
    return any(entry.get("code") == OPENAI_QUOTA_ERROR_CODE for entry in data)
