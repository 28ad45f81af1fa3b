"""Every way a provider batch can go wrong, through the whole offline stack: each ends with one result
line per input line, counts that add up, the job row, and exactly the provider batches it should."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_gateway.models import JobSpec, JobSummary
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import read_jsonl, write_jsonl

ITEMS = 20  # two chunks of ten
# Bedrock runs Claude models only; the emulator answers any model name for the others.
MODELS = {"bedrock": "anthropic.claude-3-5-haiku-20241022-v1:0"}
# How a permanent per-request 400 reads: Bedrock's error records carry a status and a message.
PERMANENT_ERROR = {"bedrock": "HTTP 400: "}


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=10, failed_batch_retries=2, retry_rounds=1)) as local:
        yield local


class Outcome:
    def __init__(self, job: JobSummary, files: dict[str, Path], batches: int) -> None:
        self.job, self.batches = job, batches
        self.results = read_jsonl(files["results.jsonl"])
        self.summary = json.loads(files["summary.json"].read_text())
        self.row = json.loads(files["job.json"].read_text())
        self.by_id = {r["custom_id"]: r for r in self.results}


def run(gateway: LocalGateway, tmp_path: Path, scenario: str, provider: str = "openai") -> Outcome:
    gateway.emulator.scenario = scenario
    before = gateway.emulator.batches_created.get(provider, 0)
    items = [
        {"custom_id": f"{scenario}-{n:02d}", "user_message": f"{scenario} question {n}"} for n in range(ITEMS)
    ]
    source = write_jsonl(tmp_path / f"{scenario}-{provider}.jsonl", items)
    model = MODELS.get(provider, "gpt-4o-mini")
    job_id = gateway.submit_file(source, JobSpec(provider=provider, model=model))  # type: ignore[arg-type]
    job = gateway.wait(job_id, timeout_s=300)
    outcome = Outcome(
        job,
        gateway.export(job_id, tmp_path / "out"),
        gateway.emulator.batches_created.get(provider, 0) - before,
    )
    gateway.emulator.scenario = "ok"
    # every scenario: one result line per input line, in input order, counts that add up
    assert [r["custom_id"] for r in outcome.results] == [i["custom_id"] for i in items]
    assert sum(outcome.summary["counts"].values()) == ITEMS
    assert outcome.row["counts"] == outcome.summary["counts"]
    assert outcome.row["status"] == outcome.summary["status"]
    return outcome


def errors(outcome: Outcome) -> dict[str, str]:
    return {r["custom_id"]: r["error"] for r in outcome.results if r["error"]}


@pytest.mark.parametrize("provider", ["openai", "azure-openai", "anthropic", "bedrock"])
def test_item_errors_retry_the_transient_ones_and_keep_the_permanent_ones(
    gateway: LocalGateway, tmp_path: Path, provider: str
) -> None:
    outcome = run(gateway, tmp_path, "item-errors", provider)

    assert outcome.job.status.value == "completed"
    assert outcome.summary["counts"]["succeeded"] == 18
    assert outcome.summary["counts"]["errored"] == 2  # position 3 of each batch: a permanent 400
    permanent = errors(outcome)
    assert set(permanent) == {"item-errors-03", "item-errors-13"}
    expected = PERMANENT_ERROR.get(provider, "invalid_request_error")
    assert all(expected in text for text in permanent.values())
    assert outcome.summary["retry_rounds"] == [{"round": 1, "retried": 2, "recovered": 2}]
    assert outcome.batches == 4  # two chunks, each with one follow-up round


@pytest.mark.parametrize("provider", ["openai", "azure-openai", "anthropic", "bedrock"])
def test_an_expired_batch_keeps_what_finished_and_a_follow_up_round_recovers_the_rest(
    gateway: LocalGateway, tmp_path: Path, provider: str
) -> None:
    outcome = run(gateway, tmp_path, "expire", provider)

    assert outcome.job.status.value == "completed"
    assert outcome.summary["counts"]["succeeded"] == ITEMS
    assert outcome.summary["retry_rounds"] == [{"round": 1, "retried": 10, "recovered": 10}]
    assert outcome.batches == 4


@pytest.mark.parametrize("provider", ["openai", "azure-openai", "anthropic", "bedrock"])
def test_a_batch_that_always_fails_is_retried_then_every_item_says_why(
    gateway: LocalGateway, tmp_path: Path, provider: str
) -> None:
    outcome = run(gateway, tmp_path, "fail", provider)

    assert outcome.job.status.value == "failed"
    assert outcome.summary["counts"]["errored"] == ITEMS
    assert all("Enqueued token limit reached" in text for text in errors(outcome).values())
    assert outcome.job.reason is not None
    assert outcome.job.reason.startswith("2 provider batch(es) failed")
    # OpenAI, Azure and Bedrock create a batch that then fails (3 attempts x 2 chunks); Anthropic
    # refuses the create. OpenAI's and Azure's failure is the enqueued-token limit: a refusal while
    # the other chunk held quota is requeued, not counted; one with nothing else in flight counts.
    batches = outcome.summary["provider_batches"]
    assert batches["failed"] == 6  # Anthropic's refused creates count too: FailedBatchRetries counted them
    assert outcome.batches == batches["submitted"]
    if provider != "anthropic":
        assert batches["submitted"] == batches["failed"] + batches["requeued_for_quota"]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "bedrock"])
def test_a_batch_that_fails_once_succeeds_when_resubmitted(
    gateway: LocalGateway, tmp_path: Path, provider: str
) -> None:
    outcome = run(gateway, tmp_path, "fail-once", provider)

    assert outcome.job.status.value == "completed"
    assert outcome.summary["counts"]["succeeded"] == ITEMS
    assert outcome.batches == (2 if provider == "anthropic" else 4)


@pytest.mark.parametrize("scenario", ["throttle", "flaky-download", "slow"])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "bedrock"])
def test_transport_faults_and_slow_batches_still_end_with_every_answer_once(
    gateway: LocalGateway, tmp_path: Path, scenario: str, provider: str
) -> None:
    outcome = run(gateway, tmp_path, scenario, provider)

    assert outcome.job.status.value == "completed"
    assert outcome.summary["counts"]["succeeded"] == ITEMS
    assert outcome.batches == 2
    assert len({r["custom_id"] for r in outcome.results}) == ITEMS


def wait_until(condition: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "bedrock"])
def test_cancelling_a_job_collects_what_finished_and_accounts_for_every_line(
    gateway: LocalGateway, tmp_path: Path, provider: str
) -> None:
    gateway.emulator.scenario = "slow"
    items = [{"custom_id": f"c{n:02d}", "user_message": f"question {n}"} for n in range(ITEMS)]
    spec = JobSpec(provider=provider, model=MODELS.get(provider, "m"))  # type: ignore[arg-type]
    job_id = gateway.submit_file(write_jsonl(tmp_path / "cancel.jsonl", items), spec)
    wait_until(lambda: len([c for c in gateway.progress(job_id).chunks if c.get("provider_batch_id")]) == 2)

    cancelling = gateway.cancel(job_id)
    job = gateway.wait(job_id, timeout_s=300)
    gateway.emulator.scenario = "ok"
    files = gateway.export(job_id, tmp_path / "out")

    assert cancelling.status.value == "cancelling"
    assert job.status.value == "cancelled"
    assert job.counts.cancelled > 0
    assert job.counts.succeeded + job.counts.cancelled == ITEMS
    assert job.retry_rounds == []  # a cancelled job runs no follow-up rounds
    results = read_jsonl(files["results.jsonl"])
    assert [r["custom_id"] for r in results] == [i["custom_id"] for i in items]
    assert all("cancel" in r["error"].lower() for r in results if r["error"])
    assert gateway.cancel(job_id).status.value == "cancelled"  # idempotent once finished
