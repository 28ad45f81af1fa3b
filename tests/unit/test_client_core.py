"""The Python client's request logic: retries with backoff, timeouts, error mapping, keys, signing.

The transport is httpx's ``MockTransport`` (the API's answers are scripted here; the whole client
against the real API runs in tests/integration/test_python_client.py). Sleeps are recorded, not
slept. Both the sync and the async client run the same core, so each behaviour is checked on both.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from batch_gateway_client import AsyncGatewayClient, GatewayClient, GatewayConfig, GatewayError
from batch_gateway_client.core import backoff, idempotency_key_for, job_name

ENDPOINT = "http://127.0.0.1:9/v1"
JOB = {
    "job_id": "batch-0123456789abcdef",
    "provider": "openai",
    "model": "m",
    "status": "pending",
    "created_at": 1.0,
}


def scripted(
    *answers: httpx.Response | Exception,
) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


def sync_client(
    handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float], **kw: Any
) -> GatewayClient:
    return GatewayClient(
        GatewayConfig(ENDPOINT), transport=httpx.MockTransport(handler), sleep=sleeps.append, **kw
    )


def test_429_and_5xx_and_connection_errors_are_retried_with_backoff() -> None:
    handler, seen = scripted(
        httpx.Response(
            429, headers={"Retry-After": "2"}, json={"error": "throttled", "message": "slow down"}
        ),
        httpx.Response(503, json={"error": "unavailable", "message": "later"}),
        httpx.ConnectError("refused"),
        httpx.Response(202, json=JOB),
    )
    sleeps: list[float] = []
    with sync_client(handler, sleeps) as client:
        job = client.submit(
            {"provider": "openai", "model": "m"}, items=[{"custom_id": "a", "user_message": "b"}]
        )
    assert job["job_id"] == JOB["job_id"]
    assert sleeps == [2.0, 1.0, 2.0]  # Retry-After, then 0.5 s doubling by attempt
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(keys) == 1
    assert keys.pop().startswith("items-")
    assert all(r.headers["Authorization"].startswith("AWS4-HMAC-SHA256 ") for r in seen)  # SigV4
    assert all("execute-api" in r.headers["Authorization"] for r in seen)


def test_after_the_last_retry_the_error_is_a_gateway_error() -> None:
    handler, seen = scripted(*[httpx.ReadTimeout("slow")] * 3)
    with sync_client(handler, [], retries=2) as client, pytest.raises(GatewayError) as failed:
        client.job("x")
    assert (failed.value.status, failed.value.code, len(seen)) == (0, "unreachable", 3)
    assert "ReadTimeout" in failed.value.message


def test_client_errors_are_not_retried_and_keep_the_api_details() -> None:
    details = [{"line": 2, "field": "user_message", "reason": "Field required", "custom_id": "b"}]
    handler, seen = scripted(
        httpx.Response(
            422, json={"error": "invalid_items", "message": "1 of 2 item(s) are invalid", "details": details}
        )
    )
    with sync_client(handler, []) as client, pytest.raises(GatewayError) as refused:
        client.submit({"provider": "openai", "model": "m"}, items=[{}])
    error = refused.value
    assert (error.status, error.code, error.bad_lines, len(seen)) == (422, "invalid_items", details, 1)
    assert str(error) == "1 of 2 item(s) are invalid (invalid_items, HTTP 422)"
    assert "line 2 (b): user_message: Field required" in error.describe()


def test_a_non_json_error_body_still_reads() -> None:
    handler, _ = scripted(httpx.Response(403, text="<html>Forbidden</html>"))
    with sync_client(handler, []) as client, pytest.raises(GatewayError) as refused:
        client.job("x")
    assert (refused.value.status, refused.value.code) == (403, "http_error")
    assert "Forbidden" in refused.value.message


def test_every_call_has_a_timeout() -> None:
    handler, seen = scripted(httpx.Response(200, json=JOB))
    with sync_client(handler, [], timeout=7.5) as client:
        client.job("x")
    assert seen[0].extensions["timeout"] == {"connect": 7.5, "read": 7.5, "write": 7.5, "pool": 7.5}


def test_the_async_client_runs_the_same_retries() -> None:
    handler, seen = scripted(
        httpx.Response(502), httpx.ConnectError("refused"), httpx.Response(200, json=JOB)
    )
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    async def main() -> dict[str, Any]:
        transport = httpx.MockTransport(handler)
        async with AsyncGatewayClient(
            GatewayConfig(ENDPOINT), transport=transport, sleep=fake_sleep
        ) as client:
            return await client.job("batch-0123456789abcdef")

    assert asyncio.run(main())["status"] == "pending"
    assert (len(seen), slept) == (3, [0.5, 1.0])


def test_api_keys_replace_sigv4() -> None:
    handler, seen = scripted(httpx.Response(200, json=JOB))
    config = GatewayConfig(ENDPOINT, auth="API_KEY", api_key="k-123")
    with GatewayClient(config, transport=httpx.MockTransport(handler)) as client:
        client.job("x")
    assert seen[0].headers["x-api-key"] == "k-123"
    assert "Authorization" not in seen[0].headers


def test_keys_names_and_backoff() -> None:
    body = {"provider": "openai", "model": "m", "items": [{"custom_id": "a", "user_message": "b"}]}
    assert idempotency_key_for(body) == idempotency_key_for(json.loads(json.dumps(body)))
    assert idempotency_key_for(body) != idempotency_key_for({**body, "name": "other"})
    assert [job_name(s) for s in ("demo", "My file.v2", "...", "x" * 60)] == [
        "demo",
        "My-file-v2",
        "batch",
        "x" * 40,
    ]
    assert [backoff(n) for n in range(8)][-1] == 30.0
    assert backoff(0, "bad") == 0.5


def test_an_estimate_sends_the_submits_body_and_reads_an_estimate() -> None:
    estimate = {"provider": "openai", "model": "m", "accepted": True, "requests": 1, "provider_batches": 1}
    handler, seen = scripted(httpx.Response(202, json=JOB), httpx.Response(200, json=estimate))
    spec = {"provider": "openai", "model": "m", "system_prompt": None, "response_schema": {"type": "object"}}
    items = [{"custom_id": "a", "user_message": "b"}]
    with sync_client(handler, []) as client:
        client.submit(spec, items=items)
        answer = client.estimate(spec, items=items)
    submitted, estimated = seen
    assert (estimated.method, estimated.url.path) == ("POST", "/v1/batches/estimate")
    assert json.loads(estimated.content) == json.loads(submitted.content)  # None values left out
    assert "system_prompt" not in json.loads(estimated.content)
    assert "Idempotency-Key" not in estimated.headers  # an estimate makes nothing to deduplicate
    assert (answer.accepted, answer.requests, answer.provider_batches) == (True, 1, 1)


def test_the_client_imports_without_the_runtime_packages() -> None:
    code = (
        "import sys, batch_gateway_client;"
        "heavy = {'aws_lambda_powertools', 'openai', 'anthropic', 'moto', 'boto3', 'samtranslator'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
