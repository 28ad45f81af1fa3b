"""Structured answers end to end: a job with a response schema, on each provider, through the offline stack.

Each provider is asked for JSON its own way (OpenAI/Azure json_schema, Anthropic/Bedrock a forced
tool); every answer lands in ``response.parsed`` and matches the schema, and an item whose first
answer does not match (the emulator's ``[[emulator:bad-json]]``) is recovered by the follow-up round.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest

from batch_gateway.intake.spec import job_id_for
from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway
from tests.conftest import read_jsonl, write_jsonl
from tests.stack_helpers import event, invoke

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["billing", "bug", "other"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["label", "confidence", "reasons"],
}
MODELS = {
    "openai": "gpt-4o-mini",
    "azure-openai": "my-gpt-4o-mini-batch",
    "anthropic": "claude-3-5-haiku-latest",
    "bedrock": "anthropic.claude-3-5-haiku-20241022-v1:0",
}


@pytest.mark.parametrize("provider", list(MODELS))
def test_every_answer_matches_the_schema_and_a_bad_one_is_recovered_by_the_follow_up_round(
    gateway: LocalGateway, tmp_path: Path, provider: str
) -> None:
    items = [
        {"custom_id": "t1", "user_message": "My invoice is wrong"},
        {"custom_id": "t2", "user_message": "The app crashes [[emulator:bad-json]]"},
        {"custom_id": "t3", "user_message": "Hello"},
    ]
    spec = JobSpec(provider=provider, model=MODELS[provider], response_schema=SCHEMA)
    job_id = gateway.submit_file(write_jsonl(tmp_path / f"tickets-{provider}.jsonl", items), spec)
    job = gateway.wait(job_id, timeout_s=180)
    lines = read_jsonl(gateway.export(job_id, tmp_path / "out", results_table=False)["results.jsonl"])

    assert job.status.value == "completed", job.reason
    assert [r["custom_id"] for r in lines] == ["t1", "t2", "t3"]
    for result in lines:
        assert result["error"] is None
        jsonschema.validate(result["response"]["parsed"], SCHEMA)
    assert job.retry_rounds == [{"round": 1, "retried": 1, "recovered": 1}]
    # The results table (the API's result rows) carries the parsed answers too.
    rows = {row["custom_id"]: row for row in gateway.results_table_rows(job_id)}
    assert {custom_id: rows[custom_id].get("parsed") for custom_id in rows} == {
        r["custom_id"]: r["response"]["parsed"] for r in lines
    }


def _post_batches(gateway: LocalGateway, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = event("api_post_batches.json", IDEMPOTENCY_KEY=f"schema-{hash(json.dumps(body))}")
    request["body"] = json.dumps(body)
    answer = invoke(gateway, "ApiFunction", request)
    body_text = answer["body"]
    if answer.get("isBase64Encoded"):
        body_text = base64.b64decode(body_text)
    return answer["statusCode"], json.loads(body_text)


def test_a_submission_s_response_schema_travels_to_intake_and_every_answer_is_parsed(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    items = [{"custom_id": "a", "user_message": "Refund please"}, {"custom_id": "b", "user_message": "Hi"}]
    body = {"provider": "openai", "model": "gpt-4o-mini", "response_schema": SCHEMA, "items": items}

    status, job = _post_batches(gateway, body)
    done = gateway.wait(job["job_id"], timeout_s=120)
    lines = read_jsonl(gateway.export(job["job_id"], tmp_path, results_table=False)["results.jsonl"])

    assert status == 202, job
    assert done.counts.succeeded == 2
    assert all(jsonschema.Draft202012Validator(SCHEMA).is_valid(r["response"]["parsed"]) for r in lines)


def test_a_schema_openai_s_strict_mode_cannot_take_is_a_422_that_says_what_to_change(
    gateway: LocalGateway,
) -> None:
    loose = {"type": "object", "properties": {"label": {"type": "string"}}}
    body = {
        "provider": "azure-openai",
        "model": "d",
        "response_schema": loose,
        "items": [{"custom_id": "a", "user_message": "x"}],
    }

    status, answer = _post_batches(gateway, body)

    assert status == 422
    assert answer["details"][0]["loc"] == ["body", "response_schema"]
    assert "does not require 'label'" in answer["message"]


def test_an_upload_naming_a_schema_that_is_not_there_is_rejected_saying_where_to_put_it(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "noschema.jsonl", [{"custom_id": "a", "user_message": "hi"}])
    metadata = {"provider": "openai", "model": "gpt-4o-mini", "response-schema": "missing.json"}
    put = boto3.client("s3").put_object(
        Bucket=gateway.bucket, Key="inbox/noschema.jsonl", Body=source.read_bytes(), Metadata=metadata
    )
    job = gateway.wait(job_id_for(gateway.bucket, "inbox/noschema.jsonl", put["VersionId"]), timeout_s=60)

    assert job.status.value == "failed"
    assert job.reason is not None
    assert f"the response schema s3://{gateway.bucket}/schemas/missing.json could not be read" in job.reason
