"""A 25,000-line file of the reference library's BatchItems through `batch-gateway local run`.

In a file of its own: the two runs take a minute or more each, and pytest-xdist (``--dist loadfile``)
then runs them beside the other modules instead of after them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ractogateway.batch._models import BatchItem as ReferenceBatchItem
from ractogateway.batch._models import BatchResult as ReferenceBatchResult

from tests.e2e.test_cli_local_run import local_run


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku")])
def test_a_25000_line_reference_library_file_completes_in_input_order(
    tmp_path: Path, provider: str, model: str
) -> None:
    source = tmp_path / "big.jsonl"
    with source.open("w") as out:
        for n in range(1, 25_001):
            item = ReferenceBatchItem(
                custom_id=f"rec.{n}", user_message=f"Tag record {n}: late delivery", max_tokens=32
            )
            out.write(item.model_dump_json() + "\n")

    # The results table itself is checked by the smaller runs; reading 25,000 rows back from moto
    # would take longer than the job.
    done = local_run(source, tmp_path / "out", "--provider", provider, "--model", model, "--no-results-table")

    assert done.returncode == 0, done.stderr
    assert "status    completed" in done.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["chunk_count"] == 3  # default chunk size 10,000
    assert summary["counts"]["succeeded"] == 25_000
    ids = []
    with (tmp_path / "out" / "results.jsonl").open() as results:
        for line in results:
            result = ReferenceBatchResult.model_validate_json(line)  # the reference library reads our results
            assert result.ok
            ids.append(result.custom_id)
    assert ids == [f"rec.{n}" for n in range(1, 25_001)]
