"""Structured answers: the request each provider gets, strict mode's schema rules, the answer's check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from batch_gateway.intake.spec import JobSpecError, job_spec_from_metadata, response_schema_name
from batch_gateway.models import BatchItem, FinishReason, JobSpec, LLMResponse
from batch_gateway.providers.anthropic.parsing import parse_anthropic_message
from batch_gateway.providers.line_encoder import LineEncoder
from batch_gateway.providers.requests import encode_request_line, request_builder_for
from batch_gateway.providers.structured import (
    ANSWER_NAME,
    SchemaError,
    check_answer,
    prepare_schema,
    request_schema,
)
from batch_gateway.providers.types import ProviderResult
from batch_gateway.settings import Settings
from batch_gateway_local.cli.commands import main
from batch_gateway_local.emulator.answers import AnswerMemory, structured_answer

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"label": {"enum": ["yes", "no"]}, "why": {"type": "string"}},
    "required": ["label", "why"],
}
STRICT = {**SCHEMA, "additionalProperties": False}
MODELS = {
    "openai": "gpt-4o-mini",
    "azure-openai": "my-deployment",
    "anthropic": "claude-3-5-haiku-latest",
    "bedrock": "anthropic.claude-3-5-haiku-20241022-v1:0",
}


def _spec(provider: str, schema: dict[str, Any] = SCHEMA) -> JobSpec:
    return JobSpec(
        provider=provider,
        model=MODELS[provider],
        response_schema=prepare_schema(schema, provider),
    )


def _request(provider: str, **item: Any) -> dict[str, Any]:
    fields = {"custom_id": "a", "user_message": "Is it yes?", **item}
    return request_builder_for(provider).build_request("a", BatchItem(**fields), _spec(provider))


# ------------------------------------------------------------------------------ the request
@pytest.mark.parametrize("provider", ["openai", "azure-openai"])
def test_openai_and_azure_ask_for_strict_json_schema(provider: str) -> None:
    body = _request(provider)["body"]

    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": ANSWER_NAME, "schema": STRICT, "strict": True},
    }
    assert "tools" not in body


@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
def test_anthropic_and_bedrock_force_one_tool_whose_input_is_the_answer(provider: str) -> None:
    request = _request(provider)
    params = request.get("params") or request["modelInput"]

    assert [(t["name"], t["input_schema"]) for t in params["tools"]] == [(ANSWER_NAME, SCHEMA)]
    assert params["tool_choice"] == {"type": "tool", "name": ANSWER_NAME}
    assert request_schema(request) == SCHEMA


@pytest.mark.parametrize("provider", list(MODELS))
def test_the_fast_line_encoder_writes_the_same_bytes_for_a_schema_job(provider: str) -> None:
    spec = _spec(provider)
    builder = request_builder_for(provider)
    fields = {"custom_id": "a", "user_message": 'say "100%"', "temperature": 0.5}
    expected = encode_request_line(builder.build_request("a", BatchItem(**fields), spec))

    assert LineEncoder(builder, spec).encode("a", fields) == expected


@pytest.mark.parametrize(
    ("provider", "extra", "named"),
    [
        ("openai", {"response_format": {"type": "json_object"}}, "'response_format'"),
        ("anthropic", {"tools": []}, "'tools'"),
        ("bedrock", {"thinking": {"type": "enabled", "budget_tokens": 1024}}, "extra.thinking"),
    ],
)
def test_extra_may_not_set_what_the_schema_decides(provider: str, extra: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match="response schema") as caught:
        _request(provider, extra=extra)
    assert named in str(caught.value)


# ------------------------------------------------------------------------------ strict mode
def test_strict_mode_closes_every_object_that_left_additional_properties_open() -> None:
    nested = {
        "type": "object",
        "properties": {
            "who": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
        },
        "required": ["who"],
    }

    strict = prepare_schema(nested, "openai")

    assert strict["additionalProperties"] is False
    assert strict["properties"]["who"]["additionalProperties"] is False
    assert "additionalProperties" not in nested  # the user's schema is left as it was
    assert prepare_schema(nested, "anthropic") == nested  # no strict mode there: sent as written


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "required": ["a"],
            },
            "at $ does not require 'b': OpenAI's strict mode needs every property in 'required'",
        ),
        (
            {"type": "object", "properties": {}, "additionalProperties": True},
            "at $ allows additional properties",
        ),
        (
            {"type": "array", "items": {"type": "string"}},
            'must describe an object at its root ("type": "object")',
        ),
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "is not a valid JSON Schema"),
    ],
)
def test_a_schema_strict_mode_cannot_take_is_refused_saying_what_to_change(
    schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(SchemaError, match="the response schema") as caught:
        prepare_schema(schema, "azure-openai")
    assert message in str(caught.value)


def test_optional_properties_are_fine_for_claude() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}

    assert prepare_schema(schema, "bedrock") == schema


# ------------------------------------------------------------------------------ the answer's check
def _answer(parsed: Any, finish: FinishReason = FinishReason.STOP) -> ProviderResult:
    response = LLMResponse(content=json.dumps(parsed), parsed=parsed, finish_reason=finish)
    return ProviderResult(provider_custom_id="a", outcome="succeeded", response=response)


def _raw(provider: str) -> bytes:
    return encode_request_line(_request(provider))


@pytest.mark.parametrize("provider", list(MODELS))
def test_an_answer_that_does_not_match_is_a_retryable_error_that_says_where(provider: str) -> None:
    checked = check_answer(_answer({"label": "maybe", "why": "unsure"}), _raw(provider))

    assert checked.outcome == "errored"
    assert checked.retryable
    assert checked.error == "answer does not match the schema: $.label: 'maybe' is not one of ['yes', 'no']"


def test_a_matching_answer_and_an_answer_to_a_free_text_request_stand_as_they_are() -> None:
    good = _answer({"label": "yes", "why": "it says so"})
    free = encode_request_line(
        request_builder_for("openai").build_request(
            "a", BatchItem(custom_id="a", user_message="hi"), JobSpec(provider="openai", model="m")
        )
    )

    assert check_answer(good, _raw("openai")) == good
    assert check_answer(_answer({"anything": 1}), free).outcome == "succeeded"


def test_an_answer_that_is_not_json_or_was_cut_short_says_so() -> None:
    not_json = ProviderResult(
        provider_custom_id="a", outcome="succeeded", response=LLMResponse(content="yes, I think")
    )
    cut = check_answer(_answer({"label": "yes"}, FinishReason.LENGTH), _raw("anthropic"))

    assert check_answer(not_json, _raw("openai")).error == (
        "answer does not match the schema: the answer is not a JSON object"
    )
    assert cut.error == (
        "answer does not match the schema: $: 'why' is a required property "
        "(the answer was cut at the token limit: raise max_tokens)"
    )
    assert not cut.retryable  # the same limit would cut it again


def test_claude_s_forced_tool_call_reads_as_the_parsed_answer() -> None:
    message = {
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": ANSWER_NAME, "input": {"label": "no", "why": "x"}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }

    response = parse_anthropic_message(message)

    assert response.parsed == {"label": "no", "why": "x"}
    assert response.content == '{"label": "no", "why": "x"}'
    assert response.tool_calls == []
    assert response.finish_reason is FinishReason.STOP


# ------------------------------------------------------------------------------ the job spec
def test_the_metadata_key_names_an_object_under_schemas() -> None:
    assert response_schema_name({"Response-Schema": "tickets/v1.json"}) == "tickets/v1.json"
    assert response_schema_name({}) is None
    with pytest.raises(JobSpecError, match="name an object under schemas/"):
        response_schema_name({"response-schema": "../inbox/x.json"})


def test_a_schema_the_provider_cannot_take_rejects_the_job_with_the_reason() -> None:
    settings = Settings()
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}

    with pytest.raises(JobSpecError, match="does not require 'a'"):
        job_spec_from_metadata({"model": "gpt-4o-mini"}, settings, loose)
    claude = job_spec_from_metadata(
        {"provider": "anthropic", "model": "claude-3-5-haiku-latest"}, settings, loose
    )
    assert claude.response_schema == loose


# ------------------------------------------------------------------------------ the emulator
def test_the_emulator_answers_json_of_the_schema_deterministically_and_a_bad_one_once() -> None:
    schema = {
        "type": "object",
        "properties": {
            "label": {"enum": ["billing", "bug"]},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "who": {"$ref": "#/$defs/person"},
            "note": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 5}]},
            "ok": {"type": "boolean"},
        },
        "required": ["label", "score", "tags", "who", "note", "ok"],
        "$defs": {
            "person": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}
        },
    }
    memory = AnswerMemory()
    body = {"messages": [{"role": "user", "content": "hi [[emulator:bad-json]]"}]}

    first = structured_answer(schema, body, "hi [[emulator:bad-json]]", memory)
    again = structured_answer(schema, body, "hi [[emulator:bad-json]]", memory)

    assert not jsonschema.Draft202012Validator(schema).is_valid(first)
    jsonschema.validate(again, schema)
    assert again == structured_answer(schema, body, "hi", None)  # the same request, the same answer


# ------------------------------------------------------------------------------ the CLI flag
def test_local_run_refuses_a_schema_file_it_cannot_use_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = tmp_path / "t.jsonl"
    items.write_text('{"custom_id": "a", "user_message": "hi"}\n')
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}))
    args = ["local", "run", str(items), "--provider", "openai", "--model", "m", "--out", str(tmp_path / "o")]

    assert main([*args, "--response-schema", str(loose)]) == 2
    assert "does not require 'a'" in capsys.readouterr().err
    assert main([*args, "--response-schema", str(tmp_path / "missing.json")]) == 2
    assert "--response-schema" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
