"""The Step Functions history budget, projected from the real ASL at the template's defaults.

``bench/history.py`` walks one chunk through statemachine/batch_job.asl.json (its Choice states
read what the real handlers return); a state added to the chunk's path without the walk knowing
breaks the projection, and a path that grows past the goal breaks the design. Both show here, not
only when someone runs ``make bench``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).parents[2] / "bench"


def _bench_module(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))  # history.py imports orchestration beside it
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


history = _bench_module("history")


def test_every_execution_stays_under_the_goal_even_on_the_worst_retry_path() -> None:
    projection = history.projected()
    worst = projection["worst_retry_path"]
    assert worst["batches"] == 6  # (1 + FailedBatchRetries) x (1 + RetryRounds) at the defaults
    assert worst["history_events"] < history.GOAL  # 10,000: 40 % of the 25,000-event quota
    assert projection["job_execution"] < 50  # the job's own history does not grow with its chunks


def test_a_day_long_batch_costs_a_chunk_about_fifty_polls_not_thousands() -> None:
    day = history.projected()["chunk_execution"]["24h"]
    assert 40 <= day["polls"] <= 60  # backoff from 30 s doubling to 30 min
    assert day["history_events"] < 1_000
