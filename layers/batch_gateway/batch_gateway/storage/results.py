"""The results table (one row per input line) and the result files staged in S3.

The results table is what the API pages through: rows keyed by (job_id, custom_id), a retried
write overwriting the same row. A row over the configured size keeps its metadata and points at
the whole result in S3 instead. Each round's results file holds keyed result lines,
``line<TAB>outcome<TAB>BatchResult JSON``: merging rounds and counting outcomes never parse the
JSON. A chunk's final results file (and the skipped lines' one) holds the plain result lines, the
bytes results.jsonl will hold, with a small sidecar of their input line numbers (runs of
consecutive lines): Finalize copies contiguous files server-side and merges the rest by line.
Every format is written and read only through this module.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, Key

from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import BatchResult
from batch_gateway.storage import keys, s3
from batch_gateway.storage.aws import dynamodb_table
from batch_gateway.storage.dynamo import from_dynamo, query_page, to_dynamo

if TYPE_CHECKING:
    from batch_gateway.settings import Settings

SECONDS_PER_DAY = 86_400


def keyed_result(line: int, result_json: bytes, outcome: str = "errored") -> bytes:
    """A staged result line: ``line<TAB>outcome<TAB>BatchResult JSON``.

    The merge key and the outcome come first, so merging and counting never parse the JSON.
    """
    return b"%010d\t%s\t%s\n" % (line, outcome.encode(), result_json)


def split_keyed_result(raw: bytes) -> tuple[int, str, bytes]:
    """A staged result line back into its input line number, outcome and BatchResult JSON."""
    line, outcome, payload = raw.split(b"\t", 2)
    return int(line), outcome.decode(), payload


LINES_SUFFIX = ".lines"


class StagedWriter:
    """Writes a staged results file: plain result lines, noting their input lines as runs."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.size = 0
        self.runs: list[list[int]] = []  # [first line, count], in file order

    def write(self, line: int, result_json: bytes) -> None:
        self._out.write(result_json + b"\n")
        self.size += len(result_json) + 1
        last = self.runs[-1] if self.runs else None
        if last is not None and last[0] + last[1] == line:
            last[1] += 1
        else:
            self.runs.append([line, 1])

    def sidecar(self) -> bytes:
        """The line-number sidecar: the results file's size, then ``first count`` per run."""
        return b"".join([b"%d\n" % self.size, *(b"%d %d\n" % (first, n) for first, n in self.runs)])


def upload_staged(path: Path, writer: StagedWriter, bucket: str, key: str) -> None:
    """Upload a staged results file, then its sidecar (so a sidecar means a complete file)."""
    s3.upload_file(path, bucket, key)
    s3.put_bytes(bucket, key + LINES_SUFFIX, writer.sidecar(), "text/plain")


@dataclass(frozen=True)
class StagedSpan:
    """A staged file's layout as Finalize needs it: its size and, if contiguous, its one line run."""

    key: str
    size: int
    contiguous: bool
    first: int = 0
    count: int = 0
    keyed: bool = False  # the keyed format of files staged before the sidecar (a job mid-upgrade)


SIDECAR_HEAD_BYTES = 64  # holds the size and one run; a longer sidecar has several runs
SIDECAR_BLOCK_BYTES = 64 * 1024


def staged_spans(bucket: str, keys: list[str]) -> list[StagedSpan]:
    """Each staged file's size and line run, from the head of its sidecar (small parallel GETs)."""
    heads = s3.read_heads(bucket, [key + LINES_SUFFIX for key in keys], SIDECAR_HEAD_BYTES)
    return [_span(key, head) for key, head in zip(keys, heads, strict=True)]


def _span(key: str, head: bytes | None) -> StagedSpan:
    if head is None:  # no sidecar: staged before it existed (keyed lines): merged, never copied
        return StagedSpan(key, 0, contiguous=False, keyed=True)
    size, *runs = [line for line in head.split(b"\n") if line]
    if len(head) == SIDECAR_HEAD_BYTES or len(runs) > 1:  # several runs: its lines interleave
        return StagedSpan(key, int(size), contiguous=False)
    first, count = (int(n) for n in runs[0].split()) if runs else (0, 0)
    return StagedSpan(key, int(size), contiguous=True, first=first, count=count)


