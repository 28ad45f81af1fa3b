"""The line checks: validate one input line into a BatchItem, or explain in plain words what is wrong.

Every refusal is a :class:`LineError` (line, field, reason, custom_id when readable), the record
``errors.jsonl`` holds; its reason says what to do, not only what pydantic found (a JSON syntax
error at a column, bad UTF-8 at a byte, a missing field and what it takes, a custom_id too long for
the results table's key).

Two entry points with the same acceptance: :func:`parse_item` builds a BatchItem (the API's checks
and every explanation), :func:`parse_fields` validates into a plain dict, twice as fast, for
intake's per-line hot path (``line_validator``). :func:`describe` turns a line's errors into its
error result's text.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, NotRequired

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from batch_gateway.models import BatchItem

ALLOWED_FIELDS = ", ".join(BatchItem.model_fields)
# DynamoDB caps a sort key at 1024 bytes and the results table is keyed by custom_id.
MAX_CUSTOM_ID_BYTES = 1024
# What each field takes, in words: the "what to do" half of a wrong-type or out-of-range message.
EXPECTED = {
    "custom_id": "a non-empty string, unique in the file",
    "user_message": "a non-empty string",
    "temperature": "a number from 0 to 2",
    "max_tokens": "a whole number greater than 0",
    "extra": 'a JSON object of provider parameters, e.g. {"top_p": 0.9}',
}


class LineError(BaseModel):
    """One reason a line cannot be used: what ``errors.jsonl`` holds, one per line."""

    line: int
    field: str | None = None
    reason: str
    custom_id: str | None = None


def _field_name(loc: tuple[int | str, ...]) -> str | None:
    return ".".join(str(part) for part in loc) or None


def _explain(error: Any) -> str:
    """A pydantic error as a sentence that says what to do."""
    kind = error["type"]
    field = _field_name(error["loc"])
    expected = EXPECTED.get(str(field), "a valid value")
    if kind == "extra_forbidden":
        return f"unknown field '{field}': remove it (allowed fields: {ALLOWED_FIELDS})"
    if kind == "missing":
        return f"'{field}' is required: add it ({expected})"
    if kind == "string_too_short":
        return f"'{field}' must not be empty: give it {expected}"
    if kind == "json_invalid":
        # The parser sees one line at a time: its "line 1" would contradict our file line number.
        detail = re.sub(r" at line 1 column ", " at column ", str(error["ctx"].get("error", "parse error")))
        return (
            f"not valid JSON ({detail}): each line must be one complete JSON object "
            "(check quotes, commas and braces)"
        )
    if kind == "model_type":
        return 'each line must be a JSON object like {"custom_id": "…", "user_message": "…"}'
    received = json.dumps(error.get("input"), default=str)
    if len(received) > 80:
        received = received[:77] + "..."
    return f"'{field}': {error['msg']} (got {received}): use {expected}"


def _utf8_error(raw: bytes) -> str | None:
    """Why ``raw`` is not UTF-8, naming the offending byte, or None when it is."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        return (
            f"the line is not valid UTF-8 (byte 0x{bad} at position {exc.start + 1}): save the file as UTF-8"
        )
    return None


def _custom_id_of(raw: bytes) -> str | None:
    """Best-effort custom_id of an invalid line, so the error names the item when it can."""
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    custom_id = obj.get("custom_id") if isinstance(obj, dict) else None
    # An id too long for the results table's key cannot name a result either.
    if isinstance(custom_id, str) and custom_id and len(custom_id.encode()) <= MAX_CUSTOM_ID_BYTES:
        return custom_id
    return None


def parse_item(line_number: int, raw: bytes) -> BatchItem | list[LineError]:
    """The line's BatchItem, or every error found in it."""
    try:
        item = BatchItem.model_validate_json(raw)
    except ValidationError as exc:
        # The JSON parser reports bad UTF-8 as "invalid unicode code point": say what it really is.
        not_utf8 = _utf8_error(raw)
        if not_utf8:
            return [LineError(line=line_number, reason=not_utf8)]
        custom_id = _custom_id_of(raw)
        return [
            LineError(
                line=line_number, field=_field_name(err["loc"]), reason=_explain(err), custom_id=custom_id
            )
            for err in exc.errors()
        ]
    if len(item.custom_id.encode()) > MAX_CUSTOM_ID_BYTES:
        return [
            LineError(
                line=line_number,
                field="custom_id",
                reason=f"'custom_id' is longer than {MAX_CUSTOM_ID_BYTES} bytes (UTF-8): use a shorter id",
            )
        ]
    return item


@with_config(ConfigDict(extra="forbid"))
class ItemFields(TypedDict):
    """The fields a valid line sets, checked by BatchItem's rules (kept equal by a unit test).

    Validating into this dict is about twice as fast as building a BatchItem: intake takes this
    path for every line and asks :func:`parse_item` to explain only the lines it refuses.
    """

    custom_id: Annotated[str, Field(min_length=1)]
    user_message: Annotated[str, Field(min_length=1)]
    temperature: NotRequired[Annotated[float, Field(ge=0.0, le=2.0)]]
    max_tokens: NotRequired[Annotated[int, Field(gt=0)]]
    extra: NotRequired[dict[str, Any]]


_ITEM_FIELDS = TypeAdapter(ItemFields).validator
# An id of at most this many characters is at most MAX_CUSTOM_ID_BYTES in UTF-8: no need to encode it.
_SURELY_SHORT_ID = MAX_CUSTOM_ID_BYTES // 4


def parse_fields(line_number: int, raw: bytes) -> dict[str, Any] | list[LineError]:
    """Like :func:`parse_item` (same acceptance, same errors), but a valid line comes back as the
    dict of the fields it sets (see ``ItemFields``; ``providers.requests.item_from_fields`` makes
    it a BatchItem)."""
    try:
        fields: dict[str, Any] = _ITEM_FIELDS.validate_json(raw)
    except ValidationError:
        return _errors_of(line_number, raw)
    custom_id: str = fields["custom_id"]
    if len(custom_id) > _SURELY_SHORT_ID and len(custom_id.encode()) > MAX_CUSTOM_ID_BYTES:
        return _errors_of(line_number, raw)
    return fields


def _errors_of(line_number: int, raw: bytes) -> dict[str, Any] | list[LineError]:
    parsed = parse_item(line_number, raw)
    if isinstance(parsed, BatchItem):  # not expected (same rules), but BatchItem has the last word
        return parsed.model_dump(include=parsed.model_fields_set)
    return parsed


def describe(errors: list[LineError]) -> str:
    """A line's errors as its result's ``error``: ``invalid input: line N, field F: <reason>; ...``."""
    parts = [
        f"line {e.line}, field {e.field}: {e.reason}" if e.field else f"line {e.line}: {e.reason}"
        for e in errors
    ]
    return "invalid input: " + "; ".join(parts)
