"""The quota ledger: what every job of the stack holds of each provider quota, in one DynamoDB table.

One partition per pool (``<provider>#<model>``): the ``POOL`` row counts the units in use (tokens
enqueued for OpenAI/Azure, requests for Anthropic, jobs for Bedrock) and what the ledger learned
from a refusal (a lower usable limit until a time); one ``HOLD#<holder>`` row per provider batch
that holds units (holder = ``job#chunk#round#attempt``); one ``WAIT#<since>#<holder>`` row per chunk
waiting for room, with its parked task token, sorted by when it began to wait.

Reserving and releasing are transactions (TransactWriteItems) of the hold and the pool counter:
a reservation puts the hold only if absent (idempotent per holder) and adds to the counter only
if the result stays within the limit the caller computed (or the pool is empty: a chunk always
runs alone); a release marks the hold released only once and subtracts its units. This module is
storage only; the policy (which limit, who to wake) is ``workflow.capacity``.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from batch_gateway.storage.aws import dynamodb_table
from batch_gateway.storage.dynamo import from_dynamo, to_dynamo

POOL_SK = "POOL"
HOLD_PREFIX = "HOLD#"
WAIT_PREFIX = "WAIT#"
# A released hold stays readable (the job's summary counts its batches in flight) for this long.
RELEASED_HOLD_TTL_SECONDS = 30 * 24 * 3600

Reservation = Literal["reserved", "held", "no_room"]


def pool_key(provider: str, model: str) -> str:
    """The pool of a provider's model: every job's batches on it share its quota."""
    return f"{provider}#{model}"


def holder_key(job_id: str, chunk: int, round_: int, attempt: int) -> str:
    """Who holds units: one provider batch, a (round, attempt) of a chunk of a job."""
    return f"{job_id}#{chunk}#{round_}#{attempt}"


class PoolRow(BaseModel):
    """A pool's counter and what it learned from the provider's last refusal."""

    model_config = ConfigDict(extra="ignore")

    in_use: int = 0
    learned_limit: int | None = None
    learned_until: float | None = None


class Hold(BaseModel):
    """The units one provider batch holds, from its reservation to its release."""

    model_config = ConfigDict(extra="ignore")

    sk: str
    amount: int
    job_id: str
    reserved_at: float
    released_at: float | None = None


class Waiter(BaseModel):
    """A chunk waiting for room: its parked task token and the units it needs."""

    model_config = ConfigDict(extra="ignore")

    sk: str
    amount: int
    task_token: str
    job_id: str


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class QuotaLedger:
    """Reservations, releases, lessons and waiters of the stack's provider quotas."""

    def __init__(self, table_name: str) -> None:
        self._name = table_name
        self._table = dynamodb_table(table_name)

    def pool(self, pool: str) -> PoolRow:
        """The pool's row (a consistent read); an unused pool is empty."""
        item = self._table.get_item(Key={"pool": pool, "sk": POOL_SK}, ConsistentRead=True).get("Item")
        return PoolRow.model_validate(from_dynamo(item or {}))

    def reserve(self, pool: str, holder: str, amount: int, limit: int, job_id: str) -> Reservation:
        """Hold ``amount`` units for ``holder`` if the pool stays within ``limit`` (or is empty).

        ``held``: this holder reserved already (a retried call); ``no_room``: nothing was written.
        """
        client = self._table.meta.client
        try:
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": {
                                "pool": pool,
                                "sk": HOLD_PREFIX + holder,
                                "amount": amount,
                                "job_id": job_id,
                                "reserved_at": to_dynamo(time.time()),
                            },
                            "ConditionExpression": "attribute_not_exists(sk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._name,
                            "Key": {"pool": pool, "sk": POOL_SK},
                            "UpdateExpression": "SET in_use = if_not_exists(in_use, :zero) + :amount",
                            "ConditionExpression": "attribute_not_exists(in_use) OR in_use <= :room "
                            "OR in_use = :zero",
                            "ExpressionAttributeValues": {
                                ":zero": 0,
                                ":amount": amount,
                                ":room": limit - amount,
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            reasons: list[dict[str, Any]] = exc.response.get("CancellationReasons") or []  # type: ignore[assignment]
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return "held"
            # Over the limit, or a conflict with a concurrent transaction on the pool row: either
            # way the chunk parks, and parking checks the ledger again at once.
            return "no_room"
        return "reserved"

    def hold(self, pool: str, holder: str) -> Hold | None:
        item = self._table.get_item(Key={"pool": pool, "sk": HOLD_PREFIX + holder}, ConsistentRead=True).get(
            "Item"
        )
        return Hold.model_validate(from_dynamo(item)) if item else None

    def release(self, pool: str, holder: str) -> int | None:
        """Give back the holder's units, once; the units released, or None (never held, or released)."""
        held = self.hold(pool, holder)
        if held is None or held.released_at is not None:
            return None
        now = time.time()
        try:
            self._table.meta.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._name,
                            "Key": {"pool": pool, "sk": HOLD_PREFIX + holder},
                            "UpdateExpression": "SET released_at = :now, expires_at = :ttl",
                            "ConditionExpression": "attribute_exists(sk) AND attribute_not_exists(released_at)",
                            "ExpressionAttributeValues": {
                                ":now": to_dynamo(now),
                                ":ttl": int(now) + RELEASED_HOLD_TTL_SECONDS,
                            },
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._name,
                            "Key": {"pool": pool, "sk": POOL_SK},
                            "UpdateExpression": "SET in_use = in_use - :amount",
                            "ConditionExpression": "attribute_exists(in_use)",
                            "ExpressionAttributeValues": {":amount": held.amount},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _code(exc) == "TransactionCanceledException":
                return None  # a concurrent release won
            raise
        return held.amount

    def learn(self, pool: str, limit: int, until: float) -> None:
        """Use at most ``limit`` units of the pool until ``until`` (the provider refused more)."""
        self._table.update_item(
            Key={"pool": pool, "sk": POOL_SK},
            UpdateExpression="SET learned_limit = :limit, learned_until = :until",
            ExpressionAttributeValues={":limit": max(0, limit), ":until": to_dynamo(until)},
        )

    def holds_of_job(self, pool: str, job_id: str) -> list[Hold]:
        """Every hold a job took in a pool (released ones too, until their TTL)."""
        return [
            Hold.model_validate(item) for item in self._query(pool, f"{HOLD_PREFIX}{job_id}#", limit=None)
        ]

    def park(self, pool: str, since: float, holder: str, amount: int, task_token: str, job_id: str) -> str:
        """Queue a waiter (its sort key orders waiters by when they began to wait); returns its key."""
        sk = f"{WAIT_PREFIX}{since:017.6f}#{holder}"
        self._table.put_item(
            Item={
                "pool": pool,
                "sk": sk,
                "amount": amount,
                "task_token": task_token,
                "job_id": job_id,
                "expires_at": int(time.time()) + RELEASED_HOLD_TTL_SECONDS,
            }
        )
        return sk

    def waiters(self, pool: str, limit: int | None = 50) -> list[Waiter]:
        """The oldest waiters of a pool, oldest first."""
        return [Waiter.model_validate(item) for item in self._query(pool, WAIT_PREFIX, limit=limit)]

    def unpark(self, pool: str, sk: str) -> bool:
        """Take a waiter off the queue; False when someone else already did (only one wakes it)."""
        try:
            self._table.delete_item(Key={"pool": pool, "sk": sk}, ConditionExpression="attribute_exists(sk)")
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _query(self, pool: str, prefix: str, limit: int | None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pool").eq(pool) & Key("sk").begins_with(prefix),
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(items)
            page = self._table.query(**kwargs)
            items.extend(from_dynamo(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page or (limit is not None and len(items) >= limit):
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
