"""Input files in the providers' own formats and CSV tables (intake.formats), through intake's split.

Translations are checked on the request lines intake stages (what the provider would receive);
the split tests run on moto, with the fixtures of test_input_policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batch_gateway.intake.formats.common import UntranslatableError
from batch_gateway.intake.formats.detect import detect_format
from batch_gateway.intake.formats.translate import Translator
from batch_gateway.intake.spec import JobSpecError, job_spec_from_metadata
from batch_gateway.models import JobSpec
from batch_gateway.storage.keys import chunk_index_key, errors_key
from tests.unit.test_input_policy import JOB, SETTINGS, aws, run, s3_lines, staged_requests

__all__ = ["aws"]  # the moto fixture, used by name

IMAGE = "data:image/png;base64,iVBORw0KGgo="


def openai_line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def render(line: dict[str, Any], fmt: str, provider: str, model: str = "job-model") -> dict[str, Any]:
    translator = Translator(fmt, JobSpec(provider=provider, model=model))  # type: ignore[arg-type]
    read = translator.read(1, json.dumps(line).encode())
    assert not isinstance(read, list), read
    return translator.render(read, "p-1")[1]


def untranslatable(line: dict[str, Any], fmt: str, provider: str, model: str = "job-model") -> Any:
    with pytest.raises(UntranslatableError) as raised:
        render(line, fmt, provider, model)
    return raised.value


CONVERSATION = openai_line(
    "c-1",
    model="gpt-4o",
    messages=[
        {"role": "system", "content": "Be terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is it?"},
                {"type": "image_url", "image_url": {"url": IMAGE}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "look", "arguments": '{"zoom": 2}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "a cat"},
    ],
    temperature=0.5,
    max_completion_tokens=100,
    stop="END",
    tools=[
        {
            "type": "function",
            "function": {"name": "look", "description": "Look closer", "parameters": {"type": "object"}},
        }
    ],
    tool_choice="required",
)


def test_an_openai_conversation_becomes_anthropic_params() -> None:
    request = render(CONVERSATION, "openai", "anthropic")

    assert request["custom_id"] == "p-1"
    assert request["params"] == {
        "model": "job-model",
        "max_tokens": 100,
        "system": "Be terse.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is it?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "look", "input": {"zoom": 2}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a cat"}]},
        ],
        "temperature": 0.5,
        "stop_sequences": ["END"],
        "tools": [{"name": "look", "description": "Look closer", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
    }


def test_an_openai_line_on_bedrock_is_a_claude_record() -> None:
    record = render(CONVERSATION, "openai", "bedrock", model="anthropic.claude-3-5-haiku-20241022-v1:0")
    assert record["recordId"] == "p-1"
    assert record["modelInput"]["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in record["modelInput"]
    assert record["modelInput"]["system"] == "Be terse."


def test_a_response_format_schema_becomes_a_forced_tool_on_anthropic() -> None:
    schema = {"type": "object", "properties": {"label": {"enum": ["bug", "idea"]}}}
    line = openai_line(
        "r",
        messages=[{"role": "user", "content": "x"}],
        response_format={"type": "json_schema", "json_schema": {"name": "ticket", "schema": schema}},
    )
    params = render(line, "openai", "anthropic")["params"]
    # The structured-answer tool: Claude's answer comes back in response.parsed, checked against the schema.
    assert params["tools"] == [
        {
            "name": "structured_answer",
            "description": "Give the answer as this tool's input.",
            "input_schema": schema,
        }
    ]
    assert params["tool_choice"] == {"type": "tool", "name": "structured_answer"}


def test_an_anthropic_request_becomes_an_openai_body() -> None:
    line = {
        "custom_id": "a-1",
        "params": {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 50,
            "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                        {"type": "text", "text": "and?"},
                    ],
                },
            ],
            "stop_sequences": ["X"],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        },
    }
    request = render(line, "anthropic", "azure-openai", model="my-deployment")

    assert request["url"] == "/chat/completions"
    assert request["body"] == {
        "model": "my-deployment",
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "calling",
                "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "ok"},
            {"role": "user", "content": "and?"},
        ],
        "max_completion_tokens": 50,
        "stop": ["X"],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
    }


def test_a_bedrock_record_runs_on_anthropic_and_openai() -> None:
    line = {
        "recordId": "rec-1",
        "modelInput": {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hello"}],
        },
    }
    assert render(line, "bedrock", "anthropic")["params"] == {
        "model": "job-model",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "hello"}],
    }
    body = render(line, "bedrock", "openai")["body"]
    assert body == {
        "model": "job-model",
        "messages": [{"role": "user", "content": "hello"}],
        "max_completion_tokens": 20,
    }


def test_a_line_keeps_its_model_on_its_own_provider_only() -> None:
    line = openai_line("m", model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert render(line, "openai", "openai")["body"]["model"] == "gpt-4o"
    assert render(line, "openai", "anthropic")["params"]["model"] == "job-model"


@pytest.mark.parametrize(
    ("line", "fmt", "provider", "field", "words"),
    [
        (
            openai_line("x", messages=[], logprobs=True),
            "openai",
            "anthropic",
            "body.logprobs",
            "no equivalent on anthropic",
        ),
        (
            openai_line("x", messages=[], temperature=1.5),
            "openai",
            "bedrock",
            "body.temperature",
            "bedrock takes 0 to 1",
        ),
        (
            openai_line(
                "x",
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://e.x/a.png"}}],
                    }
                ],
            ),
            "openai",
            "bedrock",
            "body.messages[0].content[0].image_url.url",
            "base64 data only",
        ),
        (
            {"custom_id": "x", "params": {"top_k": 5, "messages": []}},
            "anthropic",
            "openai",
            "params.top_k",
            "no equivalent on openai",
        ),
        (
            {"custom_id": "x", "params": {"metadata": {"user_id": "u"}, "messages": []}},
            "anthropic",
            "bedrock",
            "params.metadata",
            "bedrock",
        ),
    ],
)
def test_what_cannot_be_translated_names_the_field_and_the_provider(
    line: dict[str, Any], fmt: str, provider: str, field: str, words: str
) -> None:
    error = untranslatable(
        line, fmt, provider, model="anthropic.claude-3-haiku" if provider == "bedrock" else "m"
    )
    assert error.field == field
    assert words in str(error)


@pytest.mark.parametrize(
    ("line", "fmt"),
    [
        (openai_line("x", messages=[]), "openai"),
        ({"custom_id": "x", "params": {}}, "anthropic"),
        ({"recordId": "x", "modelInput": {}}, "bedrock"),
        ({"custom_id": "x", "user_message": "hi"}, "items"),
        ({"custom_id": "x", "params": "oops", "user_message": "hi"}, "anthropic"),
    ],
)
def test_the_first_line_tells_the_format(line: dict[str, Any], fmt: str) -> None:
    assert detect_format(json.dumps(line).encode()) == fmt


# ------------------------------------------------------------------ through the split, on moto
def test_a_provider_file_is_detected_and_its_untranslatable_lines_skipped(aws: None, tmp_path: Path) -> None:
    rows = [
        openai_line("ok-1", model="gpt-4o", messages=[{"role": "user", "content": "one"}]),
        openai_line("bad", model="gpt-4o", messages=[{"role": "user", "content": "two"}], logprobs=True),
        openai_line("ok-2", model="gpt-4o", messages=[{"role": "user", "content": "three"}]),
    ]
    data = b"\n" + b"".join(json.dumps(row).encode() + b"\n" for row in rows)
    spec = JobSpec(
        provider="anthropic", model="claude-3-5-haiku-latest", on_invalid="skip", system_prompt="Sys"
    )

    report = run(data, tmp_path, spec=spec)

    assert (report.accepted, report.request_count, report.invalid_count) == (True, 2, 1)
    requests = staged_requests(1)
    assert [r["params"]["messages"] for r in requests] == [
        [{"role": "user", "content": "one"}],
        [{"role": "user", "content": "three"}],
    ]
    assert {r["params"]["system"] for r in requests} == {"Sys"}  # the job's prompt, as the lines had none
    (error,) = [json.loads(line) for line in s3_lines(errors_key(JOB))]
    assert (error["line"], error["field"], error["custom_id"]) == (3, "body.logprobs", "bad")


def test_a_csv_file_renders_its_template_per_row(aws: None, tmp_path: Path) -> None:
    data = (
        "\ufeffid,text,team\r\n"
        't-1,"Login fails, ""again""",web\r\n'
        "\r\n"
        't-2,"two\r\nlines",api\r\n'
        "t-3,,api\r\n"
        "t-4\r\n"
    ).encode()
    spec = JobSpec(
        provider="openai",
        model="gpt-4o-mini",
        template="Ticket for {team}: {text}",
        id_column="id",
        on_invalid="skip",
    )

    report = run(data, tmp_path, spec=spec)

    assert (report.request_count, report.invalid_count) == (2, 2)
    messages = [r["body"]["messages"][-1]["content"] for r in staged_requests(1)]
    assert messages == ['Ticket for web: Login fails, "again"', "Ticket for api: two\r\nlines"]
    index = [json.loads(line) for line in s3_lines(chunk_index_key(JOB, 1))]
    assert [(i["line"], i["custom_id"]) for i in index] == [(2, "t-1"), (4, "t-2")]
    errors = [(e["line"], e["field"]) for e in map(json.loads, s3_lines(errors_key(JOB)))]
    assert errors == [(6, "text"), (7, "team"), (7, "text")]


