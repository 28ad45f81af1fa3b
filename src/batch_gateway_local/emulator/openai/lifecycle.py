"""The life of an emulated OpenAI batch, moved on by each retrieve (the caller holds ``batch.lock``).

:func:`advance` takes a batch one step as its scenario says: ``validating`` -> ``in_progress`` (or
``failed`` with the file's issues) -> ``finalizing`` -> ``completed``, or ``expired``/``cancelled``.
When it ends, the finished lines are answered (``endpoints``: chat completions or embeddings) and written as the batch's output and
error files, in the emulator's result order, with the batch's usage.
"""

from __future__ import annotations

from batch_gateway_local.emulator.answers import stable_id
from batch_gateway_local.emulator.common import emission_order
from batch_gateway_local.emulator.openai.endpoints import answer_body, check_body
from batch_gateway_local.emulator.openai.replies import DAY, TERMINAL, UNFINISHED_MESSAGES
from batch_gateway_local.emulator.openai.validation import issue
from batch_gateway_local.emulator.protocol import dumps
from batch_gateway_local.emulator.scenario_base import PollAction, PollContext
from batch_gateway_local.emulator.state import OpenAIBatch, Store, StoredFile


def _progress(batch: OpenAIBatch) -> int:
    """Requests finished after `batch.polls` retrieves."""
    return len(batch.items) * min(batch.polls, batch.polls_needed) // batch.polls_needed


def advance(store: Store, batch: OpenAIBatch) -> None:
    if batch.status in TERMINAL:
        return
    batch.polls += 1
    context = PollContext(
        provider="openai",
        batch_id=batch.id,
        status=batch.status,
        poll=batch.polls,
        total=len(batch.items),
    )
    action = batch.scenario.on_poll(context)
    if action is PollAction.HOLD:
        batch.polls -= 1
        return
    now = int(store.now())
    if action is PollAction.STALL and batch.status != "cancelling":
        batch.polls -= 1
        if batch.status == "validating":
            if batch.issues:
                batch.status, batch.failed_at = "failed", now
            else:
                batch.status, batch.in_progress_at = "in_progress", now
        return
    if batch.status == "cancelling":
        _finish(store, batch, "cancelled", "batch_cancelled")
        return
    if batch.status == "validating":
        if action is PollAction.FAIL:
            batch.issues.extend(
                issue(i.code, i.message, i.line, i.param) for i in batch.scenario.validation_errors()
            )
        if batch.issues:
            batch.status, batch.failed_at = "failed", now
            return
        batch.status, batch.in_progress_at = "in_progress", now
    if action is PollAction.EXPIRE:
        _finish(store, batch, "expired", "batch_expired")
        return
    batch.finished = _progress(batch)
    if batch.polls >= batch.polls_needed:
        if batch.finalizing_at is None:
            batch.finalizing_at = now
        _finish(store, batch, "completed", None)
    elif batch.polls_needed >= 3 and batch.polls == batch.polls_needed - 1:
        batch.status, batch.finalizing_at = "finalizing", now


def _finish(store: Store, batch: OpenAIBatch, status: str, unfinished_code: str | None) -> None:
    now = int(store.now())
    batch.status = status
    if status == "completed":
        batch.completed_at = now
        batch.finished = len(batch.items)
    elif status == "cancelled":
        batch.cancelled_at = now
    elif status == "expired":
        batch.expired_at = now
    non_2xx_to_output = store.config.non_2xx_file == "output"
    out: list[bytes] = []
    err: list[bytes] = []
    input_tokens = output_tokens = 0
    for idx in emission_order(len(batch.items)):
        item = batch.items[idx]
        line_id = stable_id("batch_req_", batch.id, str(idx), length=32)
        if idx < batch.finished:
            seed = f"{batch.id}/{item.custom_id}"
            if item.status_code == 200:
                body = answer_body(
                    batch.endpoint, item.body, seed=seed, created=now, memory=store.answer_memory
                )
                input_tokens += body["usage"]["prompt_tokens"]
                output_tokens += body["usage"].get("completion_tokens", 0)
            else:
                body = item.error_body or check_body(batch.endpoint, item.body)[1] or {}
            response = {
                "status_code": item.status_code,
                "request_id": stable_id("req_", seed, length=32),
                "body": body,
            }
            line = dumps({"id": line_id, "custom_id": item.custom_id, "response": response, "error": None})
            (out if item.status_code == 200 or non_2xx_to_output else err).append(line)
        elif unfinished_code is not None:
            error = {"code": unfinished_code, "message": UNFINISHED_MESSAGES[unfinished_code]}
            err.append(dumps({"id": line_id, "custom_id": item.custom_id, "response": None, "error": error}))
    batch.output_file_id = _result_file(store, batch, "output", out, now)
    batch.error_file_id = _result_file(store, batch, "error", err, now)
    batch.usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _result_file(store: Store, batch: OpenAIBatch, kind: str, lines: list[bytes], now: int) -> str | None:
    if not lines:
        return None
    stored = StoredFile(
        id=store.new_id("file-"),
        filename=f"{batch.id}_{kind}.jsonl",
        purpose="batch_output",
        created_at=now,
        data=b"\n".join(lines) + b"\n",
        expires_at=now + 30 * DAY,
        scenario=batch.scenario,
    )
    with store.lock:
        store.files[stored.id] = stored
    return stored.id
