"""Request lines of one job written fast, byte for byte as ``requests`` builds them (pure).

Intake writes every input line as a provider request line; building a dict per line and encoding it
costs more than the rest of intake together. :class:`LineEncoder` takes the layout of a line once
per shape (temperature given or not, which ``extra`` keys) from the provider's own builder, with a
marker in every value, and then writes each item by JSON-encoding its values into that layout: the
same bytes as ``encode_request_line(builder.build_request(...))``, which the tests compare. Lines
whose ``extra`` shapes the request by value (``model``, ``thinking``...) or removes keys (a null
value) are built the ordinary way; so are the lines of a file with ever new shapes, past
:data:`MAX_TEMPLATES` layouts.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

from batch_gateway.models import BatchItem, JobSpec
from batch_gateway.providers.requests import (
    GATEWAY_OWNED_KEYS,
    RequestBuilder,
    encode_request_line,
    request_model,
)
from batch_gateway.providers.token_estimate import READ_KEYS, text_tokens, unrounded_tokens

# Extra keys whose *value* shapes the request (not only its presence): a line with one of them is
# built the ordinary way. Builders copy every other value into the request without looking at it.
VALUE_SHAPED_EXTRA_KEYS: frozenset[str] = GATEWAY_OWNED_KEYS | {"model", "thinking"}
_DEFAULT_TEMPERATURE: float = BatchItem.model_fields["temperature"].default
_DEFAULT_MAX_TOKENS: int = BatchItem.model_fields["max_tokens"].default
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_Shape = tuple[bool, tuple[str, ...]]
# Layouts kept per job (each a few hundred bytes): the shapes of a real file are few.
MAX_TEMPLATES = 256


class _Template:
    """A request line with holes: ``text % pick(values)`` gives the line, values JSON-encoded.

    ``values`` are (provider custom_id, user_message, temperature, max_tokens, extra values in key
    order); ``pick`` takes those the line holds, in the order it holds them (always two or more).
    ``base_tokens``: the line's estimated input tokens without its message (None: not counted, or
    not a plain sum here), so a line's estimate is ``ceil(base_tokens + text_tokens(message))``.
    """

    def __init__(
        self, text: str, pick: Callable[[tuple[str, ...]], tuple[str, ...]], base_tokens: float | None
    ) -> None:
        self.text, self.pick, self.base_tokens = text, pick, base_tokens

    def tokens(self, message: str) -> int | None:
        """The estimated input tokens of this layout's line holding ``message`` (None: not counted)."""
        base = self.base_tokens
        return None if base is None else math.ceil(base + text_tokens(message))


def _base_tokens(
    builder: RequestBuilder, spec: JobSpec, present: set[str], fields: dict[str, Any]
) -> float | None:
    """The estimate of this shape's request without its message, when a message's text adds exactly
    its own tokens (probed: a 4-character message must add one token); else None."""
    if not READ_KEYS.isdisjoint(fields["extra"]):
        return None  # extra values the estimate reads (tools, a schema...): counted line by line

    def estimate(message: str) -> float:
        item = BatchItem.model_construct(present, **{**fields, "user_message": message})
        return unrounded_tokens(builder.build_request("x", item, spec))

    base = estimate("")
    return base if estimate("abcd") - base == 1.0 else None


def _template(
    builder: RequestBuilder, spec: JobSpec, shape: _Shape, count_tokens: bool = False
) -> _Template | None:
    """Build the line of an item of this shape with a unique marker in every value, then cut it there."""
    has_temperature, extra_keys = shape
    nonce = os.urandom(6).hex()
    markers = [f"\x00{nonce}:{n}\x00" for n in range(4 + len(extra_keys))]
    fields: dict[str, Any] = {
        "custom_id": "x",
        "user_message": markers[1],
        "temperature": markers[2],
        "max_tokens": markers[3],
        "extra": dict(zip(extra_keys, markers[4:], strict=True)),
    }
    present = {"custom_id", "user_message", "max_tokens", "extra"} | (
        {"temperature"} if has_temperature else set()
    )
    try:
        request = builder.build_request(markers[0], BatchItem.model_construct(present, **fields), spec)
    except Exception:  # such lines are simply built the ordinary way
        return None
    text = _COMPACT.encode(request).replace("%", "%%")
    found: list[tuple[int, int, str]] = []  # (position, value index, marker as JSON)
    for index, marker in enumerate(markers):
        encoded = _COMPACT.encode(marker)
        count = text.count(encoded)
        if count > 1 or (count == 0 and index < 2):
            return None  # a value copied twice, or the id / message missing: not a plain copy
        if count:
            found.append((text.index(encoded), index, encoded))
    found.sort()
    for _, _, encoded in found:
        text = text.replace(encoded, "%s", 1)
    order = [index for _, index, _ in found]
    base = _base_tokens(builder, spec, present, fields) if count_tokens else None
    return _Template(text + "\n", operator.itemgetter(*order), base)


_CONTROL_ESCAPE = re.compile(rb"\\[bfnrt]|\\u00[01]")


def has_no_control_escapes(raw: bytes) -> bool:
    """True when no string parsed from the JSON ``raw`` can hold a control character.

    A JSON parser refuses raw control characters in strings (pydantic's does), so they can only
    come from escapes: none of ``\\b \\f \\n \\r \\t \\u0000-\\u001f`` means none. Such a string
    ``s`` then JSON-encodes as ``'"' + s + '"'`` unless it holds a quote or a backslash.
    (Conservative: ``\\\\n``, an escaped backslash before an n, counts as an escape too.)
    """
    return b"\\" not in raw or _CONTROL_ESCAPE.search(raw) is None


