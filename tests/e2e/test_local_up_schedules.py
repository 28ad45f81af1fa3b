"""`batch-gateway local up` fires the stack's schedules on a timer, as EventBridge would on AWS."""

from __future__ import annotations

import queue
import time
from pathlib import Path

from tests.e2e.test_cli_api import LocalUp


def test_local_up_runs_scheduled_submissions_and_the_reconciler_every_interval(tmp_path: Path) -> None:
    server = LocalUp(tmp_path, "--schedule-interval", "0.5")
    try:
        printed: list[str] = []
        deadline = time.monotonic() + 60
        while sum("ReconcilerFunction" in line for line in printed) < 2 and time.monotonic() < deadline:
            try:
                printed.append(server.lines.get(timeout=1))
            except queue.Empty:
                continue
    finally:
        assert server.stop() == 0
    runs = [line.strip() for line in printed if line.startswith("schedule: ")]
    assert (
        runs[:4]
        == [
            "schedule: SchedulerFunction submitted=0, skipped=0, deferred=0",
            "schedule: ReconcilerFunction checked=0, running=0, stuck=0, resumed=0, failed=0, cleaned_up=0, errors=0",
        ]
        * 2
    )
