"""Each provider's batch-queue quota, enforced by the emulator as the real provider enforces it.

OpenAI and Azure count the prompt tokens enqueued per model (a batch over the limit is created, then
fails ``token_limit_exceeded``); Anthropic counts the requests in batches being processed (a create
over it is a 429); Bedrock counts submitted + in-progress jobs per model (a create over it raises
``ServiceQuotaExceededException`` in boto3). Quotas are set on a running server, and the high-water
marks say the most each quota ever held. OpenAI, Azure and Anthropic are driven over plain HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx2
import pytest
from botocore.exceptions import ClientError

from batch_gateway_local.emulator import EmulatorServer, Limits
from batch_gateway_local.emulator.tokens import chat_prompt_tokens

GPT = "gpt-4o-mini"
BEARER = {"Authorization": "Bearer k"}
ANTHROPIC = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
AZURE = {"api-key": "k"}
AZURE_VERSION = {"api-version": "2024-10-21"}


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(polls_to_complete=2) as server:
        yield server


@pytest.fixture
def http(emu: EmulatorServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=emu.base_url, timeout=10) as client:
        yield client


def chat_body(text: str, model: str = GPT) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def openai_batch(
    http: httpx2.Client, texts: list[str], model: str = GPT, azure: bool = False
) -> dict[str, Any]:
    """Upload and create a batch (OpenAI or Azure routes): the created batch object."""
    prefix, url = ("/openai", "/chat/completions") if azure else ("/v1", "/v1/chat/completions")
    headers, params = (AZURE, AZURE_VERSION) if azure else (BEARER, {})
    lines = [
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": url, "body": chat_body(text, model)})
        for i, text in enumerate(texts)
    ]
    uploaded = http.post(
        f"{prefix}/files",
        headers=headers,
        params=params,
        data={"purpose": "batch"},
        files={"file": ("in.jsonl", "\n".join(lines).encode())},
    ).json()
    body = {"input_file_id": uploaded["id"], "endpoint": url, "completion_window": "24h"}
    reply = http.post(f"{prefix}/batches", headers=headers, params=params, json=body)
    assert reply.status_code == 200, reply.text  # over the quota too: the batch is created...
    return dict(reply.json())


def poll(http: httpx2.Client, batch_id: str, azure: bool = False) -> dict[str, Any]:
    prefix, headers, params = ("/openai", AZURE, AZURE_VERSION) if azure else ("/v1", BEARER, {})
    return dict(http.get(f"{prefix}/batches/{batch_id}", headers=headers, params=params).json())


def tokens(texts: list[str]) -> int:
    return sum(chat_prompt_tokens(chat_body(text)) for text in texts)


@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
def test_a_batch_over_the_enqueued_token_quota_is_created_then_fails(
    emu: EmulatorServer, http: httpx2.Client, azure: bool
) -> None:
    first, second = ["alpha beta gamma", "delta epsilon"], ["zeta eta theta iota"]
    quota = tokens(first) + tokens(second) - 1
    emu.set_quota("azure-openai" if azure else "openai", quota)  # on the running server

    held = openai_batch(http, first, azure=azure)
    over = openai_batch(http, second, azure=azure)
    other_model = openai_batch(http, second, model="gpt-4o", azure=azure)  # its own quota
    refused = poll(http, over["id"], azure)  # ...and fails when it is next looked at
    assert refused["status"] == "failed"
    [error] = refused["errors"]["data"]
    assert error["code"] == "token_limit_exceeded"
    if azure:
        assert f"configured limit of {quota:,} for the deployment '{GPT}'" in error["message"]
    else:
        assert error["message"].startswith(f"Enqueued token limit reached for {GPT} in organization")
        assert f"Limit: {quota:,} enqueued tokens" in error["message"]
    assert poll(http, held["id"], azure)["status"] == "in_progress"
    assert poll(http, other_model["id"], azure)["status"] == "in_progress"

    assert poll(http, held["id"], azure)["status"] == "completed"  # its tokens are released...
    again = openai_batch(http, second, azure=azure)
    assert poll(http, again["id"], azure)["status"] == "in_progress"  # ...so the same batch now fits
    marks = emu.quota_high_water.max_enqueued_tokens["azure-openai" if azure else "openai"]
    assert marks == {GPT: tokens(first), "gpt-4o": tokens(second)}
    assert emu.quota_high_water.peak("azure-openai" if azure else "openai") <= quota


def test_the_reported_usage_is_the_count_the_quota_uses(emu: EmulatorServer, http: httpx2.Client) -> None:
    texts = ["Classify this support ticket: my invoice for March is wrong, please fix it!"]
    batch = openai_batch(http, texts)
    while batch["status"] != "completed":
        batch = poll(http, batch["id"])
    assert batch["usage"]["input_tokens"] == tokens(texts)
    assert emu.quota_high_water.max_enqueued_tokens["openai"] == {GPT: tokens(texts)}


def anthropic_create(http: httpx2.Client, count: int) -> httpx2.Response:
    params = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    requests = [{"custom_id": f"r{i}", "params": params} for i in range(count)]
    return http.post("/v1/messages/batches", headers=ANTHROPIC, json={"requests": requests})


def test_anthropic_refuses_a_batch_over_the_processing_quota_with_429(
    emu: EmulatorServer, http: httpx2.Client
) -> None:
    emu.limits = Limits(anthropic_max_processing_requests=3)
    first = anthropic_create(http, 2)
    assert first.status_code == 200
    assert anthropic_create(http, 1).status_code == 200  # 3 processing: exactly the quota
    refused = anthropic_create(http, 1)
    assert refused.status_code == 429
    body = refused.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert "limit of 3" in body["error"]["message"]

    batch_id = first.json()["id"]
    for _ in range(2):  # the first batch ends: its 2 requests no longer count
        http.get(f"/v1/messages/batches/{batch_id}", headers=ANTHROPIC)
    assert anthropic_create(http, 2).status_code == 200
    assert emu.quota_high_water.max_processing_requests == 3


MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
BUCKET = "quota-bucket"


@pytest.fixture
def bedrock(emu: EmulatorServer, mocked_aws: None) -> Any:
    model_input = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 9,
        "messages": [{"role": "user", "content": "hi"}],
    }
    record = {"recordId": "1", "modelInput": model_input}
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("s3").put_object(Bucket=BUCKET, Key="in.jsonl", Body=json.dumps(record).encode())
    return boto3.client("bedrock", endpoint_url=emu.bedrock_endpoint_url)


def create_job(client: Any, name: str, model: str = MODEL) -> str:
    return str(
        client.create_model_invocation_job(
            jobName=name,
            modelId=model,
            roleArn="arn:aws:iam::123456789012:role/batch",
            inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/in.jsonl"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}},
        )["jobArn"]
    )


def test_bedrock_refuses_a_job_over_the_concurrent_jobs_quota(emu: EmulatorServer, bedrock: Any) -> None:
    emu.set_quota("bedrock", 1)
    first = create_job(bedrock, "job-1")
    with pytest.raises(ClientError) as refused:
        create_job(bedrock, "job-2")
    assert refused.value.response["Error"]["Code"] == "ServiceQuotaExceededException"
    assert "quota of 1" in refused.value.response["Error"]["Message"]
    create_job(bedrock, "job-other-model", model="anthropic.claude-3-haiku-20240307-v1:0")  # its own quota

    statuses = [bedrock.get_model_invocation_job(jobIdentifier=first)["status"] for _ in range(2)]
    assert statuses == ["InProgress", "Completed"]
    create_job(bedrock, "job-2")  # the first job ended: its place is free
    assert emu.quota_high_water.max_concurrent_jobs == {MODEL: 1, "anthropic.claude-3-haiku-20240307-v1:0": 1}


def test_quotas_are_unlimited_by_default_and_named_per_provider(emu: EmulatorServer) -> None:
    assert emu.limits.openai_enqueued_tokens is None
    assert emu.limits.anthropic_max_processing_requests is None
    assert emu.limits.bedrock_max_concurrent_jobs is None
    emu.set_quota("anthropic", 10)
    assert emu.limits.anthropic_max_processing_requests == 10
    emu.set_quota("anthropic", None)
    assert emu.limits.anthropic_max_processing_requests is None
    with pytest.raises(ValueError, match="no quota for provider"):
        emu.set_quota("gemini", 1)
