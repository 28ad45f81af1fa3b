"""An estimate before anything is sent, and the job that follows it: the same requests, batches and
invalid lines, and a cost range that holds the actual cost (``POST /batches/estimate``, the CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from batch_gateway_local.cli.commands import main
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl
from tests.stack_helpers import event


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=4)) as local:
        yield local


def _api(gateway: LocalGateway, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    assert gateway.stack is not None
    request = event("api_post_batches.json", IDEMPOTENCY_KEY="unused")
    del request["headers"]["Idempotency-Key"]
    del request["multiValueHeaders"]["Idempotency-Key"]
    request["resource"] = request["path"] = path
    request["requestContext"]["resourcePath"], request["requestContext"]["path"] = path, f"/v1{path}"
    request["body"] = json.dumps(body)
    response = boto3.client("lambda").invoke(
        FunctionName=gateway.stack.functions["ApiFunction"], Payload=json.dumps(request).encode()
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return payload["statusCode"], json.loads(payload["body"])


ITEMS: list[Any] = [
    {
        "custom_id": f"t-{n}",
        "user_message": f"Classify ticket {n}: the invoice total is wrong.",
        "max_tokens": 60,
    }
    for n in range(1, 10)
] + [{"custom_id": "bad", "user_message": "", "temperature": 7}]


def test_the_estimate_matches_the_job_that_follows_and_its_cost_range_holds_the_cost(
    gateway: LocalGateway,
) -> None:
    body = {"provider": "openai", "model": "gpt-4o-mini", "on_invalid": "skip", "items": ITEMS}
    status, estimate = _api(gateway, "/batches/estimate", body)
    assert status == 200, estimate
    assert (estimate["accepted"], estimate["requests"], estimate["invalid_lines"]) == (True, 9, 1)
    assert estimate["provider_batches"] == 3  # 9 requests, 4 a chunk
    assert [e["line"] for e in estimate["errors"]] == [10, 10]  # both of line 10's problems
    assert estimate["output_tokens_ceiling"] == 9 * 60

    status, submitted = _api(gateway, "/batches", body)
    assert status == 202, submitted
    job = gateway.wait(submitted["job_id"], timeout_s=300)

    assert (job.request_count, job.chunk_count, job.invalid_count) == (9, 3, 1)
    cost = estimate["cost"]
    assert job.cost.usd is not None
    assert cost["input_usd"] <= job.cost.usd <= cost["ceiling_usd"]
    actual = job.usage["prompt_tokens"]
    assert job.estimated_input_tokens == estimate["estimated_input_tokens"]  # the summary shows both
    # The estimator's goal: the provider's count within 15 % below the estimate, never over 10 % above.
    assert 0.85 * estimate["estimated_input_tokens"] <= actual <= 1.10 * estimate["estimated_input_tokens"]


def test_an_estimate_of_a_file_that_would_be_rejected_names_its_lines(gateway: LocalGateway) -> None:
    status, estimate = _api(
        gateway, "/batches/estimate", {"provider": "anthropic", "model": "claude-haiku-4-5", "items": ITEMS}
    )
    assert status == 200
    assert estimate["accepted"] is False
    assert estimate["reason"].startswith("rejected: 1 invalid line(s) — line 10:")
    assert estimate["quota"] == {"unit": "requests", "per_model": 100000, "chunks_at_once": 3}


def test_the_cli_estimates_a_local_file_and_exits_by_whether_intake_would_take_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "tickets.jsonl", ITEMS)
    assert (
        main(
            ["estimate", str(path), "--provider", "openai", "--model", "gpt-4o-mini", "--on-invalid", "skip"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "requests: 9; invalid lines: 1; provider batches: 1" in out
    assert "line 10:" in out
    assert main(["estimate", str(path), "--provider", "openai", "--model", "gpt-4o-mini", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"].startswith("rejected:")
