"""Provider request lines built from BatchItems (pure: no SDK import, no I/O).

Intake validates and stages lines with :func:`request_builder_for` alone, so it never imports a
provider SDK; the providers themselves build lines with the same functions.

Key order is fixed (gateway keys first, then ``extra`` keys sorted), so the same item and spec always
give byte-identical lines; :func:`encode_request_line` writes them as compact JSON.

``item.extra`` is merged into the request body (OpenAI ``body``, Anthropic ``params``) and may override
any parameter the gateway only defaults (temperature, the token limit, Anthropic ``system``...). It may
not touch what the gateway owns: see :data:`GATEWAY_OWNED_KEYS`. An ``extra`` value of ``None`` removes
that key from the request (for example ``{"temperature": null}`` for a model that rejects it).

``extra.model`` (a non-empty string) replaces the job's model for that item: intake groups items by
:func:`request_model` into separate provider batches, as OpenAI takes one model per batch file.
"""

from __future__ import annotations

import json
import operator
import os
import re
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any, Final

from batch_gateway.models import BatchItem, JobSpec
from batch_gateway.providers import custom_ids
from batch_gateway.providers.base import ProviderLimits

OPENAI_ENDPOINT: Final = "/v1/chat/completions"
# Azure OpenAI batch lines and batches name the route without the /v1 prefix; ``model`` is the
# deployment name.
AZURE_OPENAI_ENDPOINT: Final = "/chat/completions"

# Per-batch limits (DESIGN.md section 3).
OPENAI_LIMITS = ProviderLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)
ANTHROPIC_LIMITS = ProviderLimits(max_requests=100_000, max_bytes=256 * 1024 * 1024)
AZURE_OPENAI_LIMITS = ProviderLimits(max_requests=100_000, max_bytes=200 * 1024 * 1024)
# Bedrock batch inference quotas (defaults): 50,000 records per job, 1 GB per input file.
BEDROCK_LIMITS = ProviderLimits(max_requests=50_000, max_bytes=1024 * 1024 * 1024)
# Bedrock's InvokeModel body for Anthropic Claude names its API version instead of the model.
BEDROCK_ANTHROPIC_VERSION: Final = "bedrock-2023-05-31"

# Keys of the request body that only the gateway sets: the conversation, streaming (batches cannot
# stream) and the id mapping. ``model`` is not among them: see request_model.
GATEWAY_OWNED_KEYS: frozenset[str] = frozenset({"messages", "stream", "custom_id"})


def check_extra(extra: dict[str, Any]) -> None:
    """Raise ValueError (readable, names the key) when ``extra`` sets a gateway-owned key or a bad model."""
    owned = sorted(GATEWAY_OWNED_KEYS.intersection(extra))
    if owned:
        names = ", ".join(f"'{key}'" for key in owned)
        raise ValueError(
            f"extra may not set {names}: the gateway sets messages, stream and custom_id itself "
            "(the message comes from user_message); remove it from extra"
        )
    if "model" in extra and not (isinstance(extra["model"], str) and extra["model"].strip()):
        raise ValueError(
            f"extra.model must be a model name (got {json.dumps(extra['model'])}): "
            "set a non-empty string, or leave it out to use the job's model"
        )


def request_model(item: BatchItem, spec: JobSpec) -> str:
    """The model an item runs on: its ``extra.model`` when set, else the job's (call check_extra first)."""
    model = item.extra.get("model")
    return model if isinstance(model, str) and model.strip() else spec.model


def _temperature_is_default(item: BatchItem) -> bool:
    return "temperature" not in item.model_fields_set


