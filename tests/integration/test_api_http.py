"""The HTTP API over HTTP: the `local up` front (api_front) on a free port over the offline stack.

Auth as API Gateway enforces it, routing, size limits, throttling, bad requests, the presigned
download, and a property-based run of schemathesis against openapi.json (no 5xx, nothing that
contradicts the schema).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from batch_gateway_local.api_front.routes import ApiDefinition
from batch_gateway_local.api_front.server import LocalApiServer, api_server_for
from batch_gateway_local.stack.app_files import PROJECT_ROOT, TEMPLATE
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions

SIGNED = (
    "AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST/20261125/us-east-1/execute-api/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0000"
)


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=50)) as local:
        yield local


@pytest.fixture(scope="module")
def server(gateway: LocalGateway) -> Iterator[LocalApiServer]:
    with api_server_for(gateway, port=0) as front:
        yield front


def front(gateway: LocalGateway, **kwargs: Any) -> LocalApiServer:
    assert gateway.stack is not None
    return LocalApiServer(
        ApiDefinition.from_template(TEMPLATE),
        gateway.stack.functions["ApiFunction"],
        gateway.bucket,
        port=0,
        **kwargs,
    )


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, Any, dict[str, str]]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    all_headers = {"Authorization": SIGNED, **({"Content-Type": "application/json"} if data else {})}
    all_headers.update(headers or {})
    request = urllib.request.Request(
        url, data=data, method=method, headers={k: v for k, v in all_headers.items() if v}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers.items())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers.items())


def items(count: int, prefix: str = "h") -> list[dict[str, Any]]:
    return [{"custom_id": f"{prefix}-{n}", "user_message": f"question {n}"} for n in range(1, count + 1)]


# ------------------------------------------------------------------ a whole job over HTTP
def test_submit_follow_fetch_and_cancel_over_http(gateway: LocalGateway, server: LocalApiServer) -> None:
    status, job, headers = http(
        "POST",
        f"{server.url}/batches",
        {"provider": "anthropic", "model": "claude-3-5-haiku-latest", "items": items(3)},
    )
    assert status == 202, job
    assert headers["Location"] == f"{server.url}/batches/{job['job_id']}"
    gateway.wait(job["job_id"], timeout_s=120)

    status, detail, _ = http("GET", job["links"]["self"])
    assert (status, detail["status"], detail["counts"]["succeeded"]) == (200, "completed", 3)
    status, page, _ = http("GET", f"{job['links']['results']}?limit=2")
    assert (status, len(page["results"])) == (200, 2)
    status, rest, _ = http("GET", f"{job['links']['results']}?limit=2&next_token={page['next_token']}")
    assert [r["custom_id"] for r in page["results"] + rest["results"]] == ["h-1", "h-2", "h-3"]
    status, one, _ = http("GET", f"{job['links']['results']}/h-2")
    assert (status, one["line"]) == (200, 2)
    status, link, _ = http("GET", f"{job['links']['results']}?format=url")
    assert link["url"].startswith(f"{server.root}/_local/s3/{gateway.bucket}/results/")
    with urllib.request.urlopen(link["url"], timeout=30) as download:
        lines = [json.loads(line) for line in download.read().splitlines()]
    assert [line["custom_id"] for line in lines] == ["h-1", "h-2", "h-3"]
    status, cancelled, _ = http("POST", job["links"]["cancel"])
    assert (status, cancelled["status"]) == (202, "completed")  # a finished job stays as it is


def test_an_idempotent_retry_over_http_whatever_the_header_case(
    gateway: LocalGateway, server: LocalApiServer
) -> None:
    body = {"provider": "openai", "model": "gpt-4o-mini", "items": items(2, "retry")}
    first = http("POST", f"{server.url}/batches", body, headers={"Idempotency-Key": "http-retry-1"})
    again = http("POST", f"{server.url}/batches", body, headers={"idempotency-key": "http-retry-1"})
    assert (first[0], again[0]) == (202, 202)
    assert again[1]["job_id"] == first[1]["job_id"]
    assert again[2]["Idempotent-Replayed"] == "true"
    key = first[1]["source"].split("/", 3)[3]
    versions = boto3.client("s3").list_object_versions(Bucket=gateway.bucket, Prefix=key)["Versions"]
    assert len(versions) == 1  # one upload, so one job


def test_jobs_are_listed_and_paged_over_http(server: LocalApiServer) -> None:
    for n in range(3):
        http(
            "POST",
            f"{server.url}/batches",
            {"provider": "openai", "model": "m", "items": items(1, f"list{n}")},
        )
    status, first, _ = http("GET", f"{server.url}/batches?limit=2")
    assert (status, len(first["jobs"])) == (200, 2)
    status, second, _ = http("GET", f"{server.url}/batches?limit=2&next_token={first['next_token']}")
    assert status == 200
    assert not {j["job_id"] for j in first["jobs"]} & {j["job_id"] for j in second["jobs"]}


# ------------------------------------------------------------------ auth, as API Gateway enforces it
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_authentication_token"),
        ("Bearer abc", "incomplete_signature"),
        ("AWS4-HMAC-SHA256 Signature=abc", "incomplete_signature"),
    ],
)
def test_iam_mode_refuses_unsigned_requests(
    server: LocalApiServer, authorization: str | None, code: str
) -> None:
    status, body, _ = http("GET", f"{server.url}/batches", headers={"Authorization": authorization or ""})
    assert (status, body["error"]) == (403, code)
    assert body["message"]


def test_api_key_mode_wants_the_key(gateway: LocalGateway) -> None:
    with front(gateway, auth="API_KEY", api_key="local-test-key") as keyed:
        for headers in ({}, {"x-api-key": "wrong"}, {"Authorization": SIGNED}):
            status, body, _ = http("GET", f"{keyed.url}/batches", headers={"Authorization": "", **headers})
            assert (status, body["error"], body["message"]) == (403, "invalid_api_key", "Forbidden")
        status, body, _ = http(
            "GET", f"{keyed.url}/batches", headers={"Authorization": "", "x-api-key": "local-test-key"}
        )
        assert status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/nothing"), ("DELETE", "/v1/batches"), ("GET", "/batches"), ("PUT", "/v1/batches/x/cancel")],
)
def test_an_unknown_route_is_refused_like_api_gateway(server: LocalApiServer, method: str, path: str) -> None:
    status, body, _ = http(method, f"{server.root}{path}")
    assert (status, body["error"], body["message"]) == (
        403,
        "missing_authentication_token",
        "Missing Authentication Token",
    )


def test_throttling_answers_429_with_retry_after(gateway: LocalGateway) -> None:
    with front(gateway, throttle=(0.01, 2)) as throttled:
        answers = [http("GET", f"{throttled.url}/batches?limit=1") for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 429]
    assert answers[2][1]["error"] == "throttled"
    assert answers[2][2]["Retry-After"] == "1"


# ------------------------------------------------------------------ bad requests
def test_a_body_over_api_gateways_10_mb_is_refused_at_the_front(server: LocalApiServer) -> None:
    status, body, _ = http("POST", f"{server.url}/batches", raw=b"x" * (10 * 1024 * 1024 + 1))
    assert (status, body["error"]) == (413, "payload_too_large")


def test_a_body_over_5_mb_is_refused_by_the_handler(server: LocalApiServer) -> None:
    big = {
        "provider": "openai",
        "model": "m",
        "items": [{"custom_id": "a", "user_message": "x" * (6 * 1024 * 1024)}],
    }
    status, body, _ = http("POST", f"{server.url}/batches", big)
    assert (status, body["error"]) == (413, "payload_too_large")


def test_too_many_items_is_a_413(server: LocalApiServer) -> None:
    status, body, _ = http(
        "POST", f"{server.url}/batches", {"provider": "openai", "model": "m", "items": items(5001)}
    )
    assert (status, body["error"]) == (413, "payload_too_large")


def test_malformed_json_is_a_400(server: LocalApiServer) -> None:
    status, body, _ = http("POST", f"{server.url}/batches", raw=b'{"provider": ')
    assert (status, body["error"]) == (400, "malformed_json")


def test_invalid_items_are_a_422_with_line_details(server: LocalApiServer) -> None:
    bad = {
        "provider": "openai",
        "model": "m",
        "items": [{"custom_id": "a", "user_message": "x", "max_tokens": 0}],
    }
    status, body, _ = http("POST", f"{server.url}/batches", bad)
    assert (status, body["error"]) == (422, "invalid_items")
    assert body["details"] == [
        {
            "line": 1,
            "field": "max_tokens",
            "reason": "'max_tokens': Input should be greater than 0 (got 0): use a whole number greater than 0",
            "custom_id": "a",
        }
    ]


def test_an_unknown_job_is_a_404(server: LocalApiServer) -> None:
    for method, suffix in (("GET", ""), ("GET", "/results"), ("GET", "/results/x"), ("POST", "/cancel")):
        status, body, _ = http(method, f"{server.url}/batches/no-such-job{suffix}")
        assert (status, body["error"]) == (404, "not_found"), suffix


@pytest.mark.parametrize("token", ["garbage", "eyJ2IjoxfQ", "e30"])
def test_a_bad_pagination_token_is_a_400(server: LocalApiServer, token: str) -> None:
    status, body, _ = http("GET", f"{server.url}/batches?next_token={token}")
    assert (status, body["error"]) == (400, "invalid_next_token")


# ------------------------------------------------------------------ README curl examples
def _readme_curl_blocks() -> list[str]:
    """The curl examples of the HTTP API page (moved there from the README), in their order."""
    section = (PROJECT_ROOT / "docs" / "http-api-and-cli.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [block for block in blocks if "curl " in block]


def test_the_readme_curl_examples_work_against_local_up(
    gateway: LocalGateway, server: LocalApiServer, tmp_path: Path
) -> None:
    blocks = _readme_curl_blocks()
    assert blocks, "README's HTTP API section has no curl examples"
    env = {**os.environ, "API": server.url, "SIG": SIGNED}
    script = "set -euo pipefail\n" + "\n".join(blocks)
    (tmp_path / "tickets.jsonl").write_text((PROJECT_ROOT / "samples" / "demo.jsonl").read_text())
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


# ------------------------------------------------------------------ property-based: schemathesis
# Loaded at import (schemathesis.pytest.from_fixture does not work with pytest 9); the base URL of the
# running front is given per call.
schema = schemathesis.openapi.from_path(PROJECT_ROOT / "openapi.json")


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_and_no_answer_contradicts_openapi(case: Any, server: LocalApiServer) -> None:
    case.call_and_validate(
        base_url=server.url,
        headers={"Authorization": SIGNED},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        timeout=60,
    )
