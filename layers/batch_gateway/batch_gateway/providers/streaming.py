"""Line streaming that survives broken downloads without duplicating a line (no SDK import).

Large provider result files have broken mid-download in the wild. :func:`resumable_lines` opens the
stream, yields its non-blank lines, and when the connection breaks it opens the stream again from the
start and skips the lines it has already yielded (the files are immutable, so counting is enough).

Kept our own: neither SDK nor its HTTP library resumes a broken streamed download, and reopening
and skipping what was yielded needs no Range support from the provider, so it works the same for
OpenAI files, Anthropic results and Bedrock's S3 output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager

from batch_gateway.providers.errors import ProviderError

LineSource = Callable[[], AbstractContextManager[Iterable[str]]]


def resumable_lines(
    open_lines: LineSource,
    *,
    what: str,
    retryable: tuple[type[BaseException], ...],
    attempts: int = 6,
    sleep: Callable[[float], None] = time.sleep,
    max_backoff: float = 30.0,
) -> Iterator[tuple[int, str]]:
    """Yield ``(number, line)`` for every non-blank line (1-based numbers over non-blank lines).

    ``open_lines()`` returns a context manager giving an iterable of text lines (one request each).
    On an exception in ``retryable`` the stream is reopened; ``attempts`` consecutive failures without
    progress raise ProviderError naming ``what`` and the last error.
    """
    delivered = 0
    failures = 0
    while True:
        seen = 0
        delivered_before = delivered
        try:
            with open_lines() as lines:
                for line in lines:
                    if not line.strip():
                        continue
                    seen += 1
                    if seen <= delivered:
                        continue  # already yielded before the stream broke
                    delivered += 1
                    yield seen, line
            return
        except retryable as exc:
            failures = 1 if delivered > delivered_before else failures + 1
            if failures >= attempts:
                raise ProviderError(
                    f"Downloading {what} failed {failures} times in a row after {delivered} lines; "
                    f"last error: {str(exc) or type(exc).__name__}"
                ) from exc
            sleep(min(2.0 ** (failures - 1), max_backoff))
