"""Per-invocation capture of a handler's stdout and stderr.

``sys.stdout``/``sys.stderr`` are replaced, while a handler runs, by a :class:`TeeStream` that writes
to the stream it replaced and to the log buffer of the invocation running in *this* thread (a
thread-local stack, so a nested invocation gets its own buffer). The runtime adds START/END/REPORT
lines and the traceback of an error, returns the text to moto as the invocation's log and copies it
to moto's CloudWatch Logs group ``/aws/lambda/<function>``.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TextIO, cast


class _Capture(threading.local):
    """Per-thread stack of log buffers of the invocations running in that thread."""

    def __init__(self) -> None:
        self.buffers: list[io.StringIO] = []


_CAPTURE = _Capture()


class TeeStream(io.TextIOBase):
    """Writes to the stream it replaced and to the current thread's invocation log, if any.

    Loggers created while a handler module is imported keep a reference to this object; it stays
    harmless after the runtime is removed (it then only forwards).
    """

    def __init__(self, underlying: TextIO) -> None:
        super().__init__()
        self._underlying = underlying

    def write(self, s: str) -> int:
        if _CAPTURE.buffers:
            _CAPTURE.buffers[-1].write(s)
        try:
            return self._underlying.write(s)
        except ValueError:  # the underlying stream was closed (e.g. a finished pytest capture)
            return len(s)

    def flush(self) -> None:
        with suppress(ValueError):
            self._underlying.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._underlying.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._underlying, "encoding", None) or "utf-8"


@contextmanager
def capturing(buffer: io.StringIO) -> Iterator[None]:
    """Everything this thread writes to stdout/stderr inside goes to ``buffer`` too."""
    _CAPTURE.buffers.append(buffer)
    try:
        with _redirect_output():
            yield
    finally:
        _CAPTURE.buffers.pop()


@contextmanager
def _redirect_output() -> Iterator[None]:
    old_out, old_err = sys.stdout, sys.stderr
    new_out = old_out if isinstance(old_out, TeeStream) else cast(TextIO, TeeStream(old_out))
    new_err = old_err if isinstance(old_err, TeeStream) else cast(TextIO, TeeStream(old_err))
    sys.stdout, sys.stderr = new_out, new_err
    try:
        yield
    finally:
        if sys.stdout is new_out:
            sys.stdout = old_out
        if sys.stderr is new_err:
            sys.stderr = old_err
