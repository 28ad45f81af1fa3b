"""Every execution a job used, with its history size: the job's own and each Distributed Map child.

On AWS each chunk of a job runs as a child execution of the Distributed Map, with a history of its
own (the 25,000-event quota applies to each execution separately). moto's interpreter runs the
children as frames of the parent and gives them all one shared ``EventManager`` that it discards
when the map ends, so no API shows a child's history. :class:`ChildExecutionHistories` (installed
by the offline stack, checked by ``moto_checks``) gives each child iteration an ``EventManager`` of
its own and records, when the child ends, its name, status, number of history events and state
transitions (``…StateEntered`` events). It only measures: the events were discarded anyway, and
nothing reads them but this module. :func:`job_executions` adds the job's own executions (their
histories through ``GetExecutionHistory``) and returns them all, for ``local run``'s workflow.json.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from pydantic import BaseModel

CHILD_FRAME_EVENTS = 2
"""Events AWS records in a child's history that moto's frames do not: ExecutionStarted and the
child's ending (ExecutionSucceeded / ExecutionFailed), added to each recorded child's count."""


class ExecutionHistory(BaseModel):
    """One execution of a job: the job's own (``parent`` None) or a Distributed Map child."""

    name: str
    status: str
    history_events: int
    state_transitions: int
    parent: str | None = None
    chunk: int | None = None
    started_at: float | None = None
    ended_at: float | None = None


def count_history(events: list[dict[str, Any]]) -> tuple[int, int]:
    """(history events, state transitions) of an event list (a transition: a ``…StateEntered`` event)."""
    return len(events), sum(1 for e in events if str(e.get("type", "")).endswith("StateEntered"))


class ChildExecutionHistories:
    """Context manager: while active, each Distributed Map child of moto's interpreter gets its own
    event history, and :attr:`children` maps each parent execution's ARN to its ended children."""

    def __init__(self) -> None:
        self.children: dict[str, list[ExecutionHistory]] = {}
        self._lock = threading.Lock()
        self._original: Callable[..., None] | None = None

    def __enter__(self) -> ChildExecutionHistories:
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
            distributed_item_processor_worker as module,
        )

        worker = module.DistributedItemProcessorWorker
        self._original = original = worker._eval_job
        histories = self

        def _eval_job(self: Any, env: Any, job: Any) -> None:
            histories._run_child(original, self, env, job)

        worker._eval_job = _eval_job  # type: ignore[method-assign]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
            distributed_item_processor_worker as module,
        )

        if self._original is not None:
            module.DistributedItemProcessorWorker._eval_job = self._original  # type: ignore[method-assign]
            self._original = None

    def _run_child(self, original: Callable[..., None], worker: Any, env: Any, job: Any) -> None:
        from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

        # The child's frame gets a fresh history; frames it opens inherit it (Environment copies it).
        env.event_manager = EventManager()
        started = time.time()
        try:
            original(worker, env, job)
        finally:
            self._record(str(worker._work_name), env, job, started)

    def _record(self, map_state: str, env: Any, job: Any, started: float) -> None:
        execution = env.states.context_object.context_object_data["Execution"]
        events, transitions = count_history(env.event_manager.get_event_history())
        item = job.job_input if isinstance(job.job_input, dict) else {}
        child = ExecutionHistory(
            name=f"{execution['Name']}/{map_state}/{job.job_index}",
            status=_program_status(env),
            history_events=events + CHILD_FRAME_EVENTS,
            state_transitions=transitions,
            parent=str(execution["Id"]),
            chunk=item.get("chunk"),
            started_at=started,
            ended_at=time.time(),
        )
        with self._lock:
            self.children.setdefault(child.parent or "", []).append(child)

    def of(self, execution_arn: str) -> list[ExecutionHistory]:
        """The ended children of one execution, in item order."""
        with self._lock:
            children = list(self.children.get(execution_arn, []))
        return sorted(children, key=lambda c: int(c.name.rsplit("/", 1)[-1]))


def _program_status(env: Any) -> str:
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramError,
        ProgramStopped,
        ProgramTimedOut,
    )

    state = env.program_state()
    if isinstance(state, ProgramError):
        return "FAILED"
    if isinstance(state, ProgramStopped):
        return "ABORTED"
    if isinstance(state, ProgramTimedOut):
        return "TIMED_OUT"
    return "SUCCEEDED"


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution's history (all pages)."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page.get("events", []))
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def job_executions(
    sfn: Any, state_machine_arn: str, job_id: str, children: ChildExecutionHistories | None
) -> list[ExecutionHistory]:
    """The job's executions (its first and each resume) and, after each, its recorded children."""
    found: list[ExecutionHistory] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        for execution in page.get("executions", []):
            name = str(execution["name"])
            if name != job_id and not name.startswith(f"{job_id}-resume-"):
                continue
            events, transitions = count_history(execution_history(sfn, execution["executionArn"]))
            found.append(
                ExecutionHistory(
                    name=name,
                    status=str(execution["status"]),
                    history_events=events,
                    state_transitions=transitions,
                    started_at=_timestamp(execution.get("startDate")),
                    ended_at=_timestamp(execution.get("stopDate")),
                )
            )
            if children is not None:
                found.extend(children.of(str(execution["executionArn"])))
    return found


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if hasattr(value, "timestamp") else None


def workflow_report(executions: list[ExecutionHistory]) -> dict[str, Any]:
    """workflow.json: every execution, the largest history, and the totals."""
    largest = max(executions, key=lambda e: e.history_events, default=None)
    return {
        "executions": [e.model_dump(exclude_none=True) for e in executions],
        "largest": largest.model_dump(exclude_none=True) if largest else None,
        "execution_count": len(executions),
        "child_executions": sum(1 for e in executions if e.parent),
        "history_events": sum(e.history_events for e in executions),
        "state_transitions": sum(e.state_transitions for e in executions),
    }


def check_child_history_hook() -> list[str]:
    """Problems with the moto pieces :class:`ChildExecutionHistories` patches (empty when all is as expected)."""
    try:
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
            distributed_item_processor_worker as module,
        )
        from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    except ImportError as exc:  # pragma: no cover - only with another moto
        return [f"moto module moved: {exc}"]
    problems = []
    if not callable(getattr(module.DistributedItemProcessorWorker, "_eval_job", None)):
        problems.append("moto's DistributedItemProcessorWorker._eval_job no longer exists")
    if not callable(getattr(EventManager, "get_event_history", None)):
        problems.append("moto's EventManager.get_event_history no longer exists")
    return problems
