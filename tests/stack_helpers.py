"""Driving the deployed offline stack's functions the way AWS would: real-shaped events, Lambda Invoke."""

from __future__ import annotations

import json
from typing import Any

import boto3

from batch_gateway_local.stack.local_gateway import PROJECT_ROOT, LocalGateway

EVENTS = PROJECT_ROOT / "events"


def event(name: str, **replacements: str) -> dict[str, Any]:
    """A sample event from events/, with its placeholders (BUCKET, JOB, …) filled in."""
    text = (EVENTS / name).read_text()
    for placeholder, value in replacements.items():
        text = text.replace(placeholder, value)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def invoke(gateway: LocalGateway, logical_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Invoke a function of the template by logical id; fails the test on a function error."""
    assert gateway.stack is not None
    response = boto3.client("lambda").invoke(
        FunctionName=gateway.stack.functions[logical_id], Payload=json.dumps(payload).encode()
    )
    body: dict[str, Any] = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body