def _merge_extra(body: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key in sorted(extra):
        value = extra[key]
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def build_openai_request(provider_custom_id: str, item: BatchItem, spec: JobSpec) -> dict[str, Any]:
    """One ``/v1/chat/completions`` line of an OpenAI batch input file."""
    check_extra(item.extra)
    messages: list[dict[str, str]] = []
    if spec.system_prompt:
        messages.append({"role": "system", "content": spec.system_prompt})
    messages.append({"role": "user", "content": item.user_message})
    body: dict[str, Any] = {"model": request_model(item, spec), "messages": messages}
    # Reasoning models accept only their default temperature; a user who asks for reasoning and did
    # not choose a temperature gets the model's default instead of a per-line 400.
    if not ("reasoning_effort" in item.extra and _temperature_is_default(item)):
        body["temperature"] = item.temperature
    # max_completion_tokens, not max_tokens: the SDK documents max_tokens as deprecated and "not
    # compatible with o-series models", while max_completion_tokens works for every current chat model
    # (it also bounds reasoning tokens). A user who really needs the old parameter passes
    # extra={"max_tokens": n}; then we leave ours out, as the API refuses requests that set both.
    if "max_tokens" not in item.extra:
        body["max_completion_tokens"] = item.max_tokens
    _merge_extra(body, item.extra)
    return {"custom_id": provider_custom_id, "method": "POST", "url": OPENAI_ENDPOINT, "body": body}


def build_azure_openai_request(provider_custom_id: str, item: BatchItem, spec: JobSpec) -> dict[str, Any]:
    """One line of an Azure OpenAI batch input file: the OpenAI line, routed as Azure names it."""
    request = build_openai_request(provider_custom_id, item, spec)
    request["url"] = AZURE_OPENAI_ENDPOINT
    return request


def _thinking_enabled(extra: dict[str, Any]) -> bool:
    thinking = extra.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type", "enabled") != "disabled"


def build_anthropic_request(provider_custom_id: str, item: BatchItem, spec: JobSpec) -> dict[str, Any]:
    """One ``{custom_id, params}`` request of an Anthropic Message Batch."""
    check_extra(item.extra)
    params: dict[str, Any] = {
        "model": request_model(item, spec),
        "max_tokens": item.max_tokens,
        "messages": [{"role": "user", "content": item.user_message}],
    }
    if spec.system_prompt:
        params["system"] = spec.system_prompt
    # Extended thinking refuses any temperature but the default; see build_openai_request.
    if not (_thinking_enabled(item.extra) and _temperature_is_default(item)):
        params["temperature"] = item.temperature
    _merge_extra(params, item.extra)
    return {"custom_id": provider_custom_id, "params": params}


def is_bedrock_claude(model: str) -> bool:
    """True for a Claude model id, inference profile or ARN on Bedrock (the family we build bodies for)."""
    return "anthropic.claude" in model


def build_bedrock_request(record_id: str, item: BatchItem, spec: JobSpec) -> dict[str, Any]:
    """One ``{recordId, modelInput}`` record of a Bedrock batch inference input file (Claude, InvokeModel).

    ``modelInput`` is the Messages body Bedrock's InvokeModel takes for Claude: the Anthropic params
    without ``model`` (the job names the model) and with Bedrock's ``anthropic_version``.
    """
    params = build_anthropic_request(record_id, item, spec)["params"]
    model = params.pop("model")
    if not is_bedrock_claude(model):
        raise ValueError(
            f"model {model!r} is not an Anthropic Claude model on Bedrock: the bedrock provider builds "
            "Claude request bodies only; use a model id such as anthropic.claude-3-5-haiku-20241022-v1:0"
        )
    return {"recordId": record_id, "modelInput": {"anthropic_version": BEDROCK_ANTHROPIC_VERSION, **params}}


def encode_request_line(request: dict[str, Any]) -> bytes:
    """Compact, deterministic JSONL line (with the trailing newline), UTF-8."""
    text = json.dumps(request, ensure_ascii=False, separators=(",", ":"))
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\\udXXX" escape in the input: keep it escaped
        return (json.dumps(request, separators=(",", ":")) + "\n").encode("ascii")


BuildFunction = Callable[[str, BatchItem, JobSpec], dict[str, Any]]


class RequestBuilder:
    """The SDK-free part of a provider: its name, limits, id rule and request lines."""

    def __init__(
        self,
        name: str,
        limits: ProviderLimits,
        build: BuildFunction,
        id_rule: Callable[[str, int], str] = custom_ids.provider_custom_id,
    ) -> None:
        self.name = name
        self.limits = limits
        self._build = build
        self._id_rule = id_rule
        # Intake sends a safe user id unchanged without asking the rule (its fast path) only when the
        # rule is the shared one; a provider with its own id rule always goes through it.
        self.keeps_safe_ids = id_rule is custom_ids.provider_custom_id

    def provider_custom_id(self, custom_id: str, line: int) -> str:
        return self._id_rule(custom_id, line)

    def build_request(self, provider_custom_id: str, item: BatchItem, spec: JobSpec) -> dict[str, Any]:
        """The request line; ValueError (readable) when ``item.extra`` sets a gateway-owned key."""
        return self._build(provider_custom_id, item, spec)


_BUILDERS = {
    "openai": RequestBuilder("openai", OPENAI_LIMITS, build_openai_request),
    "anthropic": RequestBuilder("anthropic", ANTHROPIC_LIMITS, build_anthropic_request),
    "azure-openai": RequestBuilder("azure-openai", AZURE_OPENAI_LIMITS, build_azure_openai_request),
    "bedrock": RequestBuilder("bedrock", BEDROCK_LIMITS, build_bedrock_request, custom_ids.bedrock_record_id),
}


def request_builder_for(provider: str) -> RequestBuilder:
    """The RequestBuilder of ``provider`` (one of PROVIDER_NAMES); ValueError for any other name."""
    try:
        return _BUILDERS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; expected one of: {', '.join(_BUILDERS)}") from None


# ------------------------------------------------------------------ fast lines for intake
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
    """

    def __init__(self, text: str, pick: Callable[[tuple[str, ...]], tuple[str, ...]]) -> None:
        self.text, self.pick = text, pick


def _template(builder: RequestBuilder, spec: JobSpec, shape: _Shape) -> _Template | None:
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
    return _Template(text + "\n", operator.itemgetter(*order))


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

    def __init__(self, builder: RequestBuilder, spec: JobSpec) -> None:
        self._builder, self._spec = builder, spec
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
        extra: dict[str, Any] | None = fields.get("extra")
        if extra:
            return self._with_extra(provider_custom_id, fields, extra)
        template = self._plain.get("temperature" in fields, _MISSING)  # the common shapes: no extra
        if template is _MISSING:
            template = self._template(("temperature" in fields, ()))
            self._plain["temperature" in fields] = template
        if template is None:
            return self._slow(provider_custom_id, fields)
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
        return line.encode("utf-8")  # validated strings hold no lone surrogates

    def _with_extra(self, provider_custom_id: str, fields: dict[str, Any], extra: dict[str, Any]) -> bytes:
        keys = tuple(sorted(extra))
        if not VALUE_SHAPED_EXTRA_KEYS.isdisjoint(keys) or None in extra.values():
            return self._slow(provider_custom_id, fields)
        template = self._template(("temperature" in fields, keys))
        if template is None:
            return self._slow(provider_custom_id, fields)
        values = (
            encode_basestring(provider_custom_id),
            encode_basestring(fields["user_message"]),
            repr(fields.get("temperature", _DEFAULT_TEMPERATURE)),
            repr(fields.get("max_tokens", _DEFAULT_MAX_TOKENS)),
            *[_json_value(extra[key]) for key in keys],
        )
        try:
            line: str = template.text % template.pick(values)
            return line.encode("utf-8")
        except UnicodeEncodeError:
            return self._slow(provider_custom_id, fields)

    def _template(self, shape: _Shape) -> _Template | None:
        template = self._templates.get(shape, _MISSING)
        if template is _MISSING:
            if len(self._templates) >= MAX_TEMPLATES:
                return None  # a file with ever new extra keys: the ordinary way, in constant memory
            template = self._templates[shape] = _template(self._builder, self._spec, shape)
        return template  # type: ignore[no-any-return]

    def _slow(self, provider_custom_id: str, fields: dict[str, Any]) -> bytes:
        request = self._builder.build_request(provider_custom_id, item_from_fields(fields), self._spec)
        return encode_request_line(request)


_MISSING: Any = object()


def item_from_fields(fields: dict[str, Any]) -> BatchItem:
    """The BatchItem of fields already validated by BatchItem's rules (what the line set, nothing more)."""
    return BatchItem.model_construct(set(fields), **fields)
