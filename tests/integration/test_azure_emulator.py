"""The emulator's Azure OpenAI routes, through the official AzureOpenAI client and over plain HTTP."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import openai
import pytest

from batch_gateway_local.emulator import EmulatorServer

API_VERSION = "2024-10-21"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(polls_to_complete=2) as server:
        yield server


def azure(emu: EmulatorServer, api_version: str = API_VERSION) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=emu.azure_openai_endpoint, api_version=api_version, api_key="azure-key", max_retries=0
    )


def upload(client: openai.AzureOpenAI, url: str = "/chat/completions") -> str:
    line = {
        "custom_id": "q1",
        "method": "POST",
        "url": url,
        "body": {"model": "my-deployment", "messages": [{"role": "user", "content": "Capital of France?"}]},
    }
    return client.files.create(file=("in.jsonl", io.BytesIO(json.dumps(line).encode())), purpose="batch").id


def http_status(url: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_a_batch_on_azure_routes_answers_with_the_deployment_and_no_24_hour_expiry(
    emu: EmulatorServer,
) -> None:
    client = azure(emu)
    batch = client.batches.create(
        input_file_id=upload(client), endpoint="/chat/completions", completion_window="24h"
    )
    assert batch.expires_at is None  # Azure does not expire a batch that runs past 24 hours

    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        batch = client.batches.retrieve(batch.id)

    assert batch.status == "completed"
    assert batch.output_file_id is not None
    (line,) = [json.loads(text) for text in client.files.content(batch.output_file_id).text.splitlines()]
    assert line["custom_id"] == "q1"
    assert line["response"]["body"]["model"] == "my-deployment"
    assert batch.id in {b.id for b in client.batches.list()}
    openai_client = openai.OpenAI(base_url=emu.openai_base_url, api_key="sk-x", max_retries=0)
    assert batch.id not in {b.id for b in openai_client.batches.list()}  # Azure's batches are its own


def test_an_openai_route_in_an_azure_batch_fails_validation(emu: EmulatorServer) -> None:
    client = azure(emu)
    batch = client.batches.create(
        input_file_id=upload(client, url="/v1/chat/completions"),
        endpoint="/chat/completions",
        completion_window="24h",
    )
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "failed"
    assert batch.errors is not None
    assert [e.code for e in batch.errors.data or []] == ["mismatched_endpoint"]


def test_an_api_version_without_batches_is_refused_like_azure_does(emu: EmulatorServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        azure(emu, api_version="2023-05-15").batches.list()
    assert caught.value.body == {"code": "BadRequest", "message": "API version not supported"}


def test_no_api_version_or_no_key_is_refused(emu: EmulatorServer) -> None:
    status, body = http_status(f"{emu.base_url}/openai/batches", {"api-key": "azure-key"})
    assert (status, body) == (404, {"error": {"code": "404", "message": "Resource not found"}})

    status, body = http_status(f"{emu.base_url}/openai/batches?api-version={API_VERSION}", {})
    assert status == 401
    assert "Access denied" in str(body)

    status, _ = http_status(
        f"{emu.base_url}/openai/batches?api-version={API_VERSION}", {"api-key": "azure-key"}
    )
    assert status == 200
