"""The providers through the real openai/anthropic SDKs, against in-process fake APIs (httpx2 MockTransport).

Covers what the pure tests cannot: the exact SDK calls, streamed downloads (and their resumption after a
broken connection, without duplicates), error wrapping into readable ProviderErrors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from batch_gateway.models import BatchItem, BatchStatus, JobSpec
from batch_gateway.providers.anthropic.batch import AnthropicBatchProvider
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.openai.batch import OpenAIBatchProvider, trim_metadata
from batch_gateway.providers.requests import encode_request_line
from batch_gateway.providers.streaming import resumable_lines

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "provider_lines"
Handler = Callable[[httpx2.Request], httpx2.Response]


class BreakingStream(httpx2.SyncByteStream):
    """Sends ``data`` in small chunks; raises ReadError after ``break_after`` bytes (if set)."""

    def __init__(self, data: bytes, break_after: int | None = None, chunk: int = 97) -> None:
        self.data, self.break_after, self.chunk = data, break_after, chunk

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.chunk):
            if self.break_after is not None and start >= self.break_after:
                raise httpx2.ReadError("peer closed connection without sending complete message body")
            yield self.data[start : start + self.chunk]


def json_response(status: int, body: Any) -> httpx2.Response:
    return httpx2.Response(status, json=body)


def no_sleep(_: float) -> None:
    return None


# ------------------------------------------------------------------------------------------- fake OpenAI


class FakeOpenAI:
    def __init__(self) -> None:
        self.batch: dict[str, Any] = {}
        self.files: dict[str, bytes] = {
            "file-out": (FIXTURES / "openai_output.jsonl").read_bytes(),
            "file-err": (FIXTURES / "openai_errors.jsonl").read_bytes(),
        }
        self.breaks: dict[str, list[int | None]] = {}  # file id -> break points of successive downloads
        self.downloads: list[str] = []
        self.uploaded: bytes = b""
        self.deleted: list[str] = []
        self.create_error: httpx2.Response | None = None
        self.create_body: dict[str, Any] = {}

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path, method = request.url.path, request.method
        if method == "POST" and path == "/v1/files":
            self.uploaded = request.content
            return json_response(
                200,
                {
                    "id": "file-in",
                    "object": "file",
                    "bytes": len(request.content),
                    "created_at": 1,
                    "filename": "chunk.jsonl",
                    "purpose": "batch",
                    "status": "processed",
                },
            )
        if method == "DELETE" and path.startswith("/v1/files/"):
            self.deleted.append(path.rsplit("/", 1)[1])
            return json_response(200, {"id": self.deleted[-1], "object": "file", "deleted": True})
        if method == "POST" and path == "/v1/batches":
            self.create_body = json.loads(request.content)
            if self.create_error is not None:
                return self.create_error
            self.batch = {
                "id": "batch_1",
                "object": "batch",
                "endpoint": self.create_body["endpoint"],
                "input_file_id": self.create_body["input_file_id"],
                "completion_window": "24h",
                "status": "validating",
                "created_at": 1,
                "metadata": self.create_body.get("metadata"),
                "output_file_id": None,
                "error_file_id": None,
                "errors": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
            }
            return json_response(200, self.batch)
        if method == "GET" and path == "/v1/batches/batch_1":
            return json_response(200, self.batch)
        if method == "POST" and path == "/v1/batches/batch_1/cancel":
            self.batch["status"] = "cancelling"
            return json_response(200, self.batch)
        if method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            file_id = path.split("/")[3]
            self.downloads.append(file_id)
            breaks = self.breaks.get(file_id) or [None]
            break_after = breaks.pop(0)
            return httpx2.Response(
                200,
                headers={"content-type": "application/octet-stream"},
                stream=BreakingStream(self.files[file_id], break_after),
            )
        return json_response(
            404,
            {
                "error": {
                    "message": f"no route {method} {path}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        )

    def provider(self, max_retries: int = 0) -> OpenAIBatchProvider:
        client = openai.OpenAI(
            api_key="sk-test",
            base_url="http://openai.test/v1",
            max_retries=max_retries,
            http_client=httpx2.Client(transport=httpx2.MockTransport(self.handle)),
        )
        return OpenAIBatchProvider("sk-test", client=client, max_retries=3, sleep=no_sleep)


def write_requests(
    tmp_path: Path, provider: OpenAIBatchProvider | AnthropicBatchProvider, spec: JobSpec
) -> Path:
    path = tmp_path / "chunk-0001.jsonl"
    with path.open("wb") as fh:
        for line in range(1, 4):
            item = BatchItem(custom_id=f"q.{line}", user_message=f"question {line}")
            fh.write(
                encode_request_line(
                    provider.build_request(provider.provider_custom_id(item.custom_id, line), item, spec)
                )
            )
    return path


OPENAI_SPEC = JobSpec(provider="openai", model="gpt-4o-mini")
ANTHROPIC_SPEC = JobSpec(provider="anthropic", model="claude-haiku-4-5")
# The custom ids the fixture batch's result files yield (output file first, then error file).
FIXTURE_IDS = [
    "plain",
    "tools",
    "fenced",
    "too-long",
    "server-error",
    "cut-off",
    "refused",
    "late-1",
    "stopped-1",
    "rate-limited",
]


def ended_batch(status: str, error_file_id: str | None) -> dict[str, Any]:
    """An OpenAI Batch object that ended with the fixture output file (and this error file)."""
    return {
        "id": "batch_1",
        "object": "batch",
        "status": status,
        "output_file_id": "file-out",
        "error_file_id": error_file_id,
        "endpoint": "/v1/chat/completions",
        "input_file_id": "f",
        "completion_window": "24h",
        "created_at": 1,
    }


def test_openai_submit_uploads_file_and_creates_batch(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    provider = fake.provider()
    path = write_requests(tmp_path, provider, OPENAI_SPEC)
    metadata = {f"key{n}": "v" * 600 for n in range(20)}
    submitted = provider.submit(path, OPENAI_SPEC, metadata)
    assert submitted.provider_batch_id == "batch_1"
    assert submitted.status is BatchStatus.PENDING
    assert path.read_bytes() in fake.uploaded  # multipart body carries the file unchanged
    assert b'name="purpose"' in fake.uploaded
    assert fake.create_body["endpoint"] == "/v1/chat/completions"
    assert fake.create_body["completion_window"] == "24h"
    assert fake.create_body["input_file_id"] == "file-in"
    sent = fake.create_body["metadata"]
    assert len(sent) == 16
    assert all(len(v) == 512 for v in sent.values())


def test_trim_metadata() -> None:
    assert trim_metadata({"k" * 70: "v"}) == {"k" * 64: "v"}
    assert trim_metadata({"job": "j1", "chunk": "3"}) == {"job": "j1", "chunk": "3"}


def test_openai_rejected_batch_is_readable_and_cleans_up(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    fake.create_error = json_response(
        400,
        {
            "error": {
                "message": "The input file could not be found.",
                "type": "invalid_request_error",
                "param": "input_file_id",
                "code": "invalid_file",
            }
        },
    )
    provider = fake.provider()
    path = write_requests(tmp_path, provider, OPENAI_SPEC)
    with pytest.raises(ProviderError) as caught:
        provider.submit(path, OPENAI_SPEC, {})
    assert str(caught.value) == "OpenAI rejected the batch: The input file could not be found. (HTTP 400)"
    assert fake.deleted == ["file-in"]


def test_openai_connection_error_is_readable(tmp_path: Path) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("[Errno 111] Connection refused")

    client = openai.OpenAI(
        api_key="k",
        base_url="http://openai.test/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(refuse)),
    )
    provider = OpenAIBatchProvider("k", client=client)
    with pytest.raises(ProviderError) as caught:
        provider.poll("batch_1")
    assert str(caught.value) == (
        "Could not reach OpenAI for the status request for batch batch_1: Connection error. "
        "([Errno 111] Connection refused)"
    )


def test_openai_poll_cancel_and_results_from_both_files(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    provider = fake.provider()
    provider.submit(write_requests(tmp_path, provider, OPENAI_SPEC), OPENAI_SPEC, {})
    assert provider.poll("batch_1").status is BatchStatus.PENDING
    with pytest.raises(ProviderError, match="still validating"):
        list(provider.iter_results("batch_1"))
    assert provider.cancel("batch_1").status is BatchStatus.CANCELLING

    fake.batch.update(
        status="completed",
        output_file_id="file-out",
        error_file_id="file-err",
        request_counts={"total": 10, "completed": 6, "failed": 4},
    )
    progress = provider.poll("batch_1")
    assert progress.status is BatchStatus.COMPLETED
    assert progress.request_counts == {"total": 10, "completed": 6, "failed": 4}
    results = list(provider.iter_results("batch_1"))
    assert [r.provider_custom_id for r in results] == FIXTURE_IDS
    assert [r.outcome for r in results].count("succeeded") == 5
    assert results[7].outcome == "expired"
    assert results[8].outcome == "cancelled"
    assert fake.downloads == ["file-out", "file-err"]


@pytest.mark.parametrize("empty", [None, ""])
def test_openai_missing_files_are_skipped(empty: str | None) -> None:
    fake = FakeOpenAI()
    fake.batch = ended_batch("expired", empty)
    results = list(fake.provider().iter_results("batch_1"))
    assert len(results) == 7
    assert fake.downloads == ["file-out"]


def test_openai_retention_deletes_each_batch_file_and_skips_batches_gone(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    provider = fake.provider()
    provider.submit(write_requests(tmp_path, provider, OPENAI_SPEC), OPENAI_SPEC, {"job": "j1"})
    fake.batch.update(status="completed", output_file_id="file-out", error_file_id="")

    provider.delete_batch_data(["batch_1", "batch_gone"])

    assert sorted(fake.deleted) == ["file-in", "file-out"]  # no error file was written


def test_openai_broken_download_resumes_without_duplicates() -> None:
    fake = FakeOpenAI()
    fake.batch = ended_batch("completed", "file-err")
    size = len(fake.files["file-out"])
    fake.breaks["file-out"] = [size // 3, 2 * size // 3, None]  # breaks twice, then succeeds
    ids = [r.provider_custom_id for r in fake.provider().iter_results("batch_1")]
    assert ids == FIXTURE_IDS
    assert fake.downloads == ["file-out", "file-out", "file-out", "file-err"]


def test_openai_download_that_keeps_breaking_gives_up_readably() -> None:
    fake = FakeOpenAI()
    fake.batch = {
        "id": "batch_1",
        "object": "batch",
        "status": "completed",
        "output_file_id": "file-out",
        "endpoint": "/v1/chat/completions",
        "input_file_id": "f",
        "completion_window": "24h",
        "created_at": 1,
    }
    fake.breaks["file-out"] = [0] * 10
    with pytest.raises(ProviderError) as caught:
        list(fake.provider().iter_results("batch_1"))
    assert str(caught.value) == (
        "Downloading OpenAI output file file-out of batch batch_1 failed 4 times in a row after 0 lines; "
        "last error: peer closed connection without sending complete message body"
    )


# ---------------------------------------------------------------------------------------- fake Anthropic


class FakeAnthropic:
    def __init__(self) -> None:
        self.batch: dict[str, Any] = {}
        self.results = (FIXTURES / "anthropic_results.jsonl").read_bytes()
        self.breaks: list[int | None] = []
        self.downloads = 0
        self.created: dict[str, Any] = {}
        self.create_error: httpx2.Response | None = None
        self.deleted: list[str] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path, method = request.url.path, request.method
        if method == "POST" and path == "/v1/messages/batches":
            if self.create_error is not None:
                return self.create_error
            self.created = json.loads(request.content)
            self.batch = {
                "id": "msgbatch_01",
                "type": "message_batch",
                "processing_status": "in_progress",
                "request_counts": {
                    "processing": len(self.created["requests"]),
                    "succeeded": 0,
                    "errored": 0,
                    "canceled": 0,
                    "expired": 0,
                },
                "created_at": "2025-06-01T09:00:00Z",
                "expires_at": "2025-06-02T09:00:00Z",
                "ended_at": None,
                "cancel_initiated_at": None,
                "archived_at": None,
                "results_url": None,
            }
            return json_response(200, self.batch)
        if method == "GET" and path == "/v1/messages/batches/msgbatch_01":
            return json_response(200, self.batch)
        if method == "POST" and path == "/v1/messages/batches/msgbatch_01/cancel":
            self.batch.update(processing_status="canceling", cancel_initiated_at="2025-06-01T10:00:00Z")
            return json_response(200, self.batch)
        if method == "DELETE" and path == "/v1/messages/batches/msgbatch_01":
            self.deleted.append("msgbatch_01")
            return json_response(200, {"id": "msgbatch_01", "type": "message_batch_deleted"})
        if method == "GET" and path == "/v1/messages/batches/msgbatch_01/results":
            self.downloads += 1
            break_after = self.breaks.pop(0) if self.breaks else None
            return httpx2.Response(
                200,
                headers={"content-type": "application/binary"},
                stream=BreakingStream(self.results, break_after),
            )
        return json_response(
            404,
            {"type": "error", "error": {"type": "not_found_error", "message": f"no route {method} {path}"}},
        )

    def end(self) -> None:
        self.batch.update(
            processing_status="ended",
            ended_at="2025-06-01T11:00:00Z",
            results_url="http://anthropic.test/v1/messages/batches/msgbatch_01/results",
            request_counts={"processing": 0, "succeeded": 3, "errored": 1, "canceled": 1, "expired": 1},
        )

    def provider(self) -> AnthropicBatchProvider:
        client = anthropic.Anthropic(
            api_key="sk-ant-test",
            base_url="http://anthropic.test",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(self.handle)),
        )
        return AnthropicBatchProvider("sk-ant-test", client=client, max_retries=3, sleep=no_sleep)


def test_anthropic_submit_poll_cancel_results(tmp_path: Path) -> None:
    fake = FakeAnthropic()
    provider = fake.provider()
    path = write_requests(tmp_path, provider, ANTHROPIC_SPEC)
    submitted = provider.submit(path, ANTHROPIC_SPEC, {"job": "j1"})
    assert submitted.provider_batch_id == "msgbatch_01"
    assert submitted.status is BatchStatus.IN_PROGRESS
    assert fake.created["requests"] == [json.loads(line) for line in path.read_text().splitlines()]
    assert fake.created["requests"][0]["custom_id"] == "bg-1"

    with pytest.raises(ProviderError, match="Has it finished processing"):
        list(provider.iter_results("msgbatch_01"))

    cancelling = provider.cancel("msgbatch_01")
    assert cancelling.status is BatchStatus.CANCELLING
    fake.end()
    progress = provider.poll("msgbatch_01")
    assert progress.status is BatchStatus.CANCELLED  # cancel initiated and requests canceled
    assert progress.request_counts["canceled"] == 1

    results = list(provider.iter_results("msgbatch_01"))
    assert [(r.provider_custom_id, r.outcome) for r in results] == [
        ("my-second-request", "succeeded"),
        ("my-first-request", "errored"),
        ("bg-3", "cancelled"),
        ("bg-4", "expired"),
        ("thinker", "succeeded"),
        ("cited", "succeeded"),
    ]
    assert results[0].raw == json.loads((FIXTURES / "anthropic_results.jsonl").read_text().splitlines()[0])


def test_anthropic_retention_deletes_the_batches_and_skips_those_gone() -> None:
    fake = FakeAnthropic()
    fake.provider().delete_batch_data(["msgbatch_01", "msgbatch_gone"])
    assert fake.deleted == ["msgbatch_01"]


def test_anthropic_broken_results_download_resumes_without_duplicates() -> None:
    fake = FakeAnthropic()
    fake.batch = {
        "id": "msgbatch_01",
        "type": "message_batch",
        "processing_status": "ended",
        "created_at": "2025-06-01T09:00:00Z",
        "expires_at": "2025-06-02T09:00:00Z",
    }
    fake.end()
    fake.breaks = [len(fake.results) // 2, None]
    ids = [r.provider_custom_id for r in fake.provider().iter_results("msgbatch_01")]
    assert ids == ["my-second-request", "my-first-request", "bg-3", "bg-4", "thinker", "cited"]
    assert fake.downloads == 2


def test_anthropic_rejected_batch_is_readable(tmp_path: Path) -> None:
    fake = FakeAnthropic()
    fake.create_error = json_response(
        400,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "requests.0.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
            },
            "request_id": "req_011",
        },
    )
    provider = fake.provider()
    with pytest.raises(ProviderError) as caught:
        provider.submit(write_requests(tmp_path, provider, ANTHROPIC_SPEC), ANTHROPIC_SPEC, {})
    assert str(caught.value) == (
        "Anthropic rejected the batch: requests.0.custom_id: String should match pattern "
        "'^[a-zA-Z0-9_-]{1,64}$' (HTTP 400)"
    )


# ------------------------------------------------------------------------------------------- resumable_lines


def test_resumable_lines_skips_blank_lines_and_resets_failures_on_progress() -> None:
    attempts: list[int] = []
    content = ["a", "", "b", "c", "d"]

    @contextmanager
    def open_lines() -> Iterator[Iterator[str]]:
        attempts.append(1)
        number = len(attempts)

        def gen() -> Iterator[str]:
            for index, line in enumerate(content):
                if number < 4 and index == number + 1:  # each attempt gets one line further
                    raise httpx2.ReadError("broken")
                yield line

        yield gen()

    got = list(
        resumable_lines(open_lines, what="x", retryable=(httpx2.ReadError,), attempts=2, sleep=no_sleep)
    )
    assert got == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
    assert len(attempts) == 4


def test_resumable_lines_does_not_retry_other_errors() -> None:
    @contextmanager
    def open_lines() -> Iterator[Iterator[str]]:
        raise ValueError("not a network problem")
        yield iter(())  # pragma: no cover

    with pytest.raises(ValueError, match="not a network problem"):
        list(resumable_lines(open_lines, what="x", retryable=(httpx2.ReadError,), sleep=no_sleep))
