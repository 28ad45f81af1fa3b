"""Deterministic answer generation shared by the OpenAI and Anthropic emulators.

Everything here is a pure function of the request, so tests can compute the exact content a
batch will return (`emulated_answer`) and both providers give the same text for the same input.
A request with a response schema (OpenAI `response_format` json_schema, an Anthropic forced tool)
gets JSON of that schema (`structured_answer`); the `[[emulator:bad-json]]` marker makes the first
answer to it one that does not match, which `AnswerMemory` remembers per server.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import dataclass
from typing import Any

MARKER_ERROR_400 = "[[emulator:error-400]]"
"""A user message containing this fails with HTTP 400 / `invalid_request_error`."""

MARKER_ERROR_500 = "[[emulator:error-500]]"
"""A user message containing this fails with HTTP 500 / `server_error` (`api_error` for Anthropic)."""

MARKER_TOOL = "[[emulator:tool]]"
"""With `tools` in the request, a user message containing this is answered with a tool call."""

_SNIPPET_WORDS = 8
_PHRASES = (
    "Here is a short, direct answer.",
    "In short: it depends, but the usual answer is yes.",
    "The key point is to keep it simple.",
    "Briefly: start small, then iterate.",
    "A concise summary follows from the question itself.",
    "The most common approach works well here.",
)


def estimate_tokens(text: str) -> int:
    """The emulator's token count for `text`: ceil(len(text) / 4)."""
    return math.ceil(len(text) / 4)


def content_text(content: Any) -> str:
    """Text of a message `content` (a string or a list of parts with `{"type": "text", "text": ...}`)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        ]
        return "\n".join(texts)
    return ""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def full_answer(model: str, system: str | None, user_message: str) -> str:
    """The untruncated answer text."""
    words = user_message.split()
    snippet = " ".join(words[:_SNIPPET_WORDS])
    if len(words) > _SNIPPET_WORDS:
        snippet += " ..."
    digest = _digest(model, system or "", user_message)
    phrase = _PHRASES[int(digest[:8], 16) % len(_PHRASES)]
    return f'[{model}] Re: "{snippet}" - {phrase} (ref {digest[:8]})'


@dataclass(frozen=True)
class Answer:
    text: str
    truncated: bool
    output_tokens: int


def answer(model: str, system: str | None, user_message: str, max_tokens: int | None) -> Answer:
    """The answer plus its truncation flag and output token count."""
    text = full_answer(model, system, user_message)
    truncated = False
    if max_tokens is not None and estimate_tokens(text) > max_tokens:
        text = text[: max(max_tokens, 0) * 4]
        truncated = True
    return Answer(text=text, truncated=truncated, output_tokens=estimate_tokens(text))


def emulated_answer(model: str, system: str | None, user_message: str, max_tokens: int | None) -> str:
    """The exact text both emulated providers answer with.

    `system` is the system prompt text (None when absent), `user_message` the text of the last
    user message. When the answer is longer than `max_tokens` tokens (see `estimate_tokens`) it is
    cut to `max_tokens * 4` characters and the finish reason is "length" / "max_tokens".
    """
    return answer(model, system, user_message, max_tokens).text


def prompt_tokens(system: str | None, message_texts: list[str]) -> int:
    """Input token count: the system prompt plus every (non-system) message, each via `estimate_tokens`."""
    total = estimate_tokens(system) if system else 0
    return total + sum(estimate_tokens(text) for text in message_texts)


def has_marker(texts: list[str], marker: str) -> bool:
    return any(marker in text for text in texts)


def tool_arguments(schema: Any, user_message: str) -> dict[str, Any]:
    """Deterministic arguments for a tool call, filled from the tool's JSON schema."""
    snippet = " ".join(user_message.replace(MARKER_TOOL, " ").split()[:_SNIPPET_WORDS])
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict) or not properties:
        return {"query": snippet}
    args: dict[str, Any] = {}
    for name, prop in properties.items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        if kind == "integer":
            args[name] = 1
        elif kind == "number":
            args[name] = 1.0
        elif kind == "boolean":
            args[name] = True
        elif kind == "array":
            args[name] = []
        elif kind == "object":
            args[name] = {}
        elif isinstance(prop, dict) and isinstance(prop.get("enum"), list) and prop["enum"]:
            args[name] = prop["enum"][0]
        else:
            args[name] = snippet
    return args


def stable_id(prefix: str, *parts: str, length: int = 24) -> str:
    """A deterministic identifier: prefix + hex digest of parts."""
    return prefix + _digest(*parts)[:length]


def tool_call_tokens(name: str, args: dict[str, Any]) -> int:
    return estimate_tokens(name + json.dumps(args, sort_keys=True))


# ------------------------------------------------------------------------------ structured answers
MARKER_BAD_JSON = "[[emulator:bad-json]]"
"""With a response schema in the request, a user message containing this gets, the first time the
server sees that request, an answer that does not match the schema (a resend gets a matching one)."""

