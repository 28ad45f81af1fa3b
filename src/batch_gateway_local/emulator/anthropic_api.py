"""The emulated Anthropic Message Batches API: create, retrieve, list, cancel, delete, results.

A create call is checked as Anthropic checks it (body size, request count, ``custom_id`` pattern and
uniqueness; the first malformed request fails the whole call); each request's ``params`` are checked
and answered when the batch ends (both per-request parts are :mod:`.anthropic_requests`'). A batch
moves on when it is polled, as its scenario says; results stream as JSONL from ``results_url``,
through the scenario, which may cut the stream short on purpose.
The organisation's quota of requests in batches being processed
(``Limits.anthropic_max_processing_requests``) refuses a create that would pass it with a 429
``rate_limit_error``, as Anthropic does; input tokens are counted the emulator's way (``tokens``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from .anthropic_requests import bad_request, batch_items, check_params, message
from .common import choose_scenario, emission_order, guard, paginate, parse_limit
from .protocol import ApiError, Handler, Reply, Request, anthropic_error, dumps, json_reply
from .scenario_base import BatchRequest, CreateContext, PollAction, PollContext
from .state import AnthropicBatch, Store

DAY = 24 * 3600
SCENARIO_HEADER = "x-emulator-scenario"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AnthropicApi:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/v1/messages/batches"), self.create_batch),
            ("GET", re.compile(r"/v1/messages/batches"), self.list_batches),
            ("GET", re.compile(r"/v1/messages/batches/(?P<batch_id>[^/]+)"), self.get_batch),
            ("DELETE", re.compile(r"/v1/messages/batches/(?P<batch_id>[^/]+)"), self.delete_batch),
            ("POST", re.compile(r"/v1/messages/batches/(?P<batch_id>[^/]+)/cancel"), self.cancel_batch),
            ("GET", re.compile(r"/v1/messages/batches/(?P<batch_id>[^/]+)/results"), self.results),
        ]

    def create_batch(self, request: Request, _: re.Match[str]) -> Reply:
        limits = self.store.config.limits
        if len(request.body) > limits.anthropic_max_body_bytes:
            raise ApiError(
                anthropic_error(
                    413,
                    f"Request exceeds the maximum size of {limits.anthropic_max_body_bytes} bytes "
                    "for a Message Batch.",
                    type_="request_too_large",
                )
            )
        try:
            body = request.json()
        except ValueError:
            raise ApiError(bad_request("The request body is not valid JSON.")) from None
        if not isinstance(body, dict) or "requests" not in body:
            raise ApiError(bad_request("requests: Field required"))
        requests = body["requests"]
        if not isinstance(requests, list):
            raise ApiError(bad_request("requests: Input should be a valid list"))
        if not requests:
            raise ApiError(bad_request("requests: List should have at least 1 item after validation, not 0"))
        if len(requests) > limits.anthropic_max_requests:
            raise ApiError(
                bad_request(
                    f"requests: a Message Batch may contain at most {limits.anthropic_max_requests} "
                    f"requests, got {len(requests)}"
                )
            )
        items = batch_items(requests)
        scenario = choose_scenario(self.store, request.header(SCENARIO_HEADER), bad_request)
        first_model = items[0].params.get("model")
        context = CreateContext(
            provider="anthropic",
            model=first_model if isinstance(first_model, str) else None,
            requests=[BatchRequest(i, item.custom_id, item.params) for i, item in enumerate(items)],
        )
        rejection = scenario.on_create(context)
        if rejection is not None:
            raise ApiError(rejection)
        for request_, item in zip(context.requests, items, strict=True):
            fault = scenario.item_fault(context, request_)
            if fault is not None and check_params(item.params) is None:
                item.error = {"type": "error", "error": {"type": fault.error_type, "message": fault.message}}
        now = self.store.now()
        batch = AnthropicBatch(
            id=self.store.new_id("msgbatch_"),
            created_at=now,
            expires_at=now + DAY,
            scenario=scenario,
            polls_needed=max(1, scenario.polls_to_complete(self.store.config.polls_to_complete)),
            items=items,
        )
        with self.store.lock:
            self._hold_requests(len(items))
            self.store.anthropic_batches[batch.id] = batch
            self.store.batches_created["anthropic"] += 1
        with batch.lock:
            return json_reply(self._batch_json(batch))

    def _hold_requests(self, count: int) -> None:
        """The organisation's quota of requests in batches being processed (store lock held): a batch
        that would pass it is refused with a 429; one that fits holds its requests until it ends."""
        cap = self.store.config.limits.anthropic_max_processing_requests
        held = sum(
            len(b.items) for b in self.store.anthropic_batches.values() if b.processing_status != "ended"
        )
        if cap is not None and held + count > cap:
            raise ApiError(
                anthropic_error(
                    429,
                    f"Number of requests in Message Batches being processed would exceed your "
                    f"organization's limit of {cap:,} ({held:,} processing, this batch adds {count:,}). "
                    "Please try again once some of your batches have ended.",
                    type_="rate_limit_error",
                )
            )
        self.store.note_held("anthropic", "*", held + count)

    def _batch(self, batch_id: str) -> AnthropicBatch:
        with self.store.lock:
            batch = self.store.anthropic_batches.get(batch_id)
        if batch is None:
            raise ApiError(
                anthropic_error(404, f"Message Batch {batch_id!r} not found.", type_="not_found_error")
            )
        return batch

    def get_batch(self, request: Request, match: re.Match[str]) -> Reply:
        batch = self._batch(match["batch_id"])
        guard(batch.scenario, request, batch.id)
        with batch.lock:
            self._advance(batch)
            return json_reply(self._batch_json(batch))

    def list_batches(self, request: Request, _: re.Match[str]) -> Reply:
        limit = parse_limit(request, 20, 1000, bad_request)
        with self.store.lock:
            batches = list(reversed(self.store.anthropic_batches.values()))
        page, has_more = paginate(
            batches,
            lambda b: b.id,
            after=request.query.get("after_id"),
            before=request.query.get("before_id"),
            limit=limit,
        )
        data = []
        for batch in page:
            with batch.lock:
                data.append(self._batch_json(batch))
        return json_reply(
            {
                "data": data,
                "has_more": has_more,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    def cancel_batch(self, request: Request, match: re.Match[str]) -> Reply:
        batch = self._batch(match["batch_id"])
        guard(batch.scenario, request, batch.id)
        with batch.lock:
            if batch.processing_status == "ended":
                raise ApiError(
                    bad_request(f"Message Batch {batch.id!r} has already ended and cannot be canceled.")
                )
            if batch.processing_status == "in_progress":
                batch.processing_status = "canceling"
                batch.cancel_initiated_at = self.store.now()
            return json_reply(self._batch_json(batch))

    def delete_batch(self, request: Request, match: re.Match[str]) -> Reply:
        batch = self._batch(match["batch_id"])
        guard(batch.scenario, request, batch.id)
        with batch.lock:
            if batch.processing_status != "ended":
                raise ApiError(
                    bad_request(
                        f"Message Batch {batch.id!r} is still processing; cancel it before deleting it."
                    )
                )
        with self.store.lock:
            self.store.anthropic_batches.pop(batch.id, None)
        return json_reply({"id": batch.id, "type": "message_batch_deleted"})

    def results(self, request: Request, match: re.Match[str]) -> Reply:
        batch = self._batch(match["batch_id"])
        guard(batch.scenario, request, batch.id)
        with batch.lock:
            data = batch.results
        if data is None:
            raise ApiError(
                anthropic_error(
                    404,
                    f"Results for Message Batch {batch.id!r} are not available yet.",
                    type_="not_found_error",
                )
            )
        view = memoryview(data)
        chunks = batch.scenario.download_chunks(view, self.store.config.chunk_size)
        return Reply(status=200, body=view, content_type="application/binary", chunks=chunks)

    # ------------------------------------------------------------ state machine (batch.lock held)

    def _advance(self, batch: AnthropicBatch) -> None:
        if batch.processing_status == "ended":
            return
        batch.polls += 1
        context = PollContext(
            provider="anthropic",
            batch_id=batch.id,
            status=batch.processing_status,
            poll=batch.polls,
            total=len(batch.items),
        )
        action = batch.scenario.on_poll(context)
        if action is PollAction.HOLD or (
            action is PollAction.STALL and batch.processing_status != "canceling"
        ):
            batch.polls -= 1
            return
        if batch.processing_status == "canceling":
            self._end(batch, "canceled")
        elif action is PollAction.EXPIRE:
            self._end(batch, "expired")
        else:
            batch.finished = len(batch.items) * min(batch.polls, batch.polls_needed) // batch.polls_needed
            if batch.polls >= batch.polls_needed:
                self._end(batch, None)

    def _end(self, batch: AnthropicBatch, unfinished: str | None) -> None:
        if unfinished is None:
            batch.finished = len(batch.items)
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        lines: list[bytes] = []
        for idx in emission_order(len(batch.items)):
            item = batch.items[idx]
            result: dict[str, Any]
            if idx < batch.finished:
                error = item.error or check_params(item.params)
                if error is None:
                    result = {
                        "type": "succeeded",
                        "message": message(
                            item.params, seed=f"{batch.id}/{item.custom_id}", memory=self.store.answer_memory
                        ),
                    }
                else:
                    result = {"type": "errored", "error": error}
            else:
                result = {"type": unfinished or "expired"}
            counts[result["type"]] += 1
            lines.append(dumps({"custom_id": item.custom_id, "result": result}))
        batch.counts = counts
        batch.results = b"\n".join(lines) + b"\n"
        batch.processing_status = "ended"
        batch.ended_at = self.store.now()

    def _batch_json(self, batch: AnthropicBatch) -> dict[str, Any]:
        ended = batch.processing_status == "ended"
        counts = (
            batch.counts
            if ended
            else {"processing": len(batch.items), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        )
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.processing_status,
            "request_counts": counts,
            "ended_at": _iso(batch.ended_at),
            "created_at": _iso(batch.created_at),
            "expires_at": _iso(batch.expires_at),
            "archived_at": _iso(batch.archived_at),
            "cancel_initiated_at": _iso(batch.cancel_initiated_at),
            "results_url": f"{self.store.base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }
