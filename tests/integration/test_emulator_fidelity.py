"""The emulator where it used to differ from the real APIs, checked over plain HTTP (no SDK in between).

Status codes, error shapes and which result file a line lands in are what the real services answer
(OpenAI's OpenAPI spec and SDK types, Anthropic's API reference, public reports of live behaviour):
non-2xx lines in OpenAI's error file, a malformed upload line failing the batch rather than the upload,
404 for an unknown input file, Anthropic's required ``anthropic-version`` header, ``order`` checked on
file lists, and ``/v1/embeddings`` batches answered with deterministic vectors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from batch_gateway_local.emulator import MARKER_ERROR_400, EmulatorServer
from batch_gateway_local.emulator.tokens import count_tokens

GPT = "gpt-4o-mini"
BEARER = {"Authorization": "Bearer test-key"}


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(polls_to_complete=1) as server:
        yield server


@pytest.fixture(scope="module")
def http(emu: EmulatorServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=emu.base_url, timeout=10) as client:
        yield client


def chat_line(custom_id: str, text: str) -> dict[str, Any]:
    body = {"model": GPT, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def upload(http: httpx2.Client, data: bytes) -> str:
    reply = http.post(
        "/v1/files", headers=BEARER, data={"purpose": "batch"}, files={"file": ("in.jsonl", data)}
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["id"])


def create(http: httpx2.Client, file_id: str, endpoint: str = "/v1/chat/completions") -> httpx2.Response:
    body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"}
    return http.post("/v1/batches", headers=BEARER, json=body)


def run(http: httpx2.Client, lines: list[bytes], endpoint: str = "/v1/chat/completions") -> dict[str, Any]:
    """Upload, create and poll a batch to its end: the final batch object."""
    reply = create(http, upload(http, b"\n".join(lines) + b"\n"), endpoint)
    assert reply.status_code == 200, reply.text
    batch_id = reply.json()["id"]
    for _ in range(5):
        batch: dict[str, Any] = http.get(f"/v1/batches/{batch_id}", headers=BEARER).json()
        if batch["status"] in ("completed", "failed"):
            return batch
    raise AssertionError("the batch did not end")


def file_lines(http: httpx2.Client, file_id: str | None) -> list[dict[str, Any]]:
    if not file_id:
        return []
    text = http.get(f"/v1/files/{file_id}/content", headers=BEARER).text
    return [json.loads(line) for line in text.splitlines()]


def test_non_2xx_lines_go_to_the_error_file(http: httpx2.Client) -> None:
    batch = run(
        http,
        [
            json.dumps(chat_line(cid, text)).encode()
            for cid, text in [("ok", "hi"), ("bad", MARKER_ERROR_400)]
        ],
    )
    output, errors = file_lines(http, batch["output_file_id"]), file_lines(http, batch["error_file_id"])
    assert [(r["custom_id"], r["response"]["status_code"]) for r in output] == [("ok", 200)]
    assert [(r["custom_id"], r["response"]["status_code"]) for r in errors] == [("bad", 400)]
    assert errors[0]["error"] is None  # a non-2xx response, not a batch-level error such as batch_expired
    assert batch["request_counts"] == {"total": 2, "completed": 1, "failed": 1}


def test_a_malformed_line_is_accepted_at_upload_and_fails_the_batch(http: httpx2.Client) -> None:
    good = json.dumps(chat_line("a", "hello")).encode()
    batch = run(http, [good, b'{"custom_id": "b", not json', good.replace(b'"a"', b'"c"')])
    assert batch["status"] == "failed"
    assert batch["output_file_id"] is None
    assert [(e["code"], e["line"]) for e in batch["errors"]["data"]] == [("invalid_json_line", 2)]
    assert batch["errors"]["data"][0]["message"]


def test_an_unknown_input_file_is_404(http: httpx2.Client) -> None:
    reply = create(http, "file-doesnotexist")
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "file-doesnotexist" in error["message"]


def test_file_list_order_must_be_asc_or_desc(http: httpx2.Client) -> None:
    for order in ("asc", "desc"):
        assert http.get("/v1/files", headers=BEARER, params={"order": order}).status_code == 200
    reply = http.get("/v1/files", headers=BEARER, params={"order": "newest"})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "order"


def test_anthropic_requires_the_version_header(emu: EmulatorServer, http: httpx2.Client) -> None:
    key = {"x-api-key": "test-key"}
    reply = http.get("/v1/messages/batches", headers=key)
    assert reply.status_code == 400
    body = reply.json()
    assert body["type"] == "error"
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }
    assert (
        http.get("/v1/messages/batches", headers={**key, "anthropic-version": "2023-06-01"}).status_code
        == 200
    )


def test_embeddings_batches_answer_each_line_with_a_vector(http: httpx2.Client) -> None:
    def line(custom_id: str, text: str, **extra: Any) -> bytes:
        body = {"model": "text-embedding-3-small", "input": text, **extra}
        return json.dumps(
            {"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings", "body": body}
        ).encode()

    batch = run(
        http,
        [
            line("a", "the cat sat"),
            line("b", "the dog ran"),
            line("c", "the cat sat", dimensions=8),
            line("d", ""),
        ],
        "/v1/embeddings",
    )
    assert batch["status"] == "completed"
    assert batch["endpoint"] == "/v1/embeddings"
    by_id = {r["custom_id"]: r["response"] for r in file_lines(http, batch["output_file_id"])}
    vectors = {cid: response["body"]["data"][0]["embedding"] for cid, response in by_id.items()}
    assert len(vectors["a"]) == 1536
    assert len(vectors["c"]) == 8
    assert math.isclose(sum(v * v for v in vectors["a"]), 1.0, rel_tol=1e-3)  # unit length, as OpenAI's
    assert vectors["a"] != vectors["b"]
    assert by_id["a"]["body"]["object"] == "list"
    assert by_id["a"]["body"]["usage"] == {"prompt_tokens": count_tokens("the cat sat"), "total_tokens": 3}
    # the same input gives the same vector, batch after batch
    again = run(http, [line("a", "the cat sat")], "/v1/embeddings")
    assert (
        file_lines(http, again["output_file_id"])[0]["response"]["body"]["data"][0]["embedding"]
        == vectors["a"]
    )
    errors = file_lines(http, batch["error_file_id"])
    assert [(r["custom_id"], r["response"]["status_code"]) for r in errors] == [("d", 400)]


def test_a_line_url_must_match_the_embeddings_endpoint(http: httpx2.Client) -> None:
    batch = run(http, [json.dumps(chat_line("a", "hi")).encode()], "/v1/embeddings")
    assert batch["status"] == "failed"
    assert [e["code"] for e in batch["errors"]["data"]] == ["mismatched_endpoint"]
