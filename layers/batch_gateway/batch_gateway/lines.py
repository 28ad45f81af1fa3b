"""Line-exact JSONL streaming: numbered lines from any byte stream, in constant memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

READ_BLOCK_BYTES = 1024 * 1024
UTF8_BOM = b"\xef\xbb\xbf"


class ReadsBytes(Protocol):
    """Anything with ``read(size) -> bytes``: a file, an S3 stream, a ranged reader."""

    def read(self, size: int, /) -> bytes: ...


def iter_numbered_lines(
    stream: ReadsBytes, block_bytes: int = READ_BLOCK_BYTES, max_line_bytes: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` for every line, 1-based, without the line end.

    Only ``\\n`` ends a line (a trailing ``\\r`` is dropped), so line numbers match what an editor
    shows. A UTF-8 byte-order mark before the first line is dropped. Blank lines are yielded too:
    the caller decides what they mean. A final line without a newline is yielded; a file that ends
    with a newline does not yield an extra empty line.

    With ``max_line_bytes``, a line longer than that is cut to its first bytes (still longer than
    the cap, so the caller can tell) and the rest is skipped: memory stays bounded even for a file
    with no line ends at all.
    """
    pending = b""
    number = 0
    first = True
    skipping = False  # inside an over-long line whose kept head is in `pending`
    while True:
        block = stream.read(block_bytes)
        if not block:
            break
        if first:
            block = block.removeprefix(UTF8_BOM)
            first = False
        if skipping:
            end = block.find(b"\n")
            if end < 0:
                continue
            block, skipping = block[end:], False
        parts = (pending + block).split(b"\n")
        pending = parts.pop()
        for part in parts:
            number += 1
            yield number, part.removesuffix(b"\r")
        if max_line_bytes is not None and len(pending) > max_line_bytes:
            pending, skipping = pending[: max_line_bytes + 2], True  # +2: still over once a \r is cut
    if pending:
        yield number + 1, pending.removesuffix(b"\r")
