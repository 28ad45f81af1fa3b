"""Where a function's code is, and its handler imported from there, once per function.

A handler module is loaded by file path under a unique module name (several functions may all have
an ``app.py``) and cached for the runtime's lifetime (one cold start per function). Other modules
(siblings in the code directory, layer packages) are imported the ordinary way and cached in
``sys.modules`` under their ordinary name, so two functions must not ship different modules with the
same name. :meth:`HandlerModules.forget` drops every module first imported from a function or layer
directory while the runtime was installed, so the next runtime starts cold; modules the process had
imported before (e.g. the layer package a test imported from PYTHONPATH) are shared, not reloaded.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from moto.awslambda.models import LambdaFunction

from batch_gateway_local.stack.lambda_runtime.context import InvocationSetupError


@dataclass(frozen=True)
class CodeLocation:
    """A deployment package (function code or layer content) and the local directory it came from."""

    bucket: str
    key: str
    path: Path


def layer_import_path(layer_dir: Path) -> list[Path]:
    """Where Python imports a layer's code from (what ``sam build`` would put under /opt/python)."""
    python_dir = layer_dir / "python"
    if not python_dir.is_dir():
        return [layer_dir]
    paths = [python_dir]
    paths.extend(sorted(python_dir.glob("lib/python3*/site-packages")))
    return paths


class HandlerModules:
    """Handler functions by (function ARN, handler spec, code directory), imported on first use."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str, str], Callable[..., Any]] = {}
        self._module_names: list[str] = []

    def forget(self, code_dirs: Iterable[Path], modules_before: set[str]) -> None:
        """Drop handler modules and the sibling modules they imported from their code dirs."""
        for name in self._module_names:
            sys.modules.pop(name, None)
        self._module_names.clear()
        self._handlers.clear()
        prefixes = {str(path) + os.sep for path in code_dirs}
        for name, module in list(sys.modules.items()):
            if name in modules_before:
                continue
            file = getattr(module, "__file__", None) or ""
            if any(file.startswith(d) for d in prefixes):
                sys.modules.pop(name, None)

    def handler(self, function: LambdaFunction, code_dir: Path) -> Callable[..., Any]:
        """``function``'s handler (``module.attr`` of its ``Handler``), imported from ``code_dir``."""
        handler_spec = str(function.handler or "")
        module_path, _, attr = handler_spec.rpartition(".")
        if not module_path or not attr:
            raise InvocationSetupError(
                "Runtime.MalformedHandlerName", f"Bad handler '{handler_spec}': not enough values to unpack"
            )
        key = (function.function_arn, handler_spec, str(code_dir))
        cached = self._handlers.get(key)
        if cached is not None:
            return cached
        module, unique_name = _import_module(function, code_dir, module_path)
        handler = getattr(module, attr, None)
        if not callable(handler):
            sys.modules.pop(unique_name, None)
            raise InvocationSetupError(
                "Runtime.HandlerNotFound", f"Handler '{attr}' missing on module '{module_path}'"
            )
        self._module_names.append(unique_name)
        self._handlers[key] = handler
        return cast(Callable[..., Any], handler)


def _import_module(function: LambdaFunction, code_dir: Path, module_path: str) -> tuple[ModuleType, str]:
    relative = Path(*module_path.replace("/", ".").split("."))
    file = code_dir / relative.with_suffix(".py")
    if not file.is_file():
        file = code_dir / relative / "__init__.py"
    if not file.is_file():
        raise InvocationSetupError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_path}': No module named '{module_path}' in {code_dir}",
        )
    safe = re.sub(r"\W", "_", f"{function.function_name}__{module_path}")
    unique_name = f"_offline_lambda__{safe}"
    spec = importlib.util.spec_from_file_location(unique_name, file)
    if spec is None or spec.loader is None:
        raise InvocationSetupError("Runtime.ImportModuleError", f"cannot load {file}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[unique_name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        sys.modules.pop(unique_name, None)
        raise InvocationSetupError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_path}': {exc}"
        ) from exc
    except BaseException:
        sys.modules.pop(unique_name, None)
        raise
    return module, unique_name
