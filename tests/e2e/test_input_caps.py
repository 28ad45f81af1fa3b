"""Input caps (MaxInputBytes, MaxLineBytes): readable refusals, and every other line still answered."""

from __future__ import annotations

import json
from pathlib import Path

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import read_jsonl

MAX_LINE = 2048
MAX_INPUT = 50_000
OPTIONS = LocalOptions(
    parameter_overrides=(("MaxLineBytes", str(MAX_LINE)), ("MaxInputBytes", str(MAX_INPUT)))
)
SPEC = JobSpec(provider="openai", model="gpt-4o-mini", on_invalid="skip")


def _line(custom_id: str, message: str) -> bytes:
    return json.dumps({"custom_id": custom_id, "user_message": message}).encode() + b"\n"


def test_over_long_lines_and_oversized_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    capped = tmp_path / "capped.jsonl"
    capped.write_bytes(_line("short-1", "hi") + _line("long", "x" * 5 * MAX_LINE) + _line("short-2", "there"))
    oversized = tmp_path / "oversized.jsonl"
    oversized.write_bytes(b"".join(_line(f"t{i}", "y" * 400) for i in range(150)))  # ~63 KB
    assert oversized.stat().st_size > MAX_INPUT

    with LocalGateway(OPTIONS) as gateway:
        capped_job = gateway.wait(gateway.submit_file(capped, SPEC), timeout_s=120)
        results = read_jsonl(gateway.export(capped_job.job_id, tmp_path / "capped")["results.jsonl"])
        rejected = gateway.wait(gateway.submit_file(oversized, SPEC), timeout_s=60)

    assert capped_job.status.value == "completed"
    assert [r["custom_id"] for r in results] == ["short-1", "line-2", "short-2"]
    assert results[0]["error"] is None
    assert results[2]["error"] is None
    assert results[1]["error"] == (
        "invalid input: line 2: the line is longer than 2,048 bytes (the stack's MaxLineBytes): "
        "shorten user_message or extra, or raise MaxLineBytes"
    )
    assert rejected.status.value == "failed"
    assert rejected.reason is not None
    assert "more than the 50,000 bytes the stack takes (MaxInputBytes): split it" in rejected.reason
