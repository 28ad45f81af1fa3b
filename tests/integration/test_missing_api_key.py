"""A stack whose provider secret was never filled in: the job fails and says where the key goes."""

from __future__ import annotations

from pathlib import Path

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl


def test_a_missing_api_key_fails_the_job_with_a_reason_that_says_where_to_put_it(tmp_path: Path) -> None:
    options = LocalOptions(provider_api_keys=(("openai_api_key", "sk-set"), ("anthropic_api_key", "")))
    with LocalGateway(options) as gateway:
        source = write_jsonl(tmp_path / "nokey.jsonl", [{"custom_id": "a", "user_message": "hi"}])
        job_id = gateway.submit_file(source, JobSpec(provider="anthropic", model="m"))
        job = gateway.wait(job_id, timeout_s=120)
        batches = dict(gateway.emulator.batches_created)

    assert job.status.value == "failed"
    assert job.reason is not None
    # The chunk whose step failed, then the readable error (workflow/chunk_failure.py).
    assert job.reason.startswith(
        "chunk 1 failed: ProviderError: no API key for anthropic: store it as 'anthropic_api_key'"
    )
    assert "Traceback" not in job.reason
    assert batches.get("anthropic", 0) == 0
