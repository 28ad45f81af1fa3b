"""Files in the providers' own formats, and CSV tables, as whole jobs on another provider.

Each provider format runs on a provider it was not written for (OpenAI lines on Anthropic,
Anthropic requests on Bedrock, Bedrock records on OpenAI), detected from the first line; a CSV
file fills its template per row and a row missing a column gets its error result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import read_jsonl, write_jsonl

BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(
        LocalOptions(chunk_max_items=10, bedrock_min_records=1, stack_name="bg-formats")
    ) as local:
        yield local


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


OPENAI_LINES = [
    {
        "custom_id": "o-1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                user("Hello"),
                {"role": "assistant", "content": "Hi!"},
                user("Name a colour"),
            ],
            "temperature": 0.2,
            "max_tokens": 200,
        },
    },
    {
        "custom_id": "o-2",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [user("Weather in Oslo? [[emulator:tool]]")],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "weather",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                    },
                }
            ],
            "tool_choice": "required",
        },
    },
]
ANTHROPIC_LINES = [
    {
        "custom_id": f"a-{n}",
        "params": {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 100,
            "system": "Terse.",
            "messages": [user(f"Question {n}")],
        },
    }
    for n in (1, 2)
]
BEDROCK_LINES = [
    {
        "recordId": f"b-{n}",
        "modelInput": {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 100,
            "messages": [user(f"Record {n}")],
        },
    }
    for n in (1, 2)
]


def run_job(gateway: LocalGateway, path: Path, spec: JobSpec, out: Path) -> tuple[Any, list[dict[str, Any]]]:
    job_id = gateway.submit_file(path, spec)
    job = gateway.wait(job_id, timeout_s=300)
    return job, read_jsonl(gateway.export(job_id, out, results_table=False)["results.jsonl"])


def test_each_provider_format_runs_on_another_provider(gateway: LocalGateway, tmp_path: Path) -> None:
    cases = [
        ("openai", OPENAI_LINES, JobSpec(provider="anthropic", model="claude-3-5-haiku-latest")),
        ("anthropic", ANTHROPIC_LINES, JobSpec(provider="bedrock", model=BEDROCK_MODEL)),
        ("bedrock", BEDROCK_LINES, JobSpec(provider="openai", model="gpt-4o-mini")),
    ]
    jobs = {
        name: gateway.submit_file(write_jsonl(tmp_path / f"{name}-lines.jsonl", lines), spec)
        for name, lines, spec in cases
    }
    results = {}
    for name, job_id in jobs.items():
        job = gateway.wait(job_id, timeout_s=300)
        assert job.status.value == "completed", (name, job.reason)
        results[name] = read_jsonl(
            gateway.export(job_id, tmp_path / name, results_table=False)["results.jsonl"]
        )

    openai_on_anthropic = results["openai"]
    assert [r["custom_id"] for r in openai_on_anthropic] == ["o-1", "o-2"]
    assert openai_on_anthropic[0]["response"]["content"].startswith(
        '[claude-3-5-haiku-latest] Re: "Name a colour"'
    )
    assert openai_on_anthropic[0]["raw"]["result"]["type"] == "succeeded"  # Anthropic's own result line
    (call,) = openai_on_anthropic[1]["response"]["tool_calls"]
    assert call["name"] == "weather"

    anthropic_on_bedrock = results["anthropic"]
    assert [r["custom_id"] for r in anthropic_on_bedrock] == ["a-1", "a-2"]
    assert anthropic_on_bedrock[0]["response"]["content"].startswith(f'[{BEDROCK_MODEL}] Re: "Question 1"')
    assert "modelOutput" in anthropic_on_bedrock[0]["raw"]  # Bedrock's own output record

    bedrock_on_openai = results["bedrock"]
    assert [r["custom_id"] for r in bedrock_on_openai] == ["b-1", "b-2"]
    assert bedrock_on_openai[1]["response"]["content"].startswith('[gpt-4o-mini] Re: "Record 2"')
    assert bedrock_on_openai[1]["raw"]["response"]["status_code"] == 200  # OpenAI's own output line


def test_a_csv_table_fills_its_template_per_row_and_names_a_missing_column(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    table = tmp_path / "tickets.csv"
    table.write_bytes(b'ticket,text\r\nT-1,"Login fails, again"\r\nT-2,\r\nT-3,Slow search\r\n')
    spec = JobSpec(
        provider="openai",
        model="gpt-4o-mini",
        template="Classify this ticket: {text}",
        id_column="ticket",
        on_invalid="skip",
    )

    job, results = run_job(gateway, table, spec, tmp_path / "out")

    assert [(r["custom_id"], r["line"]) for r in results] == [("T-1", 2), ("T-2", 3), ("T-3", 4)]
    assert results[0]["response"]["content"].startswith(
        '[gpt-4o-mini] Re: "Classify this ticket: Login fails, again"'
    )
    assert "line 3, field text: column 'text'" in results[1]["error"]
    assert json.loads(json.dumps(job.counts.model_dump()))["invalid"] == 1
