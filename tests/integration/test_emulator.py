"""The provider emulator driven by the real `openai` and `anthropic` clients."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from batch_gateway_local.emulator import (
    BUILTIN_SCENARIOS,
    ENQUEUED_LIMIT_MESSAGE,
    MARKER_ERROR_400,
    MARKER_ERROR_500,
    MARKER_TOOL,
    STALLED_POLLS,
    EmulatorServer,
    Limits,
    PollAction,
    PollContext,
    Scenario,
    emulated_answer,
    estimate_tokens,
    register_scenario,
    scenario_names,
)
from batch_gateway_local.emulator.tokens import REPLY_PRIMING, TOKENS_PER_MESSAGE

GPT = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-5"
WEATHER_TOOL_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}


class ExpireOnSecondPoll(Scenario):
    """Test scenario: the second retrieve expires the batch (after half the requests finished)."""

    name = "test-expire-on-second-poll"

    def on_poll(self, context: PollContext) -> PollAction:
        return PollAction.EXPIRE if context.poll == 2 else PollAction.ADVANCE


register_scenario(ExpireOnSecondPoll.name, ExpireOnSecondPoll)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(polls_to_complete=2) as server:
        yield server


@pytest.fixture(scope="module")
def oai(emulator: EmulatorServer) -> openai.OpenAI:
    return openai.OpenAI(api_key="test-key", base_url=emulator.openai_base_url, max_retries=0)


@pytest.fixture(scope="module")
def claude(emulator: EmulatorServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test-key", base_url=emulator.anthropic_base_url, max_retries=0)


# ---------------------------------------------------------------- helpers


def oai_line(
    custom_id: str, text: str, *, model: str = GPT, system: str | None = None, **body: Any
) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": messages, **body},
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(line) for line in lines).encode() + b"\n"


def upload_and_create(
    client: openai.OpenAI, lines: list[dict[str, Any]], **kwargs: Any
) -> openai.types.Batch:
    uploaded = client.files.create(file=("requests.jsonl", jsonl(lines)), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", **kwargs
    )


def poll_openai(client: openai.OpenAI, batch_id: str) -> tuple[openai.types.Batch, list[str]]:
    statuses: list[str] = []
    for _ in range(20):
        batch = client.batches.retrieve(batch_id)
        statuses.append(batch.status)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch, statuses
    raise AssertionError(f"batch never finished: {statuses}")


def read_lines(client: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def poll_anthropic(client: anthropic.Anthropic, batch_id: str) -> tuple[Any, list[str]]:
    statuses: list[str] = []
    for _ in range(20):
        batch = client.messages.batches.retrieve(batch_id)
        statuses.append(batch.processing_status)
        if batch.processing_status == "ended":
            return batch, statuses
    raise AssertionError(f"batch never ended: {statuses}")


def claude_request(custom_id: str, text: str, *, max_tokens: int = 200, **params: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": CLAUDE,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": text}],
            **params,
        },
    }


def raw_request(url: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---------------------------------------------------------------- answers


def test_emulated_answer_is_deterministic_and_truncates() -> None:
    full = emulated_answer(GPT, None, "What is the capital of France?", None)
    assert full == emulated_answer(GPT, None, "What is the capital of France?", None)
    assert full.startswith(f"[{GPT}] ")
    assert "What is the capital of France?" in full
    assert emulated_answer(GPT, "Be terse.", "What is the capital of France?", None) != full
    assert emulated_answer("other-model", None, "What is the capital of France?", None) != full
    short = emulated_answer(GPT, None, "What is the capital of France?", 3)
    assert short == full[:12]
    assert estimate_tokens(short) == 3


# ---------------------------------------------------------------- OpenAI


def test_openai_batch_runs_to_completion(emulator: EmulatorServer, oai: openai.OpenAI) -> None:
    uploads_before = emulator.files_uploaded
    created_before = emulator.batches_created["openai"]
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL_SCHEMA}}
    lines = [
        oai_line("plain", "Tell me about the moon landing in 1969"),
        oai_line("with-system", "Summarise the French revolution", system="You are a historian."),
        oai_line("truncated", "Write a very long essay about cats", max_tokens=5),
        oai_line("bad", f"Please fail {MARKER_ERROR_400}"),
        oai_line("boom", f"Please crash {MARKER_ERROR_500}"),
        oai_line("tool", f"Weather in Paris? {MARKER_TOOL}", tools=[tool]),
    ]
    batch = upload_and_create(oai, lines, metadata={"job": "t1"})
    assert batch.status == "validating"
    assert batch.metadata == {"job": "t1"}
    assert emulator.files_uploaded == uploads_before + 1
    assert emulator.batches_created["openai"] == created_before + 1

    batch, statuses = poll_openai(oai, batch.id)
    assert statuses == ["in_progress", "completed"]
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 6, "completed": 4, "failed": 2}
    assert batch.model == GPT
    assert batch.in_progress_at
    assert batch.finalizing_at
    assert batch.completed_at
    assert batch.error_file_id  # the two non-2xx lines: OpenAI writes them to the error file
    assert batch.output_file_id
    assert batch.usage is not None
    assert batch.usage.total_tokens > 0
    output_file = oai.files.retrieve(batch.output_file_id)
    assert output_file.purpose == "batch_output"

    text = oai.files.content(batch.output_file_id).text
    with oai.files.with_streaming_response.content(batch.output_file_id) as streamed:
        assert b"".join(streamed.iter_bytes(chunk_size=100)).decode() == text
    assert output_file.bytes == len(text.encode())
    rows = [json.loads(line) for line in text.splitlines()]
    assert all(r["response"]["status_code"] == 200 for r in rows)
    rows += read_lines(oai, batch.error_file_id)
    assert [r["custom_id"] for r in rows] != [line["custom_id"] for line in lines]  # order is not input order
    by_id = {r["custom_id"]: r for r in rows}
    assert set(by_id) == {line["custom_id"] for line in lines}
    assert all(r["error"] is None and r["id"].startswith("batch_req_") for r in rows)

    plain = ChatCompletion.model_validate(by_id["plain"]["response"]["body"])
    assert by_id["plain"]["response"]["status_code"] == 200
    assert plain.choices[0].message.content == emulated_answer(
        GPT, None, "Tell me about the moon landing in 1969", None
    )
    assert plain.choices[0].finish_reason == "stop"
    assert plain.usage is not None
    # the emulator's tokenizer-like count: 9 pieces ("1969" is two) + one message's overhead + reply priming
    assert plain.usage.prompt_tokens == 9 + TOKENS_PER_MESSAGE + REPLY_PRIMING
    assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens
    assert plain.usage.prompt_tokens_details is not None
    assert plain.usage.prompt_tokens_details.cached_tokens == 0

    system = ChatCompletion.model_validate(by_id["with-system"]["response"]["body"])
    assert system.choices[0].message.content == emulated_answer(
        GPT, "You are a historian.", "Summarise the French revolution", None
    )

    truncated = ChatCompletion.model_validate(by_id["truncated"]["response"]["body"])
    assert truncated.choices[0].finish_reason == "length"
    assert truncated.choices[0].message.content == emulated_answer(
        GPT, None, "Write a very long essay about cats", 5
    )
    assert truncated.usage is not None
    assert truncated.usage.completion_tokens == 5

    bad = by_id["bad"]["response"]
    assert bad["status_code"] == 400
    assert bad["body"]["error"]["type"] == "invalid_request_error"
    assert bad["body"]["error"]["message"]
    boom = by_id["boom"]["response"]
    assert boom["status_code"] == 500
    assert boom["body"]["error"]["type"] == "server_error"

    tool_reply = ChatCompletion.model_validate(by_id["tool"]["response"]["body"])
    assert tool_reply.choices[0].finish_reason == "tool_calls"
    calls = tool_reply.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Weather in Paris?", "days": 1}


def test_openai_per_request_validation_errors(oai: openai.OpenAI) -> None:
    missing_messages = oai_line("no-messages", "x")
    del missing_messages["body"]["messages"]
    lines = [missing_messages, oai_line("zero-max", "hello", max_tokens=0), oai_line("ok", "hello")]
    batch, _ = poll_openai(oai, upload_and_create(oai, lines).id)
    assert batch.status == "completed"
    assert batch.output_file_id is not None
    assert batch.error_file_id is not None
    rows = read_lines(oai, batch.output_file_id) + read_lines(oai, batch.error_file_id)
    by_id = {r["custom_id"]: r["response"] for r in rows}
    assert by_id["no-messages"]["status_code"] == 400
    assert by_id["no-messages"]["body"]["error"]["code"] == "missing_required_parameter"
    assert by_id["zero-max"]["status_code"] == 400
    assert by_id["zero-max"]["body"]["error"]["param"] == "max_tokens"
    assert by_id["ok"]["status_code"] == 200


def test_openai_errors_in_output_file_when_configured() -> None:
    with EmulatorServer(polls_to_complete=1, non_2xx_file="output") as server:
        client = openai.OpenAI(api_key="k", base_url=server.openai_base_url, max_retries=0)
        batch = upload_and_create(client, [oai_line("ok", "hi"), oai_line("bad", MARKER_ERROR_400)])
        batch, statuses = poll_openai(client, batch.id)
        assert statuses == ["completed"]
        assert batch.output_file_id
        assert batch.error_file_id is None
        rows = read_lines(client, batch.output_file_id)
        assert sorted((r["custom_id"], r["response"]["status_code"]) for r in rows) == [
            ("bad", 400),
            ("ok", 200),
        ]


def test_openai_duplicate_custom_id_fails_validation(oai: openai.OpenAI) -> None:
    lines = [oai_line("a", "one"), oai_line("b", "two"), oai_line("a", "three")]
    batch = upload_and_create(oai, lines)
    assert batch.status == "validating"
    batch, statuses = poll_openai(oai, batch.id)
    assert statuses == ["failed"]
    assert batch.failed_at is not None
    assert batch.output_file_id is None
    assert batch.error_file_id is None
    assert batch.errors is not None
    assert batch.errors.data
    error = batch.errors.data[0]
    assert (error.code, error.line) == ("duplicate_custom_id", 3)
    assert error.message
    assert "'a'" in error.message


def test_openai_file_rules_fail_validation() -> None:
    with EmulatorServer(limits=Limits(openai_max_requests=2)) as server:
        client = openai.OpenAI(api_key="k", base_url=server.openai_base_url, max_retries=0)
        lines = [oai_line("a", "one"), oai_line("b", "two", model="gpt-4o"), oai_line("c", "three")]
        batch, _ = poll_openai(client, upload_and_create(client, lines).id)
        assert batch.status == "failed"
        assert batch.errors is not None
        assert batch.errors.data is not None
        codes = {(e.code, e.line) for e in batch.errors.data}
        assert codes == {("too_many_requests", 3), ("mismatched_model", 2)}


def test_openai_upload_validates_jsonl(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match=r"\.jsonl"):
        oai.files.create(file=("requests.txt", b'{"a": 1}\n'), purpose="batch")
    with pytest.raises(openai.BadRequestError, match=r"\.jsonl"):
        oai.files.create(file=io.BytesIO(jsonl([oai_line("x", "y")])), purpose="batch")  # nameless upload
    uploaded = oai.files.create(file=("requests.jsonl", jsonl([oai_line("x", "y")])), purpose="user_data")
    with pytest.raises(openai.BadRequestError, match="purpose 'batch'"):
        oai.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )


def test_openai_cancel_gives_partial_output(oai: openai.OpenAI) -> None:
    lines = [oai_line(f"r{i}", f"question {i}") for i in range(4)]
    batch = upload_and_create(oai, lines)
    assert oai.batches.retrieve(batch.id).status == "in_progress"  # half of the requests finished
    cancelling = oai.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    batch, statuses = poll_openai(oai, batch.id)
    assert statuses == ["cancelled"]
    assert batch.cancelled_at is not None
    assert batch.request_counts is not None
    assert batch.request_counts.completed == 2
    assert batch.output_file_id is not None
    assert batch.error_file_id is not None
    assert sorted(r["custom_id"] for r in read_lines(oai, batch.output_file_id)) == ["r0", "r1"]
    errors = read_lines(oai, batch.error_file_id)
    assert sorted(r["custom_id"] for r in errors) == ["r2", "r3"]
    assert {r["error"]["code"] for r in errors} == {"batch_cancelled"}
    assert all(r["response"] is None for r in errors)
    with pytest.raises(openai.ConflictError):
        oai.batches.cancel(batch.id)


def test_openai_scenario_hook_expires_batch(oai: openai.OpenAI) -> None:
    lines = [oai_line(f"r{i}", f"question {i}") for i in range(4)]
    batch = upload_and_create(oai, lines, metadata={"emulator_scenario": ExpireOnSecondPoll.name})
    batch, statuses = poll_openai(oai, batch.id)
    assert statuses == ["in_progress", "expired"]
    assert batch.expired_at is not None
    assert batch.output_file_id is not None
    assert batch.error_file_id is not None
    assert len(read_lines(oai, batch.output_file_id)) == 2
    assert {r["error"]["code"] for r in read_lines(oai, batch.error_file_id)} == {"batch_expired"}
    with pytest.raises(openai.BadRequestError, match="Unknown emulator scenario"):
        upload_and_create(oai, lines, metadata={"emulator_scenario": "no-such-scenario"})


def test_openai_list_pagination() -> None:
    with EmulatorServer() as server:
        client = openai.OpenAI(api_key="k", base_url=server.openai_base_url, max_retries=0)
        ids = [upload_and_create(client, [oai_line("a", f"q{i}")]).id for i in range(5)]
        newest_first = list(reversed(ids))
        page = client.batches.list(limit=2)
        assert [b.id for b in page.data] == newest_first[:2]
        assert page.has_more is True
        assert page.has_next_page()
        second = page.get_next_page()
        assert [b.id for b in second.data] == newest_first[2:4]
        assert [b.id for b in client.batches.list(limit=2, after=newest_first[3]).data] == newest_first[4:]
        assert [b.id for b in client.batches.list(limit=2)] == newest_first  # auto-pagination
        assert client.batches.list(limit=2, after=newest_first[-1]).has_more is False


def test_openai_not_found_and_missing_key(emulator: EmulatorServer, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.batches.retrieve("batch_does_not_exist")
    with pytest.raises(openai.NotFoundError):
        oai.files.content("file-does-not-exist")
    status, body = raw_request(emulator.openai_base_url + "/batches", {})
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert "API key" in body["error"]["message"]


# ---------------------------------------------------------------- Anthropic


def test_anthropic_batch_runs_to_completion(emulator: EmulatorServer, claude: anthropic.Anthropic) -> None:
    created_before = emulator.batches_created["anthropic"]
    tool = {"name": "get_weather", "description": "Weather", "input_schema": WEATHER_TOOL_SCHEMA}
    requests = [
        claude_request("plain", "Tell me about the moon landing in 1969"),
        claude_request("with-system", "Summarise the French revolution", system="You are a historian."),
        claude_request("truncated", "Write a very long essay about cats", max_tokens=5),
        claude_request("bad", f"Please fail {MARKER_ERROR_400}"),
        claude_request("boom", f"Please crash {MARKER_ERROR_500}"),
        claude_request("tool", f"Weather in Paris? {MARKER_TOOL}", tools=[tool]),
    ]
    batch = claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert emulator.batches_created["anthropic"] == created_before + 1
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 6
    assert batch.results_url is None
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        claude.messages.batches.results(batch.id)  # the SDK retrieves first: still in progress (poll 1)

    batch, statuses = poll_anthropic(claude, batch.id)
    assert statuses == ["ended"]
    assert batch.ended_at is not None
    counts = batch.request_counts
    assert counts.model_dump() == {"processing": 0, "succeeded": 4, "errored": 2, "canceled": 0, "expired": 0}
    assert batch.results_url == f"{emulator.base_url}/v1/messages/batches/{batch.id}/results"

    results = list(claude.messages.batches.results(batch.id))
    assert [r.custom_id for r in results] != [r["custom_id"] for r in requests]
    by_id = {r.custom_id: r.result for r in results}
    assert set(by_id) == {r["custom_id"] for r in requests}

    plain = by_id["plain"]
    assert plain.type == "succeeded"
    assert isinstance(plain.message, Message)
    assert plain.message.role == "assistant"
    assert plain.message.stop_reason == "end_turn"
    block = plain.message.content[0]
    assert block.type == "text"
    assert block.text == emulated_answer(CLAUDE, None, "Tell me about the moon landing in 1969", 200)
    assert plain.message.usage.input_tokens == 9 + TOKENS_PER_MESSAGE + REPLY_PRIMING
    assert plain.message.usage.output_tokens == estimate_tokens(block.text)
    assert plain.message.usage.cache_read_input_tokens == 0

    system = by_id["with-system"]
    assert system.type == "succeeded"
    system_block = system.message.content[0]
    assert system_block.type == "text"
    assert system_block.text == emulated_answer(
        CLAUDE, "You are a historian.", "Summarise the French revolution", 200
    )

    truncated = by_id["truncated"]
    assert truncated.type == "succeeded"
    assert truncated.message.stop_reason == "max_tokens"
    assert truncated.message.usage.output_tokens == 5

    bad, boom = by_id["bad"], by_id["boom"]
    assert bad.type == "errored"
    assert bad.error.error.type == "invalid_request_error"
    assert boom.type == "errored"
    assert boom.error.error.type == "api_error"

    tool_result = by_id["tool"]
    assert tool_result.type == "succeeded"
    assert tool_result.message.stop_reason == "tool_use"
    tool_block = tool_result.message.content[0]
    assert tool_block.type == "tool_use"
    assert tool_block.name == "get_weather"
    assert tool_block.input == {"city": "Weather in Paris?", "days": 1}


def test_same_answer_from_both_providers(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    question = "Which is the largest planet?"
    batch, _ = poll_openai(
        oai, upload_and_create(oai, [oai_line("q", question, model="shared", max_tokens=50)]).id
    )
    assert batch.output_file_id is not None
    openai_text = read_lines(oai, batch.output_file_id)[0]["response"]["body"]["choices"][0]["message"][
        "content"
    ]
    request = claude_request("q", question, max_tokens=50)
    request["params"]["model"] = "shared"
    message_batch = claude.messages.batches.create(requests=[request])  # type: ignore[list-item]
    poll_anthropic(claude, message_batch.id)
    (result,) = list(claude.messages.batches.results(message_batch.id))
    assert result.result.type == "succeeded"
    block = result.result.message.content[0]
    assert block.type == "text"
    assert block.text == openai_text == emulated_answer("shared", None, question, 50)


def test_anthropic_rejects_bad_custom_ids(claude: anthropic.Anthropic, emulator: EmulatorServer) -> None:
    created_before = emulator.batches_created["anthropic"]
    with pytest.raises(anthropic.BadRequestError) as excinfo:
        claude.messages.batches.create(
            requests=[claude_request("ok", "hi"), claude_request("user.42", "hi")]  # type: ignore[list-item]
        )
    assert excinfo.value.status_code == 400
    body = excinfo.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "'user.42'" in body["error"]["message"]
    assert "requests.1" in body["error"]["message"]

    with pytest.raises(anthropic.BadRequestError, match="duplicate custom_id 'x'"):
        claude.messages.batches.create(
            requests=[claude_request("x", "a"), claude_request("x", "b")]  # type: ignore[list-item]
        )
    with pytest.raises(anthropic.BadRequestError, match=r"requests\.0\.custom_id"):
        claude.messages.batches.create(requests=[claude_request("a" * 65, "a")])  # type: ignore[list-item]
    assert emulator.batches_created["anthropic"] == created_before


def test_anthropic_request_limit() -> None:
    with EmulatorServer(limits=Limits(anthropic_max_requests=2)) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.anthropic_base_url, max_retries=0)
        with pytest.raises(anthropic.BadRequestError, match="at most 2"):
            client.messages.batches.create(
                requests=[claude_request(f"r{i}", "hi") for i in range(3)]  # type: ignore[misc]
            )


def test_anthropic_cancel_gives_partial_results(claude: anthropic.Anthropic) -> None:
    requests = [claude_request(f"r{i}", f"question {i}") for i in range(4)]
    batch = claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert claude.messages.batches.retrieve(batch.id).processing_status == "in_progress"  # half finished
    canceling = claude.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    batch, statuses = poll_anthropic(claude, batch.id)
    assert statuses == ["ended"]
    assert (batch.request_counts.succeeded, batch.request_counts.canceled) == (2, 2)
    results = {r.custom_id: r.result.type for r in claude.messages.batches.results(batch.id)}
    assert results == {"r0": "succeeded", "r1": "succeeded", "r2": "canceled", "r3": "canceled"}
    with pytest.raises(anthropic.BadRequestError, match="already ended"):
        claude.messages.batches.cancel(batch.id)


def test_anthropic_scenario_hook_expires_batch(claude: anthropic.Anthropic) -> None:
    requests = [claude_request(f"r{i}", f"question {i}") for i in range(4)]
    batch = claude.messages.batches.create(
        requests=requests,  # type: ignore[arg-type]
        extra_headers={"x-emulator-scenario": ExpireOnSecondPoll.name},
    )
    batch, statuses = poll_anthropic(claude, batch.id)
    assert statuses == ["in_progress", "ended"]
    assert (batch.request_counts.succeeded, batch.request_counts.expired) == (2, 2)
    results = {r.custom_id: r.result.type for r in claude.messages.batches.results(batch.id)}
    assert sorted(results.values()) == ["expired", "expired", "succeeded", "succeeded"]


def test_anthropic_list_pagination_and_delete() -> None:
    with EmulatorServer(polls_to_complete=1) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.anthropic_base_url, max_retries=0)
        ids = [
            client.messages.batches.create(requests=[claude_request("a", f"q{i}")]).id  # type: ignore[list-item]
            for i in range(5)
        ]
        newest_first = list(reversed(ids))
        page = client.messages.batches.list(limit=2)
        assert [b.id for b in page.data] == newest_first[:2]
        assert (page.has_more, page.first_id, page.last_id) == (True, newest_first[0], newest_first[1])
        assert [b.id for b in page.get_next_page().data] == newest_first[2:4]
        assert [b.id for b in client.messages.batches.list(limit=2)] == newest_first
        before = client.messages.batches.list(limit=2, before_id=newest_first[3])
        assert [b.id for b in before.data] == newest_first[1:3]

        with pytest.raises(anthropic.BadRequestError, match="still processing"):
            client.messages.batches.delete(ids[0])
        client.messages.batches.retrieve(ids[0])  # polls_to_complete=1: ended
        deleted = client.messages.batches.delete(ids[0])
        assert deleted.type == "message_batch_deleted"
        with pytest.raises(anthropic.NotFoundError):
            client.messages.batches.retrieve(ids[0])


def test_anthropic_missing_key(emulator: EmulatorServer) -> None:
    status, body = raw_request(
        emulator.anthropic_base_url + "/v1/messages/batches",
        {"content-type": "application/json", "anthropic-version": "2023-06-01"},
        json.dumps({"requests": [claude_request("a", "hi")]}).encode(),
    )
    assert status == 401
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"


# ---------------------------------------------------------------- scale


def test_large_batches_stream_quickly() -> None:
    with EmulatorServer(polls_to_complete=1) as server:
        oai_client = openai.OpenAI(api_key="k", base_url=server.openai_base_url, max_retries=0)
        lines = [oai_line(f"r{i}", f"question number {i}") for i in range(20_000)]
        batch, _ = poll_openai(oai_client, upload_and_create(oai_client, lines).id)
        assert batch.output_file_id is not None
        with oai_client.files.with_streaming_response.content(batch.output_file_id) as response:
            assert sum(1 for _ in response.iter_lines()) == 20_000

        claude_client = anthropic.Anthropic(api_key="k", base_url=server.anthropic_base_url, max_retries=0)
        requests = [claude_request(f"r{i}", f"question number {i}") for i in range(20_000)]
        message_batch = claude_client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        poll_anthropic(claude_client, message_batch.id)
        assert sum(1 for _ in claude_client.messages.batches.results(message_batch.id)) == 20_000


# ---------------------------------------------------------------- named failure scenarios


@pytest.fixture(scope="module")
def scenario_server() -> Iterator[EmulatorServer]:
    """One server for the scenario tests; each test selects its scenario at runtime."""
    with EmulatorServer(polls_to_complete=2) as server:
        yield server


@pytest.fixture(scope="module")
def s_oai(scenario_server: EmulatorServer) -> openai.OpenAI:
    return openai.OpenAI(api_key="k", base_url=scenario_server.openai_base_url, max_retries=0)


@pytest.fixture(scope="module")
def s_claude(scenario_server: EmulatorServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="k", base_url=scenario_server.anthropic_base_url, max_retries=0)


def openai_outcomes(client: openai.OpenAI, batch: openai.types.Batch) -> dict[str, Any]:
    """custom_id -> response status_code (either file) or error code (error file, e.g. batch_expired)."""
    outcomes: dict[str, Any] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        for r in read_lines(client, file_id) if file_id else []:
            outcomes[r["custom_id"]] = r["response"]["status_code"] if r["response"] else r["error"]["code"]
    return outcomes


def anthropic_outcomes(client: anthropic.Anthropic, batch_id: str) -> dict[str, str]:
    """custom_id -> result type, or the error type of an errored result."""
    outcomes: dict[str, str] = {}
    for row in client.messages.batches.results(batch_id):
        result = row.result
        outcomes[row.custom_id] = result.error.error.type if result.type == "errored" else result.type
    return outcomes


def test_scenario_selection(scenario_server: EmulatorServer, s_oai: openai.OpenAI) -> None:
    assert set(BUILTIN_SCENARIOS) <= set(scenario_names())
    with pytest.raises(ValueError, match=r"'nope'.*expire.*fail-once.*throttle"):
        scenario_server.scenario = "nope"
    with pytest.raises(ValueError, match="Unknown emulator scenario 'nope'"):
        EmulatorServer(scenario="nope")
    scenario_server.scenario = "fail"
    assert scenario_server.scenario == "fail"
    failed, _ = poll_openai(s_oai, upload_and_create(s_oai, [oai_line("a", "selected at runtime")]).id)
    scenario_server.scenario = "ok"
    ok, _ = poll_openai(s_oai, upload_and_create(s_oai, [oai_line("a", "selected at runtime")]).id)
    assert (failed.status, ok.status) == ("failed", "completed")
    per_batch, _ = poll_openai(  # a per-batch choice beats the server's
        s_oai,
        upload_and_create(s_oai, [oai_line("a", "per batch")], metadata={"emulator_scenario": "fail"}).id,
    )
    assert per_batch.status == "failed"

    from batch_gateway_local.cli.commands import _parser
    from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions

    assert LocalGateway(LocalOptions(scenario="expire")).emulator.scenario == "expire"
    assert LocalGateway().emulator.scenario == "ok"
    args = ["local", "run", "x.jsonl", "--provider", "openai", "--model", "m", "--out", "o"]
    assert _parser().parse_args([*args, "--scenario", "flaky-download"]).scenario == "flaky-download"
    assert _parser().parse_args(args).scenario == "ok"
    with pytest.raises(SystemExit):
        _parser().parse_args([*args, "--scenario", "nope"])


def test_item_errors_openai(scenario_server: EmulatorServer, s_oai: openai.OpenAI) -> None:
    scenario_server.scenario = "item-errors"
    lines = [oai_line(f"r{i}", f"item errors question {i}") for i in range(20)]
    batch, _ = poll_openai(s_oai, upload_and_create(s_oai, lines).id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 20, "completed": 16, "failed": 4}
    assert batch.output_file_id is not None
    assert batch.error_file_id is not None
    rows = {r["custom_id"]: r["response"] for r in read_lines(s_oai, batch.error_file_id)}
    failing = {k: v["status_code"] for k, v in rows.items()}
    assert failing == {"r3": 400, "r13": 400, "r7": 500, "r17": 500}
    assert rows["r3"]["body"]["error"]["type"] == "invalid_request_error"
    assert rows["r7"]["body"]["error"]["type"] == "server_error"

    # Resubmitting the failed items (same custom_id and body): retryable ones now succeed, the
    # permanent ones fail again, and their new positions do not matter.
    again = [lines[i] for i in (7, 3, 17, 13)]
    retry, _ = poll_openai(s_oai, upload_and_create(s_oai, again).id)
    assert openai_outcomes(s_oai, retry) == {"r7": 200, "r17": 200, "r3": 400, "r13": 400}

    scenario_server.scenario = "item-errors"  # selecting afresh forgets what was seen
    fresh, _ = poll_openai(s_oai, upload_and_create(s_oai, lines[:8]).id)
    assert openai_outcomes(s_oai, fresh)["r7"] == 500


def test_item_errors_anthropic(scenario_server: EmulatorServer, s_claude: anthropic.Anthropic) -> None:
    scenario_server.scenario = "item-errors"
    requests = [claude_request(f"r{i}", f"item errors question {i}") for i in range(20)]
    batch = s_claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    batch, _ = poll_anthropic(s_claude, batch.id)
    assert (batch.request_counts.succeeded, batch.request_counts.errored) == (16, 4)
    failing = {k: v for k, v in anthropic_outcomes(s_claude, batch.id).items() if v != "succeeded"}
    assert failing == {
        "r3": "invalid_request_error",
        "r13": "invalid_request_error",
        "r7": "api_error",
        "r17": "overloaded_error",
    }
    again = [requests[i] for i in (3, 7, 13, 17)]
    retry = s_claude.messages.batches.create(requests=again)  # type: ignore[arg-type]
    poll_anthropic(s_claude, retry.id)
    assert anthropic_outcomes(s_claude, retry.id) == {
        "r3": "invalid_request_error",
        "r7": "succeeded",
        "r13": "invalid_request_error",
        "r17": "succeeded",
    }


def test_expire_openai(scenario_server: EmulatorServer, s_oai: openai.OpenAI) -> None:
    scenario_server.scenario = "expire"
    lines = [oai_line(f"r{i}", f"expire question {i}") for i in range(5)]
    batch, statuses = poll_openai(s_oai, upload_and_create(s_oai, lines).id)
    assert statuses == ["in_progress", "expired"]
    assert batch.expired_at is not None
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 5, "completed": 2, "failed": 0}
    assert openai_outcomes(s_oai, batch) == {
        "r0": 200,
        "r1": 200,
        "r2": "batch_expired",
        "r3": "batch_expired",
        "r4": "batch_expired",
    }
    assert batch.error_file_id is not None
    error = read_lines(s_oai, batch.error_file_id)[0]
    assert error["response"] is None
    assert (
        error["error"]["message"]
        == "This request could not be executed before the completion window expired."
    )

    retry, statuses = poll_openai(s_oai, upload_and_create(s_oai, lines[2:]).id)
    assert statuses == ["in_progress", "completed"]
    assert openai_outcomes(s_oai, retry) == {"r2": 200, "r3": 200, "r4": 200}


def test_expire_anthropic(scenario_server: EmulatorServer, s_claude: anthropic.Anthropic) -> None:
    scenario_server.scenario = "ok"  # chosen per batch by header
    requests = [claude_request(f"r{i}", f"expire question {i}") for i in range(4)]
    header = {"x-emulator-scenario": "expire"}
    batch = s_claude.messages.batches.create(requests=requests, extra_headers=header)  # type: ignore[arg-type]
    batch, statuses = poll_anthropic(s_claude, batch.id)
    assert statuses == ["in_progress", "ended"]
    assert batch.request_counts.model_dump() == {
        "processing": 0,
        "succeeded": 2,
        "errored": 0,
        "canceled": 0,
        "expired": 2,
    }
    outcomes = anthropic_outcomes(s_claude, batch.id)
    assert outcomes == {"r0": "succeeded", "r1": "succeeded", "r2": "expired", "r3": "expired"}
    retry = s_claude.messages.batches.create(requests=requests[2:], extra_headers=header)  # type: ignore[arg-type]
    retry, _ = poll_anthropic(s_claude, retry.id)
    assert retry.request_counts.succeeded == 2
    assert anthropic_outcomes(s_claude, retry.id) == {"r2": "succeeded", "r3": "succeeded"}


def test_fail_and_fail_once_openai(scenario_server: EmulatorServer, s_oai: openai.OpenAI) -> None:
    lines = [oai_line("a", "fail question"), oai_line("b", "another")]
    expected = ENQUEUED_LIMIT_MESSAGE.format(model=GPT)
    assert expected == (
        f"Enqueued token limit reached for {GPT} in organization org-emulator. Limit: 90,000 enqueued "
        "tokens. Please try again once some in_progress batches have been completed."
    )
    for scenario, second in (("fail", "failed"), ("fail-once", "completed")):
        scenario_server.scenario = scenario
        first = upload_and_create(s_oai, lines)
        assert first.status == "validating"
        first, statuses = poll_openai(s_oai, first.id)
        assert statuses == ["failed"]
        assert first.errors is not None
        assert first.errors.data is not None
        assert [(e.code, e.message) for e in first.errors.data] == [("token_limit_exceeded", expected)]
        assert (first.output_file_id, first.error_file_id) == (None, None)
        resubmitted, _ = poll_openai(s_oai, upload_and_create(s_oai, lines).id)
        assert resubmitted.status == second, scenario


def test_fail_and_fail_once_anthropic(scenario_server: EmulatorServer, s_claude: anthropic.Anthropic) -> None:
    requests = [claude_request("a", "fail question"), claude_request("b", "another")]
    for scenario, attempts in (("fail", 2), ("fail-once", 1)):
        scenario_server.scenario = scenario
        created_before = scenario_server.batches_created["anthropic"]
        for _ in range(attempts):
            with pytest.raises(anthropic.BadRequestError) as excinfo:
                s_claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
            assert excinfo.value.status_code == 400
            body = excinfo.value.body
            assert isinstance(body, dict)
            assert body["error"]["type"] == "invalid_request_error"
            assert body["error"]["message"] == ENQUEUED_LIMIT_MESSAGE.format(model=CLAUDE)
        assert scenario_server.batches_created["anthropic"] == created_before
    batch = s_claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]  # fail-once: 2nd try
    batch, _ = poll_anthropic(s_claude, batch.id)
    assert batch.request_counts.succeeded == 2


def test_throttle(
    scenario_server: EmulatorServer, s_oai: openai.OpenAI, s_claude: anthropic.Anthropic
) -> None:
    scenario_server.scenario = "throttle"
    with pytest.raises(openai.RateLimitError) as oai_exc:  # without retries the 429 surfaces
        s_oai.files.create(file=("requests.jsonl", jsonl([oai_line("a", "throttled")])), purpose="batch")
    assert oai_exc.value.code == "rate_limit_exceeded"
    assert oai_exc.value.response.headers["retry-after-ms"] == "10"
    assert oai_exc.value.response.headers["retry-after"] == "0"
    with pytest.raises(anthropic.RateLimitError) as claude_exc:
        s_claude.messages.batches.create(requests=[claude_request("a", "throttled")])  # type: ignore[list-item]
    body = claude_exc.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "rate_limit_error"

    # The SDKs retry transparently (the gateway uses max_retries=5): every call succeeds.
    oai_retrying = s_oai.with_options(max_retries=5)
    uploaded = oai_retrying.files.with_raw_response.create(
        file=("requests.jsonl", jsonl([oai_line("a", "throttled")])), purpose="batch"
    )
    assert uploaded.retries_taken == 2
    created = oai_retrying.batches.with_raw_response.create(
        input_file_id=uploaded.parse().id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert created.retries_taken == 3
    retrieved = oai_retrying.batches.with_raw_response.retrieve(created.parse().id)
    assert retrieved.retries_taken == 3
    batch, _ = poll_openai(oai_retrying, created.parse().id)
    assert batch.output_file_id is not None
    downloaded = oai_retrying.files.with_raw_response.content(batch.output_file_id)
    assert downloaded.retries_taken == 3
    assert json.loads(downloaded.parse().text)["response"]["status_code"] == 200
    assert oai_retrying.files.with_raw_response.content(batch.output_file_id).retries_taken == 0

    claude_retrying = s_claude.with_options(max_retries=5)
    message_batch = claude_retrying.messages.batches.create(
        requests=[claude_request("a", "throttled")]  # type: ignore[list-item]
    )
    poll_anthropic(claude_retrying, message_batch.id)
    assert [r.result.type for r in claude_retrying.messages.batches.results(message_batch.id)] == [
        "succeeded"
    ]


def test_flaky_download(
    scenario_server: EmulatorServer, s_oai: openai.OpenAI, s_claude: anthropic.Anthropic
) -> None:
    scenario_server.scenario = "flaky-download"
    lines = [oai_line(f"r{i}", f"flaky question {i}") for i in range(10)]
    batch, _ = poll_openai(s_oai, upload_and_create(s_oai, lines).id)
    assert batch.output_file_id is not None
    size = s_oai.files.retrieve(batch.output_file_id).bytes
    with pytest.raises(openai.APIConnectionError):  # a plain download: the body is short
        s_oai.files.content(batch.output_file_id)
    text = s_oai.files.content(batch.output_file_id).text
    assert len(text.encode()) == size
    assert sorted(json.loads(line)["custom_id"] for line in text.splitlines()) == sorted(
        f"r{i}" for i in range(10)
    )

    batch2, _ = poll_openai(s_oai, upload_and_create(s_oai, lines[:4]).id)
    assert batch2.output_file_id is not None
    received: list[str] = []
    with (  # a streamed download breaks midway, as the gateway sees it (it retries TransportError)
        pytest.raises(httpx2.TransportError, match="peer closed connection"),
        s_oai.files.with_streaming_response.content(batch2.output_file_id) as response,
    ):
        received.extend(response.iter_lines())
    assert len(received) < 4
    with s_oai.files.with_streaming_response.content(batch2.output_file_id) as response:
        assert len(list(response.iter_lines())) == 4

    requests = [claude_request(f"r{i}", f"flaky question {i}") for i in range(10)]
    message_batch = s_claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    poll_anthropic(s_claude, message_batch.id)
    partial: list[str] = []
    with pytest.raises(httpx2.TransportError, match="peer closed connection"):
        partial.extend(r.custom_id for r in s_claude.messages.batches.results(message_batch.id))
    assert len(partial) < 10
    assert len(list(s_claude.messages.batches.results(message_batch.id))) == 10


def test_slow(scenario_server: EmulatorServer, s_oai: openai.OpenAI, s_claude: anthropic.Anthropic) -> None:
    scenario_server.scenario = "slow"
    batch, statuses = poll_openai(
        s_oai, upload_and_create(s_oai, [oai_line("a", "slow"), oai_line("b", "x")]).id
    )
    assert statuses == ["in_progress"] * (STALLED_POLLS + 1) + ["completed"]
    assert batch.request_counts is not None
    assert batch.request_counts.completed == 2
    message_batch = s_claude.messages.batches.create(requests=[claude_request("a", "slow")])  # type: ignore[list-item]
    _, claude_statuses = poll_anthropic(s_claude, message_batch.id)
    assert claude_statuses == ["in_progress"] * (STALLED_POLLS + 1) + ["ended"]
    stalled = s_oai.batches.retrieve(upload_and_create(s_oai, [oai_line("c", "slow")]).id)
    assert stalled.status == "in_progress"
    assert stalled.request_counts is not None
    assert stalled.request_counts.completed == 0
