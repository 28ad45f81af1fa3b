"""Azure OpenAI: request lines, the AzureOpenAI client's URLs and headers, configuration and cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from batch_gateway.cost import job_cost, model_prices
from batch_gateway.models import BatchItem, BatchStatus, JobSpec
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.line_encoder import LineEncoder
from batch_gateway.providers.openai.azure import DEFAULT_API_VERSION, AzureOpenAIBatchProvider
from batch_gateway.providers.registry import api_key_field, get_provider
from batch_gateway.providers.requests import (
    AZURE_OPENAI_LIMITS,
    build_openai_request,
    encode_request_line,
    request_builder_for,
)
from batch_gateway.settings import Settings

ENDPOINT = "https://my-resource.openai.azure.com"
SPEC = JobSpec(provider="azure-openai", model="my-gpt-4o-mini-batch", system_prompt="Be brief.")


def test_a_request_line_is_the_openai_line_routed_as_azure_names_it() -> None:
    item = BatchItem(custom_id="q1", user_message="Capital of France?", extra={"top_p": 0.5})
    line = request_builder_for("azure-openai").build_request("q1", item, SPEC)

    assert line["url"] == "/chat/completions"
    assert line["body"]["model"] == "my-gpt-4o-mini-batch"  # the deployment name
    openai_line = build_openai_request("q1", item, SPEC.model_copy(update={"provider": "openai"}))
    assert {**line, "url": openai_line["url"]} == openai_line
    assert list(line) == list(openai_line)  # same key order: byte-identical lines but for the route


def test_intake_fast_lines_equal_the_built_ones() -> None:
    builder = request_builder_for("azure-openai")
    encoder = LineEncoder(builder, SPEC)
    for fields in (
        {"custom_id": "a", "user_message": "hi"},
        {"custom_id": "b", "user_message": 'say "x"', "temperature": 0.3, "extra": {"seed": 7}},
    ):
        item = BatchItem(**fields)
        assert encoder.encode(item.custom_id, fields) == encode_request_line(
            builder.build_request(item.custom_id, item, SPEC)
        )
    assert builder.limits == AZURE_OPENAI_LIMITS


def test_the_client_talks_to_the_resource_with_api_version_and_api_key() -> None:
    provider = get_provider(
        "azure-openai", api_key="azure-key", base_url=ENDPOINT, api_version="2025-04-01-preview"
    )
    client = provider.client  # type: ignore[attr-defined]

    assert isinstance(client, openai.AzureOpenAI)
    assert str(client.base_url) == f"{ENDPOINT}/openai/"
    assert client.default_query == {"api-version": "2025-04-01-preview"}
    assert client.auth_headers == {"api-key": "azure-key"}


def test_without_an_endpoint_the_provider_says_which_parameter_to_set() -> None:
    provider = get_provider("azure-openai", api_key="azure-key", base_url=None)
    assert provider.limits == AZURE_OPENAI_LIMITS  # building lines needs no endpoint
    with pytest.raises(ProviderError, match="no Azure OpenAI endpoint configured: set the stack parameter"):
        provider.poll("batch_1")


def test_configuration_comes_from_the_environment_the_template_sets() -> None:
    settings = Settings.model_validate({"AZURE_OPENAI_ENDPOINT": ENDPOINT})
    assert settings.azure_openai_endpoint == ENDPOINT
    assert settings.azure_openai_api_version == DEFAULT_API_VERSION
    assert api_key_field("azure-openai") == "azure_openai_api_key"


class FakeAzure:
    """Azure's files and batches routes, recording what the SDK sent."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.url.path == "/openai/files":
            return httpx2.Response(
                200,
                json={
                    "id": "file-in",
                    "object": "file",
                    "bytes": 1,
                    "created_at": 1,
                    "filename": "c.jsonl",
                    "purpose": "batch",
                    "status": "processed",
                },
            )
        if request.url.path == "/openai/batches":
            body: dict[str, Any] = json.loads(request.content)
            return httpx2.Response(
                200,
                json={
                    "id": "batch_1",
                    "object": "batch",
                    "endpoint": body["endpoint"],
                    "input_file_id": "file-in",
                    "completion_window": "24h",
                    "status": "validating",
                    "created_at": 1,
                    "expires_at": None,
                },
            )
        return httpx2.Response(404, json={"error": {"code": "404", "message": "Resource not found"}})


def test_submit_uploads_and_creates_on_azure_routes(tmp_path: Path) -> None:
    fake = FakeAzure()
    client = openai.AzureOpenAI(
        azure_endpoint=ENDPOINT,
        api_version=DEFAULT_API_VERSION,
        api_key="azure-key",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(fake.handle)),
    )
    provider = AzureOpenAIBatchProvider("azure-key", ENDPOINT, client=client)
    requests_file = tmp_path / "chunk-0001.jsonl"
    item = BatchItem(custom_id="q1", user_message="hi")
    requests_file.write_bytes(encode_request_line(provider.build_request("q1", item, SPEC)))

    submitted = provider.submit(requests_file, SPEC, {"batch_gateway_job": "job-1"})

    assert submitted.provider_batch_id == "batch_1"
    assert submitted.status is BatchStatus.PENDING
    upload, create = fake.requests
    assert all(r.url.params["api-version"] == DEFAULT_API_VERSION for r in fake.requests)
    assert all(r.headers["api-key"] == "azure-key" for r in fake.requests)
    assert (upload.method, upload.url.path) == ("POST", "/openai/files")
    assert (create.method, create.url.path) == ("POST", "/openai/batches")
    assert json.loads(create.content)["endpoint"] == "/chat/completions"


def test_a_deployment_is_priced_only_when_it_is_exactly_a_known_model_name() -> None:
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    assert model_prices("azure-openai", "gpt-4o-mini") == model_prices("openai", "gpt-4o-mini")
    assert (
        job_cost("azure-openai", {"gpt-4o-mini": usage}).usd == job_cost("openai", {"gpt-4o-mini": usage}).usd
    )
    for deployment in ("my-gpt-4o-mini-batch", "gpt-4o-mini-eu"):  # the user's own names: unknown, not zero
        cost = job_cost("azure-openai", {deployment: usage})
        assert cost.usd is None
        assert cost.unpriced_models == [deployment]
