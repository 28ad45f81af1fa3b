"""The extension point of the emulator's failure scenarios: the hooks a scenario overrides.

A :class:`Scenario` is consulted at fixed points of a batch's life (create, each line, each poll,
each download, each call); the base class is the normal, fault-free behaviour. A fault scenario
subclasses it, overrides hooks and is registered under a name (``scenarios.register_scenario``).
It is chosen per server (``EmulatorServer(scenario=...)`` or ``emulator.scenario = "name"``, which
starts it afresh) or per batch (OpenAI metadata ``emulator_scenario``, or an ``x-emulator-scenario``
header on the create call); a batch's scenario governs its own calls. Each batch gets its own
instance; what must outlive one batch (requests already seen, calls already throttled) lives in
:class:`ScenarioMemory`, shared by the instances of one scenario name on one server.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from .protocol import Provider, Reply, Request


class PollAction(Enum):
    ADVANCE = "advance"
    """Normal progression (one step per retrieve)."""
    HOLD = "hold"
    """Do not advance on this retrieve (the status does not change at all)."""
    STALL = "stall"
    """Stay in progress without finishing anything on this retrieve (an OpenAI batch that is still
    validating passes validation and becomes `in_progress`); cancellation still proceeds."""
    EXPIRE = "expire"
    """End the batch now as expired: requests finished so far keep their results, the rest expire."""
    FAIL = "fail"
    """OpenAI only, while validating: fail validation with `Scenario.validation_errors`."""


@dataclass(frozen=True)
class PollContext:
    provider: Provider
    batch_id: str
    status: str
    """Provider status before this retrieve (OpenAI `status` / Anthropic `processing_status`)."""
    poll: int
    """1-based count of retrieves of this batch, including this one."""
    total: int
    """Number of requests in the batch."""


@dataclass(frozen=True)
class ValidationIssue:
    code: str
    message: str
    line: int | None = None
    param: str | None = None


def request_key(custom_id: str, body: Mapping[str, Any]) -> str:
    """Content key of one batch request: a hash of its custom_id and body (OpenAI) / params (Anthropic)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{custom_id}\x00{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class BatchRequest:
    """One request of a batch being created."""

    index: int
    """0-based position in the batch (input order)."""
    custom_id: str
    body: Mapping[str, Any]
    """OpenAI: the line's `body`; Anthropic: the request's `params`."""

    @property
    def key(self) -> str:
        return request_key(self.custom_id, self.body)


@dataclass(frozen=True)
class CreateContext:
    provider: Provider
    model: str | None
    """OpenAI: the batch's model; Anthropic: the first request's model."""
    requests: Sequence[BatchRequest]


@dataclass(frozen=True)
class ItemFault:
    """A per-request failure injected by `Scenario.item_fault`."""

    status: int
    """OpenAI: the request's `status_code` (Anthropic results carry no status)."""
    error_type: str
    """`error.type` (OpenAI `server_error`, Anthropic `overloaded_error`, ...)."""
    message: str
    code: str | None = None
    """OpenAI `error.code`."""


class ScenarioMemory:
    """What a scenario remembers across batches on one server (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {}
        self._counts: dict[str, int] = {}

    def remember_first(self, key: str, value: Any) -> tuple[Any, bool]:
        """(the value stored under key, True when it was stored just now): `value` is stored only
        when nothing was stored under key before."""
        with self._lock:
            if key in self._values:
                return self._values[key], False
            self._values[key] = value
            return value, True

    def first_sight(self, keys: Iterable[str]) -> bool:
        """True when none of `keys` was seen before; marks them all seen."""
        keys = list(keys)
        with self._lock:
            fresh = not any(key in self._values for key in keys)
            for key in keys:
                self._values.setdefault(key, True)
        return fresh

    def count(self, key: str) -> int:
        """Increment the counter `key` and return its new value (1 on the first call)."""
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


class Scenario:
    """Normal behaviour. Override hooks to inject faults."""

    name: ClassVar[str] = "default"
    _memory: ScenarioMemory | None = None

    @property
    def memory(self) -> ScenarioMemory:
        """State shared by all instances of this scenario on one server (see `bind`)."""
        if self._memory is None:
            self._memory = ScenarioMemory()
        return self._memory

    def bind(self, memory: ScenarioMemory) -> Scenario:
        self._memory = memory
        return self

    def before_request(self, request: Request, batch_id: str | None) -> Reply | None:
        """Called for every HTTP request (batch_id set for batch-scoped routes).

        Return a Reply (e.g. `error_reply(request.provider, 429, ...)`) to answer instead of the
        normal handler; sleep here to emulate a slow API. Return None to continue normally.
        """
        return None

    def on_create(self, context: CreateContext) -> Reply | None:
        """Called once when a batch is created, after its requests were read and before it exists
        (and before `polls_to_complete`). Return a Reply to reject the create call."""
        return None

    def item_fault(self, context: CreateContext, request: BatchRequest) -> ItemFault | None:
        """Called at creation for each request of a batch that will run; a fault makes a request
        that would otherwise succeed fail with that error."""
        return None

    def polls_to_complete(self, default: int) -> int:
        """Retrieves needed for a batch to complete."""
        return default

    def on_poll(self, context: PollContext) -> PollAction:
        """Decide what a retrieve does to the batch's state."""
        return PollAction.ADVANCE

    def validation_errors(self) -> list[ValidationIssue]:
        """Errors reported when `on_poll` returns FAIL (OpenAI validation failure)."""
        return [ValidationIssue(code="emulated_failure", message="Batch failed validation (emulated).")]

    def download_chunks(self, data: memoryview, chunk_size: int) -> Iterator[memoryview]:
        """Chunks of a file / results download. Stopping early breaks the stream: the server
        announced the full Content-Length and closes the connection after the last chunk yielded."""
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]
