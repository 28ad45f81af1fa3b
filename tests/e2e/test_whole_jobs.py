"""Whole jobs through the offline stack, asserted as a user sees them: files, tables, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batch_gateway.models import BatchResult, JobSpec
from batch_gateway_local.emulator import MARKER_ERROR_400, MARKER_ERROR_500, emulated_answer
from batch_gateway_local.stack.local_gateway import LocalGateway
from tests.conftest import read_jsonl, write_jsonl

SYSTEM = "You are a concise assistant."


def run_job(gateway: LocalGateway, path: Path, spec: JobSpec, out: Path) -> tuple[Any, dict[str, Path]]:
    job_id = gateway.submit_file(path, spec)
    job = gateway.wait(job_id, timeout_s=300)
    return job, gateway.export(job_id, out)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_multi_chunk_file_ends_with_one_result_per_line_in_input_order(
    gateway: LocalGateway, tmp_path: Path, provider: str
) -> None:
    items = [
        {
            "custom_id": f"rec-{n:03d}",
            "user_message": f"Summarise ticket {n}: the printer jams.",
            "max_tokens": 64,
        }
        for n in range(1, 101)
    ]
    # ids Anthropic would refuse must survive the round trip
    items[3]["custom_id"] = "order.4 with spaces"
    items[5]["custom_id"] = "ünïcødé-6"
    items[7]["custom_id"] = "x" * 90
    items[9]["custom_id"] = "bg-3"
    source = write_jsonl(tmp_path / f"{provider}.jsonl", items)
    spec = JobSpec(provider=provider, model="small-model", system_prompt=SYSTEM)  # type: ignore[arg-type]

    job, files = run_job(gateway, source, spec, tmp_path / "out")

    assert job.status.value == "completed"
    assert job.chunk_count == 3  # 40 + 40 + 20 with ChunkMaxItems=40
    assert job.request_count == 100
    assert job.counts.succeeded == 100
    results = read_jsonl(files["results.jsonl"])
    assert [r["custom_id"] for r in results] == [i["custom_id"] for i in items]
    assert [r["line"] for r in results] == list(range(1, 101))
    for item, result in zip(items, results, strict=True):
        parsed = BatchResult.model_validate(result)
        assert parsed.ok
        assert parsed.response is not None
        expected = emulated_answer("small-model", SYSTEM, item["user_message"], 64)
        assert parsed.response.content == expected
        assert parsed.response.usage["total_tokens"] > 0
    summary = json.loads(files["summary.json"].read_text())
    assert summary["status"] == "completed"
    assert summary["counts"] == {"succeeded": 100, "errored": 0, "expired": 0, "cancelled": 0, "invalid": 0}
    assert summary["usage"]["total_tokens"] == sum(r["response"]["usage"]["total_tokens"] for r in results)
    assert summary["cost"]["usd"] is None  # "small-model" has no price: unknown, never zero
    assert summary["cost"]["unpriced_models"] == ["small-model"]
    job_row = json.loads(files["job.json"].read_text())
    assert job_row["status"] == "completed"
    assert job_row["counts"] == summary["counts"]
    rows = read_jsonl(files["results-table.jsonl"])
    assert sorted(r["custom_id"] for r in rows) == sorted(i["custom_id"] for i in items)
    assert all(r["ok"] for r in rows)


def test_item_failures_become_readable_error_lines(gateway: LocalGateway, tmp_path: Path) -> None:
    items = [
        {"custom_id": "fine", "user_message": "hello"},
        {"custom_id": "bad-request", "user_message": f"please fail {MARKER_ERROR_400}"},
        {"custom_id": "server-error", "user_message": f"please fail {MARKER_ERROR_500}"},
    ]
    source = write_jsonl(tmp_path / "errors.jsonl", items)

    job, files = run_job(gateway, source, JobSpec(provider="openai", model="m"), tmp_path / "out")

    assert job.status.value == "completed"
    assert (job.counts.succeeded, job.counts.errored) == (1, 2)
    results = {r["custom_id"]: r for r in read_jsonl(files["results.jsonl"])}
    assert results["fine"]["error"] is None
    assert "400" in results["bad-request"]["error"]
    assert "500" in results["server-error"]["error"]
    assert "Traceback" not in results["server-error"]["error"]


def test_a_file_with_invalid_lines_is_rejected_before_any_provider_call(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    before = dict(gateway.emulator.batches_created)
    source = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"custom_id": "a", "user_message": "ok"},
            {"custom_id": "b", "user_message": "ok", "temperature": 3.5},
            "{not json",
            "",
            {"custom_id": "a", "user_message": "dup"},
            {"custom_id": "e", "user_message": "ok", "colour": "red"},
        ],
    )

    job, files = run_job(gateway, source, JobSpec(provider="anthropic", model="m"), tmp_path / "out")

    assert job.status.value == "failed"
    assert job.reason.startswith("rejected: 4 invalid line(s)")
    errors = read_jsonl(files["errors.jsonl"])
    assert [(e["line"], e.get("field")) for e in errors] == [
        (2, "temperature"),
        (3, None),
        (5, "custom_id"),
        (6, "colour"),
    ]
    assert "first used on line 1" in errors[2]["reason"]
    assert gateway.emulator.batches_created == before
    assert "results.jsonl" not in files
