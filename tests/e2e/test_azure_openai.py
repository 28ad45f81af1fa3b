"""Azure OpenAI end to end on the offline stack: the emulator answers on Azure's routes."""

from __future__ import annotations

import json
from pathlib import Path

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import read_jsonl, write_jsonl
from tests.e2e.test_cli_local_run import local_run

DEPLOYMENT = "my-gpt-4o-mini-batch"  # the user's own deployment name, used as the model


def test_local_run_with_a_deployment_answers_every_line_in_input_order(tmp_path: Path) -> None:
    items = [
        {"custom_id": f"ticket {n}/a", "user_message": f"Is ticket {n} about billing?"} for n in range(25)
    ]
    source = write_jsonl(tmp_path / "tickets.jsonl", items)

    done = local_run(
        source, tmp_path / "out", "--provider", "azure-openai", "--model", DEPLOYMENT, "--chunk-size", "10"
    )

    assert done.returncode == 0, done.stderr
    results = read_jsonl(tmp_path / "out" / "results.jsonl")
    assert [r["custom_id"] for r in results] == [i["custom_id"] for i in items]
    assert all(r["error"] is None and r["response"]["content"] for r in results)
    assert {r["raw"]["response"]["body"]["model"] for r in results} == {DEPLOYMENT}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["chunk_count"] == 3
    assert summary["counts"]["succeeded"] == len(items)
    # A deployment name says nothing about its price: unknown, never zero.
    assert summary["cost"]["usd"] is None
    assert summary["cost"]["unpriced_models"] == [DEPLOYMENT]


def test_a_stack_without_an_azure_endpoint_fails_the_job_saying_which_parameter_to_set(
    tmp_path: Path,
) -> None:
    with LocalGateway(LocalOptions(azure_openai_endpoint="")) as gateway:
        source = write_jsonl(tmp_path / "noendpoint.jsonl", [{"custom_id": "a", "user_message": "hi"}])
        job_id = gateway.submit_file(source, JobSpec(provider="azure-openai", model=DEPLOYMENT))
        job = gateway.wait(job_id, timeout_s=120)
        created = gateway.emulator.batches_created["azure-openai"]

    assert job.status.value == "failed"
    assert job.reason is not None
    # The chunk whose step failed, then the provider's readable error (workflow/chunk_failure.py).
    assert job.reason.startswith(
        "chunk 1 failed: ProviderError: no Azure OpenAI endpoint configured: set the stack parameter "
        "AzureOpenAIEndpoint"
    )
    assert "Traceback" not in job.reason
    assert created == 0
