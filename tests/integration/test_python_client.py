"""The Python client against `local up`'s API (in-process front over the offline stack).

A script written for ``ractogateway.batch``'s processors runs with only its import and constructor
changed, for OpenAI and Anthropic, sync and async; what it gets back is compared with the job's
results.jsonl and validates as the reference library's models. Then: readable job ids, idempotent
submits, error mapping (a 422 lists the bad lines), cancel, estimates (no job made) and structured
answers from a pydantic model.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import re
from collections.abc import Iterator
from typing import Any, Literal

import boto3
import pytest
import ractogateway.batch as reference
from pydantic import BaseModel

from batch_gateway.models import Estimate
from batch_gateway_client import GatewayBatchProcessor, GatewayClient, GatewayConfig, GatewayError
from batch_gateway_local.api_front.server import LocalApiServer, api_server_for
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions

# What a user has today, verbatim but for PROCESSOR (one line per provider below).
SCRIPT = """
import asyncio

from ractogateway.batch import BatchItem, BatchStatus
from ractogateway.batch import PROCESSOR_CLASS
from ractogateway.prompts.engine import RactoPrompt

prompt = RactoPrompt(role="a support agent", aim="answer briefly", constraints=["one word"],
                     tone="plain", output_format="text")
processor = PROCESSOR
items = [BatchItem(custom_id=f"q-{n}", user_message=f"What is {n} + {n}?", max_tokens=32) for n in range(3)]
results = processor.submit_and_wait(items, poll_interval_s=0.5, max_wait_s=300)
for result in results:
    assert result.ok, result.error
