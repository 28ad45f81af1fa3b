"""Validate one input line into a BatchItem, or explain in plain words what is wrong with it."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from batch_gateway.models import BatchItem

ALLOWED_FIELDS = ", ".join(BatchItem.model_fields)
# DynamoDB caps a sort key at 1024 bytes and the results table is keyed by custom_id.
MAX_CUSTOM_ID_BYTES = 1024


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
    if kind == "extra_forbidden":
        return f"unknown field '{field}': remove it (allowed fields: {ALLOWED_FIELDS})"
    if kind == "missing":
        return f"'{field}' is required"
    if kind == "string_too_short":
        return f"'{field}' must not be empty"
    if kind == "json_invalid":
        return (
            f"not valid JSON ({error['ctx'].get('error', 'parse error')}): each line must be one JSON object"
        )
    if kind == "model_type":
        return 'each line must be a JSON object like {"custom_id": "…", "user_message": "…"}'
    received = json.dumps(error.get("input"), default=str)
    if len(received) > 80:
        received = received[:77] + "..."
    return f"'{field}': {error['msg']} (got {received})"


def _custom_id_of(raw: bytes) -> str | None:
    """Best-effort custom_id of an invalid line, so the error names the item when it can."""
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("custom_id"), str) and obj["custom_id"]:
        return str(obj["custom_id"])
    return None


def parse_item(line_number: int, raw: bytes) -> BatchItem | list[LineError]:
    """The line's BatchItem, or every error found in it."""
    try:
        item = BatchItem.model_validate_json(raw)
    except ValidationError as exc:
        custom_id = _custom_id_of(raw)
        return [
            LineError(
                line=line_number, field=_field_name(err["loc"]), reason=_explain(err), custom_id=custom_id
            )
            for err in exc.errors()
        ]
    except UnicodeDecodeError:
        return [LineError(line=line_number, reason="the line is not valid UTF-8: save the file as UTF-8")]
    if len(item.custom_id.encode()) > MAX_CUSTOM_ID_BYTES:
        return [
            LineError(
                line=line_number,
                field="custom_id",
                reason=f"'custom_id' is longer than {MAX_CUSTOM_ID_BYTES} bytes: use a shorter id",
            )
        ]
    return item
