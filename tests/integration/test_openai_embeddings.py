"""Embeddings batches through the gateway's OpenAI and Azure providers, against the emulator.

The lines are built with the embeddings request builder; the provider runs them as a batch on the
embeddings endpoint (taken from the lines) and reads each answer into ``response.embedding``, with the
provider's own line kept in ``raw``. (A job spec choosing embeddings is wired above the providers.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_gateway.models import BatchItem, JobSpec
from batch_gateway.providers.openai.embeddings import (
    AZURE_EMBEDDINGS_ENDPOINT,
    OPENAI_EMBEDDINGS_ENDPOINT,
    build_embeddings_request,
)
from batch_gateway.providers.registry import get_provider
from batch_gateway.providers.requests import encode_request_line
from batch_gateway_local.emulator import EmulatorServer


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(polls_to_complete=1) as server:
        yield server


@pytest.mark.parametrize("name", ["openai", "azure-openai"])
def test_an_embeddings_batch_gives_each_item_its_vector(
    emu: EmulatorServer, tmp_path: Path, name: str
) -> None:
    base_url = emu.openai_base_url if name == "openai" else emu.azure_openai_endpoint
    provider = get_provider(name, api_key="k", base_url=base_url, max_retries=0)
    url = OPENAI_EMBEDDINGS_ENDPOINT if name == "openai" else AZURE_EMBEDDINGS_ENDPOINT
    items = [
        BatchItem(custom_id="a", user_message="the cat sat on the mat"),
        BatchItem(custom_id="b", user_message="stock prices fell", extra={"dimensions": 4}),
        BatchItem(custom_id="c", user_message="x", extra={"dimensions": 0}),  # OpenAI answers 400
    ]
    path = tmp_path / "chunk.jsonl"
    path.write_bytes(
        b"".join(
            encode_request_line(build_embeddings_request(i.custom_id, i, "text-embedding-3-small", url))
            for i in items
        )
    )
    spec = JobSpec(provider=name, model="text-embedding-3-small")
    submitted = provider.submit(path, spec, {"job": "embeddings"})
    assert provider.poll(submitted.provider_batch_id).status.is_terminal
    results = {r.provider_custom_id: r for r in provider.iter_results(submitted.provider_batch_id)}

    assert results["a"].outcome == "succeeded"
    response = results["a"].response
    assert response is not None
    assert response.embedding is not None
    assert len(response.embedding) == 1536
    assert response.content is None
    assert response.usage["prompt_tokens"] > 0
    assert results["a"].raw["response"]["body"]["data"][0]["embedding"] == response.embedding
    assert results["b"].response is not None
    assert results["b"].response.embedding is not None
    assert len(results["b"].response.embedding) == 4
    assert results["c"].outcome == "errored"
    assert results["c"].error is not None
    assert "dimensions" in results["c"].error
