"""Line-exact JSONL streaming: numbered lines from any byte stream, in constant memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

READ_BLOCK_BYTES = 1024 * 1024
UTF8_BOM = b"\xef\xbb\xbf"


def iter_numbered_lines(
    stream: IO[bytes], block_bytes: int = READ_BLOCK_BYTES
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` for every line, 1-based, without the line end.

    Only ``\\n`` ends a line (a trailing ``\\r`` is dropped), so line numbers match what an editor
    shows. A UTF-8 byte-order mark before the first line is dropped. Blank lines are yielded too:
    the caller decides what they mean. A final line without a newline is yielded; a file that ends
    with a newline does not yield an extra empty line.
    """
    pending = b""
    number = 0
    first = True
    while True:
        block = stream.read(block_bytes)
        if not block:
            break
        if first:
            block = block.removeprefix(UTF8_BOM)
            first = False
        parts = (pending + block).split(b"\n")
        pending = parts.pop()
        for part in parts:
            number += 1
            yield number, part.removesuffix(b"\r")
    if pending:
        yield number + 1, pending.removesuffix(b"\r")
