"""The emulated OpenAI Batches API: create (checks, scenario, token quota), retrieve, list, cancel.

A batch moves on when it is retrieved (``lifecycle``), as its scenario says (see ``scenarios``);
when it ends, its output and error files are in the store for the Files API to serve.
:class:`OpenAIBatches` builds on :class:`~batch_gateway_local.emulator.openai.files.OpenAIFiles`
(a batch reads its input file and writes its result files); a dialect (Azure) changes ``name``,
``chat_endpoint``, ``embeddings_endpoint``, ``expires_at``, the quota message and where its batches
live. The enqueued-token quota (``Limits.openai_enqueued_tokens``, per model over active batches)
counts each line's prompt tokens the emulator's way (``tokens``): a batch over it is created and then
fails ``token_limit_exceeded``, as OpenAI and Azure do; the most it held is in the store's high-water
marks.
"""

from __future__ import annotations

import re
from typing import Any

from batch_gateway_local.emulator.common import choose_scenario, guard, paginate, parse_limit
from batch_gateway_local.emulator.openai.embeddings import EMBEDDINGS_ENDPOINT
from batch_gateway_local.emulator.openai.endpoints import body_prompt_tokens
from batch_gateway_local.emulator.openai.files import OpenAIFiles
from batch_gateway_local.emulator.openai.lifecycle import advance
from batch_gateway_local.emulator.openai.replies import (
    ACTIVE,
    CHAT_ENDPOINT,
    DAY,
    SCENARIO_HEADER,
    SCENARIO_METADATA_KEY,
    TERMINAL,
    bad,
    list_body,
    not_found,
)
from batch_gateway_local.emulator.openai.validation import issue, validate_lines
from batch_gateway_local.emulator.protocol import ApiError, Reply, Request, json_reply, openai_error
from batch_gateway_local.emulator.scenario_base import (
    BatchRequest,
    CreateContext,
    Scenario,
)
from batch_gateway_local.emulator.state import OpenAIBatch, OpenAIItem, Store, StoredFile


def _apply_item_faults(scenario: Scenario, context: CreateContext, items: list[OpenAIItem]) -> None:
    """The scenario's per-line failures, on lines that would otherwise succeed."""
    for request_, item in zip(context.requests, items, strict=True):
        fault = scenario.item_fault(context, request_)
        if fault is not None and item.status_code == 200:
            item.status_code = fault.status
            item.error_body = {
                "error": {
                    "message": fault.message,
                    "type": fault.error_type,
                    "param": None,
                    "code": fault.code,
                }
            }


