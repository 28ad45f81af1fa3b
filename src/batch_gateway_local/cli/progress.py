"""How a long wait shows on the terminal: one status line, rewritten in place, and a progress bar.

Shared by ``local run`` (following a job on the offline stack) and ``submit --wait`` (following a job
through the HTTP API); on a terminal the line is rewritten in place, otherwise a new line is printed
each time the text changes, so logs of a CI run stay readable.
"""

from __future__ import annotations

from typing import Any, TextIO


class ProgressLine:
    """One status line, rewritten in place on a terminal and printed on change otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream, self._last = stream, ""
        self._tty = stream.isatty()

    def show(self, text: str) -> None:
        if text == self._last:
            return
        self._last = text
        if self._tty:
            self._stream.write("\r\033[K" + text)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def done(self) -> None:
        if self._tty and self._last:
            self._stream.write("\n")


def bar(done: int, total: int, width: int = 30) -> str:
    filled = width if total == 0 else int(width * done / total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def api_job_progress(job: dict[str, Any]) -> tuple[int, int, str]:
    """Items done, items in all, and status of a job as the HTTP API describes it."""
    total = int(job.get("request_count") or 0) + int(job.get("invalid_count") or 0)
    done = sum(
        sum((chunk.get("counts") or {}).values())
        for chunk in job.get("chunks", [])
        if chunk.get("collected_at")
    )
    if job.get("finished_at"):
        done = total
    return done, total, str(job.get("status"))
