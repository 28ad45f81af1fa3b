"""`batch-gateway local up` and the CLI client as a user runs them: separate processes, over HTTP."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import read_jsonl, write_jsonl

CLI = [sys.executable, "-m", "batch_gateway_local.cli"]


class LocalUp:
    """A `local up` process on a free port; its API URL (and key) parsed from what it prints."""

    def __init__(self, tmp: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [*CLI, "local", "up", "--port", "0", "--logs", str(tmp / "function-logs.jsonl"), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        stdout = self.process.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        self.lines = lines  # what it printed after the lines read here
        self.url = ""
        self.api_key: str | None = None
        deadline = time.monotonic() + 60
        while not (self.url and (self.api_key or "api-key" not in extra)):
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise AssertionError(
                    f"local up printed no URL: {self.process.stderr.read() if self.process.stderr else ''}"
                ) from None
            if found := re.search(r"Batch Gateway API: (\S+)", line):
                self.url = found.group(1)
            if found := re.search(r"x-api-key: (\S+)'", line):
                self.api_key = found.group(1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # our own child, by its pid
        return self.process.wait(timeout=60)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def local_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalUp]:
    server = LocalUp(tmp_path_factory.mktemp("local-up"))
    yield server
    assert server.stop() == 0  # SIGTERM ends it cleanly


def test_submit_wait_then_results_round_trip(local_up: LocalUp, tmp_path: Path, make_items: object) -> None:
    rows = [{"custom_id": f"rt.{n}", "user_message": f"Tag record {n}: late delivery"} for n in range(1, 31)]
    rows[4]["user_message"] += " [[emulator:error-400]]"
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "results.jsonl"

    submitted = cli(
        "submit", str(source), "--endpoint", local_up.url, "--provider", "anthropic", "--model", "claude-haiku",
        "--system-prompt", "Be brief.", "--wait", "-o", str(out),
    )  # fmt: skip

    assert submitted.returncode == 0, submitted.stderr
    assert "status    completed" in submitted.stdout
    assert "30/30 items" in submitted.stderr  # the progress bar reached the end
    results = read_jsonl(out)
    assert [r["custom_id"] for r in results] == [f"rt.{n}" for n in range(1, 31)]
    assert [r["custom_id"] for r in results if r["error"]] == ["rt.5"]
    job_id = re.search(r"job\s+(\S+)", submitted.stdout).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"in-[0-9a-f]{16}", job_id)  # named after the file's stem

    env = {"BATCH_GATEWAY_ENDPOINT": local_up.url}
    status = cli("status", job_id, "--json", env=env)
    assert status.returncode == 0, status.stderr
    detail = json.loads(status.stdout)
    assert (detail["counts"]["succeeded"], detail["counts"]["errored"]) == (29, 1)
    assert detail["chunks"][0]["provider_batches"]

    listing = cli("list", "--json", env=env)
    assert job_id in [json.loads(line)["job_id"] for line in listing.stdout.splitlines()]

    again = cli("results", job_id, "-o", str(tmp_path / "again.jsonl"), env=env)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.jsonl").read_bytes() == out.read_bytes()
    errors = cli("results", job_id, "--errors", env=env)
    assert [json.loads(line)["custom_id"] for line in errors.stdout.splitlines()] == ["rt.5"]

    cancelled = cli("cancel", job_id, env=env)
    assert cancelled.returncode == 0
    assert cancelled.stdout.strip() == f"job {job_id}: completed"


def test_an_invalid_file_is_refused_with_line_details(local_up: LocalUp, tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "bad.jsonl", [{"custom_id": "a", "user_message": "hi"}, {"custom_id": "b"}]
    )

    done = cli("submit", str(source), "--endpoint", local_up.url, "--provider", "openai", "--model", "m")

    assert done.returncode == 1
    assert "invalid_items, HTTP 422" in done.stderr
    assert '"line": 2, "field": "user_message"' in done.stderr


def test_an_unknown_job_exits_non_zero(local_up: LocalUp) -> None:
    done = cli("status", "no-such-job", "--endpoint", local_up.url)
    assert done.returncode == 1
    assert "no job 'no-such-job' (not_found, HTTP 404)" in done.stderr


def test_api_key_mode_needs_the_printed_key(tmp_path: Path) -> None:
    server = LocalUp(tmp_path, "--auth", "api-key")
    try:
        refused = cli("list", "--endpoint", server.url)
        assert refused.returncode == 1
        assert "HTTP 403" in refused.stderr
        assert server.api_key
        allowed = cli("list", "--endpoint", server.url, "--api-key", server.api_key)
        assert allowed.returncode == 0, allowed.stderr
    finally:
        assert server.stop() == 0
