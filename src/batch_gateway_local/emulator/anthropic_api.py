"""The emulated Anthropic Message Batches API: create, retrieve, list, cancel, delete, results.

A create call is checked as Anthropic checks it (body size, request count, ``custom_id`` pattern and
uniqueness; the first malformed request fails the whole call); each request's ``params`` are checked
(:func:`check_params`) and answered (:func:`message`) when the batch ends. A batch moves on when it
is polled, as its scenario says; results stream as JSONL from ``results_url``, through the scenario,
which may cut the stream short on purpose. ``bedrock_api`` reuses the per-request part.
The organisation's quota of requests in batches being processed
(``Limits.anthropic_max_processing_requests``) refuses a create that would pass it with a 429
``rate_limit_error``, as Anthropic does; input tokens are counted the emulator's way (``tokens``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .answers import (
    MARKER_ERROR_400,
    MARKER_ERROR_500,
    MARKER_TOOL,
    AnswerMemory,
    answer,
    content_text,
    forced_tool,
    has_marker,
    stable_id,
    structured_answer,
    tool_arguments,
    tool_call_tokens,
)
from .common import choose_scenario, emission_order, guard, paginate, parse_limit
from .protocol import ApiError, Reply, Request, anthropic_error, dumps, json_reply
from .scenario_base import BatchRequest, CreateContext, PollAction, PollContext
from .state import AnthropicBatch, AnthropicItem, Store
from .tokens import messages_input_tokens

Handler = Callable[[Request, "re.Match[str]"], Reply]

DAY = 24 * 3600
CUSTOM_ID_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
SCENARIO_HEADER = "x-emulator-scenario"


def _bad(message: str) -> Reply:
    return anthropic_error(400, message)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------- per-request emulation


def _system_text(system: Any) -> str | None:
    if system is None:
        return None
    text = content_text(system)
    return text or None


def check_params(params: dict[str, Any]) -> dict[str, Any] | None:
    """The `error` of an errored result for these Messages params, or None when they succeed."""

    def err(message: str, type_: str = "invalid_request_error") -> dict[str, Any]:
        return {"type": "error", "error": {"type": type_, "message": message}}

    for key in ("model", "max_tokens", "messages"):
        if key not in params:
            return err(f"{key}: Field required")
    if not isinstance(params["model"], str) or not params["model"]:
        return err("model: Input should be a valid string")
    max_tokens = params["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        return err("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        return err("max_tokens: Input should be greater than or equal to 1")
    messages = params["messages"]
    if not isinstance(messages, list):
        return err("messages: Input should be a valid list")
    if not messages:
        return err("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return err(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    if params.get("stream"):
        return err("stream: streaming is not supported in Message Batches")
    users = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    if has_marker(users, MARKER_ERROR_400):
        return err(f"Emulated invalid request ({MARKER_ERROR_400}).")
    if has_marker(users, MARKER_ERROR_500):
        return err("Internal server error (emulated).", "api_error")
    return None


def _first_tool(tools: Any) -> tuple[str, Any] | None:
    if not isinstance(tools, list):
        return None
    for tool in tools:
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            return tool["name"], tool.get("input_schema")
    return None


def message(params: dict[str, Any], *, seed: str, memory: AnswerMemory | None = None) -> dict[str, Any]:
    """A Message answering `params` (which must pass `check_params`); a forced tool is called with a
    structured answer of its input schema (`memory`: see `answers.structured_answer`)."""
    model = str(params["model"])
    system = _system_text(params.get("system"))
    users = [content_text(m.get("content")) for m in params["messages"] if m.get("role") == "user"]
    user_message = users[-1] if users else ""
    tool = _first_tool(params.get("tools"))
    content: list[dict[str, Any]]
    forced = forced_tool(params)
    if forced is not None:
        name, schema = forced
        args = structured_answer(schema, params, user_message, memory)
        content = [{"type": "tool_use", "id": stable_id("toolu_", seed, name), "name": name, "input": args}]
        stop_reason, output_tokens = "tool_use", tool_call_tokens(name, args)
    elif tool is not None and MARKER_TOOL in user_message:
        name, schema = tool
        args = tool_arguments(schema, user_message)
        content = [{"type": "tool_use", "id": stable_id("toolu_", seed, name), "name": name, "input": args}]
        stop_reason, output_tokens = "tool_use", tool_call_tokens(name, args)
    else:
        result = answer(model, system, user_message, params["max_tokens"])
        content = [{"type": "text", "text": result.text, "citations": None}]
        stop_reason = "max_tokens" if result.truncated else "end_turn"
        output_tokens = result.output_tokens
    return {
        "id": stable_id("msg_", seed),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": messages_input_tokens(params),
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "batch",
        },
    }


# ---------------------------------------------------------------- the API


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
            raise ApiError(_bad("The request body is not valid JSON.")) from None
        if not isinstance(body, dict) or "requests" not in body:
            raise ApiError(_bad("requests: Field required"))
        requests = body["requests"]
        if not isinstance(requests, list):
            raise ApiError(_bad("requests: Input should be a valid list"))
        if not requests:
            raise ApiError(_bad("requests: List should have at least 1 item after validation, not 0"))
        if len(requests) > limits.anthropic_max_requests:
            raise ApiError(
                _bad(
                    f"requests: a Message Batch may contain at most {limits.anthropic_max_requests} "
                    f"requests, got {len(requests)}"
                )
            )
        items = _batch_items(requests)
        scenario = choose_scenario(self.store, request.header(SCENARIO_HEADER), _bad)
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
        limit = parse_limit(request, 20, 1000, _bad)
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
                raise ApiError(_bad(f"Message Batch {batch.id!r} has already ended and cannot be canceled."))
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
                    _bad(f"Message Batch {batch.id!r} is still processing; cancel it before deleting it.")
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


def _batch_items(requests: list[Any]) -> list[AnthropicItem]:
    """The batch's requests as items; the first malformed one fails the call, as Anthropic does."""
    items: list[AnthropicItem] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(requests):
        if not isinstance(entry, dict):
            raise ApiError(_bad(f"requests.{index}: Input should be a valid dictionary"))
        for key in ("custom_id", "params"):
            if key not in entry:
                raise ApiError(_bad(f"requests.{index}.{key}: Field required"))
        custom_id, params = entry["custom_id"], entry["params"]
        if not isinstance(custom_id, str) or not CUSTOM_ID_RE.fullmatch(custom_id):
            raise ApiError(
                _bad(
                    f"requests.{index}.custom_id: {custom_id!r} is invalid; custom_id must match "
                    "^[a-zA-Z0-9_-]{1,64}$ (letters, digits, '_' and '-', 1 to 64 characters)"
                )
            )
        if custom_id in seen:
            raise ApiError(
                _bad(
                    f"requests.{index}.custom_id: duplicate custom_id {custom_id!r} "
                    f"(already used by requests.{seen[custom_id]}); custom_id values must be unique"
                )
            )
        seen[custom_id] = index
        if not isinstance(params, dict):
            raise ApiError(_bad(f"requests.{index}.params: Input should be a valid dictionary"))
        items.append(AnthropicItem(custom_id=custom_id, params=params))
    return items
