"""What may fail, how often, and what did: a seeded plan shared by every hook.

Each hook asks :meth:`FaultPlan.decide` at one opportunity (a call, a delivery); the plan answers from
its own seeded generator and counts what it injected by kind. Threads interleave, so the same seed
gives the same rates and kinds, not the same sequence of faults; the report counts what happened.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, get_args

FaultKind = Literal[
    "crash-before-aws-call",
    "crash-after-aws-call",
    "crash-before-provider-call",
    "crash-after-provider-call",
    "lost-provider-answer",
    "duplicate-event",
    "late-event",
    "stopped-execution",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)


class HandlerCrash(BaseException):
    """A handler killed mid-flight, as a Lambda timeout or out-of-memory kills it.

    A BaseException: code under test cannot catch it with ``except Exception``, as it cannot catch a
    process that the Lambda service stops. The in-process runtime reports it with ``error_type``.
    """

    def __init__(self, kind: FaultKind, where: str) -> None:
        super().__init__(f"Task timed out (offline fault injection: {kind} at {where})")
        self.kind = kind
        self.where = where
        self.error_type = "Sandbox.Timedout"


@dataclass(frozen=True)
class Injected:
    kind: FaultKind
    where: str
    function: str | None


@dataclass
class FaultPlan:
    """Probabilities per opportunity (``rate`` for every kind unless ``rates`` says otherwise)."""

    seed: int = 0
    rate: float = 0.02
    rates: dict[str, float] = field(default_factory=dict)
    late_seconds: tuple[float, float] = (0.5, 3.0)
    """How late a late event arrives (uniform in this range, offline seconds)."""
    only: tuple[str, ...] = ()
    """When set, faults happen only where one of these strings appears in the place or the function
    (a regression test's aim)."""
    limit: int | None = None
    """At most this many faults in all (a regression test's one fault)."""
    injected: list[Injected] = field(default_factory=list)
    enabled: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def decide(self, kind: FaultKind, where: str, function: str | None = None) -> bool:
        """True when a fault of ``kind`` happens at this opportunity (and it is counted)."""
        place = f"{function or ''}: {where}"
        if not self.enabled or (self.only and not any(target in place for target in self.only)):
            return False
        with self._lock:
            if self.limit is not None and len(self.injected) >= self.limit:
                return False
            if self._random.random() >= self.rates.get(kind, self.rate):
                return False
            self.injected.append(Injected(kind, where, function))
            return True

    def delay(self) -> float:
        with self._lock:
            return self._random.uniform(*self.late_seconds)

    def choice(self, count: int) -> int:
        with self._lock:
            return self._random.randrange(count)

    def counts(self) -> dict[str, int]:
        with self._lock:
            counted = Counter(i.kind for i in self.injected)
        return {kind: counted.get(kind, 0) for kind in FAULT_KINDS}