more = [BatchItem(custom_id=f"a-{n}", user_message=f"Name colour {n}.") for n in range(2)]
async_results = asyncio.run(processor.asubmit_and_wait(more, poll_interval_s=0.5, max_wait_s=300))
info = processor.submit_batch(items)  # an idempotent resubmit: the same job
assert processor.poll_status(info.job_id).status == BatchStatus.COMPLETED
"""

PROVIDERS = {
    "openai": (
        "OpenAIBatchProcessor(model='gpt-4o-mini', default_prompt=prompt)",
        "GatewayBatchProcessor(provider='openai', model='gpt-4o-mini', endpoint=ENDPOINT, default_prompt=prompt)",
    ),
    "anthropic": (
        "AnthropicBatchProcessor(model='claude-3-5-haiku-latest', default_prompt=prompt)",
        "GatewayBatchProcessor(provider='anthropic', model='claude-3-5-haiku-latest', endpoint=ENDPOINT, "
        "default_prompt=prompt)",
    ),
}


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=50)) as local:
        yield local


@pytest.fixture(scope="module")
def server(gateway: LocalGateway) -> Iterator[LocalApiServer]:
    with api_server_for(gateway, port=0) as front:
        yield front


def results_jsonl(gateway: LocalGateway, job_id: str) -> list[dict[str, Any]]:
    body = boto3.client("s3").get_object(Bucket=gateway.bucket, Key=f"results/{job_id}/results.jsonl")["Body"]
    return [json.loads(line) for line in body.read().splitlines()]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_ractogateway_script_runs_with_only_the_import_and_constructor_changed(
    provider: str, gateway: LocalGateway, server: LocalApiServer
) -> None:
    original_constructor, gateway_constructor = PROVIDERS[provider]
    before = SCRIPT.replace("PROCESSOR_CLASS", original_constructor.split("(")[0]).replace(
        "PROCESSOR", original_constructor
    )
    after = before.replace(
        f"from ractogateway.batch import {original_constructor.split('(')[0]}",
        "from batch_gateway_client import GatewayBatchProcessor",
    ).replace(original_constructor, gateway_constructor)
    changed = [
        line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:2] in ("- ", "+ ")
    ]
    assert len(changed) == 4, changed  # two lines out, two lines in

    namespace: dict[str, Any] = {"ENDPOINT": server.url}
    exec(compile(after, f"<{provider} script>", "exec"), namespace)

    info = namespace["info"]
    assert re.fullmatch(r"batch-[0-9a-f]{16}", info.job_id)  # no name given: the default one
    lines = results_jsonl(gateway, info.job_id)
    assert [r.model_dump(mode="json") for r in namespace["results"]] == lines
    assert [r.custom_id for r in namespace["results"]] == ["q-0", "q-1", "q-2"]
    assert [r.custom_id for r in namespace["async_results"]] == ["a-0", "a-1"]
    # What comes back validates as the reference library's own models, statuses included.
    for result in namespace["results"] + namespace["async_results"]:
        theirs = reference.BatchResult.model_validate(result.model_dump())
        assert theirs.ok
        assert theirs.response is not None
        assert theirs.response.content
    # (the resubmit replayed the finished job)
    assert reference.BatchJobInfo.model_validate(info.model_dump()).status is reference.BatchStatus.COMPLETED


def test_a_named_job_id_and_iter_results(gateway: LocalGateway, server: LocalApiServer) -> None:
    processor = GatewayBatchProcessor(provider="openai", model="gpt-4o-mini", endpoint=server.url)
    items = [{"custom_id": f"n-{n}", "user_message": f"Say {n}."} for n in range(3)]
    info = processor.submit_batch(items, name="Support tickets.2026")
    assert re.fullmatch(r"Support-tickets-2026-[0-9a-f]{16}", info.job_id), info.job_id
    assert processor.submit_batch(items, name="Support tickets.2026").job_id == info.job_id  # idempotent
    gateway.wait(info.job_id, timeout_s=120)
    streamed = list(processor.iter_results(info.job_id))
    assert [r.custom_id for r in streamed] == ["n-0", "n-1", "n-2"]
    assert [r.model_dump(mode="json") for r in streamed] == results_jsonl(gateway, info.job_id)
    assert processor.cancel(info.job_id).status.value == "completed"  # a finished job stays as it is


def test_errors_are_readable_and_a_422_lists_the_bad_lines(server: LocalApiServer) -> None:
    processor = GatewayBatchProcessor(
        provider="anthropic", model="claude-3-5-haiku-latest", endpoint=server.url
    )
    bad = [
        {"custom_id": "ok-1", "user_message": "Hi."},
        {"custom_id": "bad-2"},
        {"custom_id": "ok-1", "user_message": "x"},
    ]
    with pytest.raises(GatewayError) as refused:
        processor.submit_batch(bad)
    error = refused.value
    assert (error.status, error.code) == (422, "invalid_items")
    assert {d["line"] for d in error.bad_lines} == {2, 3}
    assert "line 2 (bad-2): user_message" in error.describe()
    with pytest.raises(GatewayError) as missing:
        processor.poll_status("no-such-job-0000000000000000")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    items = [{"custom_id": "k-1", "user_message": "Hi."}]
    processor.submit_batch(items, idempotency_key="client-key-1")
    with pytest.raises(GatewayError) as reused:
        processor.submit_batch([{"custom_id": "k-2", "user_message": "Bye."}], idempotency_key="client-key-1")
    assert (reused.value.status, reused.value.code) == (409, "idempotency_key_reused")


def test_a_job_that_ends_badly_raises_as_the_reference_does(
    gateway: LocalGateway, server: LocalApiServer
) -> None:
    processor = GatewayBatchProcessor(provider="openai", model="gpt-4o-mini", endpoint=server.url)
    info = processor.submit_batch(
        [{"custom_id": f"c-{n}", "user_message": "Wait."} for n in range(2)], name="to-cancel"
    )
    processor.cancel(info.job_id)
    job = gateway.wait(info.job_id, timeout_s=120)
    if job.status.value == "cancelled":  # it may have finished before the cancel reached it
        with pytest.raises(RuntimeError, match="ended with status 'cancelled'"):
            processor.submit_and_wait(
                [{"custom_id": f"c-{n}", "user_message": "Wait."} for n in range(2)],
                name="to-cancel",
                poll_interval_s=0.2,
                max_wait_s=60,
            )


def test_stack_reads_the_api_url_and_auth_from_the_stack_outputs(gateway: LocalGateway) -> None:
    assert gateway.stack is not None
    config = GatewayConfig.from_stack(gateway.stack.stack_id, region="us-east-1")
    assert config.endpoint == gateway.outputs["ApiUrl"]
    assert config.auth == gateway.outputs.get("ApiAuthMode", "IAM")
    with pytest.raises(GatewayError) as missing:
        GatewayConfig.from_stack("not-a-stack-of-ours", region="us-east-1")
    assert missing.value.status == 0


def job_ids(client: GatewayClient) -> set[str]:
    return {job["job_id"] for job in client.jobs()}


def test_an_estimate_says_what_a_submit_would_make_and_makes_no_job(
    gateway: LocalGateway, server: LocalApiServer
) -> None:
    items = [
        {"custom_id": "e-1", "user_message": "Where is my order?", "max_tokens": 64},
        {"custom_id": "e-2"},  # no user_message: line 2 is invalid
        {"custom_id": "e-3", "user_message": "Cancel it, please.", "max_tokens": 64},
    ]
    spec = {"provider": "openai", "model": "gpt-4o-mini", "on_invalid": "skip"}
    with GatewayClient(GatewayConfig(server.url)) as client:
        before = job_ids(client)
        estimate = client.estimate(spec, items=items)
        assert isinstance(estimate, Estimate)
        assert (estimate.accepted, estimate.requests, estimate.provider_batches) == (True, 2, 1)
        assert estimate.invalid_lines == 1
        assert [(e.line, e.field) for e in estimate.errors] == [(2, "user_message")]
        assert estimate.estimated_input_tokens > 0
        assert estimate.output_tokens_ceiling == 128
        assert estimate.cost is not None
        assert estimate.cost.input_usd is not None
        assert estimate.cost.ceiling_usd is not None
        assert 0 < estimate.cost.input_usd < estimate.cost.ceiling_usd

        # The processor's estimate (its default on_invalid=reject): intake would refuse these items.
        processor = GatewayBatchProcessor(provider="openai", model="gpt-4o-mini", endpoint=server.url)
        refused = processor.estimate(items)
        assert not refused.accepted
        assert (refused.requests, refused.invalid_lines) == (2, 1)
        assert str(refused.reason).startswith("rejected: 1 invalid line(s) — line 2: ")
        many = [{"custom_id": f"m-{n}", "user_message": f"Say {n}."} for n in range(120)]
        assert processor.estimate(many).provider_batches == 3  # the module's stack: 50 items a chunk
        assert asyncio.run(processor.aestimate(many[:2])).requests == 2

        assert job_ids(client) == before  # nothing was submitted
        job = client.submit(spec, items=items, name="estimated")  # the same body, submitted
        assert job_ids(client) == before | {job["job_id"]}  # (the listing sees a new job)
        done = gateway.wait(job["job_id"], timeout_s=120)
        assert (done.request_count, done.invalid_count, done.chunk_count) == (2, 1, 1)


class Priority(BaseModel):
    level: int
    reason: str


class Ticket(BaseModel):
    label: Literal["billing", "bug", "other"]
    confidence: float
    summary: str | None  # required, may be null: what OpenAI's strict mode asks for an optional field
    priority: Priority  # a nested model: its schema is a $ref into $defs


class LooseTicket(BaseModel):
    label: str
    note: str = ""  # optional: OpenAI's strict mode refuses it


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest")]
)
def test_a_pydantic_response_schema_gives_parsed_answers_of_that_model(
    provider: str, model: str, server: LocalApiServer
) -> None:
    processor = GatewayBatchProcessor(
        provider=provider, model=model, endpoint=server.url, response_schema=Ticket
    )
    items = [{"custom_id": f"t-{n}", "user_message": f"My invoice {n} is wrong."} for n in range(3)]
    assert processor.estimate(items).accepted
    results = processor.submit_and_wait(items, poll_interval_s=0.5, max_wait_s=300, name="tickets")
    assert [r.custom_id for r in results] == ["t-0", "t-1", "t-2"]
    for result in results:
        assert result.ok, result.error
        assert result.response is not None
        Ticket.model_validate(result.response.parsed)


def test_a_schema_the_api_refuses_is_a_readable_gateway_error(server: LocalApiServer) -> None:
    items = [{"custom_id": "r-1", "user_message": "Hi."}]
    strict = GatewayBatchProcessor(
        provider="openai", model="gpt-4o-mini", endpoint=server.url, response_schema=LooseTicket
    )
    for call in (strict.estimate, strict.submit_batch):
        with pytest.raises(GatewayError) as refused:
            call(items)
        assert refused.value.status == 422
        assert "does not require 'note'" in str(refused.value)
        assert "response_schema" in refused.value.describe()
    embeddings = {
        "provider": "openai",
        "model": "text-embedding-3-small",
        "endpoint": "embeddings",
        "response_schema": Ticket.model_json_schema(),
    }
    with GatewayClient(GatewayConfig(server.url)) as client, pytest.raises(GatewayError) as refused:
        client.estimate(embeddings, items=items)
    assert refused.value.status == 422
    assert "an embeddings job takes no response schema" in refused.value.describe()
    with pytest.raises(TypeError, match="pydantic model class"):
        GatewayBatchProcessor(
            endpoint=server.url,
            response_schema=Ticket(  # an instance, not the class
                label="bug", confidence=1, summary=None, priority=Priority(level=1, reason="x")
            ),
        )
