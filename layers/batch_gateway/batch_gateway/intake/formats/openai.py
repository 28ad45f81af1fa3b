"""OpenAI Batch input lines, read; and an OpenAI chat body translated into Anthropic Messages params.

A line is ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``
(:func:`read_line`; Azure's ``/chat/completions`` too). Other endpoints (embeddings, responses)
are line errors: the gateway runs chat completions.

:func:`to_anthropic` maps the body onto the Messages params every Anthropic-family provider takes:
system and developer messages become ``system``; user text and images (data URLs become base64
sources, http(s) URLs url sources); assistant text and tool calls become ``tool_use`` blocks; tool
messages ``tool_result`` blocks; ``max_completion_tokens``/``max_tokens``, ``temperature`` (0 to 1
there), ``top_p``, ``stop``, ``user``, function ``tools``, ``tool_choice``, ``parallel_tool_calls``
and ``response_format`` (a JSON schema becomes a forced tool whose input schema is the schema).
Every other key is a line error naming it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from batch_gateway.intake.checks import LineError
from batch_gateway.intake.formats.common import (
    DEFAULT_MAX_TOKENS,
    ForeignLine,
    UntranslatableError,
    expect_dict,
    expect_list,
    no_equivalent,
    read_envelope,
    text_of,
)
from batch_gateway.providers.structured import ANSWER_NAME

CHAT_URLS = ("/v1/chat/completions", "/chat/completions")
EXAMPLE = '{"custom_id": "…", "method": "POST", "url": "/v1/chat/completions", "body": {…}}'
# The forced tool that carries a response_format's JSON schema on Anthropic-family providers.
_DATA_URL = re.compile(r"data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)


class OpenAILine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    custom_id: str = Field(min_length=1)
    method: Literal["POST"]
    url: str
    body: dict[str, Any]


def read_line(line: int, raw: bytes) -> ForeignLine | list[LineError]:
    envelope = read_envelope(OpenAILine, line, raw, EXAMPLE)
    if isinstance(envelope, list):
        return envelope
    if envelope.url not in CHAT_URLS:
        reason = f"'url' is {envelope.url!r}: the gateway runs chat completions; use /v1/chat/completions"
        return [LineError(line=line, field="url", reason=reason, custom_id=envelope.custom_id)]
    model = envelope.body.get("model")
    return ForeignLine(
        envelope.custom_id, "openai", envelope.body, model if isinstance(model, str) else None, "body"
    )


def to_anthropic(body: dict[str, Any], where: str, target: str) -> dict[str, Any]:
    """The Messages params (without ``model``) of an OpenAI chat body; UntranslatableError names a field."""
    params: dict[str, Any] = {"max_tokens": DEFAULT_MAX_TOKENS}
    choices: dict[str, Any] = {}
    for key, value in body.items():
        field = f"{where}.{key}"
        if key == "messages":
            system, params["messages"] = _messages(expect_list(value, field, target), field, target)
            if system:
                params["system"] = system
        elif key in ("max_tokens", "max_completion_tokens"):
            params["max_tokens"] = value
        elif key == "temperature":
            if isinstance(value, int | float) and value > 1:
                raise UntranslatableError(
                    field, f"'{field}' is {value}: {target} takes 0 to 1; use at most 1"
                )
            params["temperature"] = value
        elif key == "top_p":
            params["top_p"] = value
        elif key == "stop":
            if value is not None:
                params["stop_sequences"] = [value] if isinstance(value, str) else value
        elif key == "user":
            params["metadata"] = {"user_id": value}
        elif key == "tools":
            params["tools"] = [
                _tool(t, f"{field}[{i}]", target) for i, t in enumerate(expect_list(value, field, target))
            ]
        elif key in ("tool_choice", "parallel_tool_calls", "response_format"):
            choices[key] = value
        elif not _is_default(key, value):
            raise no_equivalent(field, target)
    _choices(params, choices, where, target)
    return params


def _is_default(key: str, value: Any) -> bool:
    """Keys that ask for nothing beyond the default (or that Anthropic has no use for): dropped."""
    return key == "model" or (key == "stream" and value is False) or (key == "n" and value == 1)


def _messages(messages: list[Any], field: str, target: str) -> tuple[str | None, list[dict[str, Any]]]:
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        at = f"{field}[{index}]"
        message = expect_dict(message, at, target)
        role = message.get("role")
        if role in ("system", "developer"):
            if out:
                raise no_equivalent(
                    at, target, f"a {role} message can only open the conversation; move it first"
                )
            system.append(text_of(message.get("content"), f"{at}.content", target))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{at}.content", target)
        elif role == "assistant":
            blocks = _assistant_blocks(message, at, target)
        elif role == "tool":
            text = text_of(message.get("content"), f"{at}.content", target)
            blocks, role = (
                [{"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": text}],
                "user",
            )
        else:
            raise no_equivalent(
                f"{at}.role", target, f"role {role!r} cannot be translated; use user, assistant or tool"
            )
        if out and out[-1]["role"] == role:  # Anthropic alternates roles: one message per turn
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for message in out:
        if len(message["content"]) == 1 and message["content"][0]["type"] == "text":
            message["content"] = message["content"][0]["text"]
    return ("\n\n".join(system) or None), out


def _user_blocks(content: Any, field: str, target: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for index, part in enumerate(expect_list(content, field, target)):
        at = f"{field}[{index}]"
        part = expect_dict(part, at, target)
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text")})
        elif part.get("type") == "image_url":
            url = expect_dict(part.get("image_url"), f"{at}.image_url", target).get("url")
            blocks.append({"type": "image", "source": _image_source(url, f"{at}.image_url.url", target)})
        else:
            raise no_equivalent(
                at, target, f"a {part.get('type')!r} part cannot be translated; send text or images"
            )
    return blocks


def _image_source(url: Any, field: str, target: str) -> dict[str, Any]:
    if isinstance(url, str):
        data = _DATA_URL.fullmatch(url)
        if data:
            return {"type": "base64", "media_type": data["media"], "data": data["data"]}
        if url.startswith(("https://", "http://")):
            if target == "bedrock":
                raise UntranslatableError(
                    field, f"'{field}': {target} takes images as base64 data only, not by URL"
                )
            return {"type": "url", "url": url}
    raise UntranslatableError(
        field, f"'{field}' must be a data: URL (base64) or an http(s) URL to go to {target}"
    )


def _assistant_blocks(message: dict[str, Any], at: str, target: str) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if content not in (None, ""):
        blocks.append({"type": "text", "text": text_of(content, f"{at}.content", target)})
    for index, call in enumerate(message.get("tool_calls") or []):
        where = f"{at}.tool_calls[{index}]"
        function = expect_dict(expect_dict(call, where, target).get("function"), f"{where}.function", target)
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except (TypeError, ValueError):
            arguments = None
        if not isinstance(arguments, dict):
            raise UntranslatableError(
                f"{where}.function.arguments",
                f"'{where}.function.arguments' must be a JSON object in a string",
            )
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments}
        )
    return blocks


def _tool(tool: Any, field: str, target: str) -> dict[str, Any]:
    tool = expect_dict(tool, field, target)
    if tool.get("type") != "function":
        raise no_equivalent(
            f"{field}.type", target, f"only function tools can be translated (got {tool.get('type')!r})"
        )
    function = expect_dict(tool.get("function"), f"{field}.function", target)
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _choices(params: dict[str, Any], choices: dict[str, Any], where: str, target: str) -> None:
    """tool_choice, parallel_tool_calls and response_format: Anthropic's tool_choice (and a tool)."""
    choice: dict[str, Any] | None = None
    if "tool_choice" in choices:
        choice = _tool_choice(choices["tool_choice"], f"{where}.tool_choice", target)
    answer_tool = _answer_tool(choices.get("response_format"), f"{where}.response_format", target)
    if answer_tool is not None:
        if choice is not None:
            raise no_equivalent(
                f"{where}.response_format", target, "together with tool_choice; drop one of them"
            )
        params.setdefault("tools", []).append(answer_tool)
        choice = {"type": "tool", "name": answer_tool["name"]}
    if choices.get("parallel_tool_calls") is False:
        choice = {"type": "auto", **(choice or {}), "disable_parallel_tool_use": True}
    if choice is not None:
        params["tool_choice"] = choice


