"""Bedrock batch inference records, read and written: ``{"recordId", "modelInput": {...}}``.

We accept ``modelInput`` in one model family's shape: Anthropic Claude on Bedrock (the InvokeModel
Messages body, ``anthropic_version: "bedrock-2023-05-31"`` plus the Messages params without
``model``), the family the gateway's bedrock provider runs. Records for other families (Amazon
Nova, Titan, Llama, Mistral...) are line errors. A record without ``recordId`` gets
``line-<n>`` (Bedrock numbers such records itself).

:func:`to_record` writes Messages params as a Bedrock record and refuses what Bedrock's Claude
body does not take: keys outside :data:`BEDROCK_CLAUDE_KEYS` and images by URL (base64 only).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from batch_gateway.intake.checks import LineError
from batch_gateway.intake.formats.common import ForeignLine, UntranslatableError, no_equivalent, read_envelope
from batch_gateway.providers.requests import BEDROCK_ANTHROPIC_VERSION

EXAMPLE = '{"recordId": "…", "modelInput": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1024, "messages": […]}}'
# What Bedrock's InvokeModel body for Claude takes (besides anthropic_version).
BEDROCK_CLAUDE_KEYS = frozenset(
    {
        "anthropic_beta",
        "max_tokens",
        "messages",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "tools",
        "tool_choice",
        "thinking",
    }
)
# Keys only Bedrock's body has (on Anthropic's own API they are request headers).
BEDROCK_ONLY_KEYS = frozenset({"anthropic_beta"})


class BedrockRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recordId: str | None = Field(default=None, min_length=1)  # noqa: N815 (Bedrock's name)
    modelInput: dict[str, Any]  # noqa: N815


def read_line(line: int, raw: bytes) -> ForeignLine | list[LineError]:
    envelope = read_envelope(BedrockRecord, line, raw, EXAMPLE)
    if isinstance(envelope, list):
        return envelope
    record_id = envelope.recordId or f"line-{line}"
    model_input = dict(envelope.modelInput)
    version = model_input.pop("anthropic_version", None)
    if not (isinstance(version, str) and version.startswith("bedrock-")) or "messages" not in model_input:
        reason = (
            "'modelInput' is not in the Anthropic Claude shape (anthropic_version "
            f"'{BEDROCK_ANTHROPIC_VERSION}' and messages): the gateway accepts Bedrock records for Claude only"
        )
        return [LineError(line=line, field="modelInput", reason=reason, custom_id=record_id)]
    return ForeignLine(record_id, "anthropic", model_input, None, "modelInput")


def to_anthropic(params: dict[str, Any], where: str, target: str) -> dict[str, Any]:
    """Bedrock's Claude body as Anthropic's own params: refuses the keys only Bedrock has."""
    for key in params:
        if key in BEDROCK_ONLY_KEYS:
            raise no_equivalent(f"{where}.{key}", target, "it is a request header there; remove it")
    return params


def to_record(record_id: str, params: dict[str, Any], where: str, target: str) -> dict[str, Any]:
    """A Bedrock record of Messages params (without ``model``): UntranslatableError for what it refuses."""
    for key in params:
        if key not in BEDROCK_CLAUDE_KEYS:
            raise no_equivalent(f"{where}.{key}", target)
    for index, message in enumerate(params.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        for position, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, dict) and block.get("type") == "image":
                source = block.get("source")
                if isinstance(source, dict) and source.get("type") != "base64":
                    field = f"{where}.messages[{index}].content[{position}].source"
                    raise UntranslatableError(
                        field, f"'{field}': {target} takes images as base64 data only, not by URL"
                    )
    return {"recordId": record_id, "modelInput": {"anthropic_version": BEDROCK_ANTHROPIC_VERSION, **params}}
