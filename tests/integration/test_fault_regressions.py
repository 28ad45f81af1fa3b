"""Bugs the chaos run found, each pinned by a test named after its fault (``make chaos``).

The faults are the chaos run's own (``stack.faults``), aimed at one call with ``FaultPlan.only``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_gateway.models import BatchItem, JobSpec
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.openai.batch import OpenAIBatchProvider
from batch_gateway.providers.requests import encode_request_line
from batch_gateway_local.emulator.server import EmulatorServer
from batch_gateway_local.stack.faults.hooks import installed
from batch_gateway_local.stack.faults.plan import FaultPlan
from batch_gateway_local.stack.iam.recorder import acting_as

SPEC = JobSpec(provider="openai", model="gpt-4o-mini")
METADATA = {"batch_gateway_job": "job-1", "chunk": "1", "round": "0", "attempt": "0"}


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(polls_to_complete=2) as server:
        yield server


def _requests(tmp_path: Path, provider: OpenAIBatchProvider) -> Path:
    path = tmp_path / "requests.jsonl"
    items = [BatchItem(custom_id=f"r-{n}", user_message=f"Say {n}.") for n in range(1, 4)]
    lines = (encode_request_line(provider.build_request(item.custom_id, item, SPEC)) for item in items)
    path.write_bytes(b"".join(lines))
    return path


def test_lost_provider_answer_on_batch_create_makes_one_batch_that_submit_finds(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The create took effect, its answer was lost: the SDK must not POST again (a second, paid batch);
    the failure reaches Submit, whose retry finds the batch by its metadata and adopts it."""
    provider = OpenAIBatchProvider(api_key="sk-test", base_url=emulator.openai_base_url)
    plan = FaultPlan(rates={"lost-provider-answer": 1.0}, rate=0.0, only=("POST /v1/batches",))
    with installed(plan), acting_as("SubmitFunction"), pytest.raises(ProviderError):
        provider.submit(_requests(tmp_path, provider), SPEC, METADATA)

    assert plan.counts()["lost-provider-answer"] == 1
    assert emulator.batches_created["openai"] == 1
    found = provider.find_batch(METADATA, created_after=0)
    assert found is not None
    assert json.dumps(found.raw)  # the adopted batch is a real one, with its status
