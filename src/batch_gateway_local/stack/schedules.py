"""The stack's EventBridge schedules, offline: moto stores schedule rules but never fires them.

:func:`invoke_scheduled` sends a deployed function the event an EventBridge schedule rule sends
(``detail-type: Scheduled Event``, see events/eventbridge_scheduled_*.json) through Lambda Invoke;
:class:`ScheduleTimer` does that for every scheduled function of the template, every ``interval``
seconds, in a background thread (``batch-gateway local up --schedule-interval``).
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

import boto3

from batch_gateway_local.stack.offline_stack import OfflineStack


class RunsAStack(Protocol):
    """What the schedules need of a gateway: its running stack (a LocalGateway has one)."""

    @property
    def stack(self) -> OfflineStack | None: ...


# The template's functions with a Schedule event, in the order a tick runs them: files are submitted
# before the reconciler looks at jobs.
SCHEDULED_FUNCTIONS = ("SchedulerFunction", "ReconcilerFunction")


def scheduled_event(rule_arn: str, account: str, region: str) -> dict[str, Any]:
    """What EventBridge sends a Lambda target when a schedule rule fires."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def invoke_scheduled(gateway: RunsAStack, logical_id: str) -> dict[str, Any]:
    """Fire ``logical_id``'s schedule once; returns the function's answer (raises on a function error)."""
    stack = gateway.stack
    assert stack is not None, "use LocalGateway as a context manager"
    rule = f"{stack.stack_name}-{logical_id}OnSchedule"
    rule_arn = f"arn:aws:events:{stack.region}:{stack.account_id}:rule/{rule}"
    response = boto3.client("lambda").invoke(
        FunctionName=stack.functions[logical_id],
        Payload=json.dumps(scheduled_event(rule_arn, stack.account_id, stack.region)).encode(),
    )
    body: dict[str, Any] = json.loads(response["Payload"].read())
    if "FunctionError" in response:
        raise RuntimeError(f"{logical_id} failed: {body.get('errorType')}: {body.get('errorMessage')}")
    return body


class ScheduleTimer:
    """Fires the stack's schedules every ``interval`` seconds until stopped; one line per run to ``out``."""

    def __init__(self, gateway: RunsAStack, interval: float, out: TextIO) -> None:
        self._gateway, self._interval, self._out = gateway, interval, out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="schedule-timer", daemon=True)

    def start(self) -> ScheduleTimer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for logical_id in SCHEDULED_FUNCTIONS:
                try:
                    body = invoke_scheduled(self._gateway, logical_id)
                except Exception as exc:  # a failed run is reported; the next tick tries again
                    self._out.write(f"schedule: {logical_id} failed: {exc}\n")
                else:
                    self._out.write(f"schedule: {logical_id} {_summary(body)}\n")
                self._out.flush()


def _summary(body: dict[str, Any]) -> str:
    counts = {k: len(v) if isinstance(v, list) else v for k, v in body.items() if k != "report_uri"}
    return ", ".join(f"{k}={v}" for k, v in counts.items())
