"""StopExecution as AWS does it: the execution ends at once, even while a task waits for its token.

moto's interpreter marks a stopped program and lets each running state notice on its own. A task
waiting for its task token notices only when that wait ends - for a Distributed Map child parked in
AwaitCapacity, after its one-hour safety net - so the stopped execution stays ``RUNNING`` and the
reconciler, which resumes dead executions only, waits with it (found by the chaos run: twelve jobs
stuck behind a quota). On AWS, StopExecution ends the execution and its map run's children at once,
and their task tokens become invalid. :func:`patch_stop_execution` wakes every task-token wait of the
stopped execution (moto then ends it ``ABORTED``, as on AWS); ``moto_checks`` checks the pieces.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock


def _stop_and_wake(original: Any) -> Any:
    def stop(execution: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
        original(execution, stop_date, error, cause)
        worker = execution.exec_worker
        if worker is None:
            return
        for endpoint in list(worker.env.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()  # the wait returns; the stopped program then ends

    return stop


@contextmanager
def patch_stop_execution() -> Iterator[None]:
    """While active, a stopped execution's task-token waits end at once."""
    from moto.stepfunctions.parser.backend.execution import Execution

    with mock.patch.object(Execution, "stop", _stop_and_wake(Execution.stop)):
        yield


def check_stop_hook() -> list[str]:
    """What changed in the moto pieces :func:`patch_stop_execution` relies on."""
    try:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackPoolManager
        from moto.stepfunctions.parser.backend.execution import Execution
    except ImportError as exc:  # pragma: no cover - only with another moto
        return [f"moto's Step Functions interpreter moved: {exc}"]
    problems = []
    if not callable(getattr(Execution, "stop", None)):
        problems.append("moto's parser Execution has no stop()")
    if not callable(getattr(CallbackEndpoint, "interrupt_all", None)):
        problems.append("moto's CallbackEndpoint has no interrupt_all()")
    if "_pool" not in CallbackPoolManager.__init__.__code__.co_names:
        problems.append("moto's CallbackPoolManager keeps no _pool")
    return problems
