"""Provider request lines built from BatchItems (pure: no SDK import, no I/O).

Intake validates and stages lines with :func:`request_builder_for` alone, so it never imports a
provider SDK; the providers themselves build lines with the same functions (``line_encoder`` writes
the same lines faster for intake).

Key order is fixed (gateway keys first, then ``extra`` keys sorted), so the same item and spec always
give byte-identical lines; :func:`encode_request_line` writes them as compact JSON.

``item.extra`` is merged into the request body (OpenAI ``body``, Anthropic ``params``) and may override
any parameter the gateway only defaults (temperature, the token limit, Anthropic ``system``...). It may
not touch what the gateway owns: see :data:`GATEWAY_OWNED_KEYS`. An ``extra`` value of ``None`` removes
that key from the request (for example ``{"temperature": null}`` for a model that rejects it).

A job with a ``response_schema`` adds what asks the provider for it (``providers.structured``):
OpenAI/Azure ``response_format``, Anthropic/Bedrock a forced ``tools`` + ``tool_choice``; ``extra``
may then not set those keys.

``extra.model`` (a non-empty string) replaces the job's model for that item: intake groups items by
:func:`request_model` into separate provider batches, as OpenAI takes one model per batch file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from batch_gateway.models import BatchItem, JobSpec
from batch_gateway.providers.custom_ids import bedrock_record_id
from batch_gateway.providers.custom_ids import provider_custom_id as shared_id_rule
from batch_gateway.providers.openai.embeddings import AZURE_EMBEDDINGS_ENDPOINT, build_embeddings_request
from batch_gateway.providers.structured import (
    anthropic_answer_tool,
    check_schema_extra,
    openai_response_format,
)
from batch_gateway.providers.types import ProviderLimits

OPENAI_ENDPOINT: Final = "/v1/chat/completions"
# Azure OpenAI batch lines and batches name the route without the /v1 prefix; ``model`` is the
# deployment name.
AZURE_OPENAI_ENDPOINT: Final = "/chat/completions"

# Per-batch limits, as each provider documents them: OpenAI's Batch API takes up to 50,000 requests
# and 200 MB per input file; Anthropic's Message Batches up to 100,000 requests or 256 MB; an Azure
# OpenAI global batch file up to 100,000 requests and 200 MB. Intake splits files to stay within them.
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
    """One ``/v1/chat/completions`` line of an OpenAI batch input file (``/v1/embeddings`` for an
    embeddings job)."""
    check_extra(item.extra)
    if spec.endpoint == "embeddings":
        return build_embeddings_request(provider_custom_id, item, request_model(item, spec))
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
    if spec.response_schema is not None:
        check_schema_extra(item.extra, spec.provider)
        body["response_format"] = openai_response_format(spec.response_schema)
    _merge_extra(body, item.extra)
    return {"custom_id": provider_custom_id, "method": "POST", "url": OPENAI_ENDPOINT, "body": body}


def build_azure_openai_request(provider_custom_id: str, item: BatchItem, spec: JobSpec) -> dict[str, Any]:
    """One line of an Azure OpenAI batch input file: the OpenAI line, routed as Azure names it."""
    request = build_openai_request(provider_custom_id, item, spec)
    request["url"] = AZURE_EMBEDDINGS_ENDPOINT if spec.endpoint == "embeddings" else AZURE_OPENAI_ENDPOINT
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
    if spec.response_schema is not None:
        check_schema_extra(item.extra, spec.provider)
        params.update(anthropic_answer_tool(spec.response_schema))
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
        id_rule: Callable[[str, int], str] = shared_id_rule,
    ) -> None:
        self.name = name
        self.limits = limits
        self._build = build
        self._id_rule = id_rule
        # Intake sends a safe user id unchanged without asking the rule (its fast path) only when the
        # rule is the shared one; a provider with its own id rule always goes through it.
        self.keeps_safe_ids = id_rule is shared_id_rule

    def provider_custom_id(self, custom_id: str, line: int) -> str:
        return self._id_rule(custom_id, line)

    def build_request(self, provider_custom_id: str, item: BatchItem, spec: JobSpec) -> dict[str, Any]:
        """The request line; ValueError (readable) when ``item.extra`` sets a gateway-owned key."""
        return self._build(provider_custom_id, item, spec)


_BUILDERS = {
    "openai": RequestBuilder("openai", OPENAI_LIMITS, build_openai_request),
    "anthropic": RequestBuilder("anthropic", ANTHROPIC_LIMITS, build_anthropic_request),
    "azure-openai": RequestBuilder("azure-openai", AZURE_OPENAI_LIMITS, build_azure_openai_request),
    "bedrock": RequestBuilder("bedrock", BEDROCK_LIMITS, build_bedrock_request, bedrock_record_id),
}


def request_builder_for(provider: str) -> RequestBuilder:
    """The RequestBuilder of ``provider`` (one of PROVIDER_NAMES); ValueError for any other name."""
    try:
        return _BUILDERS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; expected one of: {', '.join(_BUILDERS)}") from None
