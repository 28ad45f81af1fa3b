"""submit -> poll -> iter_results -> cancel for every SDK-backed provider, through the real SDKs, against the emulator.

Run with ``PYTHONPATH=src:layers/batch_gateway``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_gateway.models import BatchItem, BatchStatus, FinishReason, JobSpec
from batch_gateway.providers.base import BatchProvider
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.registry import get_provider
from batch_gateway.providers.requests import encode_request_line

emulator = pytest.importorskip("batch_gateway_local.emulator")

SPECS = {
    "openai": JobSpec(provider="openai", model="gpt-4o-mini", system_prompt="Answer briefly."),
    "anthropic": JobSpec(provider="anthropic", model="claude-haiku-4-5", system_prompt="Answer briefly."),
    # Azure: the model is the user's deployment name
    "azure-openai": JobSpec(provider="azure-openai", model="my-batch-deployment", system_prompt="Be brief."),
}
SDK_PROVIDERS = list(SPECS)
POLLS_TO_COMPLETE = 2


@pytest.fixture
def emu() -> Iterator[emulator.EmulatorServer]:
    with emulator.EmulatorServer(polls_to_complete=POLLS_TO_COMPLETE) as server:
        yield server


def base_url_of(name: str, emu: emulator.EmulatorServer) -> str:
    return {
        "openai": emu.openai_base_url,
        "anthropic": emu.anthropic_base_url,
        "azure-openai": emu.azure_openai_endpoint,
    }[name]


def provider_for(name: str, emu: emulator.EmulatorServer) -> BatchProvider:
    return get_provider(name, api_key="test-key", base_url=base_url_of(name, emu), max_retries=1)


def write_chunk(
    tmp_path: Path, provider: BatchProvider, spec: JobSpec, items: list[BatchItem]
) -> dict[str, str]:
    """Write the requests file; return provider id -> user id (what intake keeps in its index)."""
    mapping: dict[str, str] = {}
    with (tmp_path / "chunk.jsonl").open("wb") as fh:
        for line, item in enumerate(items, start=1):
            provider_id = provider.provider_custom_id(item.custom_id, line)
            mapping[provider_id] = item.custom_id
            fh.write(encode_request_line(provider.build_request(provider_id, item, spec)))
    return mapping


def wait_until_terminal(provider: BatchProvider, batch_id: str) -> BatchStatus:
    for _ in range(POLLS_TO_COMPLETE + 5):
        progress = provider.poll(batch_id)
        if progress.status.is_terminal:
            return progress.status
    raise AssertionError(f"batch {batch_id} did not end")


WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = {
    "openai": [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}},
    ],
    "anthropic": [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}],
}
TOOLS["azure-openai"] = TOOLS["openai"]


def items_for(name: str) -> list[BatchItem]:
    return [
        BatchItem(custom_id="plain-1", user_message="What is the capital of France?"),
        BatchItem(custom_id="needs.mapping 2", user_message="Name three primes."),
        BatchItem(
            custom_id="tool-3",
            user_message=f"Weather in Paris? {emulator.MARKER_TOOL}",
            extra={"tools": TOOLS[name]},
        ),
        BatchItem(custom_id="bad-4", user_message=f"Trigger a 400 {emulator.MARKER_ERROR_400}"),
    ]


@pytest.mark.parametrize("name", SDK_PROVIDERS)
def test_submit_poll_collect(name: str, emu: emulator.EmulatorServer, tmp_path: Path) -> None:
    provider = provider_for(name, emu)
    spec = SPECS[name]
    items = items_for(name)
    mapping = write_chunk(tmp_path, provider, spec, items)
    assert "bg-2" in mapping  # the unsafe id was mapped

    submitted = provider.submit(tmp_path / "chunk.jsonl", spec, {"batch_gateway_job": "job-1", "chunk": "1"})
    assert submitted.status in (BatchStatus.PENDING, BatchStatus.IN_PROGRESS)
    assert emu.batches_created.get(name) == 1

    assert wait_until_terminal(provider, submitted.provider_batch_id) is BatchStatus.COMPLETED
    results = {mapping[r.provider_custom_id]: r for r in provider.iter_results(submitted.provider_batch_id)}
    assert set(results) == {item.custom_id for item in items}  # exactly one result per line

    for custom_id in ("plain-1", "needs.mapping 2"):
        result = results[custom_id]
        assert result.outcome == "succeeded", result.error
        assert result.response is not None
        assert result.response.content
        assert result.response.usage["total_tokens"] > 0
        assert result.raw is not None
        assert result.response.raw is None

    tool = results["tool-3"].response
    assert tool is not None
    assert tool.finish_reason is FinishReason.TOOL_CALL
    (call,) = tool.tool_calls
    assert call.name == "get_weather"
    assert isinstance(call.arguments, dict)

    bad = results["bad-4"]
    assert bad.outcome == "errored"
    assert bad.error
    assert "{'" not in bad.error


@pytest.mark.parametrize("name", SDK_PROVIDERS)
def test_cancel(name: str, emu: emulator.EmulatorServer, tmp_path: Path) -> None:
    provider = provider_for(name, emu)
    spec = SPECS[name]
    mapping = write_chunk(tmp_path, provider, spec, items_for(name)[:2])
    submitted = provider.submit(tmp_path / "chunk.jsonl", spec, {})
    progress = provider.cancel(submitted.provider_batch_id)
    assert progress.status in (BatchStatus.CANCELLING, BatchStatus.CANCELLED)
    assert wait_until_terminal(provider, submitted.provider_batch_id) is BatchStatus.CANCELLED
    results = list(provider.iter_results(submitted.provider_batch_id))
    assert {r.provider_custom_id for r in results} <= set(mapping)
    assert all(r.outcome in ("succeeded", "cancelled") for r in results)


@pytest.mark.parametrize("name", SDK_PROVIDERS)
def test_unknown_batch_is_a_readable_provider_error(name: str, emu: emulator.EmulatorServer) -> None:
    provider = provider_for(name, emu)
    with pytest.raises(ProviderError) as caught:
        provider.poll("batch_missing")
    message = str(caught.value)
    assert message.startswith(
        (
            "OpenAI rejected the status request",
            "Anthropic rejected the status request",
            "Azure OpenAI rejected the status request",
        )
    )
    assert message.endswith("(HTTP 404)")
    assert "{'" not in message


@pytest.mark.parametrize("name", SDK_PROVIDERS)
def test_missing_key_is_a_readable_provider_error(name: str, emu: emulator.EmulatorServer) -> None:
    provider = get_provider(name, api_key="", base_url=base_url_of(name, emu), max_retries=0)
    with pytest.raises(ProviderError, match="API key configured"):
        provider.poll("batch_1")
