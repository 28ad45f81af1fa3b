"""Shared fixtures: files of BatchItems as users write them, and moto's in-process AWS."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws


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


# ------------------------------------------------------------------ moto's AWS, in this process
@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and a region for boto3 that reach no AWS account (moto answers)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def mocked_aws(fake_aws_env: None) -> Iterator[None]:
    """moto's AWS (S3, DynamoDB, ...) for the test, empty at the start."""
    with mock_aws():
        yield


def create_table(name: str, hash_key: str, range_key: str | None = None) -> None:
    """An on-demand DynamoDB table with string keys, as template.yaml declares the gateway's tables."""
    keys = [(hash_key, "HASH"), *([(range_key, "RANGE")] if range_key else [])]
    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key, _ in keys],
        KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in keys],
    )
