"""Run moto's Lambda functions in this Python process instead of in Docker.

Every way moto invokes a function (the Invoke API, Step Functions tasks, S3 notifications, event
source mappings) ends in one private method, ``LambdaFunction._invoke_lambda(self, event) ->
(payload, errored, logs)``. :class:`InProcessLambdaRuntime` replaces it, while installed, with a call
of the function's handler imported from its local code directory (``handlers``), in the function's
environment (``environ``), with a Lambda context (``context``) and its output captured (``capture``).

``os.environ`` and ``sys.path`` are process-wide, so invocations run one at a time under one
re-entrant lock (a nested invocation in the same thread re-enters it); a lock timeout turns a
deadlock into ``OfflineStack.LockTimeout``. docs/offline-stack.md says more, and what is not emulated.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from unittest import mock

from moto.awslambda.models import LambdaFunction, lambda_backends

from batch_gateway_local.stack.faults.plan import HandlerCrash
from batch_gateway_local.stack.iam.recorder import acting_as
from batch_gateway_local.stack.lambda_runtime.capture import capturing
from batch_gateway_local.stack.lambda_runtime.context import (
    Invocation,
    InvocationSetupError,
    LambdaContext,
    decode_event,
    error_payload,
)
from batch_gateway_local.stack.lambda_runtime.environ import (
    SnapshotEnviron,
    function_environment,
    set_environ,
)
from batch_gateway_local.stack.lambda_runtime.handlers import CodeLocation, HandlerModules, layer_import_path
from batch_gateway_local.stack.lambda_runtime.isolation import forget_function_caches, function_caches

INVOKE_METHOD = "_invoke_lambda"
"""Name of the private moto method this module replaces."""

EXPECTED_INVOKE_PARAMETERS = ("self", "event")


def check_invoke_hook() -> list[str]:
    """Problems with the moto method this module replaces (empty when it is as expected)."""
    method = getattr(LambdaFunction, INVOKE_METHOD, None)
    if method is None or not callable(method):
        return [f"moto.awslambda.models.LambdaFunction.{INVOKE_METHOD} no longer exists"]
    params = tuple(inspect.signature(method).parameters)
    if params != EXPECTED_INVOKE_PARAMETERS:
        return [
            f"moto.awslambda.models.LambdaFunction.{INVOKE_METHOD} has parameters {params}, "
            f"expected {EXPECTED_INVOKE_PARAMETERS}"
        ]
    return []


class InProcessLambdaRuntime:
    """Replaces moto's Docker-based Lambda execution with in-process handler calls.

    ``code_locations`` maps each deployment package moto knows (function ``Code`` or layer
    ``Content`` S3 bucket/key) to its local directory. ``function_env_keys`` lists every
    environment variable name some function defines; they are hidden from functions that do
    not define them.
    """

    def __init__(
        self,
        code_locations: list[CodeLocation] | None = None,
        *,
        function_env_keys: set[str] | None = None,
        lock_timeout: float = 300.0,
    ) -> None:
        self._code: dict[tuple[str, str], Path] = {}
        for location in code_locations or []:
            self.add_code_location(location)
        self._function_env_keys: set[str] = set(function_env_keys or ())
        self._lock = threading.RLock()
        self._records_lock = threading.Lock()
        self._lock_timeout = lock_timeout
        self._lock_moved_at = time.monotonic()  # the last time an invocation took or left the lock
        self._handlers = HandlerModules()
        self._invocations: list[Invocation] = []
        self._patcher: Any = None
        self._environ_class: type[Any] = type(os.environ)
        self._modules_before: set[str] = set()

    # -- configuration -------------------------------------------------------------------------

    def add_code_location(self, location: CodeLocation) -> None:
        self._code[(location.bucket, location.key)] = location.path.resolve()

    def add_function_env_keys(self, keys: set[str]) -> None:
        self._function_env_keys |= keys

    # -- install / remove ----------------------------------------------------------------------

    @property
    def installed(self) -> bool:
        return self._patcher is not None

    def install(self) -> None:
        problems = check_invoke_hook()
        if problems:
            raise RuntimeError("; ".join(problems))
        if self._patcher is not None:
            return
        runtime = self

        def _invoke_lambda(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            return runtime.invoke(function, event)

        self._modules_before = set(sys.modules)
        self._patcher = mock.patch.object(LambdaFunction, INVOKE_METHOD, _invoke_lambda)
        self._patcher.start()
        self._environ_class = type(os.environ)
        os.environ.__class__ = SnapshotEnviron

    def uninstall(self) -> None:
        if self._patcher is None:
            return
        self._patcher.stop()
        self._patcher = None
        os.environ.__class__ = self._environ_class
        self._handlers.forget(self._code.values(), self._modules_before)
        forget_function_caches()

    def __enter__(self) -> InProcessLambdaRuntime:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # -- records -------------------------------------------------------------------------------

    @property
    def invocations(self) -> list[Invocation]:
        with self._records_lock:
            return list(self._invocations)

    @contextmanager
    def between_invocations(self) -> Iterator[None]:
        """Hold off handlers while the caller reads shared mock state.

        moto updates a DynamoDB item's attributes in place; a query iterating the same item from
        another thread (a test following a job) failed with "dictionary changed size during
        iteration". Reads taken here never overlap a handler's writes.
        """
        with self._lock:
            yield

    # -- the replacement for LambdaFunction._invoke_lambda --------------------------------------

    def invoke(self, function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        """Run ``function``'s handler on ``event``; returns (payload JSON, errored, log text)."""
        function.logs_backend.ensure_log_group(function.logs_group_name)
        request_id = str(uuid.uuid4())
        record = Invocation(
            function_name=function.function_name,
            request_id=request_id,
            event=decode_event(event),
            started_at=time.time(),
        )
        buffer = io.StringIO()
        if not self._acquire():
            record.error = {
                "errorMessage": (
                    f"waited {self._lock_timeout:.0f} s for another in-process invocation to finish; "
                    "a handler is probably waiting for work that needs another Lambda invocation"
                ),
                "errorType": "OfflineStack.LockTimeout",
                "stackTrace": [],
            }
            return self._finish(function, record, buffer)
        try:
            with capturing(buffer):
                self._run(function, record, buffer)
        finally:
            self._lock_moved_at = time.monotonic()
            self._lock.release()
        return self._finish(function, record, buffer)

    def _acquire(self) -> bool:
        """Take the lock; False once no invocation took or left it for ``lock_timeout`` (a deadlock).

        The lock is not fair: with hundreds of chunks polling at once one invocation may wait longer
        than the timeout while others run, which is progress, not a deadlock.
        """
        while not self._lock.acquire(timeout=min(1.0, self._lock_timeout)):
            if time.monotonic() - self._lock_moved_at > self._lock_timeout:
                return False
        self._lock_moved_at = time.monotonic()
        return True

    def _finish(
        self, function: LambdaFunction, record: Invocation, buffer: io.StringIO
    ) -> tuple[str, bool, str]:
        record.logs = buffer.getvalue()
        with self._records_lock:
            self._invocations.append(record)
        with suppress(Exception):  # the CloudWatch copy of the logs is a convenience
            function.save_logs(record.logs)
        if record.error is not None:
            record.error["requestId"] = record.request_id
            return json.dumps(record.error), True, record.logs
        return json.dumps(record.result), False, record.logs

    def _run(self, function: LambdaFunction, record: Invocation, buffer: io.StringIO) -> None:
        log_stream = f"{time.strftime('%Y/%m/%d')}/[{function.version}]{record.request_id.replace('-', '')}"
        buffer.write(f"START RequestId: {record.request_id} Version: {function.version}\n")
        started = time.monotonic()
        try:
            self._call_handler(function, record, log_stream)
        except InvocationSetupError as exc:
            record.error = error_payload(exc, exc.error_type)
        except HandlerCrash as exc:  # an injected fault: reported as the Lambda service reports a timeout
            record.error = error_payload(exc, exc.error_type)
        except (Exception, SystemExit) as exc:
            error_type = "Runtime.ExitError" if isinstance(exc, SystemExit) else None
            record.error = error_payload(exc, error_type)
        if record.error is not None:
            buffer.write(
                f"[ERROR] {record.error['errorType']}: {record.error['errorMessage']}\n"
                + "".join(record.error["stackTrace"])
            )
        record.duration_ms = (time.monotonic() - started) * 1000
        note = ""
        if record.duration_ms > float(function.timeout) * 1000:
            note = f" (longer than the function's Timeout of {function.timeout} s; AWS would time out)"
        buffer.write(f"END RequestId: {record.request_id}\n")
        buffer.write(
            f"REPORT RequestId: {record.request_id}\tDuration: {record.duration_ms:.2f} ms\t"
            f"Memory Size: {function.memory_size} MB{note}\n"
        )

    def _call_handler(self, function: LambdaFunction, record: Invocation, log_stream: str) -> None:
        code_dir, import_paths = self._locate(function)
        with (
            self._environment(function, code_dir, log_stream),
            _sys_path(import_paths),
            acting_as(function.function_name),
            function_caches(function.function_name),
        ):
            handler = self._handlers.handler(function, code_dir)
            context = LambdaContext(
                function_name=function.function_name,
                function_version=str(function.version),
                invoked_function_arn=function.function_arn,
                memory_limit_in_mb=int(function.memory_size),
                aws_request_id=record.request_id,
                log_group_name=function.logs_group_name,
                log_stream_name=log_stream,
                timeout_s=float(function.timeout),
            )
            result = handler(record.event, context)
        try:
            json.dumps(result)
        except (TypeError, ValueError) as exc:
            record.error = error_payload(exc, "Runtime.MarshalError")
            record.error["errorMessage"] = f"Unable to marshal response: {exc}"
        else:
            record.result = result

    # -- helpers -------------------------------------------------------------------------------

    def _locate(self, function: LambdaFunction) -> tuple[Path, list[Path]]:
        code = function.code if isinstance(function.code, dict) else {}
        code_dir = self._code.get((str(code.get("S3Bucket")), str(code.get("S3Key"))))
        if code_dir is None:
            raise InvocationSetupError(
                "OfflineStack.NoLocalCode",
                f"function {function.function_name} has no local code directory (its Code is {code!r}); "
                "only functions whose CodeUri is a local path in the template can run in-process",
            )
        paths = [code_dir]
        backend = lambda_backends[function.account_id][function.region]
        for layer in function.layers:
            layer_version = backend.layers_versions_by_arn(layer["Arn"])
            content = getattr(layer_version, "content", None) or {}
            layer_dir = self._code.get((str(content.get("S3Bucket")), str(content.get("S3Key"))))
            if layer_dir is None:
                raise InvocationSetupError(
                    "OfflineStack.NoLocalCode",
                    f"layer {layer['Arn']} of function {function.function_name} has no local directory",
                )
            paths.extend(layer_import_path(layer_dir))
        return code_dir, paths

    def function_environment(
        self, function: LambdaFunction, code_dir: Path, log_stream: str
    ) -> dict[str, str]:
        """The environment ``function`` runs with, derived from the current ``os.environ``."""
        return function_environment(function, code_dir, log_stream, self._function_env_keys)

    @contextmanager
    def _environment(self, function: LambdaFunction, code_dir: Path, log_stream: str) -> Iterator[None]:
        previous = dict(os.environ)
        self._function_env_keys |= set(function.environment_vars or {})
        set_environ(self.function_environment(function, code_dir, log_stream))
        try:
            yield
        finally:
            set_environ(previous)


@contextmanager
def _sys_path(paths: list[Path]) -> Iterator[None]:
    entries = [str(p) for p in paths]
    sys.path[:0] = entries
    try:
        yield
    finally:
        for entry in entries:
            with suppress(ValueError):
                sys.path.remove(entry)
