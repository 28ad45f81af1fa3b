"""The requests of an emulated Anthropic Message Batch: checked as Anthropic checks them, and answered.

:func:`batch_items` reads a create call's ``requests`` list (custom_id pattern and uniqueness; the
first malformed request fails the whole call, as Anthropic does). Each request's ``params`` are
checked when the batch ends (:func:`check_params`: an invalid one becomes an ``errored`` result,
not a failed call) and answered (:func:`message`: text, a tool call, or a schema-shaped answer for
a forced tool, with the emulator's token counts). Apart from the batch life cycle
(:mod:`.anthropic_api`) because ``bedrock_api`` answers its Claude records the same way.
"""

from __future__ import annotations

import re
from typing import Any

from .answers import (
    MARKER_ERROR_400,
    MARKER_ERROR_500,
    MARKER_TOOL,
    AnswerMemory,
    answer,
    content_text,
    forced_tool,
    has_marker,
    stable_id,
    structured_answer,
    tool_arguments,
    tool_call_tokens,
)
from .protocol import ApiError, Reply, anthropic_error
from .state import AnthropicItem
from .tokens import messages_input_tokens

CUSTOM_ID_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def bad_request(message: str) -> Reply:
    """Anthropic's 400 ``invalid_request_error`` with this message."""
    return anthropic_error(400, message)


def _system_text(system: Any) -> str | None:
    if system is None:
        return None
    text = content_text(system)
    return text or None


def check_params(params: dict[str, Any]) -> dict[str, Any] | None:
    """The `error` of an errored result for these Messages params, or None when they succeed."""

    def err(message: str, type_: str = "invalid_request_error") -> dict[str, Any]:
        return {"type": "error", "error": {"type": type_, "message": message}}

    for key in ("model", "max_tokens", "messages"):
        if key not in params:
            return err(f"{key}: Field required")
    if not isinstance(params["model"], str) or not params["model"]:
        return err("model: Input should be a valid string")
    max_tokens = params["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        return err("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        return err("max_tokens: Input should be greater than or equal to 1")
    messages = params["messages"]
    if not isinstance(messages, list):
        return err("messages: Input should be a valid list")
    if not messages:
        return err("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return err(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    if params.get("stream"):
        return err("stream: streaming is not supported in Message Batches")
    users = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    if has_marker(users, MARKER_ERROR_400):
        return err(f"Emulated invalid request ({MARKER_ERROR_400}).")
    if has_marker(users, MARKER_ERROR_500):
        return err("Internal server error (emulated).", "api_error")
    return None


def _first_tool(tools: Any) -> tuple[str, Any] | None:
    if not isinstance(tools, list):
        return None
    for tool in tools:
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            return tool["name"], tool.get("input_schema")
    return None


def message(params: dict[str, Any], *, seed: str, memory: AnswerMemory | None = None) -> dict[str, Any]:
    """A Message answering `params` (which must pass `check_params`); a forced tool is called with a
    structured answer of its input schema (`memory`: see `answers.structured_answer`)."""
    model = str(params["model"])
    system = _system_text(params.get("system"))
    users = [content_text(m.get("content")) for m in params["messages"] if m.get("role") == "user"]
    user_message = users[-1] if users else ""
    tool = _first_tool(params.get("tools"))
    content: list[dict[str, Any]]
    forced = forced_tool(params)
    if forced is not None:
        name, schema = forced
        args = structured_answer(schema, params, user_message, memory)
        content = [{"type": "tool_use", "id": stable_id("toolu_", seed, name), "name": name, "input": args}]
        stop_reason, output_tokens = "tool_use", tool_call_tokens(name, args)
    elif tool is not None and MARKER_TOOL in user_message:
        name, schema = tool
        args = tool_arguments(schema, user_message)
        content = [{"type": "tool_use", "id": stable_id("toolu_", seed, name), "name": name, "input": args}]
        stop_reason, output_tokens = "tool_use", tool_call_tokens(name, args)
    else:
        result = answer(model, system, user_message, params["max_tokens"])
        content = [{"type": "text", "text": result.text, "citations": None}]
        stop_reason = "max_tokens" if result.truncated else "end_turn"
        output_tokens = result.output_tokens
    return {
        "id": stable_id("msg_", seed),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": messages_input_tokens(params),
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "batch",
        },
    }


def batch_items(requests: list[Any]) -> list[AnthropicItem]:
    """The batch's requests as items; the first malformed one fails the call, as Anthropic does."""
    items: list[AnthropicItem] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(requests):
        if not isinstance(entry, dict):
            raise ApiError(bad_request(f"requests.{index}: Input should be a valid dictionary"))
        for key in ("custom_id", "params"):
            if key not in entry:
                raise ApiError(bad_request(f"requests.{index}.{key}: Field required"))
        custom_id, params = entry["custom_id"], entry["params"]
        if not isinstance(custom_id, str) or not CUSTOM_ID_RE.fullmatch(custom_id):
            raise ApiError(
                bad_request(
                    f"requests.{index}.custom_id: {custom_id!r} is invalid; custom_id must match "
                    "^[a-zA-Z0-9_-]{1,64}$ (letters, digits, '_' and '-', 1 to 64 characters)"
                )
            )
        if custom_id in seen:
            raise ApiError(
                bad_request(
                    f"requests.{index}.custom_id: duplicate custom_id {custom_id!r} "
                    f"(already used by requests.{seen[custom_id]}); custom_id values must be unique"
                )
            )
        seen[custom_id] = index
        if not isinstance(params, dict):
            raise ApiError(bad_request(f"requests.{index}.params: Input should be a valid dictionary"))
        items.append(AnthropicItem(custom_id=custom_id, params=params))
    return items
