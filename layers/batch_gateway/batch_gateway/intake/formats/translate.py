"""A provider-format line as the request line of the job's provider: read, then rendered.

:class:`Translator` is made once per job (format and target known); intake's line validator asks it
to :meth:`~Translator.read` each line (its id and payload, or line errors) and, once the id is
mapped, to :meth:`~Translator.render` the provider's request. Within a family (OpenAI and Azure;
Anthropic and Bedrock) the payload is sent as it is; across families it is translated
(``openai.to_anthropic``, ``anthropic.to_openai``).

The model: a line's own ``model`` is honoured on the provider it was written for (an OpenAI line
on OpenAI, an Anthropic line on Anthropic), as ``extra.model`` is for BatchItems; anywhere else
the job's model runs it (a model name means nothing to another provider). The job's system prompt
is used by lines that have none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from batch_gateway.intake.checks import MAX_CUSTOM_ID_BYTES, LineError
from batch_gateway.intake.formats import anthropic, bedrock, openai
from batch_gateway.intake.formats.common import ANTHROPIC_FAMILY, ForeignLine, UntranslatableError
from batch_gateway.intake.formats.detect import detect_format
from batch_gateway.models import JobSpec
from batch_gateway.providers.requests import (
    AZURE_OPENAI_ENDPOINT,
    OPENAI_ENDPOINT,
    RequestBuilder,
    is_bedrock_claude,
    request_builder_for,
)

Reader = Callable[[int, bytes], ForeignLine | list[LineError]]
READERS: dict[str, Reader] = {
    "openai": openai.read_line,
    "anthropic": anthropic.read_line,
    "bedrock": bedrock.read_line,
}


class Translator:
    """Reads lines of one provider format and renders them for the job's provider."""

    def __init__(self, input_format: str, spec: JobSpec) -> None:
        self.format, self._spec = input_format, spec
        self._read = READERS[input_format]
        self._target = spec.provider

    def read(self, line: int, raw: bytes) -> ForeignLine | list[LineError]:
        read = self._read(line, raw)
        if not isinstance(read, list) and len(read.custom_id.encode()) > MAX_CUSTOM_ID_BYTES:
            id_field = "recordId" if self.format == "bedrock" else "custom_id"
            reason = f"'{id_field}' is longer than {MAX_CUSTOM_ID_BYTES} bytes (UTF-8): use a shorter id"
            return [LineError(line=line, field=id_field, reason=reason)]
        return read

    def render(self, read: ForeignLine, provider_id: str) -> tuple[str, dict[str, Any]]:
        """(model, request line) for the job's provider; UntranslatableError names what it cannot take."""
        model = read.model if read.model and self.format == self._target else self._spec.model
        if self._target in ANTHROPIC_FAMILY:
            params = self._anthropic_params(read)
            if self._target == "bedrock":
                if not is_bedrock_claude(model):
                    raise UntranslatableError(
                        "model", f"the job's model {model!r} is not a Claude model on Bedrock"
                    )
                return model, bedrock.to_record(provider_id, params, read.where, self._target)
            return model, {"custom_id": provider_id, "params": {"model": model, **params}}
        body = self._openai_body(read)
        url = AZURE_OPENAI_ENDPOINT if self._target == "azure-openai" else OPENAI_ENDPOINT
        return model, {
            "custom_id": provider_id,
            "method": "POST",
            "url": url,
            "body": {"model": model, **body},
        }

    def _anthropic_params(self, read: ForeignLine) -> dict[str, Any]:
        if read.family == "openai":
            params = openai.to_anthropic(read.payload, read.where, self._target)
        elif self.format == "bedrock" and self._target == "anthropic":
            params = bedrock.to_anthropic(read.payload, read.where, self._target)
        else:
            params = {k: v for k, v in read.payload.items() if k != "model"}
        if "system" not in params and self._spec.system_prompt:
            params["system"] = self._spec.system_prompt
        return params

    def _openai_body(self, read: ForeignLine) -> dict[str, Any]:
        if read.family == "anthropic":
            body = anthropic.to_openai(read.payload, read.where, self._target)
        else:
            body = {k: v for k, v in read.payload.items() if k != "model"}
        messages = body.get("messages")
        if (
            self._spec.system_prompt
            and isinstance(messages, list)
            and not any(isinstance(m, dict) and m.get("role") in ("system", "developer") for m in messages)
        ):
            body["messages"] = [{"role": "system", "content": self._spec.system_prompt}, *messages]
        return body


def check_foreign_items(items: list[Any], spec: JobSpec) -> tuple[list[LineError], int, bool]:
    """Intake's checks on inline provider-format items (the API's): (errors, invalid count, duplicate)."""
    lines = [json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass") for item in items]
    input_format = spec.format or (detect_format(lines[0]) if lines else "items")
    translator = Translator(input_format, spec)
    builder = request_builder_for(spec.provider)
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    invalid, duplicate = 0, False
    for line, raw in enumerate(lines, start=1):
        read = translator.read(line, raw)
        found = read if isinstance(read, list) else _render_errors(translator, read, builder, line)
        custom_id = read[0].custom_id if isinstance(read, list) else read.custom_id
        if custom_id and seen.setdefault(custom_id, line) != line:
            duplicate = True
            reason = f"duplicate custom_id '{custom_id}' (first used on item {seen[custom_id]}): every custom_id must be unique in a batch"
            found.append(LineError(line=line, field="custom_id", custom_id=custom_id, reason=reason))
        if found:
            invalid += 1
            errors.extend(found)
    return errors, invalid, duplicate


def _render_errors(
    translator: Translator, read: ForeignLine, builder: RequestBuilder, line: int
) -> list[LineError]:
    try:
        translator.render(read, builder.provider_custom_id(read.custom_id, line))
    except UntranslatableError as exc:
        return [LineError(line=line, field=exc.field, reason=str(exc), custom_id=read.custom_id)]
    return []
