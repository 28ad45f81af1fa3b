"""EventBridge rules on the offline stack: match events the way EventBridge does, deliver what moto can.

moto 5.2.5 lets a *scheduled* rule (no event pattern) match every ``PutEvents`` entry, and raises
``NotImplementedError`` from ``PutEvents`` for a matched rule with a Lambda or Step Functions target.
The stack's own schedules (Lambda targets) would thereby break every ``PutEvents`` - e.g. the job
state-change events. :class:`EventRuleDelivery` makes scheduled rules ignore events, as on AWS,
delivers to the targets moto emulates (SQS, CloudWatch Logs, other buses), and invokes a matched
rule's Lambda targets asynchronously, as EventBridge does, through moto's Lambda (whose invocations
the offline stack runs in-process) - e.g. Bedrock's job state-change events to BedrockEventsFunction.
Other targets (Step Functions) are skipped.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from types import TracebackType
from typing import Any
from unittest import mock

from batch_gateway_local.stack.async_invocations import invoke_async
from batch_gateway_local.stack.faults.hooks import deliver

EMULATED_TARGET_SERVICES = frozenset({"sqs", "logs", "events"})

log = logging.getLogger(__name__)


def _invoke_async(function_arn: str, event: dict[str, Any]) -> None:
    """Invoke a Lambda target in its own thread: PutEvents returns before the target runs, as on AWS."""
    from moto.awslambda.models import lambda_backends
    from moto.utilities.arns import parse_arn

    arn = parse_arn(function_arn)
    function = lambda_backends[arn.account][arn.region].get_function(arn.resource_id)

    def send() -> None:
        # An asynchronous target's failure never reaches the event's sender; Lambda retries it.
        invoke_async(function, json.dumps(event), f"an EventBridge event ({event.get('detail-type')})")

    threading.Thread(
        target=deliver, args=("eventbridge-target", send), name="eventbridge-lambda-target", daemon=True
    ).start()


def check_event_rule_hook() -> list[str]:
    from moto.awslambda.models import LambdaFunction
    from moto.events.models import Rule

    problems = []
    if not callable(getattr(Rule, "send_to_targets", None)):
        problems.append("moto.events.models.Rule.send_to_targets no longer exists")
    if not callable(getattr(LambdaFunction, "invoke", None)):
        problems.append("moto.awslambda.models.LambdaFunction.invoke no longer exists")
    return problems


class EventRuleDelivery:
    """Context manager patching moto's ``Rule.send_to_targets`` (see the module docstring)."""

    def __init__(self) -> None:
        self._patch: Any = None

    def __enter__(self) -> EventRuleDelivery:
        from moto.events.models import Rule
        from moto.utilities.arns import parse_arn

        original = Rule.send_to_targets

        def send_to_targets(rule: Any, event: Any, transform_input: bool = True) -> None:
            if rule.scheduled_expression and not rule.event_pattern.get_pattern():
                return  # a schedule is not an event pattern: it matches no event
            if rule.event_pattern.matches_event(event):
                for target in rule.targets:
                    if parse_arn(target["Arn"]).service == "lambda":
                        _invoke_async(target["Arn"], copy.deepcopy(event))
            emulated = copy.copy(rule)
            emulated.targets = [
                t for t in rule.targets if parse_arn(t["Arn"]).service in EMULATED_TARGET_SERVICES
            ]
            original(emulated, event, transform_input)

        self._patch = mock.patch.object(Rule, "send_to_targets", send_to_targets)
        self._patch.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._patch is not None:
            self._patch.stop()


__all__ = ["EventRuleDelivery", "check_event_rule_hook"]
