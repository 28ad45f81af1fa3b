"""The chunk index: one line per request of a staged chunk file, in the same order.

Intake writes ``chunk-NNNN.index.jsonl`` next to the requests file; line *i* says which input line
request *i* came from, its user ``custom_id`` and the id the provider sees (the two differ where a
provider restricts ids). Collect and the reconciler read it back to put each provider answer on its
input line. The writer and the reader live here together so the format has one home.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from pydantic import BaseModel, ConfigDict

from batch_gateway.lines import iter_numbered_lines

# Hot path (every input line): the ids arrive already JSON-encoded, so a %-format beats json.dumps.
_INDEX_LINE = '{"line": %d, "custom_id": %s, "provider_custom_id": %s}\n'


class IndexEntry(BaseModel):
    """One line of a chunk index."""

    model_config = ConfigDict(frozen=True)

    line: int
    custom_id: str
    provider_custom_id: str


def encode_index_line(line: int, custom_id_json: str, provider_custom_id_json: str) -> bytes:
    """An index line from the input line number and the two ids as JSON string literals."""
    return (_INDEX_LINE % (line, custom_id_json, provider_custom_id_json)).encode("utf-8")


def decode_index_line(raw: bytes) -> IndexEntry:
    """One index line back into its entry."""
    return IndexEntry.model_validate_json(raw)


def read_index(stream: IO[bytes]) -> Iterator[IndexEntry]:
    """Every entry of an index file, in request order."""
    for _, raw in iter_numbered_lines(stream):
        yield decode_index_line(raw)
