"""Pagination tokens: the opaque ``next_token`` of the job and result listings.

A token is base64url JSON of ``{"v": 1, "q": SCOPE, "k": KEY}``: the listing it belongs to (its
scope: which listing and filters) and the DynamoDB key where the next page starts. Decoding checks
the version, the scope and the key's fields and types before the key reaches DynamoDB, so a token
of another listing, a truncated one or a hand-made one gets a 400 ``invalid_next_token`` that says
what to pass instead.

Tokens are not signed: a token only selects where a listing continues inside data the caller may
already read in full, so a hand-made one reveals nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from botocore.exceptions import ClientError

from batch_gateway.api.errors import ApiError


def encode_token(scope: str, key: dict[str, Any]) -> str:
    """An opaque continuation token: the query it belongs to and where to go on (base64url JSON).

    Not signed: a token only selects where a listing continues inside data the caller may already
    read in full, so a hand-made one reveals nothing. A token of another listing is refused (400).
    """
    raw = json.dumps({"v": 1, "q": scope, "k": key}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, scope: str, fields: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """The DynamoDB start key a token of this ``scope`` carries (``fields``: its names and types)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError):
        document = None
    key = document.get("k") if isinstance(document, dict) else None
    valid = (
        isinstance(document, dict)
        and document.get("v") == 1
        and document.get("q") == scope
        and isinstance(key, dict)
        and set(key) == set(fields)
        and all(_key_value_ok(key[name], kind) for name, kind in fields.items())
    )
    if not valid:
        raise ApiError(
            400,
            "invalid_next_token",
            "next_token is not a token this listing handed out: pass the next_token of the previous "
            "page unchanged, with the same filters (or leave it out to start over)",
        )
    assert isinstance(key, dict)
    return key


def _key_value_ok(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) or not isinstance(value, kind):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return 0 < len(value.encode("utf-8")) <= 1024  # DynamoDB's sort-key cap
        except UnicodeEncodeError:
            return False
    return True


def invalid_start(exc: ClientError) -> ApiError:
    """DynamoDB refused the continuation key (only a hand-made token gets here); other errors re-raise."""
    if exc.response.get("Error", {}).get("Code") != "ValidationException":
        raise exc
    return ApiError(400, "invalid_next_token", "next_token does not point into this listing")
