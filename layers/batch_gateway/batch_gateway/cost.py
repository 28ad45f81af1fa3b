"""What a job cost at the provider's batch prices, from real usage counts.

Prices live in ``pricing.json`` (one data file, with its date and sources). A model that is not
priced there makes the cost *unknown* (None), never zero: a silent zero would read as "free".
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from batch_gateway.models import JobCost

PER_TOKENS = 1_000_000
# Azure OpenAI global batch bills the OpenAI batch prices per model, but its jobs name a deployment,
# which is the user's own word: it is priced only when it is exactly a listed model name (a
# deployment called "gpt-4o-mini"), never by prefix, so an unknown deployment stays unpriced.
PRICED_AS: dict[str, str] = {"azure-openai": "openai"}


@lru_cache(maxsize=1)
def price_table() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(resources.files("batch_gateway").joinpath("pricing.json").read_text())
    return table


def model_prices(provider: str, model: str) -> dict[str, float] | None:
    """The prices of ``model``: an exact entry, or the longest entry the model name starts with."""
    models: dict[str, dict[str, float]] = price_table()["models"].get(PRICED_AS.get(provider, provider), {})
    if model in models:
        return models[model]
    if provider in PRICED_AS:
        return None
    matches = [name for name in models if model.startswith(name + "-")]
    return models[max(matches, key=len)] if matches else None


def usage_cost(provider: str, prices: dict[str, float], usage: dict[str, int]) -> float:
    """USD for one usage dict in the gateway's normalised form (see providers/openai/parsing.openai_usage and providers/anthropic/parsing.anthropic_usage)."""
    prompt = usage.get("prompt_tokens", 0)
    output = usage.get("completion_tokens", 0) * prices["output"]
    if provider in ("anthropic", "bedrock"):  # Bedrock answers with Claude's own usage fields
        # prompt_tokens includes cache writes and reads, which are billed at their own prices.
        written = usage.get("cache_creation_input_tokens", 0)
        read = usage.get("cache_read_input_tokens", 0)
        fresh = prompt - written - read
        spent = fresh * prices["input"] + written * prices["cache_write"] + read * prices["cache_read"]
    else:
        cached = usage.get("cached_tokens", 0)
        spent = (prompt - cached) * prices["input"] + cached * prices["cached_input"]
    return (spent + output) / PER_TOKENS


def job_cost(provider: str, usage_by_model: dict[str, dict[str, int]]) -> JobCost:
    """Total over the job's models; unknown as soon as one model that used tokens is unpriced."""
    total = 0.0
    unpriced = []
    for model, usage in sorted(usage_by_model.items()):
        prices = model_prices(provider, model)
        if prices is None:
            if any(usage.values()):
                unpriced.append(model)
            continue
        total += usage_cost(provider, prices, usage)
    return JobCost(
        usd=None if unpriced else round(total, 10),
        unpriced_models=unpriced,
        prices_as_of=price_table()["as_of"],
    )
