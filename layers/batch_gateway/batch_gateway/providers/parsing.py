"""What every provider's parsing shares (pure: no SDK, no I/O): tolerant readers and JSON answers.

Provider answers are read as decoded JSON (dicts), never through the SDK's types, so parsing can be
tested with real-format lines and does not change when an SDK does. The readers here take whatever
a field holds and give the expected type or an empty/None value (``as_dict``, ``as_int``...), so a
provider adding or renaming a field never crashes collection; messages are built from the
provider's own text, never from Python reprs (``json_text``).

``decode_result_line`` checks one JSONL result line of the custom_id providers (OpenAI, Azure
OpenAI, Anthropic); ``extract_json`` finds the JSON object an answer consists of (``parsed``);
``tool_arguments`` decodes tool-call arguments. Each provider's own module (``openai/parsing``,
``anthropic/parsing``, ``bedrock/parsing``) maps its lines and batch objects onto ``types``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from batch_gateway.providers.errors import ProviderError

# ------------------------------------------------------------------------------------ tolerant readers


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else an empty one (so are the other readers: the type or empty)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def json_text(value: Any) -> str:
    """Readable text for an unexpected value: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return type(value).__name__


def decode_result_line(text: str | bytes, *, source: str, number: int) -> dict[str, Any]:
    """Decode one JSONL result line; ProviderError (readable) when it is not a JSON object."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ProviderError(f"{source} line {number} is not valid JSON ({detail})") from None
    if not isinstance(value, dict):
        raise ProviderError(f"{source} line {number} is not a JSON object")
    custom_id = value.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise ProviderError(f"{source} line {number} has no custom_id")
    return value


# ------------------------------------------------------------------------------------------ JSON answer

_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)\r?\n?```", re.DOTALL)


def _json_container(text: str) -> dict[str, Any] | list[Any] | None:
    text = text.strip()
    if not text or text[0] not in "{[":
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def extract_json(content: str | None) -> dict[str, Any] | list[Any] | None:
    """The JSON object/array an answer consists of, or None.

    Accepted: the whole answer is JSON, or the answer holds exactly one fenced code block (```json or
    bare ```) whose body is JSON. ``content`` itself is never changed: this only reads it.
    """
    if not content:
        return None
    direct = _json_container(content)
    if direct is not None:
        return direct
    fences = _FENCE.findall(content)
    if len(fences) != 1:
        return None
    language, body = fences[0]
    if language.lower() not in ("", "json", "jsonc", "json5"):
        return None
    return _json_container(body)


def tool_arguments(raw: Any) -> dict[str, Any]:
    """JSON-decoded tool arguments; the raw text under ``_raw`` when it is not a JSON object."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return {"_raw": json_text(raw)}
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}
