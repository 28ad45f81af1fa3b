"""The results table (one row per input line) and the keyed result lines staged in S3.

The results table is what the API pages through: rows keyed by (job_id, custom_id), a retried
write overwriting the same row. A row over the configured size keeps its metadata and points at
the whole result in S3 instead. Staged results files (each round's, each chunk's) hold keyed
result lines, ``line<TAB>outcome<TAB>BatchResult JSON``: merging by line and counting outcomes
then never parse the JSON. Both formats are written and read only through this module.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, Key

from batch_gateway.models import BatchResult
from batch_gateway.storage import keys, s3
from batch_gateway.storage.aws import dynamodb_table
from batch_gateway.storage.jobs import from_dynamo, query_page, to_dynamo

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
        if response and (response.tool_calls or response.parsed is not None):
            row["tool_calls"] = [call.model_dump(mode="json") for call in response.tool_calls]
        if len(json.dumps(row, default=str).encode()) > self._row_max_bytes:
            key = keys.large_result_key(job_id, result.line or 0)
            s3.put_json(self._bucket, key, result.model_dump(mode="json"))
            row.update(content=None, tool_calls=None, result_uri=keys.s3_uri(self._bucket, key))
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
