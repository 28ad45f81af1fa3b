"""Structured answers: a job's JSON Schema, asked of each provider its own way, and answers checked.

A job with ``response_schema`` asks OpenAI and Azure OpenAI for it with ``response_format:
{type: json_schema, json_schema: {name, schema, strict: true}}``, and Anthropic and Bedrock (Claude)
with one forced tool whose input schema is the schema (``tools`` + ``tool_choice``): the tool's
input is the answer. :func:`prepare_schema` checks the schema once per job (a JSON Schema, an
object at its root, and for OpenAI's strict mode every property required) and adds
``additionalProperties: false`` where strict mode needs it and the schema left it open.

After a round, collect reads the schema back from each item's own request line
(:func:`request_schema`: what was sent is what the answer must match) and :func:`check_answer`
turns an answer that does not match into a retryable error line with a readable message
(``answer does not match the schema: $.label: 'maybe' is not one of ['yes', 'no']``).
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from batch_gateway.models import FinishReason
from batch_gateway.providers.types import ProviderResult

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

# The json_schema name (OpenAI) and the forced tool's name (Anthropic, Bedrock): parsing knows an
# answer given through this tool from a tool call the user's own tools asked for.
ANSWER_NAME: Final = "structured_answer"
ANSWER_TOOL_DESCRIPTION: Final = (
    "Give your answer by calling this tool: its input is the answer, and it must match the schema."
)
# Providers whose JSON mode is OpenAI's strict structured outputs.
STRICT_PROVIDERS: Final = frozenset({"openai", "azure-openai"})
# Subschema keywords walked for strict mode's rules (objects may sit under any of them).
_NESTED_MAPS: Final = ("properties", "$defs", "definitions", "patternProperties")
_NESTED_LISTS: Final = ("anyOf", "oneOf", "allOf", "prefixItems")
_NESTED_ONE: Final = ("items", "not", "if", "then", "else", "additionalItems", "contains")
# Bytes that every structured request line holds (the cheap test before decoding a line in collect).
REQUEST_MARKER: Final = f'"{ANSWER_NAME}"'.encode()


class SchemaError(ValueError):
    """The response schema cannot be used; the message says where and why."""


def prepare_schema(schema: Any, provider: str) -> dict[str, Any]:
    """The schema as the provider gets it; SchemaError (readable) when it cannot be used.

    Every provider: a valid JSON Schema (of the draft its ``$schema`` names, else 2020-12) whose root is ``type: object`` (a tool's input
    and OpenAI's json_schema both are objects). OpenAI and Azure (strict mode): every object lists
    all its properties in ``required`` (an optional field is a required one that allows null:
    ``"type": ["string", "null"]``), and none allows additional properties; an object that does not
    say gets ``additionalProperties: false`` added. That only narrows what may come back, so an
    answer of the strict schema still matches the one the user wrote.
    """
    from jsonschema.exceptions import SchemaError as InvalidSchema

    if not isinstance(schema, dict):
        raise SchemaError("the response schema must be a JSON object (a JSON Schema)")
    try:
        _validator_class(schema).check_schema(schema)
    except InvalidSchema as exc:
        raise SchemaError(f"the response schema is not a valid JSON Schema: {exc.message}") from None
    if schema.get("type") != "object":
        raise SchemaError(
            'the response schema must describe an object at its root ("type": "object"): wrap a list '
            'or a single value in an object, e.g. {"type": "object", "properties": {"items": ...}}'
        )
    if provider not in STRICT_PROVIDERS:
        return schema
    strict = copy.deepcopy(schema)
    _make_strict(strict, "$")
    return strict


def _make_strict(node: Any, path: str) -> None:
    """Apply strict mode's object rules to ``node`` and every subschema in it (in place)."""
    if not isinstance(node, dict):
        return
    if node.get("type") == "object" or "properties" in node:
        properties: dict[str, Any] = node.get("properties") or {}
        missing = [name for name in properties if name not in node.get("required", [])]
        if missing:
            names = ", ".join(f"'{name}'" for name in missing)
            raise SchemaError(
                f"the response schema at {path} does not require {names}: OpenAI's strict mode needs "
                "every property in 'required' (make a field optional by allowing null: "
                '"type": ["string", "null"])'
            )
        extra = node.setdefault("additionalProperties", False)
        if extra is not False:
            raise SchemaError(
                f"the response schema at {path} allows additional properties: OpenAI's strict mode "
                'needs "additionalProperties": false (or leave it out and the gateway sets it)'
            )
    for key in _NESTED_MAPS:
        for name, sub in (node.get(key) or {}).items():
            _make_strict(sub, f"{path}.{key}.{name}" if key != "properties" else f"{path}.{name}")
    for key in _NESTED_LISTS:
        for number, sub in enumerate(node.get(key) or []):
            _make_strict(sub, f"{path}.{key}[{number}]")
    for key in _NESTED_ONE:
        _make_strict(node.get(key), f"{path}[]" if key == "items" else f"{path}.{key}")


# ------------------------------------------------------------------------------ the request's part
def openai_response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``response_format`` of an OpenAI or Azure chat-completions body (schema prepared)."""
    return {"type": "json_schema", "json_schema": {"name": ANSWER_NAME, "schema": schema, "strict": True}}


def anthropic_answer_tool(schema: dict[str, Any]) -> dict[str, Any]:
    """``tools`` and ``tool_choice`` of an Anthropic or Bedrock Claude body: one tool, forced."""
    return {
        "tools": [{"name": ANSWER_NAME, "description": ANSWER_TOOL_DESCRIPTION, "input_schema": schema}],
        "tool_choice": {"type": "tool", "name": ANSWER_NAME},
    }


def check_schema_extra(extra: dict[str, Any], provider: str) -> None:
    """ValueError (readable) when an item's ``extra`` sets what the job's schema already decides."""
    owned = ("response_format",) if provider in STRICT_PROVIDERS else ("tools", "tool_choice")
    clash = [key for key in owned if key in extra]
    if clash:
        names = ", ".join(f"'{key}'" for key in clash)
        raise ValueError(
            f"extra may not set {names} in a job with a response schema: the gateway asks for the "
            "schema's JSON with it; remove it from extra, or run the item in a job without a schema"
        )
    thinking = extra.get("thinking")
    if provider not in STRICT_PROVIDERS and isinstance(thinking, dict) and thinking.get("type") != "disabled":
        raise ValueError(
            "extra.thinking cannot be used in a job with a response schema: Claude answers it through "
            "a forced tool, which extended thinking does not allow; remove thinking from extra"
        )


def request_schema(request: dict[str, Any]) -> dict[str, Any] | None:
    """The schema a request line asked for (OpenAI/Azure ``body``, Anthropic ``params``, Bedrock
    ``modelInput``), or None when it asked for no structured answer."""
    body = request.get("body") or request.get("params") or request.get("modelInput")
    if not isinstance(body, dict):
        return None
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else None
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool" and choice.get("name") == ANSWER_NAME:
        for tool in body.get("tools") or []:
            if isinstance(tool, dict) and tool.get("name") == ANSWER_NAME:
                schema = tool.get("input_schema")
                return schema if isinstance(schema, dict) else None
    return None


# ------------------------------------------------------------------------------ the answer's check
def _validator_class(schema: dict[str, Any]) -> type[Validator]:
    """The validator of the draft the schema names in ``$schema``; draft 2020-12 when it names none."""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    validator: type[Validator] = validator_for(schema, default=Draft202012Validator)
    return validator


@lru_cache(maxsize=32)
def _validator(schema_json: str) -> Validator:
    schema = json.loads(schema_json)
    return _validator_class(schema)(schema)


def _path(parts: Any) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def schema_mismatch(answer: Any, schema: dict[str, Any]) -> str | None:
    """A readable reason why ``answer`` does not match ``schema`` (None when it does)."""
    from jsonschema.exceptions import best_match

    errors = list(_validator(json.dumps(schema, sort_keys=True)).iter_errors(answer))
    first = best_match(errors)
    if first is None:
        return None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"answer does not match the schema: {_path(first.absolute_path)}: {first.message}{more}"


def check_answer(result: ProviderResult, raw_request: bytes) -> ProviderResult:
    """``result`` as it stands, or (an answer to a structured request that is not JSON matching the
    schema it asked for) a retryable error line that says why: a new try may well match."""
    if result.outcome != "succeeded" or result.response is None or REQUEST_MARKER not in raw_request:
        return result
    schema = request_schema(json.loads(raw_request))
    if schema is None:
        return result
    parsed = result.response.parsed
    # An answer cut at the token limit would be cut again: not worth a follow-up round.
    cut = result.response.finish_reason is FinishReason.LENGTH
    if parsed is None:
        reason = "answer does not match the schema: the answer is not a JSON object"
    else:
        reason = schema_mismatch(parsed, schema) or ""
        if not reason:
            return result
    if cut:
        reason += " (the answer was cut at the token limit: raise max_tokens)"
    return result.model_copy(update={"outcome": "errored", "error": reason, "retryable": not cut})
