"""The input-token estimator against the provider's count, on bench/workload.py's lines.

Every workload line becomes the OpenAI and the Anthropic request the gateway sends (the request
builders), is estimated as the quota ledger estimates it (``providers.token_estimate``) and is
counted as the emulator counts it (``emulator/tokens.py``: a tokenizer-like rule of its own, not the
estimator's), line by line and over the whole workload. Goal (issue 16): the provider's count within
15 % below the estimate, never more than 10 % above it.
"""

from __future__ import annotations

import json
import random
from typing import Any

import workload

from batch_gateway.models import BatchItem, JobSpec
from batch_gateway.providers.requests import encode_request_line, request_builder_for
from batch_gateway.providers.token_estimate import estimate_request_line
from batch_gateway_local.emulator.tokens import chat_prompt_tokens, messages_input_tokens


def run(count: int = 20_000) -> dict[str, Any]:
    rng = random.Random(7)
    items = [BatchItem.model_validate(workload.item(rng, n)) for n in range(1, count + 1)]
    rows: dict[str, Any] = {}
    for provider, counted in (("openai", chat_prompt_tokens), ("anthropic", messages_input_tokens)):
        spec = JobSpec(provider=provider, model="m", system_prompt=workload.SYSTEM_PROMPT)
        builder = request_builder_for(provider)
        estimated = actual = 0
        ratios = []
        for n, item in enumerate(items, start=1):
            request = builder.build_request(builder.provider_custom_id(item.custom_id, n), item, spec)
            guess = estimate_request_line(encode_request_line(request), provider)
            real = counted(request.get("body") or request.get("params") or {})
            estimated, actual = estimated + guess, actual + real
            ratios.append(real / guess)
        rows[provider] = {
            "lines": count,
            "estimated_tokens": estimated,
            "provider_tokens": actual,
            "ratio": round(actual / estimated, 3),
            "line_ratio_min": round(min(ratios), 3),
            "line_ratio_max": round(max(ratios), 3),
            "goal_met": 0.85 <= actual / estimated <= 1.10,
        }
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
