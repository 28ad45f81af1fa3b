"""Run moto's Lambda functions in this Python process instead of in Docker.

moto runs Lambda code only in Docker. Every way moto invokes a function (the Invoke API, Step
Functions Task states, S3 bucket notifications, SQS/SNS/EventBridge where moto wires them) ends
in one private method, ``moto.awslambda.models.LambdaFunction._invoke_lambda(self, event) ->
(payload, errored, logs)``. :class:`InProcessLambdaRuntime` replaces that method, for as long as
it is installed, with one that imports the function's handler from its local code directory and
calls it here.

What a handler sees:

* ``event`` - the parsed JSON payload, exactly what moto was asked to deliver.
* ``context`` - a :class:`LambdaContext` (function_name, function_version, invoked_function_arn,
  memory_limit_in_mb, aws_request_id, log_group_name, log_stream_name,
  get_remaining_time_in_millis()).
* ``os.environ`` - the function's own ``Environment.Variables`` (as moto resolved them from the
  template) plus the variables the Lambda runtime sets (AWS_LAMBDA_FUNCTION_NAME, AWS_REGION,
  _HANDLER, LAMBDA_TASK_ROOT, ...). Variables that belong to *other* functions are removed for the
  duration of the call, so functions do not see each other's configuration.
* ``sys.path`` - the function's code directory and its layers' import directories (``<layer>/python``
  when the layer has one, else the layer directory itself, as ``sam build`` lays a Python layer out).

A handler's return value is JSON-encoded as the payload. An exception becomes the Lambda error
payload ``{"errorMessage", "errorType", "stackTrace"}`` with ``errored=True``, so Step Functions
sees the exception class name as the error (``Retry``/``Catch`` on ``"MyError"`` work, and
``States.TaskFailed``/``States.ALL`` match too). A value that cannot be JSON-encoded gives
``Runtime.MarshalError``, a missing module ``Runtime.ImportModuleError``, a missing handler
function ``Runtime.HandlerNotFound``, as on AWS.

Threads and nesting: ``os.environ`` and ``sys.path`` are process-wide, so every invocation runs
under one re-entrant lock. Invocations from several threads (a Map state's iterations) therefore
run one at a time; an invocation nested in the same thread (a handler that puts an S3 object whose
notification invokes another function, or calls Lambda Invoke) re-enters the lock and gets its
own environment, restored afterwards. A handler that *waits* for work another thread must do in a
Lambda (e.g. a synchronous Express execution with a Map state) would deadlock: the lock is taken
with a timeout (``lock_timeout``) and the invocation then fails with ``OfflineStack.LockTimeout``
instead of hanging. While a handler runs, other threads of the process (the test itself) see that
handler's environment too.

Modules: a handler module is loaded by file path under a unique module name (several functions
may all have an ``app.py``) and cached for the runtime's lifetime (one cold start per function).
Other modules (siblings in the code directory, layer packages) are imported the ordinary way and
cached in ``sys.modules`` by their ordinary name, so two functions must not ship different
modules with the same name. On ``uninstall`` every module first imported while the runtime was
installed from a function or layer directory is dropped from ``sys.modules``, so the next runtime
starts cold; modules the process had imported before (e.g. the layer package a test imported
from PYTHONPATH) are shared, not reloaded.

Output: stdout/stderr of the handler's thread are captured per invocation (plus START/END/REPORT
lines and the traceback of an error), returned to moto as the invocation's log, copied to moto's
CloudWatch Logs group ``/aws/lambda/<function>``, and kept in :attr:`InProcessLambdaRuntime.invocations`.

Not emulated: timeouts are not enforced (the REPORT log line says when a call ran longer than the
function's Timeout), memory limits, reserved concurrency, the read-only file system.
"""

from __future__ import annotations

import importlib.util
import inspect
import io
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO, cast
from unittest import mock

from moto.awslambda.models import LambdaFunction, lambda_backends

INVOKE_METHOD = "_invoke_lambda"
"""Name of the private moto method this module replaces."""

EXPECTED_INVOKE_PARAMETERS = ("self", "event")

# Variables the Lambda runtime sets; removed from / set in os.environ per invocation.
RUNTIME_ENV_KEYS = frozenset(
    {
        "_HANDLER",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_TIMEOUT",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)

# Set for every invocation unless the function's own variables say otherwise: there is no X-Ray
# daemon here, and Powertools Tracer would otherwise switch on because AWS_LAMBDA_FUNCTION_NAME is set.
RUNTIME_ENV_DEFAULTS = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_XRAY_SDK_ENABLED": "false",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
}


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


@dataclass(frozen=True)
class CodeLocation:
    """A deployment package (function code or layer content) and the local directory it came from."""

    bucket: str
    key: str
    path: Path


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


class _Capture(threading.local):
    """Per-thread stack of log buffers of the invocations running in that thread."""

    def __init__(self) -> None:
        self.buffers: list[io.StringIO] = []


_CAPTURE = _Capture()


class _TeeStream(io.TextIOBase):
    """Writes to the stream it replaced and to the current thread's invocation log, if any.

    Loggers created while a handler module is imported keep a reference to this object; it stays
    harmless after the runtime is removed (it then only forwards).
    """

    def __init__(self, underlying: TextIO) -> None:
        super().__init__()
        self._underlying = underlying

    def write(self, s: str) -> int:
        if _CAPTURE.buffers:
            _CAPTURE.buffers[-1].write(s)
        try:
            return self._underlying.write(s)
        except ValueError:  # the underlying stream was closed (e.g. a finished pytest capture)
            return len(s)

    def flush(self) -> None:
        with suppress(ValueError):
            self._underlying.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._underlying.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._underlying, "encoding", None) or "utf-8"


