"""Anthropic Message Batches requests, read; and Messages params translated into an OpenAI chat body.

A line is ``{"custom_id", "params": {...}}`` (:func:`read_line`), ``params`` the Messages API body.

:func:`to_openai` maps the params onto the chat completions body OpenAI and Azure OpenAI take:
``system`` becomes a system message; user text and images (base64 sources become data URLs, url
sources stay URLs) user parts; ``tool_result`` blocks tool messages (before the user's other
parts, as OpenAI orders them); assistant text and ``tool_use`` blocks an assistant message with
tool calls; ``max_tokens`` becomes ``max_completion_tokens``; ``temperature``, ``top_p``,
``stop_sequences`` (at most 4 there), ``metadata.user_id``, custom ``tools``, ``tool_choice``
(with ``disable_parallel_tool_use``) and ``output_format`` (a JSON schema) carry over. Every
other key (``top_k``, ``thinking``, server tools, documents...) is a line error naming it; block
keys that only tune Anthropic's processing (``cache_control``, ``citations``) are dropped.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from batch_gateway.intake.checks import LineError
from batch_gateway.intake.formats.common import (
    ForeignLine,
    UntranslatableError,
    expect_dict,
    expect_list,
    no_equivalent,
    read_envelope,
    text_of,
)

EXAMPLE = '{"custom_id": "…", "params": {"model": "…", "max_tokens": 1024, "messages": […]}}'
OPENAI_MAX_STOP = 4


class AnthropicLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    custom_id: str = Field(min_length=1)
    params: dict[str, Any]


def read_line(line: int, raw: bytes) -> ForeignLine | list[LineError]:
    envelope = read_envelope(AnthropicLine, line, raw, EXAMPLE)
    if isinstance(envelope, list):
        return envelope
    model = envelope.params.get("model")
    return ForeignLine(
        envelope.custom_id, "anthropic", envelope.params, model if isinstance(model, str) else None, "params"
    )


def to_openai(params: dict[str, Any], where: str, target: str) -> dict[str, Any]:
    """The chat body (without ``model``) of Messages params; UntranslatableError names a field."""
    body: dict[str, Any] = {}
    messages: list[dict[str, Any]] = []
    for key, value in params.items():
        field = f"{where}.{key}"
        if key == "system":
            messages.insert(0, {"role": "system", "content": text_of(value, field, target)})
        elif key == "messages":
            for index, message in enumerate(expect_list(value, field, target)):
                messages.extend(_message(message, f"{field}[{index}]", target))
        elif key == "max_tokens":
            body["max_completion_tokens"] = value
        elif key in ("temperature", "top_p"):
            body[key] = value
        elif key == "stop_sequences":
            body["stop"] = _stop(value, field, target)
        elif key == "metadata":
            body["user"] = _user(value, field, target)
        elif key == "tools":
            body["tools"] = [
                _tool(t, f"{field}[{i}]", target) for i, t in enumerate(expect_list(value, field, target))
            ]
        elif key == "tool_choice":
            body.update(_tool_choice(value, field, target))
        elif key == "output_format":
            body["response_format"] = _response_format(value, field, target)
        elif not (key == "model" or (key == "stream" and value is False)):
            raise no_equivalent(field, target)
    return {"messages": messages, **body}


def _stop(value: Any, field: str, target: str) -> list[Any]:
    stops = expect_list(value, field, target)
    if len(stops) > OPENAI_MAX_STOP:
        raise UntranslatableError(
            field, f"'{field}' has {len(stops)} sequences: {target} takes at most {OPENAI_MAX_STOP}"
        )
    return stops


def _user(value: Any, field: str, target: str) -> Any:
    metadata = expect_dict(value, field, target)
    extra = sorted(set(metadata) - {"user_id"})
    if extra:
        raise no_equivalent(f"{field}.{extra[0]}", target)
    return metadata.get("user_id")


def _message(message: Any, at: str, target: str) -> list[dict[str, Any]]:
    """One Anthropic message as OpenAI messages (tool results become tool messages of their own)."""
    message = expect_dict(message, at, target)
    role, content = message.get("role"), message.get("content")
    if role not in ("user", "assistant"):
        raise no_equivalent(f"{at}.role", target, "use user or assistant")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(expect_list(content, f"{at}.content", target)):
        where = f"{at}.content[{index}]"
        block = expect_dict(block, where, target)
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text")})
        elif kind == "image" and role == "user":
            parts.append(
                {"type": "image_url", "image_url": {"url": _image_url(block.get("source"), where, target)}}
            )
        elif kind == "tool_result" and role == "user":
            text = text_of(block.get("content", ""), f"{where}.content", target)
            tool_messages.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
        elif kind == "tool_use" and role == "assistant":
            arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
        else:
            raise no_equivalent(where, target, f"a {kind!r} block cannot be translated here")
    return tool_messages + _assemble(role, parts, calls)


def _assemble(role: str, parts: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if role == "assistant":
        text = "".join(part["text"] for part in parts) or None
        return [{"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}]
    if not parts:
        return []
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [{"role": "user", "content": parts[0]["text"]}]
    return [{"role": "user", "content": parts}]


def _image_url(source: Any, where: str, target: str) -> str:
    source = expect_dict(source, f"{where}.source", target)
    if source.get("type") == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    raise no_equivalent(f"{where}.source", target, "send images as base64 or url sources")


def _tool(tool: Any, field: str, target: str) -> dict[str, Any]:
    tool = expect_dict(tool, field, target)
    if tool.get("type", "custom") != "custom":
        raise no_equivalent(field, target, f"the {tool.get('type')!r} tool is Anthropic's own; remove it")
    function: dict[str, Any] = {"name": tool.get("name")}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _tool_choice(value: Any, field: str, target: str) -> dict[str, Any]:
    choice = expect_dict(value, field, target)
    kind = choice.get("type")
    named = {"auto": "auto", "any": "required", "none": "none"}
    out: dict[str, Any]
    if kind in named:
        out = {"tool_choice": named[kind]}
    elif kind == "tool":
        out = {"tool_choice": {"type": "function", "function": {"name": choice.get("name")}}}
    else:
        raise no_equivalent(f"{field}.type", target, "use auto, any, none or tool")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


def _response_format(value: Any, field: str, target: str) -> dict[str, Any]:
    output = expect_dict(value, field, target)
    if output.get("type") != "json_schema":
        raise no_equivalent(f"{field}.type", target, "only a json_schema output format can be translated")
    schema = expect_dict(output.get("schema"), f"{field}.schema", target)
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
