"""Provider-safe request ids (pure).

Anthropic accepts only ``^[a-zA-Z0-9_-]{1,64}$`` as ``custom_id``; OpenAI accepts any string. One rule
serves both, so ids stay short and safe everywhere: a user's id is sent unchanged when it already fits
that pattern and does not start with the reserved prefix ``bg-``; any other id is replaced by
``bg-<line>`` (the 1-based input line number). Line numbers are unique within a file and user ids can
never start with ``bg-``, so the two kinds of id cannot collide. The caller stores the user id next to
the provider id and maps results back; nothing here needs to be reversible.
"""

from __future__ import annotations

import re

RESERVED_PREFIX = "bg-"
SAFE_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_safe_custom_id(custom_id: str) -> bool:
    """True when the id can be sent to every provider unchanged."""
    return SAFE_ID_PATTERN.fullmatch(custom_id) is not None and not custom_id.startswith(RESERVED_PREFIX)


def provider_custom_id(custom_id: str, line: int) -> str:
    """The id sent to the provider for ``custom_id`` found on 1-based input line ``line``."""
    if is_safe_custom_id(custom_id):
        return custom_id
    if line < 1:
        raise ValueError(f"line must be a 1-based line number, got {line}")
    return f"{RESERVED_PREFIX}{line}"


BEDROCK_RECORD_ID_DIGITS = 10


def bedrock_record_id(custom_id: str, line: int) -> str:
    """The ``recordId`` of a Bedrock batch record: ``R`` and the 1-based line number in 10 digits.

    AWS documents recordId as an 11-character alphanumeric string, so user ids (any length, any
    character) are never sent; line numbers are unique within a file and the index maps them back.
    """
    if not 1 <= line < 10**BEDROCK_RECORD_ID_DIGITS:
        raise ValueError(f"line must be a 1-based line number below 10**10, got {line}")
    return f"R{line:0{BEDROCK_RECORD_ID_DIGITS}d}"
