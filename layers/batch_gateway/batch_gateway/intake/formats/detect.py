"""Which format an input file is in, and its records for intake's per-line loop.

:func:`open_records` decides once per file, before the loop (the per-line path of BatchItem files
stays as it was): the job spec's ``format`` when set; else CSV when the spec has a template; else
the keys of the first non-blank line (``params``: Anthropic; ``modelInput`` or ``recordId``:
Bedrock; ``body`` with ``url`` or ``method``: OpenAI; anything else, even a broken line: our
BatchItems, whose checks then explain it). The lines read to decide are given back first.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import IO, NamedTuple

from batch_gateway.intake.formats.csv_rows import CsvRows
from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import InputFormat, JobSpec


class Records(NamedTuple):
    """An input file's records ``(line, bytes)`` in its format (``table``: the CSV file's rows)."""

    format: InputFormat
    lines: Iterator[tuple[int, bytes]]
    table: CsvRows | None = None


def detect_format(first_line: bytes) -> InputFormat:
    """The format a first line is written in (``items`` when it says nothing else)."""
    try:
        obj = json.loads(first_line)
    except ValueError:
        return "items"
    if not isinstance(obj, dict):
        return "items"
    if "params" in obj:
        return "anthropic"
    if "modelInput" in obj or "recordId" in obj:
        return "bedrock"
    if "body" in obj and ("url" in obj or "method" in obj):
        return "openai"
    return "items"


def open_records(stream: IO[bytes], spec: JobSpec, max_line_bytes: int) -> Records:
    """The file's records; ``csv_rows.FormatError`` when a CSV file's header cannot serve the template."""
    if spec.format == "csv" or (spec.format is None and spec.template):
        assert spec.template is not None  # JobSpec requires it for CSV
        table = CsvRows(stream, spec.template, spec.id_column, max_line_bytes)
        return Records("csv", table.records(), table)
    lines = iter_numbered_lines(stream, max_line_bytes=max_line_bytes)
    if spec.format is not None:
        return Records(spec.format, lines)
    read: list[tuple[int, bytes]] = []
    for numbered in lines:
        read.append(numbered)
        if numbered[1].strip():
            break
    input_format = detect_format(read[-1][1]) if read else "items"
    return Records(input_format, itertools.chain(read, lines))
