"""DynamoDB values and paginated queries, shared by every table module of storage/.

DynamoDB takes numbers as Decimal and gives them back as Decimal: :func:`to_dynamo` turns a JSON-like
document into what boto3 accepts and :func:`from_dynamo` turns a stored item back into plain Python
(int or float), so no caller sees a Decimal. :func:`query_page` reads one page of a query for an API
listing (the jobs table's index, the results table), with a bounded number of reads when a filter
applies after the read. They live apart from the table modules (jobs, results, ledger, claims) so that
each of those imports them without importing another table's code.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


def to_dynamo(document: Any) -> Any:
    """A JSON-like document as DynamoDB takes it (Decimal, not float)."""
    return json.loads(json.dumps(document, default=str), parse_float=Decimal)


def from_dynamo(value: Any) -> Any:
    """A DynamoDB value as plain Python (Decimal back to int or float), recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


# A filtered page reads at most this many index pages: a filter that matches little returns a short
# page and a continuation key instead of reading a whole partition in one request.
FILTERED_QUERY_MAX_READS = 10


def query_page(
    table: Table, kwargs: dict[str, Any], limit: int, key_names: tuple[str, ...], filtered: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Up to ``limit`` items of a query and the key to continue after the last one returned.

    Unfiltered, one read of ``limit`` items. Filtered, reads of at least 100 items each (a filter
    applies after the read) until ``limit`` items matched, the query ended, or the read budget is
    spent; the continuation key is built from the last item returned, so nothing is skipped.
    """
    items: list[dict[str, Any]] = []
    request = dict(kwargs)
    for _ in range(FILTERED_QUERY_MAX_READS if filtered else 1):
        page = table.query(Limit=max(limit, 100) if filtered else limit, **request)
        for item in page.get("Items", []):
            items.append(from_dynamo(item))
            if len(items) == limit:
                last = page["Items"][-1] is item
                more = "LastEvaluatedKey" in page or not last
                return items, ({k: items[-1][k] for k in key_names} if more else None)
        last_key = page.get("LastEvaluatedKey")
        if last_key is None:
            return items, None
        request["ExclusiveStartKey"] = last_key
    return items, from_dynamo(request["ExclusiveStartKey"])