def iter_staged(bucket: str, key: str, keyed: bool = False) -> Iterator[tuple[int, bytes]]:
    """``(input line, result JSON)`` of every line of a staged file, in file order (streamed).

    ``keyed``: a file in the keyed format (staged by a version before the sidecar).
    """
    if keyed:
        for _, raw in iter_numbered_lines(s3.open_object(bucket, key)):
            line, _, payload = split_keyed_result(raw)
            yield line, payload
        return
    # Ranged GETs of 64 KiB: a merge reads a sidecar per file side by side, and an open stream
    # each would hold a socket each (the results stream already does).
    runs = iter_numbered_lines(s3.RangedReader(bucket, key + LINES_SUFFIX), block_bytes=SIDECAR_BLOCK_BYTES)
    next(runs, None)  # the size
    payloads = iter_numbered_lines(s3.open_object(bucket, key))
    for _, run in runs:
        first, count = (int(n) for n in run.split())
        for line in range(first, first + count):
            yield line, next(payloads)[1]


class ResultsRepository:
    """The results table: one row per input line, keyed by job id and custom_id.

    With ``retention_days`` every row written carries ``expires_at`` (epoch seconds), the table's
    TTL attribute: DynamoDB deletes the row after it, as S3's lifecycle does with results/ objects.
    """

    def __init__(self, table_name: str, bucket: str, row_max_bytes: int, retention_days: int = 0) -> None:
        self._table = dynamodb_table(table_name)
        self._bucket = bucket
        self._row_max_bytes = row_max_bytes
        self._expires_at = int(time.time()) + retention_days * SECONDS_PER_DAY if retention_days else None

    @classmethod
    def for_writing(cls, settings: Settings, bucket: str) -> ResultsRepository:
        """The repository writers use: the configured row size cap and retention (TTL)."""
        return cls(
            settings.results_table, bucket, settings.result_row_max_bytes, settings.results_retention_days
        )

    def row_for(self, job_id: str, result: BatchResult) -> dict[str, Any]:
        """The table row of a result; one over the size cap stores the result in S3 and links it."""
        response = result.response
        row: dict[str, Any] = {
            "job_id": job_id,
            "custom_id": result.custom_id,
            "line": result.line,
            "ok": result.ok,
            "error": result.error,
            "content": response.content if response else None,
            "finish_reason": response.finish_reason.value if response else None,
            "usage": response.usage if response else {},
            "expires_at": self._expires_at,
        }
        if response and response.tool_calls:
            row["tool_calls"] = [call.model_dump(mode="json") for call in response.tool_calls]
        if response and response.parsed is not None:  # a structured answer (the job's response_schema)
            row["parsed"] = response.parsed
        if len(json.dumps(row, default=str).encode()) > self._row_max_bytes:
            key = keys.large_result_key(job_id, result.line or 0)
            s3.put_json(self._bucket, key, result.model_dump(mode="json"))
            row.update(content=None, tool_calls=None, parsed=None, result_uri=keys.s3_uri(self._bucket, key))
        return {k: v for k, v in to_dynamo(row).items() if v is not None}

    def write(self, job_id: str, results: Iterator[BatchResult]) -> None:
        """Write a row per result, batched; rewriting a result overwrites its row."""
        # Rows are keyed by (job_id, custom_id): a retried write overwrites the same row, never duplicates.
        with self._table.batch_writer(overwrite_by_pkeys=["job_id", "custom_id"]) as writer:
            for result in results:
                writer.put_item(Item=self.row_for(job_id, result))

    def get(self, job_id: str, custom_id: str) -> dict[str, Any] | None:
        """One row by custom_id, or None."""
        item = self._table.get_item(Key={"job_id": job_id, "custom_id": custom_id}).get("Item")
        return from_dynamo(item) if item is not None else None

    def page(
        self, job_id: str, limit: int, start_key: dict[str, Any] | None = None, errors_only: bool = False
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """At most ``limit`` rows of a job (in custom_id order), and the key to continue from."""
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("job_id").eq(job_id)}
        if errors_only:
            kwargs["FilterExpression"] = Attr("ok").eq(False)
        if start_key:
            kwargs["ExclusiveStartKey"] = to_dynamo(start_key)
        return query_page(self._table, kwargs, limit, ("job_id", "custom_id"), filtered=errors_only)

    def query(self, job_id: str) -> Iterator[dict[str, Any]]:
        """Every row of a job, in custom_id order."""
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("job_id").eq(job_id)}
        while True:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                yield from_dynamo(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
