"""Deterministic answer generation shared by the OpenAI and Anthropic emulators.

Everything here is a pure function of the request, so tests can compute the exact content a
batch will return (`emulated_answer`) and both providers give the same text for the same input.
"""

from __future__ import annotations

import hashlib
import json
import math
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
