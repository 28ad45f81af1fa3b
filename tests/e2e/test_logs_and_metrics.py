"""What a whole job writes to its logs: correlation keys and metrics, never a prompt, answer or key."""

from __future__ import annotations

import json
from pathlib import Path

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl

SECRET_KEY = "sk-live-DO-NOT-LOG-7f3a9c"
PROMPT = "patient record 4471: confidential diagnosis text"


def test_a_whole_job_logs_ids_and_metrics_but_no_prompt_answer_or_api_key(tmp_path: Path) -> None:
    options = LocalOptions(
        provider_api_keys=(("openai_api_key", SECRET_KEY), ("anthropic_api_key", SECRET_KEY))
    )
    with LocalGateway(options) as gateway:
        source = write_jsonl(tmp_path / "private.jsonl", [{"custom_id": "p1", "user_message": PROMPT}])
        job_id = gateway.submit_file(
            source, JobSpec(provider="openai", model="gpt-4o-mini", system_prompt="S3CRET SYSTEM")
        )
        job = gateway.wait(job_id, timeout_s=120)
        answer = gateway.export(job_id, tmp_path / "out")["results.jsonl"].read_text()
        assert gateway.stack is not None
        logs = "".join(invocation.logs for invocation in gateway.stack.invocations)

    assert job.status.value == "completed"
    assert PROMPT in answer  # the emulator echoes the prompt: it is in the results, where it belongs
    for secret in (SECRET_KEY, PROMPT, "S3CRET SYSTEM", "confidential"):
        assert secret not in logs
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(r.get("job_id") == job_id for r in records)  # correlation key on every function's lines
    emf = [r for r in records if "_aws" in r]
    names = {m["Name"] for r in emf for d in r["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"ItemsSubmitted", "ProviderCallLatency", "ItemsSucceeded", "JobDuration", "JobCostUSD"} <= names


def test_a_rejected_line_is_not_quoted_in_the_logs(tmp_path: Path) -> None:
    # A wrong type makes the line's error quote the value; the job row and errors.jsonl keep it, the
    # logs do not (unless the stack's LogContent is "true").
    leaky = [{"custom_id": "p1", "user_message": [PROMPT]}]
    with LocalGateway() as gateway:
        job_id = gateway.submit_file(
            write_jsonl(tmp_path / "leaky.jsonl", leaky), JobSpec(provider="openai", model="gpt-4o-mini")
        )
        job = gateway.wait(job_id, timeout_s=60)
        assert gateway.stack is not None
        logs = "".join(invocation.logs for invocation in gateway.stack.invocations)

    assert job.status.value == "failed"
    assert job.reason is not None
    assert PROMPT[:40] in job.reason  # the user sees which value was wrong
    assert "confidential" not in logs
    assert "withheld from the logs" in logs
