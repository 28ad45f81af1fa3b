"""Jobs of many chunks: every chunk a child execution whose history does not grow with the chunk count.

A job's chunks run in a Distributed Map (statemachine/batch_job.asl.json), so each chunk's events go
to a history of its own and the job's own history stays the same size whatever the chunk count;
the chunks run at once, not ten at a time. The 200- and 1,000-chunk measurements are in bench/
(``bench/history.py``); here a job of a few dozen one-line chunks keeps the suite short.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import read_jsonl, write_jsonl

MANY = 30
FEW = 3
SLACK_EVENTS = 26
"""Two more poll cycles (13 events each) than the small job's largest history: the emulator's batches
end after a number of polls, and a poll may see the end one cycle later under load."""


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=1)) as local:
        yield local


def run(gateway: LocalGateway, tmp_path: Path, name: str, lines: int) -> tuple[str, dict[str, Path]]:
    items = [{"custom_id": f"{name}-{n}", "user_message": f"Question {n}"} for n in range(1, lines + 1)]
    job_id = gateway.submit_file(
        write_jsonl(tmp_path / f"{name}.jsonl", items), JobSpec(provider="openai", model="gpt-4o-mini")
    )
    job = gateway.wait(job_id, timeout_s=300)
    assert job.status.value == "completed", job.reason
    files = gateway.export(job_id, tmp_path / name, results_table=False)
    files.update(gateway.export_workflow(job_id, tmp_path / name))
    return job_id, files


def most_in_flight(chunks: list[dict[str, object]]) -> int:
    """The most provider batches in flight at one moment: from submission until the poll that saw the end."""
    edges = sorted(
        [(float(str(c["submitted_at"])), 1) for c in chunks]
        + [(float(str(c["polled_at"])), -1) for c in chunks]
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_a_job_of_many_chunks_completes_and_its_largest_history_is_that_of_a_small_job(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    _, few = run(gateway, tmp_path, "few", FEW)
    job_id, many = run(gateway, tmp_path, "many", MANY)

    results = read_jsonl(many["results.jsonl"])
    assert [r["custom_id"] for r in results] == [f"many-{n}" for n in range(1, MANY + 1)]
    assert all(r["error"] is None for r in results)
    small, large = (json.loads(files["workflow.json"].read_text()) for files in (few, many))
    # The job's own execution plus one child execution per chunk, each with its own history.
    assert large["execution_count"] == MANY + 1
    assert large["child_executions"] == MANY
    assert {e["status"] for e in large["executions"]} == {"SUCCEEDED"}
    own = next(e for e in large["executions"] if e["name"] == job_id)
    assert (
        own["history_events"] == next(e for e in small["executions"] if "parent" not in e)["history_events"]
    )
    assert large["largest"]["history_events"] <= small["largest"]["history_events"] + SLACK_EVENTS
    # chunks.jsonl: one row per chunk with its provider batch; far more than ten were in flight at once.
    chunks = read_jsonl(many["chunks.jsonl"])
    assert [c["chunk"] for c in chunks] == list(range(1, MANY + 1))
    assert all(c["batches"]["r0_a0"] == c["provider_batch_id"] for c in chunks)
    assert most_in_flight(chunks) > 10
