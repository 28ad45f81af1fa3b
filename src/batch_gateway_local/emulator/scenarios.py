"""Extension point for failure scenarios.

A `Scenario` is consulted at fixed points of the emulator's life cycle. The base class is the
normal, fault-free behaviour; a fault scenario subclasses it, overrides one or more hooks and is
registered under a name with `register_scenario`. It is then chosen

* per server: `EmulatorServer(scenario="name")` (applies to every request and batch), or
* per batch: OpenAI batch metadata `{"emulator_scenario": "name"}`, or an
  `x-emulator-scenario: name` header on the create call (both providers).

Each batch gets its own scenario instance (factories are called per batch), so a scenario may keep
per-batch state such as "how many downloads were attempted".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from .protocol import Provider, Reply, Request


class PollAction(Enum):
    ADVANCE = "advance"
    """Normal progression (one step per retrieve)."""
    HOLD = "hold"
    """Do not advance on this retrieve (a slow batch)."""
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


class Scenario:
    """Normal behaviour. Override hooks to inject faults."""

    name: ClassVar[str] = "default"

    def before_request(self, request: Request, batch_id: str | None) -> Reply | None:
        """Called for every HTTP request (batch_id set for batch-scoped routes).

        Return a Reply (e.g. `error_reply(request.provider, 429, ...)`) to answer instead of the
        normal handler; sleep here to emulate a slow API. Return None to continue normally.
        """
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


ScenarioFactory = Callable[[], Scenario]

_registry: dict[str, ScenarioFactory] = {"default": Scenario}
_registry_lock = threading.Lock()


def register_scenario(name: str, factory: ScenarioFactory) -> None:
    """Make `factory` selectable under `name`."""
    with _registry_lock:
        _registry[name] = factory


def scenario_names() -> list[str]:
    with _registry_lock:
        return sorted(_registry)


def make_scenario(name: str) -> Scenario:
    """A fresh instance of the named scenario; KeyError when unknown."""
    with _registry_lock:
        factory = _registry[name]
    return factory()
