"""Shared fixtures: files of BatchItems as users write them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest


def write_jsonl(path: Path, rows: Iterable[dict[str, Any] | str]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def make_items() -> Any:
    def make(count: int, prefix: str = "item") -> list[dict[str, Any]]:
        return [
            {
                "custom_id": f"{prefix}-{n:06d}",
                "user_message": f"Classify record {n}: order {n * 7} arrived late.",
            }
            for n in range(1, count + 1)
        ]

    return make
