"""Per-function copies of the process-wide caches a handler's libraries keep between invocations.

On AWS every function has its own process, so a cache one function fills is never seen by another.
Here all handlers share one process and the layer's modules, so Powertools Parameters'
``DEFAULT_PROVIDERS`` (which caches a secret for ``max_age`` seconds) would let PollFunction use the
secret SubmitFunction read: PollFunction's own GetSecretValue (and its permission) would go untested.
:func:`function_caches` gives each function its own providers for the duration of its invocation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_saved: dict[str, dict[str, Any]] = {}


@contextmanager
def function_caches(function_name: str) -> Iterator[None]:
    """Swap in ``function_name``'s Powertools parameter providers; restore the previous ones after."""
    try:
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
    except ImportError:  # a function without Powertools
        yield
        return
    outer = dict(DEFAULT_PROVIDERS)
    DEFAULT_PROVIDERS.clear()
    DEFAULT_PROVIDERS.update(_saved.get(function_name, {}))
    try:
        yield
    finally:
        _saved[function_name] = dict(DEFAULT_PROVIDERS)
        DEFAULT_PROVIDERS.clear()
        DEFAULT_PROVIDERS.update(outer)


def forget_function_caches() -> None:
    """Drop every function's copies (the runtime is uninstalled: the next one starts cold)."""
    _saved.clear()
