"""The webhook replay guard (Powertools Idempotency on the deliveries table): once per webhook-id,
and a delivery whose action failed is acted on again when OpenAI retries it."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.triggers import openai_webhooks
from batch_gateway.workflow.wakeup import WakeOutcome
from tests.conftest import create_table

DELIVERIES = "webhook-deliveries"


class Context(LambdaContext):
    """An invocation with 10 s left: an in-progress claim would expire then."""

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


CONTEXT = Context()


@pytest.fixture
def deliveries_table(mocked_aws: None) -> str:
    create_table(DELIVERIES, "id")  # as template.yaml's WebhookDeliveriesTable
    return DELIVERIES


def delivery(webhook_id: str) -> dict[str, str]:
    return {"webhook_id": webhook_id, "batch_id": "batch_1", "event_type": "batch.completed"}


def test_a_delivery_acts_once_and_its_replay_is_marked(
    deliveries_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    woken: list[str] = []

    def wake(batch_id: str, event_type: str, jobs_table: str) -> WakeOutcome:
        woken.append(batch_id)
        return WakeOutcome(outcome="woken")

    monkeypatch.setattr(openai_webhooks, "wake", wake)

    first = openai_webhooks.wake_once(delivery("wh_1"), deliveries_table, "jobs", CONTEXT)
    replay = openai_webhooks.wake_once(delivery("wh_1"), deliveries_table, "jobs", CONTEXT)
    other = openai_webhooks.wake_once(delivery("wh_2"), deliveries_table, "jobs", CONTEXT)

    assert first == {"outcome": "woken", "replayed": False}
    assert replay == {"outcome": "woken", "replayed": True}
    assert other["replayed"] is False
    assert woken == ["batch_1", "batch_1"]  # wh_1 once, wh_2 once


def test_a_delivery_that_failed_is_acted_on_when_retried(
    deliveries_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    def wake(batch_id: str, event_type: str, jobs_table: str) -> WakeOutcome:
        attempts.append(batch_id)
        if len(attempts) == 1:
            raise RuntimeError("Step Functions is unavailable")
        return WakeOutcome(outcome="woken")

    monkeypatch.setattr(openai_webhooks, "wake", wake)

    with pytest.raises(RuntimeError, match="unavailable"):
        openai_webhooks.wake_once(delivery("wh_1"), deliveries_table, "jobs", CONTEXT)
    retried = openai_webhooks.wake_once(delivery("wh_1"), deliveries_table, "jobs", CONTEXT)

    assert retried == {"outcome": "woken", "replayed": False}  # the claim was released
    assert len(attempts) == 2