def _json_value(value: Any) -> str:
    """``value`` as compact JSON, as json.dumps(..., ensure_ascii=False) writes it inside a line."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is int or (kind is float and value - value == 0):  # finite floats: repr, as json does
        return repr(value)
    if kind is bool:
        return "true" if value else "false"
    return _COMPACT.encode(value)


class LineEncoder:
    """Request lines of one job straight from validated item fields, fast.

    ``encode(provider_custom_id, fields)`` gives exactly ``encode_request_line(builder.build_request(
    provider_custom_id, item, spec))`` for the BatchItem those fields make, without building the
    request dict: the line's layout is taken once per shape (temperature given or not, extra keys)
    from the builder itself, and each item's values are JSON-encoded into it. Items whose extra has
    a key in :data:`VALUE_SHAPED_EXTRA_KEYS` or a null value go the ordinary way.
    """

    def __init__(self, builder: RequestBuilder, spec: JobSpec, count_tokens: bool = False) -> None:
        """``count_tokens``: :meth:`encode_counted` also estimates each line's input tokens."""
        self._builder, self._spec, self._count_tokens = builder, spec, count_tokens
        self._templates: dict[_Shape, _Template | None] = {}
        self._plain: dict[bool, _Template | None] = {}  # by "temperature given", for items without extra

    def model(self, fields: dict[str, Any]) -> str:
        """The model the item runs on (see request_model)."""
        extra = fields.get("extra")
        if extra and "model" in extra:
            return request_model(item_from_fields(fields), self._spec)
        return self._spec.model

    def encode(
        self,
        provider_custom_id: str,
        fields: dict[str, Any],
        raw: bytes | None = None,
        encoded_id: str | None = None,
    ) -> bytes:
        """The request line; ValueError (readable) when the item's extra sets a gateway-owned key.

        ``fields`` as ``validation.parse_fields`` gives them (values of the types BatchItem holds);
        ``raw``: the JSON line they were parsed from, if known (see :func:`has_no_control_escapes`);
        ``encoded_id``: ``provider_custom_id`` JSON-encoded, when the caller has it already.
        """
        return self.encode_counted(provider_custom_id, fields, raw, encoded_id)[0]

    def encode_counted(
        self,
        provider_custom_id: str,
        fields: dict[str, Any],
        raw: bytes | None = None,
        encoded_id: str | None = None,
    ) -> tuple[bytes, int | None]:
        """:meth:`encode`, and the line's input tokens as ``token_estimate.estimate_request_line``
        counts them, from its layout's fixed part plus its message (None when not counting, or when
        this line's layout is not a plain sum: the caller then estimates from the line itself)."""
        extra: dict[str, Any] | None = fields.get("extra")
        if extra:
            return self._with_extra(provider_custom_id, fields, extra)
        template = self._plain.get("temperature" in fields, _MISSING)  # the common shapes: no extra
        if template is _MISSING:
            template = self._template(("temperature" in fields, ()))
            self._plain["temperature" in fields] = template
        if template is None:
            return self._slow(provider_custom_id, fields), None
        message: str = fields["user_message"]
        if raw is not None and '"' not in message and "\\" not in message and has_no_control_escapes(raw):
            encoded_message = f'"{message}"'  # what encode_basestring gives, without a pass over each char
        else:
            encoded_message = encode_basestring(message)
        line: str = template.text % template.pick(
            (
                encoded_id or encode_basestring(provider_custom_id),
                encoded_message,
                repr(fields.get("temperature", _DEFAULT_TEMPERATURE)),
                repr(fields.get("max_tokens", _DEFAULT_MAX_TOKENS)),
            )
        )
        return line.encode("utf-8"), template.tokens(message)  # validated strings hold no lone surrogates

    def _with_extra(
        self, provider_custom_id: str, fields: dict[str, Any], extra: dict[str, Any]
    ) -> tuple[bytes, int | None]:
        keys = tuple(sorted(extra))
        if not VALUE_SHAPED_EXTRA_KEYS.isdisjoint(keys) or None in extra.values():
            return self._slow(provider_custom_id, fields), None
        template = self._template(("temperature" in fields, keys))
        if template is None:
            return self._slow(provider_custom_id, fields), None
        values = (
            encode_basestring(provider_custom_id),
            encode_basestring(fields["user_message"]),
            repr(fields.get("temperature", _DEFAULT_TEMPERATURE)),
            repr(fields.get("max_tokens", _DEFAULT_MAX_TOKENS)),
            *[_json_value(extra[key]) for key in keys],
        )
        try:
            line: str = template.text % template.pick(values)
            encoded = line.encode("utf-8")
        except UnicodeEncodeError:
            return self._slow(provider_custom_id, fields), None
        return encoded, template.tokens(fields["user_message"])

    def _template(self, shape: _Shape) -> _Template | None:
        template = self._templates.get(shape, _MISSING)
        if template is _MISSING:
            if len(self._templates) >= MAX_TEMPLATES:
                return None  # a file with ever new extra keys: the ordinary way, in constant memory
            template = _template(self._builder, self._spec, shape, self._count_tokens)
            self._templates[shape] = template
        return template  # type: ignore[no-any-return]

    def _slow(self, provider_custom_id: str, fields: dict[str, Any]) -> bytes:
        request = self._builder.build_request(provider_custom_id, item_from_fields(fields), self._spec)
        return encode_request_line(request)


_MISSING: Any = object()


def item_from_fields(fields: dict[str, Any]) -> BatchItem:
    """The BatchItem of fields already validated by BatchItem's rules (what the line set, nothing more)."""
    return BatchItem.model_construct(set(fields), **fields)