def _tool_choice(value: Any, field: str, target: str) -> dict[str, Any]:
    named = {"auto": "auto", "required": "any", "none": "none"}
    if isinstance(value, str) and value in named:
        return {"type": named[value]}
    if (
        isinstance(value, dict)
        and value.get("type") == "function"
        and isinstance(value.get("function"), dict)
    ):
        return {"type": "tool", "name": value["function"].get("name")}
    raise no_equivalent(field, target, "use auto, required, none or a function by name")


def _answer_tool(value: Any, field: str, target: str) -> dict[str, Any] | None:
    if value is None:
        return None
    value = expect_dict(value, field, target)
    kind = value.get("type")
    if kind == "text":
        return None
    # The structured-answer tool's name: Claude's answer then comes back in response.parsed and is
    # checked against the schema, as for a job-level response_schema (providers.structured).
    if kind == "json_object":
        return {
            "name": ANSWER_NAME,
            "description": "Give the answer as this tool's input.",
            "input_schema": {"type": "object"},
        }
    if kind == "json_schema":
        schema = expect_dict(value.get("json_schema"), f"{field}.json_schema", target)
        return {
            "name": ANSWER_NAME,
            "description": schema.get("description") or "Give the answer as this tool's input.",
            "input_schema": expect_dict(schema.get("schema"), f"{field}.json_schema.schema", target),
        }
    raise no_equivalent(f"{field}.type", target, "use text, json_object or json_schema")