_MAX_DEPTH = 8


class AnswerMemory:
    """Which requests already had their one non-matching answer (per server, thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def first_time(self, key: str) -> bool:
        with self._lock:
            fresh = key not in self._seen
            self._seen.add(key)
            return fresh


def json_schema_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of an OpenAI body's ``response_format: {type: json_schema}``, or None."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return schema if isinstance(schema, dict) else {}


def forced_tool(params: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(name, input schema) of the tool an Anthropic body forces with ``tool_choice: {type: tool}``."""
    choice = params.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "tool":
        return None
    for tool in params.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name") == choice.get("name"):
            schema = tool.get("input_schema")
            return str(tool["name"]), schema if isinstance(schema, dict) else {}
    return None


def structured_answer(
    schema: dict[str, Any], body: dict[str, Any], user_message: str, memory: AnswerMemory | None
) -> Any:
    """A JSON value for ``schema``, a pure function of the request ``body``; one that does not match
    when the message has :data:`MARKER_BAD_JSON` and ``memory`` has not seen this request yet."""
    canonical = json.dumps(body, sort_keys=True, default=str)
    value = schema_value(schema, schema, _digest(canonical), 0)
    if (
        MARKER_BAD_JSON in user_message
        and memory is not None
        and memory.first_time(_digest("bad", canonical))
    ):
        return mismatching(schema, value)
    return value


def _pick(seed: str, count: int) -> int:
    return int(seed[:8], 16) % count


def schema_value(node: Any, root: dict[str, Any], seed: str, depth: int) -> Any:
    """A value of ``node`` (a subschema of ``root``), chosen deterministically by ``seed``."""
    node = _resolve_ref(node, root)
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return None
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][_pick(seed, len(node["enum"]))]
    for key in ("anyOf", "oneOf"):
        options = [o for o in node.get(key) or [] if _resolve_ref(o, root).get("type") != "null"]
        if options:
            return schema_value(options[_pick(seed, len(options))], root, _digest(seed, key), depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in node:
        properties = node.get("properties") or {}
        return {
            name: schema_value(sub, root, _digest(seed, name), depth + 1) for name, sub in properties.items()
        }
    if kind == "array":
        count = max(int(node.get("minItems", 1)), 0)
        if "maxItems" in node:
            count = min(count, int(node["maxItems"]))
        return [
            schema_value(node.get("items", {}), root, _digest(seed, str(n)), depth + 1) for n in range(count)
        ]
    if kind == "string":
        return _string_value(node, seed)
    if kind in ("integer", "number"):
        low, high = node.get("minimum", 0), node.get("maximum", 100)
        value = low + _pick(seed, max(int(high - low), 0) + 1)
        return value if kind == "integer" else float(value)
    if kind == "boolean":
        return _pick(seed, 2) == 1
    return None


def _resolve_ref(node: Any, root: dict[str, Any]) -> Any:
    """``node``, or what its local ``$ref`` (``#/$defs/name``) points at in ``root``."""
    ref = node.get("$ref") if isinstance(node, dict) else None
    if not (isinstance(ref, str) and ref.startswith("#")):
        return node
    target: Any = root
    for part in ref.lstrip("#").strip("/").split("/") if ref.strip("#/") else []:
        target = target.get(part) if isinstance(target, dict) else None
    return target if isinstance(target, dict) else {}


_FORMATS = {"date": "2026-01-01", "date-time": "2026-01-01T00:00:00Z", "email": "user@example.com"}


def _string_value(node: dict[str, Any], seed: str) -> str:
    if node.get("format") in _FORMATS:
        return _FORMATS[node["format"]]
    if node.get("format") in ("uri", "url"):
        return f"https://example.com/{seed[:8]}"
    text = f"value {seed[:8]}"
    low, high = int(node.get("minLength", 0)), node.get("maxLength")
    text = text.ljust(low, "x")
    return text[: int(high)] if high is not None else text


# Wrong values tried in turn for the first property: "maybe" first, so an enum's error reads as a
# user would see it ("'maybe' is not one of [...]").
_WRONG_VALUES: tuple[Any, ...] = ("maybe", 42, ["maybe"], {"maybe": True}, None, True)


def mismatching(schema: dict[str, Any], value: Any) -> Any:
    """``value`` spoiled so that it no longer matches ``schema`` (its first property made wrong)."""
    from jsonschema.validators import validator_for

    validator = validator_for(schema)(schema)
    properties = schema.get("properties")
    if isinstance(value, dict) and isinstance(properties, dict) and properties:
        name = next(iter(properties))
        for wrong in _WRONG_VALUES:
            spoiled = {**value, name: wrong}
            if not validator.is_valid(spoiled):
                return spoiled
    return ["maybe"]  # the root is an object: a list never matches
