"""The input-token estimate the quota ledger reserves: never short of what the provider counts
(the emulator's count here), and close to it on the bench's lines."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from batch_gateway.models import BatchItem, JobSpec
from batch_gateway.providers.requests import encode_request_line, request_builder_for
from batch_gateway.providers.token_estimate import estimate_input_tokens, estimate_request_line
from batch_gateway_local.emulator.answers import content_text, prompt_tokens

_spec = importlib.util.spec_from_file_location(
    "workload", Path(__file__).parents[2] / "bench" / "workload.py"
)
assert _spec is not None
assert _spec.loader is not None
workload = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(workload)


def _emulator_tokens(body: dict[str, object]) -> int:
    system = body.get("system")
    texts = []
    for message in body["messages"]:  # type: ignore[attr-defined]
        if message["role"] == "system":
            system = message["content"]
        else:
            texts.append(content_text(message["content"]))
    return prompt_tokens(content_text(system) if system else None, texts)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_on_the_bench_lines_the_provider_counts_within_15_percent_below_the_estimate(provider: str) -> None:
    builder = request_builder_for(provider)
    spec = JobSpec(provider=provider, model="gpt-4o-mini", system_prompt=workload.SYSTEM_PROMPT)  # type: ignore[arg-type]
    rng = random.Random(7)
    estimated = counted = 0
    for n in range(1, 1001):
        item = BatchItem.model_validate(workload.item(rng, n))
        item.extra.pop("response_format", None)  # not every provider takes it; the text is what counts
        request = builder.build_request(f"id-{n}", item, spec)
        line_estimate = estimate_request_line(encode_request_line(request), provider)
        line_count = _emulator_tokens(request.get("body") or request["params"])
        assert line_count <= line_estimate  # never short, line by line
        estimated += line_estimate
        counted += line_count
    assert 0.85 * estimated <= counted <= estimated


def test_non_ascii_text_counts_a_token_a_character_and_parts_and_images_count() -> None:
    ascii_only = estimate_input_tokens({"messages": [{"role": "user", "content": "a" * 400}]}, "openai")
    japanese = estimate_input_tokens({"messages": [{"role": "user", "content": "注" * 400}]}, "openai")
    assert japanese - ascii_only == 300  # 400 tokens instead of 100
    parts = {
        "params": {
            "system": [{"type": "text", "text": "b" * 40}],
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "c" * 40}, {"type": "image", "source": {}}],
                }
            ],
        }
    }
    assert estimate_input_tokens(parts, "anthropic") == 3 + 4 + 10 + 10 + 1105 + 4


def test_embeddings_inputs_count_their_texts_and_token_ids_at_or_above_the_emulators_count() -> None:
    """OpenAI's enqueued-token quota counts embeddings batches too: their input must be estimated."""
    from batch_gateway_local.emulator.openai.embeddings import embedding_prompt_tokens

    spec = JobSpec(provider="openai", model="text-embedding-3-small", endpoint="embeddings")
    builder = request_builder_for("openai")
    rng = random.Random(3)
    for _ in range(200):
        text = " ".join(rng.choice(workload._SENTENCES) for _ in range(rng.randrange(1, 12)))
        line = encode_request_line(
            builder.build_request("e", BatchItem(custom_id="e", user_message=text), spec)
        )
        body = {"model": spec.model, "input": text}
        assert estimate_request_line(line, "openai") >= embedding_prompt_tokens(body)
    for value in ([15496, 995, 0], [[1, 2], [3, 4, 5]], ["two texts", "to embed"]):
        body = {"model": spec.model, "input": value}
        assert estimate_input_tokens(body, "openai") >= embedding_prompt_tokens(body) > 0
