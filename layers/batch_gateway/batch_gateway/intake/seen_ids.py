"""Duplicate custom_id detection in a few bytes per id, however long the file.

A ``dict`` of every custom_id grows by ~100 bytes per line (the string, the entry, the line
number): about 100 MB for a file of a million lines. :class:`SeenIds` keeps one 8-byte slot per id
in open-addressing tables backed by ``array('Q')`` (half full at most, so ~16 bytes per id), and
the ids themselves in a spill file on local disk, one record per input line. The table is split
in 16 shards by the hash's top bits, each doubling on its own, so growing never holds two copies
of more than a sixteenth of it.

A slot holds the high 32 bits of the id's ``hash()`` and the line it was first seen on. Two ids
whose slots agree are only *suspected* to be equal: the earlier line's id is read back from the
spill (a second look) before anyone is told, so a hash collision never passes for a duplicate and
a real duplicate still names both lines.
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import IO

_SHARD_BITS = 4  # 16 shards, picked by the top bits of the 32-bit key
_INITIAL_SLOTS = 1 << 10  # per shard
_LINE_BITS = 32
_LINE_MASK = (1 << _LINE_BITS) - 1
# Where the spill record of every CHECKPOINT-th line starts (line // CHECKPOINT indexes it).
_CHECKPOINT = 64


class SeenIds:
    """custom_id -> line of first use, for ids met in increasing line order.

    ``add`` and ``in`` cost a hash and a probe or two; memory is ~16 bytes per distinct id (plus
    8 bytes per 64 lines), the ids themselves live in ``spill_path`` (deleted by ``close``).
    """

    def __init__(self, spill_path: Path, hash_function: Callable[[str], int] = hash) -> None:
        self._hash = hash_function  # tests pass a poor one, to make ids collide
        self._shards = [array("Q", bytes(8 * _INITIAL_SLOTS)) for _ in range(1 << _SHARD_BITS)]
        self._counts = [0] * (1 << _SHARD_BITS)  # a shard grows past half full: probes stay short
        self._path = spill_path
        self._spill: IO[bytes] = spill_path.open("wb")
        self._reader: IO[bytes] | None = None
        self._written = 0  # bytes in the spill file
        # Records (JSON strings, "" for a line without one) of the lines of the current block, from
        # its first line up to _next_line; a block is written out whole when the next one begins.
        self._pending: list[str] = []
        self._next_line = 1
        self._checkpoints = array("Q", [0])  # where each block's records start in the spill

    def __len__(self) -> int:
        return sum(self._counts)

    @property
    def table_bytes(self) -> int:
        """Memory held by the table (the ids are on disk)."""
        return sum(len(shard) * shard.itemsize for shard in self._shards)

    def _key(self, custom_id: str) -> int:
        return (self._hash(custom_id) >> _LINE_BITS) & _LINE_MASK

    def _record(self, line: int, record: str) -> None:
        """Append the record of ``line`` (earlier lines without one get an empty one)."""
        if line < self._next_line:
            raise ValueError(f"lines must be added in increasing order: {line} after {self._next_line - 1}")
        if line > _LINE_MASK:
            raise ValueError(f"line {line} is beyond what SeenIds can number")
        while self._next_line <= line:
            if self._next_line % _CHECKPOINT == 0:
                data = "".join(f"{pending}\n" for pending in self._pending).encode()
                self._spill.write(data)
                self._written += len(data)
                self._checkpoints.append(self._written)
                self._pending.clear()
            self._pending.append(record if self._next_line == line else "")
            self._next_line += 1

    def _id_on(self, line: int) -> str | None:
        """The id recorded for ``line`` (the second look): from the current block or the spill."""
        block = line // _CHECKPOINT
        first = max(block * _CHECKPOINT, 1)
        if block == len(self._checkpoints) - 1:
            record = self._pending[line - first]
        else:
            self._spill.flush()
            if self._reader is None:
                self._reader = self._path.open("rb")
            self._reader.seek(self._checkpoints[block])
            for _ in range(line - first):
                self._reader.readline()
            record = self._reader.readline().rstrip(b"\n").decode()
        return json.loads(record) if record else None

    def _find(self, custom_id: str, key: int) -> tuple[int, int]:
        """(slot index, first line) of ``custom_id``; first line 0 when absent (slot index: where it goes)."""
        slots = self._shards[key >> (32 - _SHARD_BITS)]
        mask = len(slots) - 1
        index = key & mask
        while True:
            value = slots[index]
            if not value:
                return index, 0
            if value >> _LINE_BITS == key:
                line = value & _LINE_MASK
                if self._id_on(line) == custom_id:
                    return index, line
            index = (index + 1) & mask

    def add(self, custom_id: str, line: int, encoded: str | None = None) -> int:
        """Record ``custom_id`` as used on ``line``; returns the line it was first used on (``line`` if new).

        Lines must come in increasing order (each line at most once). ``encoded``: the id as JSON
        (``json.dumps(custom_id, ensure_ascii=False)``), when the caller has it already.
        """
        # The probe of _find, inlined: this runs once per input line.
        key = (self._hash(custom_id) >> 32) & 0xFFFFFFFF  # the high 32 bits; the low ones live in the key too
        shard = key >> 28  # 32 - _SHARD_BITS
        slots = self._shards[shard]
        mask = len(slots) - 1
        index = key & mask
        value = slots[index]
        while value:
            if value >> 32 == key and self._id_on(value & 0xFFFFFFFF) == custom_id:
                return value & 0xFFFFFFFF
            index = (index + 1) & mask
            value = slots[index]
        if line == self._next_line and line % _CHECKPOINT:  # the common case: the next line, same block
            self._pending.append(encoded or encode_basestring_ascii(custom_id))
            self._next_line = line + 1
        else:
            self._record(line, encoded or encode_basestring_ascii(custom_id))
        slots[index] = (key << 32) | line
        self._counts[shard] += 1
        if self._counts[shard] > mask >> 1:
            self._grow(shard)
        return line

    def __contains__(self, custom_id: object) -> bool:
        if not isinstance(custom_id, str):
            return False
        return self._find(custom_id, self._key(custom_id))[1] != 0

    def _grow(self, shard: int) -> None:
        old = self._shards[shard]
        size = len(old) * 2
        slots = array("Q", bytes(8 * size))
        mask = size - 1
        for value in filter(None, old):  # occupied slots only, skipped at C speed
            index = (value >> _LINE_BITS) & mask
            while slots[index]:
                index = (index + 1) & mask
            slots[index] = value
        self._shards[shard] = slots

    def close(self) -> None:
        for handle in (self._spill, self._reader):
            if handle is not None:
                handle.close()
        self._reader = None
        if self._path.exists():
            os.unlink(self._path)