class _InvocationSetupError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def _decode_event(event: Any) -> Any:
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


def layer_import_path(layer_dir: Path) -> list[Path]:
    """Where Python imports a layer's code from (what ``sam build`` would put under /opt/python)."""
    python_dir = layer_dir / "python"
    if not python_dir.is_dir():
        return [layer_dir]
    paths = [python_dir]
    paths.extend(sorted(python_dir.glob("lib/python3*/site-packages")))
    return paths


def _set_environ(target: Mapping[str, str]) -> None:
    for key in [k for k in os.environ if k not in target]:
        del os.environ[key]
    for key, value in target.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


class _SnapshotEnviron(os._Environ):  # type: ignore[type-arg]
    """``os.environ`` whose whole-mapping reads (items, keys, values, copy) work on a snapshot.

    Handlers swap variables in and out while other threads read the environment as a whole: boto3
    (through urllib's proxy lookup) and urllib iterate ``os.environ.items()`` on every client or
    request, and a key deleted between listing and reading it raised KeyError there. A dict copy of
    ``_data`` is taken in one step under the GIL, so these reads see one consistent environment.
    """

    def _snapshot(self) -> dict[Any, Any]:
        data: dict[Any, Any] = dict(self._data)  # type: ignore[attr-defined]
        return {self.decodekey(k): self.decodevalue(v) for k, v in data.items()}

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._snapshot()))

    def items(self) -> Any:
        return self._snapshot().items()

    def keys(self) -> Any:
        return self._snapshot().keys()

    def values(self) -> Any:
        return self._snapshot().values()

    def copy(self) -> dict[Any, Any]:
        return self._snapshot()


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
        self._modules: dict[tuple[str, str, str], Callable[..., Any]] = {}
        self._module_names: list[str] = []
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
        os.environ.__class__ = _SnapshotEnviron

    def uninstall(self) -> None:
        if self._patcher is None:
            return
        self._patcher.stop()
        self._patcher = None
        os.environ.__class__ = self._environ_class
        self._forget_modules()

    def __enter__(self) -> InProcessLambdaRuntime:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def _forget_modules(self) -> None:
        """Drop handler modules and the sibling modules they imported from their code dirs."""
        for name in self._module_names:
            sys.modules.pop(name, None)
        self._module_names.clear()
        self._modules.clear()
        code_dirs = {str(path) + os.sep for path in self._code.values()}
        for name, module in list(sys.modules.items()):
            if name in self._modules_before:
                continue
            file = getattr(module, "__file__", None) or ""
            if any(file.startswith(d) for d in code_dirs):
                sys.modules.pop(name, None)

    # -- records -------------------------------------------------------------------------------

    @property
    def invocations(self) -> list[Invocation]:
        with self._records_lock:
            return list(self._invocations)

    # -- the replacement for LambdaFunction._invoke_lambda --------------------------------------

    @contextmanager
    def between_invocations(self) -> Iterator[None]:
        """Hold off handlers while the caller reads shared mock state.

        moto updates a DynamoDB item's attributes in place; a query iterating the same item from
        another thread (a test following a job) failed with "dictionary changed size during
        iteration". Reads taken here never overlap a handler's writes.
        """
        with self._lock:
            yield

    def invoke(self, function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        """Run ``function``'s handler on ``event``; returns (payload JSON, errored, log text)."""
        function.logs_backend.ensure_log_group(function.logs_group_name)
        request_id = str(uuid.uuid4())
        record = Invocation(
            function_name=function.function_name,
            request_id=request_id,
            event=_decode_event(event),
            started_at=time.time(),
        )
        buffer = io.StringIO()
        if not self._lock.acquire(timeout=self._lock_timeout):
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
            _CAPTURE.buffers.append(buffer)
            try:
                with self._redirect_output():
                    self._run(function, record, buffer)
            finally:
                _CAPTURE.buffers.pop()
        finally:
            self._lock.release()
        return self._finish(function, record, buffer)

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
            code_dir, import_paths = self._locate(function)
            with self._environment(function, code_dir, log_stream), self._sys_path(import_paths):
                handler = self._handler(function, code_dir)
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
                record.error = _error_payload(exc, "Runtime.MarshalError")
                record.error["errorMessage"] = f"Unable to marshal response: {exc}"
            else:
                record.result = result
        except _InvocationSetupError as exc:
            record.error = _error_payload(exc, exc.error_type)
        except (Exception, SystemExit) as exc:
            error_type = "Runtime.ExitError" if isinstance(exc, SystemExit) else None
            record.error = _error_payload(exc, error_type)
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

    # -- helpers -------------------------------------------------------------------------------

    def _locate(self, function: LambdaFunction) -> tuple[Path, list[Path]]:
        code = function.code if isinstance(function.code, dict) else {}
        code_dir = self._code.get((str(code.get("S3Bucket")), str(code.get("S3Key"))))
        if code_dir is None:
            raise _InvocationSetupError(
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
                raise _InvocationSetupError(
                    "OfflineStack.NoLocalCode",
                    f"layer {layer['Arn']} of function {function.function_name} has no local directory",
                )
            paths.extend(layer_import_path(layer_dir))
        return code_dir, paths

    def _handler(self, function: LambdaFunction, code_dir: Path) -> Callable[..., Any]:
        handler_spec = str(function.handler or "")
        module_path, _, attr = handler_spec.rpartition(".")
        if not module_path or not attr:
            raise _InvocationSetupError(
                "Runtime.MalformedHandlerName", f"Bad handler '{handler_spec}': not enough values to unpack"
            )
        key = (function.function_arn, handler_spec, str(code_dir))
        cached = self._modules.get(key)
        if cached is not None:
            return cached
        relative = Path(*module_path.replace("/", ".").split("."))
        file = code_dir / relative.with_suffix(".py")
        if not file.is_file():
            file = code_dir / relative / "__init__.py"
        if not file.is_file():
            raise _InvocationSetupError(
                "Runtime.ImportModuleError",
                f"Unable to import module '{module_path}': No module named '{module_path}' in {code_dir}",
            )
        safe = re.sub(r"\W", "_", f"{function.function_name}__{module_path}")
        unique_name = f"_offline_lambda__{safe}"
        spec = importlib.util.spec_from_file_location(unique_name, file)
        if spec is None or spec.loader is None:
            raise _InvocationSetupError("Runtime.ImportModuleError", f"cannot load {file}")
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[unique_name] = module
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:
            sys.modules.pop(unique_name, None)
            raise _InvocationSetupError(
                "Runtime.ImportModuleError", f"Unable to import module '{module_path}': {exc}"
            ) from exc
        except BaseException:
            sys.modules.pop(unique_name, None)
            raise
        handler = getattr(module, attr, None)
        if not callable(handler):
            sys.modules.pop(unique_name, None)
            raise _InvocationSetupError(
                "Runtime.HandlerNotFound", f"Handler '{attr}' missing on module '{module_path}'"
            )
        self._module_names.append(unique_name)
        self._modules[key] = handler
        return cast(Callable[..., Any], handler)

    def function_environment(
        self, function: LambdaFunction, code_dir: Path, log_stream: str
    ) -> dict[str, str]:
        """The environment ``function`` runs with, derived from the current ``os.environ``."""
        own = {str(k): str(v) for k, v in (function.environment_vars or {}).items()}
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in self._function_env_keys and k not in RUNTIME_ENV_KEYS
        }
        env.update(RUNTIME_ENV_DEFAULTS)
        env.update(
            {
                "_HANDLER": str(function.handler),
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time}",
                "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
                "AWS_LAMBDA_LOG_GROUP_NAME": function.logs_group_name,
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
                "AWS_REGION": function.region,
                "AWS_DEFAULT_REGION": function.region,
                "LAMBDA_TASK_ROOT": str(code_dir),
            }
        )
        env.update(own)
        return env

    @contextmanager
    def _environment(self, function: LambdaFunction, code_dir: Path, log_stream: str) -> Iterator[None]:
        previous = dict(os.environ)
        self._function_env_keys |= set(function.environment_vars or {})
        _set_environ(self.function_environment(function, code_dir, log_stream))
        try:
            yield
        finally:
            _set_environ(previous)

    @staticmethod
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

    @staticmethod
    @contextmanager
    def _redirect_output() -> Iterator[None]:
        old_out, old_err = sys.stdout, sys.stderr
        new_out = old_out if isinstance(old_out, _TeeStream) else cast(TextIO, _TeeStream(old_out))
        new_err = old_err if isinstance(old_err, _TeeStream) else cast(TextIO, _TeeStream(old_err))
        sys.stdout, sys.stderr = new_out, new_err
        try:
            yield
        finally:
            if sys.stdout is new_out:
                sys.stdout = old_out
            if sys.stderr is new_err:
                sys.stderr = old_err


__all__ = [
    "EXPECTED_INVOKE_PARAMETERS",
    "INVOKE_METHOD",
    "CodeLocation",
    "InProcessLambdaRuntime",
    "Invocation",
    "LambdaContext",
    "check_invoke_hook",
    "layer_import_path",
]
