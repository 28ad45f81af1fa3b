"""Input tokens of one request body, estimated conservatively without a tokenizer (pure).

The quota ledger reserves a chunk's input tokens before its batch is submitted (OpenAI and Azure
cap the tokens enqueued per model), so the estimate must not fall short of what the provider
counts, and should not exceed it by much (capacity left unused). The method:

* every text the model reads (message contents and text parts, the system prompt, tool and
  response-format schemas as compact JSON) counts **one token per 4 ASCII characters** (OpenAI's
  rule of thumb for English: its tokenizers average about 4 characters a token on prose) **plus one
  token per non-ASCII character** (accented letters, CJK and emoji are one or more tokens each in
  the cl100k/o200k vocabularies; counting one each keeps the estimate above them for CJK);
* plus ``MESSAGE_OVERHEAD`` tokens per message and ``REQUEST_OVERHEAD`` per request (the chat
  format's role markers and reply priming: 3 to 4 tokens per message, 3 per request);
* an image part counts ``IMAGE_TOKENS`` (a high-detail 1024 px tile set; larger images cost more);
* an embeddings body's ``input`` counts its texts the same way, and a token array one token an id.

Measured on bench/workload.py's lines against the emulator's count (``ceil(chars / 4)`` per
message): see docs/providers.md. :func:`estimate_input_tokens` takes a request body in any
provider's shape (OpenAI/Azure ``body``, Anthropic ``params``, Bedrock ``modelInput``, or a whole
request line holding one); :func:`estimate_request_line` the encoded request line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic_core import from_json

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
REQUEST_OVERHEAD = 3
IMAGE_TOKENS = 1_105
# Keys of a request line that wrap the body (OpenAI/Azure, Anthropic, Bedrock).
_WRAPPERS = ("body", "params", "modelInput")
# Body keys whose JSON the model reads as text besides the messages.
_SCHEMA_KEYS = frozenset({"tools", "functions", "response_format", "tool_choice", "output_config"})
_IMAGE_PARTS = frozenset({"image_url", "image", "input_image"})
# Every body key the estimate reads: a request whose other keys change counts the same.
READ_KEYS = _SCHEMA_KEYS | {"messages", "system", "prompt", "input"}


def text_tokens(text: str) -> float:
    """Tokens of one text: ASCII characters at 4 a token, every other character one token."""
    if text.isascii():
        return len(text) / CHARS_PER_TOKEN
    ascii_chars = len(text.encode("ascii", "ignore"))
    return ascii_chars / CHARS_PER_TOKEN + (len(text) - ascii_chars)


def _content_tokens(content: Any) -> float:
    """Tokens of a message ``content`` (a string, or a list of typed parts) or a system prompt."""
    if isinstance(content, str):
        return text_tokens(content)
    if not isinstance(content, list):
        return 0.0 if content is None else text_tokens(json.dumps(content, ensure_ascii=False))
    total = 0.0
    for part in content:
        if isinstance(part, Mapping) and part.get("type") in _IMAGE_PARTS:
            total += IMAGE_TOKENS
        elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
            total += text_tokens(part["text"])
        elif isinstance(part, str):
            total += text_tokens(part)
        else:
            total += text_tokens(json.dumps(part, ensure_ascii=False, separators=(",", ":")))
    return total


def _embedding_input_tokens(value: Any) -> float:
    if isinstance(value, str):
        return text_tokens(value)
    if isinstance(value, list):
        return sum(1.0 if isinstance(item, int) else _embedding_input_tokens(item) for item in value)
    return 0.0


def _message_tokens(message: Any) -> float:
    if type(message) is dict:
        content = message.get("content")
        total = MESSAGE_OVERHEAD + (
            text_tokens(content) if type(content) is str else _content_tokens(content)
        )
        if "tool_calls" in message or "function_call" in message:
            for key in ("tool_calls", "function_call"):
                if message.get(key):
                    total += text_tokens(json.dumps(message[key], ensure_ascii=False, separators=(",", ":")))
        return total
    if isinstance(message, Mapping):
        return _message_tokens(dict(message))
    return MESSAGE_OVERHEAD + _content_tokens(message)


def estimate_input_tokens(body: Mapping[str, Any], provider: str) -> int:
    """Conservative input tokens of one request ``body`` for ``provider`` (see the module docstring).

    ``provider`` is one of openai, azure-openai, anthropic, bedrock; the walk is the same for all
    (their bodies all hold ``messages`` and maybe a ``system`` prompt), the name is kept for the day
    one counts differently. Intake runs it on every OpenAI/Azure line: plain dicts take fast paths.
    """
    del provider  # every supported provider's body is read the same way today
    return math.ceil(unrounded_tokens(body))


def unrounded_tokens(body: Mapping[str, Any]) -> float:
    """The estimate before rounding up: a sum over the texts, so a request's estimate is its fixed
    part's plus :func:`text_tokens` of its message (``LineEncoder`` counts each line that way).
    Every term is a multiple of 1/4, so the sums are exact in floating point."""
    for wrapper in _WRAPPERS:
        inner = body.get(wrapper)
        if isinstance(inner, Mapping):
            body = inner
            break
    total = float(REQUEST_OVERHEAD)
    messages = body.get("messages")
    if type(messages) is list:
        for message in messages:
            total += _message_tokens(message)
    if body.get("system") is not None:
        total += MESSAGE_OVERHEAD + _content_tokens(body["system"])
    if isinstance(body.get("prompt"), str):  # older Bedrock model inputs
        total += text_tokens(body["prompt"])
    if body.get("input") is not None:  # embeddings: a text, texts, or token ids
        total += _embedding_input_tokens(body["input"])
    if not _SCHEMA_KEYS.isdisjoint(body):
        for key in _SCHEMA_KEYS:
            if body.get(key) is not None:
                total += text_tokens(json.dumps(body[key], ensure_ascii=False, separators=(",", ":")))
    return total


def estimate_request_line(line: bytes, provider: str) -> int:
    """:func:`estimate_input_tokens` of an encoded request line (pydantic-core's fast JSON parser)."""
    parsed = from_json(line)
    return estimate_input_tokens(parsed if isinstance(parsed, dict) else {}, provider)
