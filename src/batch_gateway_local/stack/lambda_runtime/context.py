"""What one in-process invocation is given and leaves behind: the context object, the record, errors.

:class:`LambdaContext` has the parts of the Lambda Python runtime's context object that handlers and
Powertools use. :class:`Invocation` records one call (event, result or error payload, logs, duration).
:func:`error_payload` is the Lambda error payload ``{"errorMessage", "errorType", "stackTrace"}``:
Step Functions sees the exception class name as the error, so ``Retry``/``Catch`` on ``"MyError"``
work. :class:`InvocationSetupError` is a failure before the handler runs (``Runtime.ImportModuleError``,
``Runtime.HandlerNotFound``, ``OfflineStack.NoLocalCode``), reported under the type Lambda uses.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from typing import Any


@dataclass
class Invocation:
    """One in-process call of a handler."""

    function_name: str
    request_id: str
    event: Any
    started_at: float
    duration_ms: float = 0.0
    result: Any = None
    error: dict[str, Any] | None = None
    logs: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


class LambdaContext:
    """The parts of the Lambda Python runtime's context object that handlers and Powertools use."""

    def __init__(
        self,
        *,
        function_name: str,
        function_version: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        aws_request_id: str,
        log_group_name: str,
        log_stream_name: str,
        timeout_s: float,
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InvocationSetupError(Exception):
    """The invocation failed before the handler ran; ``error_type`` is what Lambda would report."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def decode_event(event: Any) -> Any:
    """moto hands over the parsed JSON body, or the string "{}" for an empty one."""
    if event is None:
        return {}
    if isinstance(event, (bytes, bytearray)):
        event = event.decode("utf-8")
    if isinstance(event, str):
        try:
            return json.loads(event)
        except ValueError:
            return event
    return event