def test_a_template_naming_an_absent_column_rejects_the_file(aws: None, tmp_path: Path) -> None:
    spec = JobSpec(provider="openai", model="m", template="Classify: {body}")
    report = run(b"id,text\n1,hello\n", tmp_path, spec=spec)
    assert not report.accepted
    assert "column 'body'" in (report.reason or "")
    assert "columns: id, text" in (report.reason or "")


def test_csv_rows_without_an_id_column_are_numbered() -> None:
    import io

    from batch_gateway.intake.formats.csv_rows import CsvRows

    table = CsvRows(io.BytesIO(b"text\na\nb\n"), "Say {text}", None, 1000)
    items = [table.item(line, record) for line, record in table.records()]
    assert items == [
        {"custom_id": "row-1", "user_message": "Say a"},
        {"custom_id": "row-2", "user_message": "Say b"},
    ]


def test_format_metadata_keys_make_the_spec() -> None:
    spec = job_spec_from_metadata(
        {"provider": "openai", "model": "m", "format": "CSV", "template": "Q: {q}", "id-column": "id"},
        SETTINGS,
    )
    assert (spec.format, spec.template, spec.id_column) == ("csv", "Q: {q}", "id")
    assert job_spec_from_metadata({"template": "Q: {q}"}, SETTINGS, key="inbox/t.csv").format == "csv"
    with pytest.raises(JobSpecError, match="needs a prompt template"):
        job_spec_from_metadata({}, SETTINGS, key="inbox/table.csv")
    with pytest.raises(JobSpecError, match="'format'"):
        job_spec_from_metadata({"format": "xml"}, SETTINGS)


def test_local_run_refuses_a_csv_file_without_a_template_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from batch_gateway_local.cli.commands import main

    table = tmp_path / "tickets.csv"
    table.write_text("id,text\n1,hello\n")

    code = main(
        ["local", "run", str(table), "--provider", "openai", "--model", "m", "--out", str(tmp_path / "out")]
    )

    assert code == 2
    assert "needs a prompt template" in capsys.readouterr().err


def test_an_undecodable_row_and_a_positional_template_field_are_explained() -> None:
    import io

    from batch_gateway.intake.formats.csv_rows import CsvRows, FormatError

    table = CsvRows(io.BytesIO(b"id,text\n1,caf\xe9\n2,fine \\udc80\n"), "Q: {text}", "id", 1000)
    first, second = [table.item(line, record) for line, record in table.records()]
    assert isinstance(first, list)
    assert "not valid UTF-8" in first[0].reason
    assert second == {"custom_id": "2", "user_message": "Q: fine \\udc80"}  # the text, not a bad byte
    with pytest.raises(FormatError, match="plain column name"):
        CsvRows(io.BytesIO(b"text\nx\n"), "Q: {0}", None, 1000)
