"""DynamoDB stream -> Lambda mappings on the offline stack, delivered the way AWS delivers them.

moto 5.2.5 invokes a stream-mapped function synchronously *inside* the DynamoDB write
(``StreamShard.add`` -> ``LambdaBackend.send_dynamodb_items``) and ignores the mapping's
``FilterCriteria``. In-process that nests the stream consumer inside whichever handler wrote the row -
sharing that handler's Powertools logger and metrics singletons, so the consumer's flush carries the
writer's metrics away - and invokes it for every write, chunk rows included.

:class:`StreamDelivery` replaces ``send_dynamodb_items``: the records that match the mapping's filters
(matched with moto's own EventBridge pattern matcher, the syntax Lambda filters use) are queued, and
one worker thread invokes the function with them after the write returned - one batch at a time, in
write order, as a stream shard does. Leaving it waits (bounded) for the queue to drain.
"""

from __future__ import annotations

import queue
import threading
import warnings
from functools import partial
from types import TracebackType
from typing import Any
from unittest import mock

from batch_gateway_local.stack.faults.hooks import deliver

QueuedBatch = tuple[Any, str, list[Any], str]


def check_stream_hook() -> list[str]:
    """Problems with the private moto pieces this module relies on (empty when all is as expected)."""
    from moto.awslambda.models import EventSourceMapping, LambdaBackend

    problems = []
    if not callable(getattr(LambdaBackend, "send_dynamodb_items", None)):
        problems.append("moto.awslambda.models.LambdaBackend.send_dynamodb_items no longer exists")
    if "filter_criteria" not in EventSourceMapping.__init__.__code__.co_names:
        problems.append("moto's EventSourceMapping no longer keeps filter_criteria")
    return problems


def _filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of a stream record that Lambda filters can match (JSON-safe: no datetimes)."""
    stream = record.get("dynamodb") or {}
    return {
        "eventName": record.get("eventName"),
        "eventSource": record.get("eventSource"),
        "dynamodb": {k: stream[k] for k in ("Keys", "NewImage", "OldImage") if k in stream},
    }


def _patterns(backend: Any, function_arn: str, source: str) -> list[Any]:
    from moto.events.models import EventPattern, EventPatternParser

    patterns = []
    for mapping in backend._event_source_mappings.values():
        if mapping.function_arn != function_arn or mapping.event_source_arn != source:
            continue
        for entry in (mapping.filter_criteria or {}).get("Filters", []):
            raw = entry.get("Pattern")
            patterns.append(EventPattern(raw, EventPatternParser(raw).parse()))
    return patterns


class StreamDelivery:
    """Context manager: filtered, asynchronous, ordered delivery of moto's DynamoDB stream records."""

    def __init__(self, drain_timeout: float = 10.0) -> None:
        self.drain_timeout = drain_timeout
        self._queue: queue.Queue[QueuedBatch | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._patch: Any = None
        self._original: Any = None

    def __enter__(self) -> StreamDelivery:
        from moto.awslambda.models import LambdaBackend

        self._original = LambdaBackend.send_dynamodb_items
        delivery = self

        def send_dynamodb_items(backend: Any, function_arn: str, items: list[Any], source: str) -> str:
            delivery.enqueue(backend, function_arn, items, source)
            return "queued"  # truthy: moto then forgets the records, as a consumed shard would

        self._patch = mock.patch.object(LambdaBackend, "send_dynamodb_items", send_dynamodb_items)
        self._patch.start()
        self._worker = threading.Thread(target=self._deliver, name="dynamodb-stream-delivery", daemon=True)
        self._worker.start()
        return self

    def enqueue(self, backend: Any, function_arn: str, items: list[Any], source: str) -> None:
        patterns = _patterns(backend, function_arn, source)
        matching = [
            item
            for item in items
            if not patterns or any(p.matches_event(_filter_view(item.to_json())) for p in patterns)
        ]
        if matching:
            self._queue.put((backend, function_arn, matching, source))

    def _deliver(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                backend, function_arn, items, source = batch
                deliver("dynamodb-stream", partial(self._original, backend, function_arn, items, source))
            except Exception as exc:  # keep delivering later records; the invocation log has the details
                warnings.warn(f"DynamoDB stream delivery to {batch and batch[1]} failed: {exc}", stacklevel=1)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued record was delivered; False when ``timeout`` ran out first."""
        done = threading.Event()

        def wait_for_queue() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait_for_queue, daemon=True).start()
        return done.wait(self.drain_timeout if timeout is None else timeout)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.drain(self.drain_timeout):
            warnings.warn("DynamoDB stream records still undelivered when the stack stopped", stacklevel=2)
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(self.drain_timeout)
        if self._patch is not None:
            self._patch.stop()


__all__ = ["StreamDelivery", "check_stream_hook"]
