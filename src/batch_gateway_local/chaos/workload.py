"""The chaos jobs: seeded, mixed providers and sizes, with per-line error markers.

Every custom_id is unique across the whole run (``c<job>-<line>``), so a provider request can be
traced back to its job without the gateway's help (Anthropic batches carry no metadata).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from batch_gateway.models import JobSpec

PROVIDERS = ("openai", "anthropic", "bedrock", "azure-openai")
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "bedrock": "anthropic.claude-3-haiku-20240307-v1:0",
    "azure-openai": "gpt-4o-mini",
}
RETRYABLE_MARKER = "[[emulator:error-500]]"
FAILING_MARKER = "[[emulator:error-400]]"


@dataclass(frozen=True)
class ChaosJob:
    number: int
    spec: JobSpec
    path: Path
    lines: int
    scenario: str


def write_jobs(
    count: int, seed: int, folder: Path, chunk_size: int, scenarios: tuple[str, ...]
) -> list[ChaosJob]:
    """``count`` job files under ``folder``: 1 to 3 chunks of lines each, a few with error markers."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for number in range(count):
        provider = PROVIDERS[number % len(PROVIDERS)]
        lines = rng.randint(1, chunk_size * 3)
        path = folder / f"chaos-{number:03d}.jsonl"
        with path.open("w") as out:
            for line in range(1, lines + 1):
                marker = rng.choices(("", RETRYABLE_MARKER, FAILING_MARKER), weights=(90, 7, 3))[0]
                item = {"custom_id": f"c{number}-{line}", "user_message": f"Classify ticket {line}. {marker}"}
                out.write(json.dumps(item) + "\n")
        spec = JobSpec(provider=provider, model=MODELS[provider])
        jobs.append(ChaosJob(number, spec, path, lines, scenarios[number % len(scenarios)]))
    return jobs
