"""Real-format provider result lines and batch objects -> ProviderResult / LLMResponse / BatchProgress."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batch_gateway.models import BatchStatus, FinishReason
from batch_gateway.providers.anthropic.parsing import anthropic_progress, parse_anthropic_line
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.openai.parsing import openai_progress, parse_openai_line
from batch_gateway.providers.parsing import decode_result_line, extract_json
from batch_gateway.providers.types import ProviderResult

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "provider_lines"


def load(name: str) -> dict[str, dict[str, Any]]:
    lines = [json.loads(text) for text in (FIXTURES / name).read_text().splitlines() if text.strip()]
    return {line["custom_id"]: line for line in lines}


OPENAI_OUT = load("openai_output.jsonl")
OPENAI_ERR = load("openai_errors.jsonl")
ANTHROPIC = load("anthropic_results.jsonl")


def assert_readable(result: ProviderResult) -> None:
    assert result.error
    for marker in ("{'", "Error(", "<", "object at 0x"):
        assert marker not in result.error


# ------------------------------------------------------------------------------------------------ OpenAI


def test_openai_success_with_usage_details() -> None:
    line = OPENAI_OUT["plain"]
    result = parse_openai_line(line)
    assert result.outcome == "succeeded"
    assert result.provider_custom_id == "plain"
    assert result.error is None
    assert result.raw is line  # the provider's line, stored once
    response = result.response
    assert response is not None
    assert response.raw is None
    assert response.content == "Paris is the capital of France."
    assert response.parsed is None
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == {
        "prompt_tokens": 2048,
        "completion_tokens": 7,
        "total_tokens": 2055,
        "cached_tokens": 1024,
        "reasoning_tokens": 0,
    }


def test_openai_tool_calls_decode_arguments_and_keep_broken_ones_raw() -> None:
    response = parse_openai_line(OPENAI_OUT["tools"]).response
    assert response is not None
    assert response.finish_reason is FinishReason.TOOL_CALL
    assert response.content is None
    first, second = response.tool_calls
    assert (first.id, first.name, first.arguments) == (
        "call_abc123",
        "get_weather",
        {"city": "Paris", "unit": "celsius"},
    )
    assert (second.id, second.name) == ("call_def456", "get_time")
    assert second.arguments == {"_raw": '{"tz": "Europe/Par'}


def test_openai_fenced_json_is_parsed_but_content_is_untouched() -> None:
    line = OPENAI_OUT["fenced"]
    response = parse_openai_line(line).response
    assert response is not None
    assert response.content == line["response"]["body"]["choices"][0]["message"]["content"]
    assert response.content.startswith("Here you go:\n```json\n")
    assert response.parsed == {"name": "Ada", "langs": ["en", "fr"]}


def test_openai_400_line_is_errored_with_the_provider_message() -> None:
    result = parse_openai_line(OPENAI_OUT["too-long"])
    assert result.outcome == "errored"
    assert result.response is None
    assert result.error == (
        "HTTP 400 invalid_request_error/string_above_max_length: Invalid 'messages[0].content': string too long. "
        "Expected a string with maximum length 10485760, but got a string with length 10485761 instead."
    )
    assert_readable(result)


def test_openai_500_line_without_code() -> None:
    result = parse_openai_line(OPENAI_OUT["server-error"])
    assert result.outcome == "errored"
    assert result.error == (
        "HTTP 500 server_error: The server had an error while processing your request. Sorry about that!"
    )


def test_openai_length_and_reasoning_tokens() -> None:
    response = parse_openai_line(OPENAI_OUT["cut-off"]).response
    assert response is not None
    assert response.finish_reason is FinishReason.LENGTH
    assert response.usage["reasoning_tokens"] == 52
    assert "cached_tokens" not in response.usage


def test_openai_refusal_is_content_filtered_with_its_text() -> None:
    response = parse_openai_line(OPENAI_OUT["refused"]).response
    assert response is not None
    assert response.finish_reason is FinishReason.CONTENT_FILTER
    assert response.content == "I'm sorry, I can't help with that."


@pytest.mark.parametrize(
    ("custom_id", "outcome", "error"),
    [
        (
            "late-1",
            "expired",
            "batch_expired: This request could not be executed before the completion window expired.",
        ),
        (
            "stopped-1",
            "cancelled",
            "batch_cancelled: This request could not be executed before the batch was cancelled.",
        ),
    ],
)
def test_openai_error_file_lines(custom_id: str, outcome: str, error: str) -> None:
    result = parse_openai_line(OPENAI_ERR[custom_id])
    assert result.outcome == outcome
    assert result.error == error
    assert result.response is None


def test_openai_error_file_non_2xx_line() -> None:
    result = parse_openai_line(OPENAI_ERR["rate-limited"])
    assert result.outcome == "errored"
    assert result.error is not None
    assert result.error.startswith("HTTP 429 tokens/rate_limit_exceeded: Rate limit reached for gpt-4o")


def test_openai_unknown_error_code_is_errored() -> None:
    line = {
        "id": "x",
        "custom_id": "a",
        "response": None,
        "error": {"code": "server_error", "message": "Boom."},
    }
    result = parse_openai_line(line)
    assert (result.outcome, result.error) == ("errored", "server_error: Boom.")


def test_openai_200_without_choices_is_errored_readably() -> None:
    line = {
        "custom_id": "a",
        "response": {"status_code": 200, "body": {"object": "chat.completion"}},
        "error": None,
    }
    result = parse_openai_line(line)
    assert result.outcome == "errored"
    assert result.error == "HTTP 200 but unreadable chat completion: the response has no choices"


def test_openai_non_2xx_with_plain_text_body() -> None:
    line = {"custom_id": "a", "response": {"status_code": 502, "body": "Bad gateway"}, "error": None}
    assert parse_openai_line(line).error == "HTTP 502: Bad gateway"


def test_openai_legacy_function_call_and_reasoning_content() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "function_call",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "thinking...",
                    "function_call": {"name": "lookup", "arguments": "[1, 2]"},
                },
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }
    line = {"custom_id": "a", "response": {"status_code": 200, "body": body}, "error": None}
    response = parse_openai_line(line).response
    assert response is not None
    assert response.finish_reason is FinishReason.TOOL_CALL
    assert response.thinking == "thinking..."
    assert response.tool_calls[0].name == "lookup"
    assert response.tool_calls[0].arguments == {"_raw": "[1, 2]"}  # JSON, but not an object
    assert response.usage == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


# --------------------------------------------------------------------------------------------- Anthropic


def test_anthropic_success() -> None:
    line = ANTHROPIC["my-second-request"]
    result = parse_anthropic_line(line)
    assert result.outcome == "succeeded"
    assert result.raw is line
    response = result.response
    assert response is not None
    assert response.raw is None
    assert response.content == "Hello again! It's nice to see you. How can I assist you today?"
    assert response.thinking is None
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == {
        "prompt_tokens": 11,
        "completion_tokens": 36,
        "total_tokens": 47,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_anthropic_thinking_tool_use_and_cache_usage() -> None:
    response = parse_anthropic_line(ANTHROPIC["thinker"]).response
    assert response is not None
    assert response.thinking == "The user wants the weather in Paris. I should call the tool."
    assert response.content == "Let me check the weather."
    assert response.finish_reason is FinishReason.TOOL_CALL
    (call,) = response.tool_calls
    assert (call.id, call.name, call.arguments) == (
        "toolu_01A09q90qw90lq917835lq9",
        "get_weather",
        {"location": "Paris, France"},
    )
    # prompt_tokens counts every input token (as OpenAI's does); the cache parts are kept separately.
    assert response.usage == {
        "prompt_tokens": 472 + 1200 + 3000,
        "completion_tokens": 120,
        "total_tokens": 472 + 1200 + 3000 + 120,
        "cache_creation_input_tokens": 1200,
        "cache_read_input_tokens": 3000,
        "reasoning_tokens": 70,
    }


def test_anthropic_fenced_array_and_max_tokens() -> None:
    response = parse_anthropic_line(ANTHROPIC["cited"]).response
    assert response is not None
    assert response.content == "```json\n[1, 2, 3]\n```"
    assert response.parsed == [1, 2, 3]
    assert response.finish_reason is FinishReason.LENGTH


def test_anthropic_errored_line() -> None:
    result = parse_anthropic_line(ANTHROPIC["my-first-request"])
    assert result.outcome == "errored"
    assert result.error == (
        "invalid_request_error: max_tokens: 100000 > 64000, which is the maximum allowed number of output "
        "tokens for claude-sonnet-4-5-20250929"
    )
    assert_readable(result)


@pytest.mark.parametrize(("custom_id", "outcome"), [("bg-3", "cancelled"), ("bg-4", "expired")])
def test_anthropic_canceled_and_expired_lines(custom_id: str, outcome: str) -> None:
    result = parse_anthropic_line(ANTHROPIC[custom_id])
    assert result.outcome == outcome
    assert result.response is None
    assert_readable(result)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALL),
        ("refusal", FinishReason.CONTENT_FILTER),
        ("model_context_window_exceeded", FinishReason.LENGTH),
    ],
)
def test_anthropic_stop_reasons(stop_reason: str, finish: FinishReason) -> None:
    message = {
        "type": "message",
        "content": [{"type": "text", "text": "x"}],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    response = parse_anthropic_line(
        {"custom_id": "a", "result": {"type": "succeeded", "message": message}}
    ).response
    assert response is not None
    assert response.finish_reason is finish


def test_anthropic_text_blocks_are_concatenated() -> None:
    message = {
        "content": [{"type": "text", "text": "Paris "}, {"type": "text", "text": "is the capital."}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    response = parse_anthropic_line(
        {"custom_id": "a", "result": {"type": "succeeded", "message": message}}
    ).response
    assert response is not None
    assert response.content == "Paris is the capital."


# --------------------------------------------------------------------------------------------- JSON answers


@pytest.mark.parametrize(
    ("content", "parsed"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2]\n", [1, 2]),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('Sure:\n\n```JSON\n[{"a": 1}]\n```\nDone.', [{"a": 1}]),
        ("42", None),
        ('"text"', None),
        ("plain answer", None),
        ('```python\nprint({"a": 1})\n```', None),
        ('```json\n{"a": 1}\n```\nand\n```json\n{"b": 2}\n```', None),  # two blocks: ambiguous
        ("```json\n{not json}\n```", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_json(content: str | None, parsed: object) -> None:
    assert extract_json(content) == parsed


# --------------------------------------------------------------------------------------------- line decoding


def test_decode_result_line_errors_are_readable() -> None:
    with pytest.raises(ProviderError, match="output file line 3 is not valid JSON"):
        decode_result_line('{"custom_id": ', source="output file", number=3)
    with pytest.raises(ProviderError, match="line 4 is not a JSON object"):
        decode_result_line("[1]", source="output file", number=4)
    with pytest.raises(ProviderError, match="line 5 has no custom_id"):
        decode_result_line('{"result": {}}', source="output file", number=5)
    assert decode_result_line(b'{"custom_id": "a"}', source="s", number=1) == {"custom_id": "a"}


# --------------------------------------------------------------------------------------------- status mapping


@pytest.mark.parametrize(
    ("provider_status", "status"),
    [
        ("validating", BatchStatus.PENDING),
        ("in_progress", BatchStatus.IN_PROGRESS),
        ("finalizing", BatchStatus.FINALIZING),
        ("completed", BatchStatus.COMPLETED),
        ("expired", BatchStatus.EXPIRED),
        ("cancelling", BatchStatus.CANCELLING),
        ("cancelled", BatchStatus.CANCELLED),
    ],
)
def test_openai_status_mapping(provider_status: str, status: BatchStatus) -> None:
    batch = {
        "id": "batch_1",
        "object": "batch",
        "status": provider_status,
        "request_counts": {"total": 10, "completed": 7, "failed": 1},
    }
    progress = openai_progress(batch)
    assert progress.status is status
    assert progress.provider_status == provider_status
    assert progress.request_counts == {"total": 10, "completed": 7, "failed": 1}
    assert progress.message is None
    assert progress.raw is batch


def test_openai_failed_batch_message_lists_errors() -> None:
    batch = {
        "id": "batch_1",
        "status": "failed",
        "errors": {
            "object": "list",
            "data": [
                {
                    "code": "invalid_json",
                    "line": 2,
                    "message": "This line is not parseable as valid JSON.",
                    "param": None,
                },
                {
                    "code": "token_limit_exceeded",
                    "line": None,
                    "message": "Enqueued token limit reached for gpt-4o in organization org-abc. "
                    "Limit: 90,000 enqueued tokens. Please try submitting your batch again later.",
                    "param": None,
                },
            ],
        },
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
    }
    progress = openai_progress(batch)
    assert progress.status is BatchStatus.FAILED
    assert progress.message == (
        "OpenAI failed the batch: line 2: This line is not parseable as valid JSON. (invalid_json); "
        "Enqueued token limit reached for gpt-4o in organization org-abc. Limit: 90,000 enqueued tokens. "
        "Please try submitting your batch again later. (token_limit_exceeded)"
    )


def test_openai_failed_batch_many_errors_are_capped() -> None:
    data = [{"code": "invalid_request", "line": n, "message": "bad"} for n in range(1, 31)]
    message = openai_progress({"status": "failed", "errors": {"data": data}}).message
    assert message is not None
    assert message.endswith("and 10 more")
    assert openai_progress({"status": "failed"}).message == "OpenAI failed the batch without giving a reason"


def anthropic_batch(status: str, cancel: bool = False, **counts: int) -> dict[str, Any]:
    base = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    return {
        "id": "msgbatch_01",
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {**base, **counts},
        "cancel_initiated_at": "2025-06-01T10:00:00Z" if cancel else None,
        "created_at": "2025-06-01T09:00:00Z",
        "expires_at": "2025-06-02T09:00:00Z",
    }


@pytest.mark.parametrize(
    ("batch", "status"),
    [
        (anthropic_batch("in_progress", processing=5), BatchStatus.IN_PROGRESS),
        (anthropic_batch("canceling", cancel=True, processing=5), BatchStatus.CANCELLING),
        (anthropic_batch("ended", succeeded=5), BatchStatus.COMPLETED),
        (anthropic_batch("ended", succeeded=2, errored=1, expired=2), BatchStatus.COMPLETED),  # mixed
        (anthropic_batch("ended", expired=5), BatchStatus.EXPIRED),  # all expired: never "completed"
        (anthropic_batch("ended", errored=5), BatchStatus.COMPLETED),  # per-line errors
        (anthropic_batch("ended", cancel=True, succeeded=2, canceled=3), BatchStatus.CANCELLED),
        (anthropic_batch("ended", cancel=True, succeeded=5), BatchStatus.COMPLETED),  # cancel came too late
    ],
)
def test_anthropic_status_mapping(batch: dict[str, Any], status: BatchStatus) -> None:
    progress = anthropic_progress(batch)
    assert progress.status is status
    assert progress.provider_status == batch["processing_status"]
    assert progress.request_counts == batch["request_counts"]


def test_anthropic_all_expired_says_why() -> None:
    assert anthropic_progress(anthropic_batch("ended", expired=4)).message == (
        "All 4 requests expired before Anthropic processed them"
    )
