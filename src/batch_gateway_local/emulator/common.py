"""Helpers every provider emulation shares: result order, pagination, limits, scenario choice.

:func:`emission_order` gives a batch's results in a deterministic order that is never input order
(providers do not keep it either); :func:`paginate` and :func:`parse_limit` are the list endpoints'
cursor and ``limit``; :func:`choose_scenario` picks the per-batch scenario a create call names (or
the server's); :func:`guard` lets a batch's scenario answer one of its calls with a fault (a 429).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from .protocol import ApiError, Reply, Request
from .scenario_base import Scenario
from .scenarios import scenario_names
from .state import Store

T = TypeVar("T")


def emission_order(n: int) -> Iterator[int]:
    """Deterministic result order that never equals input order for n >= 2: last, first,
    second-to-last, second, ... (real providers do not keep input order either)."""
    lo, hi = 0, n - 1
    while lo <= hi:
        yield hi
        if lo != hi:
            yield lo
        lo += 1
        hi -= 1


def paginate(
    items: Sequence[T], key: Callable[[T], str], *, after: str | None, before: str | None, limit: int
) -> tuple[list[T], bool]:
    """A page of `items` (already in listing order) after/before the item with the given id."""
    start, stop = 0, len(items)
    if after:
        idx = next((i for i, item in enumerate(items) if key(item) == after), None)
        start = len(items) if idx is None else idx + 1
    if before:
        idx = next((i for i, item in enumerate(items) if key(item) == before), None)
        stop = 0 if idx is None else idx
        start = max(start, stop - limit)
    page = list(items[start : min(stop, start + limit)])
    has_more = (start + limit < stop) if not before else start > 0
    return page, has_more


def parse_limit(request: Request, default: int, maximum: int, error: Callable[[str], Reply]) -> int:
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(error(f"Invalid 'limit': expected an integer, got {raw!r}.")) from None
    if not 1 <= value <= maximum:
        raise ApiError(error(f"Invalid 'limit': must be between 1 and {maximum}, got {value}."))
    return value


def choose_scenario(store: Store, name: str | None, error: Callable[[str], Reply]) -> Scenario:
    """A new instance of the named scenario, or of the server's current one when name is empty."""
    with store.lock:
        chosen = name or store.config.scenario
    try:
        return store.new_scenario(chosen)
    except KeyError:
        raise ApiError(
            error(f"Unknown emulator scenario {chosen!r}; registered: {', '.join(scenario_names())}.")
        ) from None


def guard(scenario: Scenario, request: Request, batch_id: str | None) -> None:
    """Let a scenario answer a request in place of the normal handler."""
    reply = scenario.before_request(request, batch_id)
    if reply is not None:
        raise ApiError(reply)
