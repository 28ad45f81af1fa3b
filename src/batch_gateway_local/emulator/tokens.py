"""The emulator's own token count for a request's input, the way a provider's tokenizer would roughly see it.

The emulator enforces token quotas (OpenAI and Azure count the prompt tokens of the batches enqueued
per model) and reports ``usage``; both use this one count, so a gateway whose own estimate is too low
sees the emulated provider refuse batches, as the real one would. It is deliberately not the gateway's
estimator (``providers/token_estimate.py``): it splits text as a byte-pair tokenizer roughly does
(words, digit groups of up to 3, punctuation runs, one token per non-Latin character) and adds the chat
format's per-message overhead (3 tokens a message plus 3 to prime the reply, as OpenAI documents for its
chat models). English prose comes out near 4 characters a token; tool definitions and a response
schema count as the JSON text they are sent as.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .answers import content_text

TOKENS_PER_MESSAGE = 3
"""Role and separators of one chat message."""
REPLY_PRIMING = 3
"""The assistant turn every prompt ends with."""

_PIECE = re.compile(r"[A-Za-z]+|[0-9]+|[^\sA-Za-z0-9]+|\n+")
_LATIN_WORD_CHARS = 7
"""A Latin word up to this long is one token; longer ones split into pieces of about this size."""


def _piece_tokens(piece: str) -> int:
    first = piece[0]
    if first.isascii() and first.isalpha():
        return -(-len(piece) // _LATIN_WORD_CHARS)
    if first.isdigit():
        return -(-len(piece) // 3)  # tokenizers group digits in threes
    if first == "\n":
        return 1
    # Punctuation and symbols: ASCII runs pair up; other scripts (CJK, accents, emoji) a token each.
    ascii_chars = sum(1 for char in piece if char.isascii())
    return -(-ascii_chars // 2) + (len(piece) - ascii_chars)


def count_tokens(text: str) -> int:
    """Tokens of one text, tokenizer-like (about 4 characters a token for English)."""
    return sum(_piece_tokens(piece) for piece in _PIECE.findall(text))


def _json_tokens(value: Any) -> int:
    return count_tokens(json.dumps(value, separators=(",", ":"))) if value else 0


def chat_prompt_tokens(body: dict[str, Any]) -> int:
    """Input tokens of an OpenAI chat-completions body: messages, tools and response schema."""
    messages = body.get("messages")
    total = REPLY_PRIMING
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            total += TOKENS_PER_MESSAGE + count_tokens(content_text(message.get("content")))
    return total + _json_tokens(body.get("tools")) + _json_tokens(body.get("response_format"))


def messages_input_tokens(params: dict[str, Any]) -> int:
    """Input tokens of Anthropic Messages params (Bedrock's Claude too): system, messages, tools."""
    messages = params.get("messages")
    total = REPLY_PRIMING
    system = params.get("system")
    if system:
        total += TOKENS_PER_MESSAGE + count_tokens(content_text(system))
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            total += TOKENS_PER_MESSAGE + count_tokens(content_text(message.get("content")))
    return total + _json_tokens(params.get("tools")) + _json_tokens(params.get("output_format"))
