"""One request line of a batch, emulated: is the chat-completions body valid, and what is the answer.

:func:`check_request` gives the status OpenAI would answer the body with (400 for a malformed body or
the emulator's error marker, 500 for the server-error marker) and the error body; :func:`chat_completion`
gives the ``chat.completion`` object, with a deterministic answer, a tool call when the prompt asks
for one, and token usage: the prompt counted by ``tokens`` (as the quota counts it), the answer as ``answers``
estimates it.
"""

from __future__ import annotations

import json
from typing import Any

from batch_gateway_local.emulator.answers import (
    MARKER_ERROR_400,
    MARKER_ERROR_500,
    MARKER_TOOL,
    AnswerMemory,
    answer,
    content_text,
    estimate_tokens,
    has_marker,
    json_schema_format,
    stable_id,
    structured_answer,
    tool_arguments,
    tool_call_tokens,
)
from batch_gateway_local.emulator.openai.replies import ROLES
from batch_gateway_local.emulator.tokens import chat_prompt_tokens


def split_messages(body: dict[str, Any]) -> tuple[str | None, list[str], list[str]]:
    """(system text or None, non-system message texts, user message texts)."""
    messages = body.get("messages")
    system: list[str] = []
    others: list[str] = []
    users: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        text = content_text(message.get("content"))
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text)
        else:
            others.append(text)
            if role == "user":
                users.append(text)
    return ("\n".join(system) if system else None), others, users


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def check_request(body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """The emulated HTTP status of a chat-completions body, and the error body when not 200."""

    def err(message: str, code: str | None, param: str | None = None) -> tuple[int, dict[str, Any]]:
        return 400, {
            "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
        }

    messages = body.get("messages")
    if messages is None:
        return err("Missing required parameter: 'messages'.", "missing_required_parameter", "messages")
    if not isinstance(messages, list):
        return err("Invalid type for 'messages': expected an array.", "invalid_type", "messages")
    if not messages:
        return err(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            "empty_array",
            "messages",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            role = message.get("role") if isinstance(message, dict) else None
            return err(
                f"Invalid value for 'messages[{i}].role': {role!r}.", "invalid_value", f"messages[{i}].role"
            )
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            return err(f"Invalid type for '{key}': expected an integer.", "invalid_type", key)
        if value < 1:
            return err(
                f"Invalid '{key}': integer below minimum value. "
                f"Expected a value >= 1, but got {value} instead.",
                "integer_below_min_value",
                key,
            )
    _, _, users = split_messages(body)
    if has_marker(users, MARKER_ERROR_400):
        return err(f"Emulated invalid request ({MARKER_ERROR_400}).", "emulated_error")
    if has_marker(users, MARKER_ERROR_500):
        return 500, {
            "error": {
                "message": "The server had an error while processing your request. "
                "Sorry about that! (emulated)",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    return 200, None


def _first_function_tool(tools: Any) -> tuple[str, Any] | None:
    if not isinstance(tools, list):
        return None
    for tool in tools:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return fn["name"], fn.get("parameters")
    return None


def chat_completion(
    body: dict[str, Any], *, seed: str, created: int, memory: AnswerMemory | None = None
) -> dict[str, Any]:
    """A chat.completion object answering `body` (which must pass `check_request`); `memory`: the
    server's, for the `[[emulator:bad-json]]` marker (see `answers.structured_answer`)."""
    model = str(body.get("model"))
    system, _, users = split_messages(body)
    user_message = users[-1] if users else ""
    prompt = chat_prompt_tokens(body)
    tool = _first_function_tool(body.get("tools"))
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    schema = json_schema_format(body)
    if schema is not None:
        message["content"] = json.dumps(structured_answer(schema, body, user_message, memory))
        finish, completion = "stop", estimate_tokens(message["content"])
    elif tool is not None and MARKER_TOOL in user_message:
        name, parameters = tool
        args = tool_arguments(parameters, user_message)
        message["tool_calls"] = [
            {
                "id": stable_id("call_", seed, name),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
        ]
        finish, completion = "tool_calls", tool_call_tokens(name, args)
    else:
        result = answer(model, system, user_message, _max_tokens(body))
        message["content"] = result.text
        finish, completion = ("length" if result.truncated else "stop"), result.output_tokens
    return {
        "id": stable_id("chatcmpl-", seed),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_emulator",
    }
