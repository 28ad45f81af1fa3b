"""The process environment a handler runs in, and an ``os.environ`` other threads can read meanwhile.

A handler sees its function's own ``Environment.Variables`` plus what the Lambda runtime sets
(AWS_LAMBDA_FUNCTION_NAME, AWS_REGION, _HANDLER, LAMBDA_TASK_ROOT, ...); variables that belong to
*other* functions are removed for the duration of the call, so functions do not see each other's
configuration. ``os.environ`` is process-wide, so the runtime swaps it per invocation with
:func:`set_environ`; while it is installed, ``os.environ`` is a :class:`SnapshotEnviron`, whose
whole-mapping reads see one consistent environment even while a swap is under way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction

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


def function_environment(
    function: LambdaFunction, code_dir: Path, log_stream: str, other_functions_keys: set[str]
) -> dict[str, str]:
    """The environment ``function`` runs with, derived from the current ``os.environ``."""
    own = {str(k): str(v) for k, v in (function.environment_vars or {}).items()}
    env = {k: v for k, v in os.environ.items() if k not in other_functions_keys and k not in RUNTIME_ENV_KEYS}
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


def set_environ(target: Mapping[str, str]) -> None:
    for key in [k for k in os.environ if k not in target]:
        del os.environ[key]
    for key, value in target.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


class SnapshotEnviron(os._Environ):  # type: ignore[type-arg]
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
