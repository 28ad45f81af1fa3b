"""OpenAI Files + Batches API (chat completions endpoint) emulation."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .answers import (
    MARKER_ERROR_400,
    MARKER_ERROR_500,
    MARKER_TOOL,
    answer,
    content_text,
    has_marker,
    prompt_tokens,
    stable_id,
    tool_arguments,
    tool_call_tokens,
)
from .common import choose_scenario, emission_order, guard, paginate, parse_limit
from .multipart import boundary_of, parse_multipart
from .protocol import ApiError, Reply, Request, dumps, json_reply, openai_error
from .scenarios import BatchRequest, CreateContext, PollAction, PollContext, Scenario
from .state import OpenAIBatch, OpenAIItem, Store, StoredFile

Handler = Callable[[Request, "re.Match[str]"], Reply]

DAY = 24 * 3600
CHAT_ENDPOINT = "/v1/chat/completions"
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
TERMINAL = ("failed", "completed", "expired", "cancelled")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_REPORTED_ISSUES = 1000
SCENARIO_METADATA_KEY = "emulator_scenario"
SCENARIO_HEADER = "x-emulator-scenario"

UNFINISHED_MESSAGES = {
    "batch_cancelled": "This request could not be executed before the batch was cancelled.",
    "batch_expired": "This request could not be executed before the completion window expired.",
}


def _bad(message: str, *, param: str | None = None, code: str | None = None) -> Reply:
    return openai_error(400, message, param=param, code=code)


def _not_found(kind: str, ident: str) -> Reply:
    return openai_error(404, f"No such {kind} object: {ident}", code=None)


# ---------------------------------------------------------------- per-request emulation


def _split_messages(body: dict[str, Any]) -> tuple[str | None, list[str], list[str]]:
    """(system text or None, non-system message texts, user message texts)."""
    messages = body.get("messages")
    system: list[str] = []
    others: list[str] = []
    users: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        text = content_text(message.get("content"))
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text)
        else:
            others.append(text)
            if role == "user":
                users.append(text)
    return ("\n".join(system) if system else None), others, users


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def check_request(body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """The emulated HTTP status of a chat-completions body, and the error body when not 200."""

    def err(message: str, code: str | None, param: str | None = None) -> tuple[int, dict[str, Any]]:
        return 400, {
            "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
        }

    messages = body.get("messages")
    if messages is None:
        return err("Missing required parameter: 'messages'.", "missing_required_parameter", "messages")
    if not isinstance(messages, list):
        return err("Invalid type for 'messages': expected an array.", "invalid_type", "messages")
    if not messages:
        return err(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            "empty_array",
            "messages",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            role = message.get("role") if isinstance(message, dict) else None
            return err(
                f"Invalid value for 'messages[{i}].role': {role!r}.", "invalid_value", f"messages[{i}].role"
            )
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            return err(f"Invalid type for '{key}': expected an integer.", "invalid_type", key)
        if value < 1:
            return err(
                f"Invalid '{key}': integer below minimum value. "
                f"Expected a value >= 1, but got {value} instead.",
                "integer_below_min_value",
                key,
            )
    _, _, users = _split_messages(body)
    if has_marker(users, MARKER_ERROR_400):
        return err(f"Emulated invalid request ({MARKER_ERROR_400}).", "emulated_error")
    if has_marker(users, MARKER_ERROR_500):
        return 500, {
            "error": {
                "message": "The server had an error while processing your request. "
                "Sorry about that! (emulated)",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    return 200, None


def _first_function_tool(tools: Any) -> tuple[str, Any] | None:
    if not isinstance(tools, list):
        return None
    for tool in tools:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return fn["name"], fn.get("parameters")
    return None


def chat_completion(body: dict[str, Any], *, seed: str, created: int) -> dict[str, Any]:
    """A chat.completion object answering `body` (which must pass `check_request`)."""
    model = str(body.get("model"))
    system, others, users = _split_messages(body)
    user_message = users[-1] if users else ""
    prompt = prompt_tokens(system, others)
    tool = _first_function_tool(body.get("tools"))
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if tool is not None and MARKER_TOOL in user_message:
        name, parameters = tool
        args = tool_arguments(parameters, user_message)
        message["tool_calls"] = [
            {
                "id": stable_id("call_", seed, name),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
        ]
        finish, completion = "tool_calls", tool_call_tokens(name, args)
    else:
        result = answer(model, system, user_message, _max_tokens(body))
        message["content"] = result.text
        finish, completion = ("length" if result.truncated else "stop"), result.output_tokens
    return {
        "id": stable_id("chatcmpl-", seed),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_emulator",
    }


# ---------------------------------------------------------------- input file validation


def _issue(code: str, message: str, line: int | None = None, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def validate_lines(
    lines: list[tuple[int, Any]], endpoint: str, size: int, max_requests: int, max_bytes: int
) -> tuple[list[OpenAIItem], list[dict[str, Any]], str | None]:
    """Validate parsed input lines as OpenAI does before a batch starts: (items, issues, model)."""
    issues: list[dict[str, Any]] = []
    items: list[OpenAIItem] = []
    seen: dict[str, int] = {}
    model: str | None = None
    model_line = 0

    def add(code: str, message: str, line: int | None = None, param: str | None = None) -> None:
        if len(issues) < MAX_REPORTED_ISSUES:
            issues.append(_issue(code, message, line, param))

    if size > max_bytes:
        add(
            "file_too_large",
            f"The input file is {size} bytes; a batch input file may be at most {max_bytes} bytes.",
        )
    if not lines:
        add("empty_file", "The input file is empty.")
    if len(lines) > max_requests:
        add(
            "too_many_requests",
            f"The input file has {len(lines)} requests; a batch may contain at most {max_requests}.",
            lines[max_requests][0],
        )
    for lineno, obj in lines:
        if not isinstance(obj, dict):
            add("invalid_json_line", "This line is not a JSON object.", lineno)
            continue
        ok = True
        for key in ("custom_id", "method", "url", "body"):
            if key not in obj:
                add("missing_required_parameter", f"Missing required parameter: '{key}'.", lineno, key)
                ok = False
        if not ok:
            continue
        custom_id, method, url, body = obj["custom_id"], obj["method"], obj["url"], obj["body"]
        if not isinstance(custom_id, str):
            add("invalid_type", "Invalid type for 'custom_id': expected a string.", lineno, "custom_id")
            continue
        if custom_id in seen:
            add(
                "duplicate_custom_id",
                f"The custom_id {custom_id!r} is already used on line {seen[custom_id]}; "
                "custom_id values must be unique within a batch.",
                lineno,
                "custom_id",
            )
            continue
        seen[custom_id] = lineno
        if method != "POST":
            add("invalid_method", f"Invalid 'method': {method!r}. Only POST is supported.", lineno, "method")
            continue
        if url != endpoint:
            add(
                "mismatched_endpoint",
                f"The url {url!r} does not match the batch endpoint {endpoint!r}.",
                lineno,
                "url",
            )
            continue
        if not isinstance(body, dict):
            add("invalid_type", "Invalid type for 'body': expected an object.", lineno, "body")
            continue
        line_model = body.get("model")
        if not isinstance(line_model, str) or not line_model:
            add(
                "missing_required_parameter",
                "Missing required parameter: 'body.model'.",
                lineno,
                "body.model",
            )
            continue
        if model is None:
            model, model_line = line_model, lineno
        elif line_model != model:
            add(
                "mismatched_model",
                f"The model {line_model!r} differs from the model {model!r} on line {model_line}; "
                "a batch input file may use only one model.",
                lineno,
                "body.model",
            )
            continue
        status, _ = check_request(body)
        items.append(OpenAIItem(line=lineno, custom_id=custom_id, body=body, status_code=status))
    return items, issues, model


def parse_jsonl(data: bytes) -> list[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line; ValueError names the bad line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"The file is not valid UTF-8 ({exc.reason} at byte {exc.start}).") from None
    parsed: list[tuple[int, Any]] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            parsed.append((lineno, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"Line {lineno} is not valid JSON: {exc.msg}.") from None
    return parsed


# ---------------------------------------------------------------- the API


class OpenAIApi:
    # What a dialect of this API (Azure OpenAI, see azure_api) changes.
    name = "openai"
    """Key of the server's ``batches_created``."""
    prefix = "/v1"
    chat_endpoint = CHAT_ENDPOINT
    """The batch ``endpoint`` and request-line ``url`` accepted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batches: dict[str, OpenAIBatch] = store.openai_batches
        v = re.escape(self.prefix)
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(rf"{v}/files"), self.upload_file),
            ("GET", re.compile(rf"{v}/files"), self.list_files),
            ("GET", re.compile(rf"{v}/files/(?P<file_id>[^/]+)"), self.get_file),
            ("DELETE", re.compile(rf"{v}/files/(?P<file_id>[^/]+)"), self.delete_file),
            ("GET", re.compile(rf"{v}/files/(?P<file_id>[^/]+)/content"), self.file_content),
            ("POST", re.compile(rf"{v}/batches"), self.create_batch),
            ("GET", re.compile(rf"{v}/batches"), self.list_batches),
            ("GET", re.compile(rf"{v}/batches/(?P<batch_id>[^/]+)"), self.get_batch),
            ("POST", re.compile(rf"{v}/batches/(?P<batch_id>[^/]+)/cancel"), self.cancel_batch),
        ]

    def expires_at(self, created_at: int) -> int | None:
        """When a new batch's completion window closes (OpenAI: 24 hours)."""
        return created_at + DAY

    # ------------------------------------------------------------ files

    def upload_file(self, request: Request, _: re.Match[str]) -> Reply:
        boundary = boundary_of(request.header("content-type") or "")
        if boundary is None:
            raise ApiError(_bad("Expected a multipart/form-data request body."))
        try:
            parts = parse_multipart(request.body, boundary)
        except ValueError as exc:
            raise ApiError(_bad(f"Malformed multipart body: {exc}.")) from None
        purpose_part, file_part = parts.get("purpose"), parts.get("file")
        if purpose_part is None:
            raise ApiError(_bad("Missing required parameter: 'purpose'.", param="purpose"))
        if file_part is None:
            raise ApiError(_bad("Missing required parameter: 'file'.", param="file"))
        purpose = purpose_part.text()
        if purpose not in FILE_PURPOSES:
            raise ApiError(
                _bad(f"Invalid value for 'purpose': {purpose!r}.", param="purpose", code="invalid_value")
            )
        data = file_part.data
        if len(data) > self.store.config.limits.openai_max_upload_bytes:
            raise ApiError(_bad("File is too large.", param="file"))
        filename = file_part.filename or "upload"
        lines: list[tuple[int, Any]] | None = None
        if purpose == "batch":
            if not filename.endswith(".jsonl"):
                raise ApiError(_bad("Invalid file format for Batch API. Must be .jsonl", param="file"))
            try:
                lines = parse_jsonl(data)
            except ValueError as exc:
                raise ApiError(_bad(f"Invalid file format for Batch API. {exc}", param="file")) from None
        now = int(self.store.now())
        stored = StoredFile(
            id=self.store.new_id("file-"),
            filename=filename,
            purpose=purpose,
            created_at=now,
            data=data,
            expires_at=now + 30 * DAY if purpose == "batch" else None,
            lines=lines,
        )
        with self.store.lock:
            self.store.files[stored.id] = stored
            self.store.files_uploaded += 1
        return json_reply(stored.to_json())

    def _file(self, file_id: str) -> StoredFile:
        with self.store.lock:
            stored = self.store.files.get(file_id)
        if stored is None:
            raise ApiError(_not_found("File", file_id))
        return stored

    def file_scenario(self, file_id: str) -> Scenario | None:
        """The scenario of the batch that produced this file (None for uploads / unknown ids)."""
        with self.store.lock:
            stored = self.store.files.get(file_id)
        return stored.scenario if stored is not None else None

    def get_file(self, _: Request, match: re.Match[str]) -> Reply:
        return json_reply(self._file(match["file_id"]).to_json())

    def list_files(self, request: Request, _: re.Match[str]) -> Reply:
        limit = parse_limit(request, 10_000, 10_000, _bad)
        purpose = request.query.get("purpose")
        with self.store.lock:
            files = [f for f in self.store.files.values() if purpose is None or f.purpose == purpose]
        if request.query.get("order", "desc") == "desc":
            files.reverse()
        page, has_more = paginate(
            files, lambda f: f.id, after=request.query.get("after"), before=None, limit=limit
        )
        return json_reply(_list_body([f.to_json() for f in page], has_more))

    def delete_file(self, _: Request, match: re.Match[str]) -> Reply:
        file_id = match["file_id"]
        with self.store.lock:
            if self.store.files.pop(file_id, None) is None:
                raise ApiError(_not_found("File", file_id))
        return json_reply({"id": file_id, "object": "file", "deleted": True})

    def file_content(self, _: Request, match: re.Match[str]) -> Reply:
        stored = self._file(match["file_id"])
        view = memoryview(stored.data)
        scenario = stored.scenario
        chunks = (
            scenario.download_chunks(view, self.store.config.chunk_size)
            if scenario is not None
            else (
                view[i : i + self.store.config.chunk_size]
                for i in range(0, len(view), self.store.config.chunk_size)
            )
        )
        return Reply(status=200, body=view, content_type="application/octet-stream", chunks=chunks)

    # ------------------------------------------------------------ batches

    def create_batch(self, request: Request, _match: re.Match[str]) -> Reply:
        try:
            body = request.json()
        except ValueError:
            raise ApiError(_bad("We could not parse the JSON body of your request.")) from None
        if not isinstance(body, dict):
            raise ApiError(_bad("The request body must be a JSON object."))
        for key in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(key), str):
                raise ApiError(
                    _bad(
                        f"Missing required parameter: '{key}'.", param=key, code="missing_required_parameter"
                    )
                )
        endpoint, window, file_id = body["endpoint"], body["completion_window"], body["input_file_id"]
        if window != "24h":
            raise ApiError(
                _bad(
                    f"Invalid value for 'completion_window': {window!r}. Supported: '24h'.",
                    param="completion_window",
                )
            )
        if endpoint != self.chat_endpoint:
            raise ApiError(
                _bad(
                    f"Invalid value for 'endpoint': {endpoint!r}. "
                    f"The emulator supports {self.chat_endpoint!r}.",
                    param="endpoint",
                )
            )
        metadata = body.get("metadata")
        self._check_metadata(metadata)
        with self.store.lock:
            stored = self.store.files.get(file_id)
        if stored is None:
            raise ApiError(
                _bad(f"Invalid 'input_file_id': {file_id!r}. No such file.", param="input_file_id")
            )
        if stored.purpose != "batch" or stored.lines is None:
            raise ApiError(
                _bad(
                    f"The input file {file_id!r} must be uploaded with purpose 'batch'.",
                    param="input_file_id",
                )
            )
        scenario_name = (metadata or {}).get(SCENARIO_METADATA_KEY) or request.header(SCENARIO_HEADER)
        scenario = choose_scenario(self.store, scenario_name, _bad)
        limits = self.store.config.limits
        items, issues, model = validate_lines(
            stored.lines, endpoint, len(stored.data), limits.openai_max_requests, limits.openai_max_file_bytes
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
        tokens = 0
        for item in items:
            system, others, _ = _split_messages(item.body)
            tokens += prompt_tokens(system, others)
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
            cap = limits.openai_enqueued_tokens
            if cap is not None and not issues:
                enqueued = sum(
                    b.prompt_tokens
                    for b in self.batches.values()
                    if b.model == model and b.status in ACTIVE and not b.issues
                )
                if enqueued + tokens > cap:
                    batch.issues.append(
                        _issue(
                            "token_limit_exceeded",
                            f"Enqueued token limit reached for {model}. Limit: {cap} enqueued tokens; "
                            f"already enqueued: {enqueued}, this batch: {tokens}. "
                            "Please try submitting your requests again later.",
                        )
                    )
            self.batches[batch.id] = batch
            self.store.batches_created[self.name] += 1
        with batch.lock:
            return json_reply(self._batch_json(batch))

    @staticmethod
    def _check_metadata(metadata: Any) -> None:
        if metadata is None:
            return
        if not isinstance(metadata, dict):
            raise ApiError(_bad("Invalid type for 'metadata': expected an object.", param="metadata"))
        if len(metadata) > 16:
            raise ApiError(_bad("Invalid 'metadata': at most 16 keys are allowed.", param="metadata"))
        for key, value in metadata.items():
            if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
                raise ApiError(
                    _bad(
                        f"Invalid 'metadata.{key}': keys may be at most 64 characters and values must be "
                        "strings of at most 512 characters.",
                        param="metadata",
                    )
                )

    def _batch(self, batch_id: str) -> OpenAIBatch:
        with self.store.lock:
            batch = self.batches.get(batch_id)
        if batch is None:
            raise ApiError(_not_found("Batch", batch_id))
        return batch

    def get_batch(self, request: Request, match: re.Match[str]) -> Reply:
        batch = self._batch(match["batch_id"])
        guard(batch.scenario, request, batch.id)
        with batch.lock:
            self._advance(batch)
            return json_reply(self._batch_json(batch))

    def list_batches(self, request: Request, _: re.Match[str]) -> Reply:
        limit = parse_limit(request, 20, 100, _bad)
        with self.store.lock:
            batches = list(reversed(self.batches.values()))
        page, has_more = paginate(
            batches, lambda b: b.id, after=request.query.get("after"), before=None, limit=limit
        )
        data = []
        for batch in page:
            with batch.lock:
                data.append(self._batch_json(batch))
        return json_reply(_list_body(data, has_more))

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

    # ------------------------------------------------------------ state machine (batch.lock held)

    def _progress(self, batch: OpenAIBatch) -> int:
        """Requests finished after `batch.polls` retrieves."""
        return len(batch.items) * min(batch.polls, batch.polls_needed) // batch.polls_needed

    def _advance(self, batch: OpenAIBatch) -> None:
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
        now = int(self.store.now())
        if action is PollAction.STALL and batch.status != "cancelling":
            batch.polls -= 1
            if batch.status == "validating":
                if batch.issues:
                    batch.status, batch.failed_at = "failed", now
                else:
                    batch.status, batch.in_progress_at = "in_progress", now
            return
        if batch.status == "cancelling":
            self._finish(batch, "cancelled", "batch_cancelled")
            return
        if batch.status == "validating":
            if action is PollAction.FAIL:
                batch.issues.extend(
                    _issue(i.code, i.message, i.line, i.param) for i in batch.scenario.validation_errors()
                )
            if batch.issues:
                batch.status, batch.failed_at = "failed", now
                return
            batch.status, batch.in_progress_at = "in_progress", now
        if action is PollAction.EXPIRE:
            self._finish(batch, "expired", "batch_expired")
            return
        batch.finished = self._progress(batch)
        if batch.polls >= batch.polls_needed:
            if batch.finalizing_at is None:
                batch.finalizing_at = now
            self._finish(batch, "completed", None)
        elif batch.polls_needed >= 3 and batch.polls == batch.polls_needed - 1:
            batch.status, batch.finalizing_at = "finalizing", now

    def _finish(self, batch: OpenAIBatch, status: str, unfinished_code: str | None) -> None:
        now = int(self.store.now())
        batch.status = status
        if status == "completed":
            batch.completed_at = now
            batch.finished = len(batch.items)
        elif status == "cancelled":
            batch.cancelled_at = now
        elif status == "expired":
            batch.expired_at = now
        non_2xx_to_output = self.store.config.non_2xx_file == "output"
        out: list[bytes] = []
        err: list[bytes] = []
        input_tokens = output_tokens = 0
        for idx in emission_order(len(batch.items)):
            item = batch.items[idx]
            line_id = stable_id("batch_req_", batch.id, str(idx), length=32)
            if idx < batch.finished:
                seed = f"{batch.id}/{item.custom_id}"
                if item.status_code == 200:
                    body = chat_completion(item.body, seed=seed, created=now)
                    input_tokens += body["usage"]["prompt_tokens"]
                    output_tokens += body["usage"]["completion_tokens"]
                else:
                    body = item.error_body or check_request(item.body)[1] or {}
                response = {
                    "status_code": item.status_code,
                    "request_id": stable_id("req_", seed, length=32),
                    "body": body,
                }
                line = dumps(
                    {"id": line_id, "custom_id": item.custom_id, "response": response, "error": None}
                )
                (out if item.status_code == 200 or non_2xx_to_output else err).append(line)
            elif unfinished_code is not None:
                error = {"code": unfinished_code, "message": UNFINISHED_MESSAGES[unfinished_code]}
                err.append(
                    dumps({"id": line_id, "custom_id": item.custom_id, "response": None, "error": error})
                )
        batch.output_file_id = self._result_file(batch, "output", out, now)
        batch.error_file_id = self._result_file(batch, "error", err, now)
        batch.usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }

    def _result_file(self, batch: OpenAIBatch, kind: str, lines: list[bytes], now: int) -> str | None:
        if not lines:
            return None
        stored = StoredFile(
            id=self.store.new_id("file-"),
            filename=f"{batch.id}_{kind}.jsonl",
            purpose="batch_output",
            created_at=now,
            data=b"\n".join(lines) + b"\n",
            expires_at=now + 30 * DAY,
            scenario=batch.scenario,
        )
        with self.store.lock:
            self.store.files[stored.id] = stored
        return stored.id

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


def _list_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
