"""`batch-gateway local run` as a user runs it: a separate process, files in, files and exit code out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import read_jsonl


def local_run(source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "batch_gateway_local.cli",
        "local",
        "run",
        str(source),
        "--out",
        str(out),
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)


def test_a_rejected_file_exits_non_zero_with_a_one_line_reason(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"custom_id": "a", "user_message": "hi"}\n{"custom_id": "b", "user_message": ""}\n')

    done = local_run(source, tmp_path / "out", "--provider", "openai", "--model", "gpt-4o-mini")

    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert "rejected: 1 invalid line(s)" in last_line
    assert "line 2" in last_line
    assert read_jsonl(tmp_path / "out" / "errors.jsonl") == [
        {
            "line": 2,
            "field": "user_message",
            "reason": "'user_message' must not be empty: give it a non-empty string",
            "custom_id": "b",
        }
    ]
    assert not (tmp_path / "out" / "results.jsonl").exists()


@pytest.mark.parametrize(
    ("scenario", "status"), [("fail", "failed"), ("expire", "completed"), ("item-errors", "completed")]
)
def test_every_scenario_exits_0_with_counts_that_add_up(tmp_path: Path, scenario: str, status: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(f'{{"custom_id": "id-{n}", "user_message": "question {n}"}}\n' for n in range(12))
    )

    done = local_run(source, tmp_path / "out", "--provider", "openai", "--model", "m", "--scenario", scenario)

    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == status
    assert sum(summary["counts"].values()) == 12
    ids = [row["custom_id"] for row in read_jsonl(tmp_path / "out" / "results.jsonl")]
    assert ids == [f"id-{n}" for n in range(12)]
    # What the workflow did: the job's execution and its one chunk's child, and the chunk row.
    workflow = json.loads((tmp_path / "out" / "workflow.json").read_text())
    assert workflow["child_executions"] == 1
    assert workflow["largest"]["history_events"] > 0
    chunks = read_jsonl(tmp_path / "out" / "chunks.jsonl")
    assert [c["chunk"] for c in chunks] == [1]
    assert chunks[0]["batches"]  # every provider batch of the chunk, per round and attempt
