"""CSV tables: one item per row, its prompt the job's template filled from the row's columns.

The first row names the columns; ``template`` (``Classify this ticket: {text}``) names the ones a
prompt uses, ``{{`` and ``}}`` are literal braces, and ``id_column`` the column whose value is the
item's custom_id (without it, ``row-<n>``, n counting data rows from 1). A template naming a column
the header lacks rejects the file (:class:`FormatError`); a row whose used column is missing or
empty is a line error naming the line and the column.

Read streaming in constant memory: the bytes are decoded incrementally (UTF-8, a BOM dropped,
undecodable bytes kept as surrogate escapes so the row that holds them is a line error), cut at
``\\n`` and fed to the csv module, which handles quoting, quoted line breaks and CRLF. Line
numbers are the row's first physical line. :meth:`CsvRows.records` gives each row to intake as a
JSON array of its cells (the same bytes-per-record loop as JSONL files); :meth:`CsvRows.item`
turns one into the BatchItem fields intake stages as any BatchItem line.
"""

from __future__ import annotations

import codecs
import csv
import json
import string
from collections.abc import Iterator
from typing import IO, Any

from batch_gateway.intake.checks import MAX_CUSTOM_ID_BYTES, LineError
from batch_gateway.lines import READ_BLOCK_BYTES

_SURROGATES = range(0xDC80, 0xDD00)  # where surrogateescape puts undecodable bytes


class FormatError(ValueError):
    """The whole file cannot be read in its format (the message says what to change)."""


def template_pieces(template: str) -> list[tuple[str, str | None]]:
    """(literal text, column or None) pairs of a template; FormatError for what it cannot be."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise FormatError(
            f"the template is not valid ({exc}): write columns as {{name}}, braces as {{{{ }}}}"
        ) from None
    pieces = []
    for literal, column, spec, conversion in parsed:
        if column is not None and (not column.strip() or column.isdigit() or spec or conversion):
            raise FormatError(f"the template's field {{{column}}} must be a plain column name, e.g. {{text}}")
        pieces.append((literal, column))
    return pieces


def _text_lines(stream: IO[bytes]) -> Iterator[str]:
    """The stream's text, one ``\\n``-ended line at a time (csv joins quoted line breaks itself)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
    pending = ""
    while block := stream.read(READ_BLOCK_BYTES):
        parts = (pending + decoder.decode(block)).split("\n")
        pending = parts.pop()
        for part in parts:
            yield part + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


class CsvRows:
    """A CSV input file: its header, then its rows as records and items."""

    def __init__(self, stream: IO[bytes], template: str, id_column: str | None, max_line_bytes: int) -> None:
        self._pieces = template_pieces(template)
        csv.field_size_limit(max(csv.field_size_limit(), max_line_bytes))
        self._reader = csv.reader(_text_lines(stream))
        try:
            header = next(self._reader, None)
            while header is not None and not any(cell.strip() for cell in header):  # leading blank lines
                header = next(self._reader, None)
        except csv.Error as exc:
            raise FormatError(f"the CSV header row cannot be read ({exc})") from None
        self.columns = [name.strip() for name in header or []]
        used = [column for _, column in self._pieces if column is not None]
        missing = [name for name in [*used, *([id_column] if id_column else [])] if name not in self.columns]
        if missing:
            shown = ", ".join(self.columns) or "none: the file is empty"
            raise FormatError(
                f"the template or id-column names column '{missing[0]}', which the CSV header lacks (columns: {shown})"
            )
        self._index = {name: position for position, name in enumerate(self.columns)}
        self._id_column, self._rows = id_column, 0

    def records(self) -> Iterator[tuple[int, bytes]]:
        """(first line, the row's cells as a JSON array) per non-blank row; csv errors as JSON strings."""
        end = self._reader.line_num
        while True:
            start = end + 1
            try:
                row = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row = None
                error = f"the row cannot be read as CSV ({exc})"
            end = self._reader.line_num
            if row is None:
                yield start, json.dumps(error).encode()
            elif any(cell.strip() for cell in row):
                yield start, json.dumps(row).encode("utf-8", "surrogateescape")

    def item(self, line: int, record: bytes) -> dict[str, Any] | list[LineError]:
        """The BatchItem fields of a row (custom_id, user_message), or its line errors."""
        cells = json.loads(record)
        if isinstance(cells, str):
            return [LineError(line=line, reason=cells)]
        self._rows += 1
        # Records are ASCII JSON: an undecodable byte shows as a \udcXX escape (checked precisely only then).
        if b"\\udc" in record and any(ord(char) in _SURROGATES for cell in cells for char in cell):
            return [LineError(line=line, reason="the row is not valid UTF-8: save the file as UTF-8")]
        custom_id = self._cell(cells, self._id_column) if self._id_column else f"row-{self._rows}"
        long_id = len(custom_id.encode()) > MAX_CUSTOM_ID_BYTES
        readable_id = custom_id if custom_id and not long_id else None
        errors = [
            self._missing(line, column, readable_id)
            for column in self._used()
            if not self._cell(cells, column)
        ]
        if errors:
            return errors
        if long_id:
            reason = f"the id in column '{self._id_column}' is longer than {MAX_CUSTOM_ID_BYTES} bytes: use a shorter id"
            return [LineError(line=line, field=self._id_column, reason=reason)]
        message = "".join(
            literal + (self._cell(cells, column) if column else "") for literal, column in self._pieces
        )
        if not message.strip():
            return [
                LineError(
                    line=line, reason="the template gives an empty prompt for this row", custom_id=custom_id
                )
            ]
        return {"custom_id": custom_id, "user_message": message}

    def _used(self) -> list[str]:
        columns = [column for _, column in self._pieces if column is not None]
        return list(dict.fromkeys([self._id_column, *columns] if self._id_column else columns))

    def _cell(self, cells: list[str], column: str) -> str:
        position = self._index[column]
        return cells[position] if position < len(cells) else ""

    def _missing(self, line: int, column: str, custom_id: str | None) -> LineError:
        role = "the id column" if column == self._id_column else "a column the template uses"
        reason = f"column '{column}' ({role}) is missing or empty in this row"
        return LineError(line=line, field=column, reason=reason, custom_id=custom_id)
