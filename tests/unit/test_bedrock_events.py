"""Which chunks wait in the callback task, and which Bedrock events can wake one (no AWS calls)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from batch_gateway.models import Provider
from batch_gateway.triggers.bedrock_events import handle_bedrock_job_state_change

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "batch_job.asl.json"
# Providers that can notify the stack that a batch ended: OpenAI (webhooks), Bedrock (EventBridge).
NOTIFYING_PROVIDERS = {"openai", "bedrock"}


def _rule_matches(rule: dict[str, Any], state: dict[str, Any]) -> bool:
    """The Choice-rule subset the wait-loop choice uses (And, Or, StringEquals, Numeric/Boolean)."""
    if "And" in rule:
        return all(_rule_matches(r, state) for r in rule["And"])
    if "Or" in rule:
        return any(_rule_matches(r, state) for r in rule["Or"])
    value = state[rule["Variable"].removeprefix("$.")]
    if "StringEquals" in rule:
        return bool(value == rule["StringEquals"])
    if "NumericGreaterThan" in rule:
        return bool(value > rule["NumericGreaterThan"])
    if "BooleanEquals" in rule:
        return bool(value == rule["BooleanEquals"])
    raise AssertionError(f"the test does not know the rule {rule}")


def next_state(state: dict[str, Any]) -> str:
    choice = json.loads(ASL.read_text())["States"]["ProcessChunks"]["ItemProcessor"]["States"][
        "ProviderDone?"
    ]
    for rule in choice["Choices"]:
        if _rule_matches(rule, state):
            return str(rule["Next"])
    return str(choice["Default"])


@pytest.mark.parametrize("provider", get_args(Provider))
def test_only_providers_that_notify_wait_in_the_callback_task(provider: str) -> None:
    running = {"provider": provider, "terminal": False, "wait_seconds": 600}
    expected = "AwaitProvider" if provider in NOTIFYING_PROVIDERS else "WaitForProvider"
    assert next_state(running) == expected
    # Azure OpenAI subclasses the OpenAI provider but sends no webhooks: nothing would wake it.
    assert next_state({**running, "wait_seconds": 0}) == "WaitForProvider"
    assert next_state({**running, "terminal": True}) == "CollectChunk"


@pytest.mark.parametrize(
    "detail",
    [
        {
            "batchJobArn": "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/x",
            "status": "InProgress",
        },
        {
            "batchJobArn": "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/x",
            "status": "Stopping",
        },
        {"status": "Completed"},
        {},
    ],
)
def test_events_of_jobs_still_running_or_of_another_shape_are_ignored(detail: dict[str, Any]) -> None:
    # Returns before any table access: "no-such-table" is never reached.
    assert handle_bedrock_job_state_change(detail, "no-such-table").outcome == "ignored"
