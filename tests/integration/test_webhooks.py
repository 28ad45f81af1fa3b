"""OpenAI webhooks wake a chunk's waiting execution at once; forged and replayed ones change nothing.

The stack waits 600 s between polls here, so a job that finishes within the test's wait was woken by
the webhook, not by its next poll. Requests are real-shaped API Gateway events (events/) signed the
way OpenAI signs them, sent to the deployed WebhookFunction.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from openai import OpenAI

from batch_gateway.models import BatchStatus, JobSpec
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway_local.api_front.server import api_server_for
from batch_gateway_local.emulator.webhooks import (
    ProviderClock,
    SignedDelivery,
    WebhookSender,
    batch_event_body,
    new_secret,
    sign_delivery,
)
from batch_gateway_local.stack.local_gateway import LocalGateway
from tests.stack_helpers import event, first_chunk_row, parked_options
from tests.stack_helpers import start_parked_job as parked_job

SECRET = new_secret()


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(parked_options("webhooks")) as gw:
        boto3.client("secretsmanager").put_secret_value(
            SecretId=gw.outputs["WebhookSecretArn"],
            SecretString=json.dumps({"openai_webhook_secret": SECRET}),
        )
        yield gw


def deliver(gw: LocalGateway, delivery: SignedDelivery) -> tuple[int, dict[str, Any]]:
    request = event("api_post_webhook_openai.json")
    for name in ("webhook-id", "webhook-signature", "webhook-timestamp"):
        if name in delivery.headers:
            request["headers"][name] = delivery.headers[name]
            request["multiValueHeaders"][name] = [delivery.headers[name]]
        else:
            del request["headers"][name], request["multiValueHeaders"][name]
    request["body"] = delivery.body
    assert gw.stack is not None
    response = boto3.client("lambda").invoke(
        FunctionName=gw.stack.functions["WebhookFunction"], Payload=json.dumps(request).encode()
    )
    answer = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, answer
    return int(answer["statusCode"]), json.loads(answer["body"])


def start_parked_job(gw: LocalGateway, tmp_path: Path, name: str) -> tuple[str, dict[str, Any]]:
    """A 3-item OpenAI job whose chunk waits for the provider in the callback task."""
    return parked_job(gw, tmp_path, name, JobSpec(provider="openai", model="gpt-4o-mini"))


def provider_finishes(gw: LocalGateway, batch_id: str) -> None:
    """The provider ends the batch (the emulator completes it on its next retrieve)."""
    client = OpenAI(api_key="sk-emulator-local", base_url=gw.emulator.openai_base_url)
    assert client.batches.retrieve(batch_id).status == "completed"


def test_a_signed_webhook_finishes_the_job_before_its_next_poll(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    job_id, chunk = start_parked_job(gateway, tmp_path, "woken")
    assert chunk.get("polls", 0) == 0
    batch_id = chunk["provider_batch_id"]
    provider_finishes(gateway, batch_id)

    status, body = deliver(gateway, sign_delivery(SECRET, batch_event_body("batch.completed", batch_id)))

    assert (status, body["status"]) == (200, "woken")
    job = gateway.wait(job_id, timeout_s=60)  # the next poll was 600 s away
    assert job.status is BatchStatus.COMPLETED
    assert job.counts.succeeded == 3
    row = first_chunk_row(gateway, job_id)
    assert row["polls"] == 1
    assert row["reported_event"] == "batch.completed"


def test_forged_and_replayed_webhooks_are_rejected(gateway: LocalGateway, tmp_path: Path) -> None:
    job_id, chunk = start_parked_job(gateway, tmp_path, "guarded")
    batch_id = chunk["provider_batch_id"]
    provider_finishes(gateway, batch_id)
    body = batch_event_body("batch.completed", batch_id)

    forged = sign_delivery(new_secret(), body)
    status, answer = deliver(gateway, forged)
    assert (status, answer["error"]) == (400, "invalid_webhook")
    assert "signature does not verify" in answer["message"]
    unsigned = SignedDelivery(headers={"Content-Type": "application/json"}, body=body)
    assert deliver(gateway, unsigned)[0] == 400
    captured_long_ago = sign_delivery(SECRET, body, timestamp=int(time.time()) - 3600)
    status, answer = deliver(gateway, captured_long_ago)
    assert status == 400
    assert "too old" in answer["message"]
    row = first_chunk_row(gateway, job_id)
    assert "reported_batch" not in row
    assert gateway.progress(job_id).job is not None
    assert gateway.progress(job_id).job.finished_at is None  # type: ignore[union-attr]

    genuine = sign_delivery(SECRET, body)
    assert deliver(gateway, genuine) == (
        200,
        {"status": "woken", "type": "batch.completed", "batch": batch_id},
    )
    status, answer = deliver(gateway, genuine)  # the same delivery again, within the 5-minute window
    assert (status, answer["status"]) == (200, "duplicate")
    assert gateway.wait(job_id, timeout_s=60).status is BatchStatus.COMPLETED
    assert first_chunk_row(gateway, job_id)["polls"] == 1


def test_a_webhook_for_a_batch_that_is_not_ours_changes_nothing(gateway: LocalGateway) -> None:
    status, answer = deliver(
        gateway, sign_delivery(SECRET, batch_event_body("batch.failed", "batch_unknown"))
    )
    assert (status, answer["status"]) == (200, "unknown_batch")
    status, answer = deliver(gateway, sign_delivery(SECRET, batch_event_body("response.completed", "resp_1")))
    assert (status, answer["status"]) == (200, "ignored")


def test_the_emulator_sends_signed_webhooks_through_the_local_api(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    """What `local up --webhooks` runs: the emulated OpenAI ends the batch and posts a signed webhook
    to the local API's unauthenticated /webhooks/openai route, which wakes the waiting job."""
    with api_server_for(gateway, port=0) as server:
        unsigned = urllib.request.Request(f"{server.url}/webhooks/openai", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(unsigned, timeout=30)
        assert refused.value.code == 400  # no SigV4 needed on this route; the signature is checked
        sender = WebhookSender(f"{server.url}/webhooks/openai", SECRET)
        # The job parks first: a provider clock already running could end the batch (and send its
        # webhook) before the chunk parked, on a loaded machine.
        job_id, chunk = start_parked_job(gateway, tmp_path, "emulated")
        with ProviderClock(gateway.emulator.openai_base_url, sender, interval_s=0.2) as clock:
            job = gateway.wait(job_id, timeout_s=60)  # the next poll was 600 s away
    assert job.status is BatchStatus.COMPLETED
    assert clock.notified[chunk["provider_batch_id"]] == 200
    assert first_chunk_row(gateway, job_id)["reported_event"] == "batch.completed"


def test_a_webhook_before_the_wait_begins_ends_that_wait_at_once(gateway: LocalGateway) -> None:
    """The race: the provider reports before the callback task parked its token."""
    assert gateway.stack is not None
    jobs = JobsRepository(gateway.outputs["JobsTableName"])
    jobs.put_chunk("race-job", 1, {"provider_batch_id": "batch_race", "status": "in_progress"})
    status, answer = deliver(
        gateway, sign_delivery(SECRET, batch_event_body("batch.completed", "batch_race"))
    )
    assert (status, answer["status"]) == (200, "recorded")

    def park() -> tuple[bool, dict[str, Any]]:
        request = {
            "job_id": "race-job",
            "chunk": 1,
            "provider_batch_id": "batch_race",
            "task_token": "token-1",
        }
        response = boto3.client("lambda").invoke(
            FunctionName=gateway.stack.functions["AwaitProviderFunction"],  # type: ignore[union-attr]
            Payload=json.dumps(request).encode(),
        )
        return "FunctionError" in response, json.loads(response["Payload"].read())

    failed, error = park()
    assert failed
    assert error["errorType"] == "ProviderAlreadyReported"  # the state machine polls at once
    assert park() == (False, {"parked": "batch_race"})  # one report ends one wait, never a tight loop
    assert jobs.get_chunk("race-job", 1)["wait_token"] == "token-1"
