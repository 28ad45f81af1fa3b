"""Embeddings batches end to end: a job with ``endpoint: embeddings`` on OpenAI and Azure OpenAI."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway
from tests.conftest import read_jsonl, write_jsonl


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "text-embedding-3-small"), ("azure-openai", "embeddings-deployment")]
)
def test_an_embeddings_job_answers_each_line_with_its_vector(
    gateway: LocalGateway, tmp_path: Path, provider: str, model: str
) -> None:
    lines = [
        {"custom_id": f"doc-{n}", "user_message": f"Ticket {n}: the printer is on fire."} for n in range(3)
    ]
    spec = JobSpec(provider=provider, model=model, endpoint="embeddings")
    job_id = gateway.submit_file(write_jsonl(tmp_path / f"{provider}-docs.jsonl", lines), spec)

    job = gateway.wait(job_id, timeout_s=300)
    results = read_jsonl(gateway.export(job_id, tmp_path / "out", results_table=False)["results.jsonl"])

    assert job.status.value == "completed", job.reason
    assert [r["custom_id"] for r in results] == ["doc-0", "doc-1", "doc-2"]
    vectors = [r["response"]["embedding"] for r in results]
    assert all(len(v) > 8 and all(isinstance(x, float) for x in v) for v in vectors)
    assert vectors[0] != vectors[1]  # each input its own vector
    assert results[0]["raw"]["response"]["body"]["object"] == "list"  # the provider's own result line
    assert job.usage["prompt_tokens"] > 0
    assert not job.usage.get("completion_tokens")
    if provider == "openai":
        assert job.cost.usd is not None  # text-embedding-3-small is priced


def test_an_embeddings_job_on_anthropic_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="embeddings batches run on openai and azure-openai only"):
        JobSpec(provider="anthropic", model="claude-haiku-4-5", endpoint="embeddings")