class OpenAIBatches(OpenAIFiles):
    """The Batches endpoints; ``name`` keys the server's ``batches_created``."""

    name = "openai"
    chat_endpoint = CHAT_ENDPOINT
    """The batch ``endpoint`` and request-line ``url`` of chat completions."""
    embeddings_endpoint = EMBEDDINGS_ENDPOINT

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.batches: dict[str, OpenAIBatch] = store.openai_batches

    def expires_at(self, created_at: int) -> int | None:
        """When a new batch's completion window closes (OpenAI: 24 hours)."""
        return created_at + DAY

    def create_batch(self, request: Request, _match: re.Match[str]) -> Reply:
        endpoint, window, file_id, metadata = self._create_parameters(request)
        stored = self._input_file(file_id)
        scenario_name = (metadata or {}).get(SCENARIO_METADATA_KEY) or request.header(SCENARIO_HEADER)
        scenario = choose_scenario(self.store, scenario_name, bad)
        limits = self.store.config.limits
        assert stored.lines is not None  # _input_file checked it
        items, issues, model = validate_lines(
            stored.lines,
            endpoint,
            len(stored.data),
            limits.openai_max_requests,
            limits.openai_max_file_bytes,
            stored.invalid_lines,
        )
        context = CreateContext(
            provider="openai",
            model=model,
            requests=[BatchRequest(i, item.custom_id, item.body) for i, item in enumerate(items)],
        )
        rejection = scenario.on_create(context)
        if rejection is not None:
            raise ApiError(rejection)
        if not issues:
            _apply_item_faults(scenario, context, items)
        tokens = sum(body_prompt_tokens(endpoint, item.body) for item in items)
        now = int(self.store.now())
        batch = OpenAIBatch(
            id=self.store.new_id("batch_"),
            input_file_id=file_id,
            endpoint=endpoint,
            completion_window=window,
            metadata=metadata,
            created_at=now,
            expires_at=self.expires_at(now),
            scenario=scenario,
            polls_needed=max(1, scenario.polls_to_complete(self.store.config.polls_to_complete)),
            items=items,
            issues=issues,
            model=model,
            prompt_tokens=tokens,
        )
        with self.store.lock:
            if not issues:
                self._enqueue_tokens(batch, self.store.config.limits.openai_enqueued_tokens)
            self.batches[batch.id] = batch
            self.store.batches_created[self.name] += 1
        with batch.lock:
            return json_reply(self._batch_json(batch))

    def _create_parameters(self, request: Request) -> tuple[str, str, str, Any]:
        """endpoint, completion window, input file id and metadata of a create call, checked."""
        try:
            body = request.json()
        except ValueError:
            raise ApiError(bad("We could not parse the JSON body of your request.")) from None
        if not isinstance(body, dict):
            raise ApiError(bad("The request body must be a JSON object."))
        for key in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(key), str):
                raise ApiError(
                    bad(f"Missing required parameter: '{key}'.", param=key, code="missing_required_parameter")
                )
        endpoint, window, file_id = body["endpoint"], body["completion_window"], body["input_file_id"]
        if window != "24h":
            raise ApiError(
                bad(
                    f"Invalid value for 'completion_window': {window!r}. Supported: '24h'.",
                    param="completion_window",
                )
            )
        if endpoint not in (self.chat_endpoint, self.embeddings_endpoint):
            raise ApiError(
                bad(
                    f"Invalid value for 'endpoint': {endpoint!r}. "
                    f"The emulator supports {self.chat_endpoint!r} and {self.embeddings_endpoint!r}.",
                    param="endpoint",
                )
            )
        metadata = body.get("metadata")
        self._check_metadata(metadata)
        return endpoint, window, file_id, metadata

    def _input_file(self, file_id: str) -> StoredFile:
        with self.store.lock:
            stored = self.store.files.get(file_id)
        if stored is None:  # OpenAI answers an unknown file with 404, as a retrieve would
            raise ApiError(not_found("File", file_id))
        if stored.purpose != "batch" or stored.lines is None:
            raise ApiError(
                bad(
                    f"The input file {file_id!r} must be uploaded with purpose 'batch'.",
                    param="input_file_id",
                )
            )
        return stored

    def _enqueue_tokens(self, batch: OpenAIBatch, cap: int | None) -> None:
        """The enqueued-token quota of the batch's model (store lock held): over it, the batch fails;
        within it, the batch holds its tokens until it ends (the high-water mark records the total)."""
        enqueued = sum(
            b.prompt_tokens
            for b in self.batches.values()
            if b.model == batch.model and b.status in ACTIVE and not b.issues
        )
        if cap is not None and enqueued + batch.prompt_tokens > cap:
            batch.issues.append(
                issue("token_limit_exceeded", self.token_limit_message(str(batch.model), cap))
            )
            return
        self.store.note_held(self.name, str(batch.model), enqueued + batch.prompt_tokens)

    @staticmethod
    def token_limit_message(model: str, cap: int) -> str:
        """OpenAI's message for a batch over the enqueued-token limit (its own wording)."""
        return (
            f"Enqueued token limit reached for {model} in organization org-emulator. "
            f"Limit: {cap:,} enqueued tokens. "
            "Please try again once some in_progress batches have been completed."
        )

    @staticmethod
    def _check_metadata(metadata: Any) -> None:
        if metadata is None:
            return
        if not isinstance(metadata, dict):
            raise ApiError(bad("Invalid type for 'metadata': expected an object.", param="metadata"))
        if len(metadata) > 16:
            raise ApiError(bad("Invalid 'metadata': at most 16 keys are allowed.", param="metadata"))
        for key, value in metadata.items():
            if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
                raise ApiError(
                    bad(
                        f"Invalid 'metadata.{key}': keys may be at most 64 characters and values must be "
                        "strings of at most 512 characters.",
                        param="metadata",
                    )
                )

    def _batch(self, batch_id: str) -> OpenAIBatch:
        with self.store.lock:
            batch = self.batches.get(batch_id)
        if batch is None:
            raise ApiError(not_found("Batch", batch_id))
        return batch

    def get_batch(self, request: Request, match: re.Match[str]) -> Reply:
        batch = self._batch(match["batch_id"])
        guard(batch.scenario, request, batch.id)
        with batch.lock:
            advance(self.store, batch)
            return json_reply(self._batch_json(batch))

    def list_batches(self, request: Request, _: re.Match[str]) -> Reply:
        limit = parse_limit(request, 20, 100, bad)
        with self.store.lock:
            batches = list(reversed(self.batches.values()))
        page, has_more = paginate(
            batches, lambda b: b.id, after=request.query.get("after"), before=None, limit=limit
        )
        data = []
        for batch in page:
            with batch.lock:
                data.append(self._batch_json(batch))
        return json_reply(list_body(data, has_more))

    def cancel_batch(self, request: Request, match: re.Match[str]) -> Reply:
        batch = self._batch(match["batch_id"])
        guard(batch.scenario, request, batch.id)
        with batch.lock:
            if batch.status in TERMINAL:
                raise ApiError(
                    openai_error(
                        409,
                        f"Cannot cancel a batch with status '{batch.status}'.",
                        code="batch_not_cancellable",
                    )
                )
            if batch.status != "cancelling":
                batch.status = "cancelling"
                batch.cancelling_at = int(self.store.now())
            return json_reply(self._batch_json(batch))

    def _batch_json(self, batch: OpenAIBatch) -> dict[str, Any]:
        if batch.status in ("validating", "failed"):
            counts = {"total": 0, "completed": 0, "failed": 0}
        else:
            done = batch.items[: batch.finished]
            completed = sum(1 for item in done if item.status_code == 200)
            counts = {"total": len(batch.items), "completed": completed, "failed": len(done) - completed}
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "model": batch.model,
            "errors": {"object": "list", "data": batch.issues} if batch.status == "failed" else None,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": batch.created_at,
            "in_progress_at": batch.in_progress_at,
            "expires_at": batch.expires_at,
            "finalizing_at": batch.finalizing_at,
            "completed_at": batch.completed_at,
            "failed_at": batch.failed_at,
            "expired_at": batch.expired_at,
            "cancelling_at": batch.cancelling_at,
            "cancelled_at": batch.cancelled_at,
            "request_counts": counts,
            "usage": batch.usage,
            "metadata": batch.metadata,
        }
