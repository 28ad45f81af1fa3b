"""Bedrock pure logic: record bodies, recordId mapping, job states, output records, submission ids."""

from __future__ import annotations

import json
import re

import pytest

from batch_gateway.intake.checks import parse_fields
from batch_gateway.models import BatchItem, BatchStatus, FinishReason, JobSpec
from batch_gateway.providers.bedrock.batch import output_prefix, submission_ids
from batch_gateway.providers.bedrock.parsing import (
    BEDROCK_STATUS,
    bedrock_progress,
    decode_record_line,
    parse_bedrock_line,
)
from batch_gateway.providers.custom_ids import bedrock_record_id
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.line_encoder import LineEncoder
from batch_gateway.providers.requests import encode_request_line, request_builder_for

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
SPEC = JobSpec(provider="bedrock", model=MODEL, system_prompt="Be brief.")
# Output records in the documented format (InvokeModel body of Claude as modelOutput; error records).
SUCCESS_LINE = {
    "recordId": "R0000000001",
    "modelInput": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": []},
    "modelOutput": {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": '{"answer": 42}'}],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 100},
    },
}
ERROR_LINE = {
    "recordId": "R0000000002",
    "modelInput": {},
    "error": {"errorCode": 400, "errorMessage": "bad request"},
}


def test_a_record_is_the_claude_messages_body_without_model_with_bedrocks_version() -> None:
    item = BatchItem(
        custom_id="a b", user_message="Hello?", max_tokens=64, temperature=0.3, extra={"top_k": 5}
    )
    record = request_builder_for("bedrock").build_request("R0000000007", item, SPEC)

    assert record == {
        "recordId": "R0000000007",
        "modelInput": {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Hello?"}],
            "system": "Be brief.",
            "temperature": 0.3,
            "top_k": 5,
        },
    }


def test_a_model_outside_the_claude_family_is_refused_with_what_to_use() -> None:
    item = BatchItem(custom_id="x", user_message="hi", extra={"model": "meta.llama3-70b-instruct-v1:0"})
    with pytest.raises(ValueError, match="not an Anthropic Claude model on Bedrock"):
        request_builder_for("bedrock").build_request("R0000000001", item, SPEC)


def test_record_ids_are_eleven_alphanumeric_characters_from_the_line_even_for_safe_user_ids() -> None:
    builder = request_builder_for("bedrock")
    for custom_id, line in (("ticket-1", 1), ("a.b c", 42), ("x" * 300, 9_999_999_999)):
        record_id = builder.provider_custom_id(custom_id, line)
        assert re.fullmatch(r"[A-Za-z0-9]{11}", record_id)
    assert bedrock_record_id("anything", 42) == "R0000000042"
    with pytest.raises(ValueError, match="1-based"):
        bedrock_record_id("x", 0)


def test_intakes_fast_line_encoder_gives_the_same_record_as_the_builder() -> None:
    builder = request_builder_for("bedrock")
    raw = b'{"custom_id": "safe-id", "user_message": "Why?", "temperature": 0.2}'
    fields = parse_fields(1, raw)
    assert isinstance(fields, dict)
    fast = LineEncoder(builder, SPEC).encode("R0000000001", fields, raw)
    item = BatchItem(custom_id="safe-id", user_message="Why?", temperature=0.2)
    assert fast == encode_request_line(builder.build_request("R0000000001", item, SPEC))
    assert json.loads(fast)["recordId"] == "R0000000001"


@pytest.mark.parametrize(
    ("provider_status", "status"),
    [
        ("Submitted", BatchStatus.PENDING),
        ("Validating", BatchStatus.PENDING),
        ("Scheduled", BatchStatus.PENDING),
        ("InProgress", BatchStatus.IN_PROGRESS),
        ("Completed", BatchStatus.COMPLETED),
        ("PartiallyCompleted", BatchStatus.COMPLETED),
        ("Failed", BatchStatus.FAILED),
        ("Stopping", BatchStatus.CANCELLING),
        ("Stopped", BatchStatus.CANCELLED),
        ("Expired", BatchStatus.EXPIRED),
        ("SomethingNew", BatchStatus.IN_PROGRESS),  # unknown: keep polling
    ],
)
def test_every_job_status_maps_to_a_batch_status(provider_status: str, status: BatchStatus) -> None:
    assert bedrock_progress({"status": provider_status}).status is status


def test_every_documented_status_is_mapped() -> None:
    documented = {"Submitted", "InProgress", "Completed", "Failed", "Stopping", "Stopped"}
    documented |= {"PartiallyCompleted", "Expired", "Validating", "Scheduled"}
    assert set(BEDROCK_STATUS) == documented


def test_a_failed_job_carries_bedrocks_message_and_the_record_counts() -> None:
    job = {
        "status": "Failed",
        "message": "Insufficient permissions on the output bucket.",
        "totalRecordCount": 120,
    }
    progress = bedrock_progress(job)
    assert progress.message == "Bedrock failed the job: Insufficient permissions on the output bucket."
    assert progress.request_counts == {"total": 120}


def test_a_model_output_record_becomes_an_answer_without_the_prompt_in_raw() -> None:
    result = parse_bedrock_line(SUCCESS_LINE)

    assert result.outcome == "succeeded"
    assert result.provider_custom_id == "R0000000001"
    assert result.response is not None
    assert result.response.parsed == {"answer": 42}
    assert result.response.finish_reason is FinishReason.LENGTH
    assert result.response.usage == {"prompt_tokens": 12, "completion_tokens": 100, "total_tokens": 112}
    assert "modelInput" not in result.raw


@pytest.mark.parametrize(
    ("error", "text", "retryable"),
    [
        ({"errorCode": 400, "errorMessage": "bad request"}, "HTTP 400: bad request", False),
        ({"errorCode": "429", "errorMessage": "Too many requests"}, "HTTP 429: Too many requests", True),
        ({"errorCode": 500, "errorMessage": "Internal error"}, "HTTP 500: Internal error", True),
        ({"errorMessage": "no code"}, "no code", False),
    ],
)
def test_an_error_record_reads_as_status_and_message(
    error: dict[str, object], text: str, retryable: bool
) -> None:
    result = parse_bedrock_line({**ERROR_LINE, "error": error})
    assert result.outcome == "errored"
    assert result.error == text
    assert result.retryable is retryable


def test_a_record_with_neither_output_nor_error_is_an_error_not_a_crash() -> None:
    result = parse_bedrock_line({"recordId": "R0000000003"})
    assert result.outcome == "errored"
    assert result.error is not None
    assert "neither" in result.error


def test_unreadable_output_lines_are_readable_errors() -> None:
    with pytest.raises(ProviderError, match="line 4 has no recordId"):
        decode_record_line('{"modelOutput": {}}', source="out", number=4)
    with pytest.raises(ProviderError, match="line 5 is not valid JSON"):
        decode_record_line("{", source="out", number=5)


def test_submission_ids_are_stable_per_attempt_and_fit_bedrocks_patterns() -> None:
    metadata = {"batch_gateway_job": "tickets-0123456789abcdef", "chunk": "12", "round": "1", "attempt": "0"}
    name, token = submission_ids("my-bucket", metadata)

    assert (name, token) == submission_ids("my-bucket", dict(metadata))
    assert submission_ids("my-bucket", {**metadata, "attempt": "1"})[1] != token
    assert re.fullmatch(r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}", name)
    assert len(name) <= 63
    assert re.fullmatch(r"[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}", token)
    assert output_prefix("job-1", metadata) == "staging/job-1/bedrock-output/chunk-0012-r1-a0/"


def test_the_output_file_is_found_where_bedrock_writes_it() -> None:
    from batch_gateway.providers.bedrock.batch import BedrockBatchProvider

    provider = BedrockBatchProvider(bucket="b", role_arn="arn:aws:iam::123456789012:role/r")
    job = {
        "jobArn": "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdef123456",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://b/staging/j/chunk-0001.requests.jsonl"}},
        "outputDataConfig": {
            "s3OutputDataConfig": {"s3Uri": "s3://b/staging/j/bedrock-output/chunk-0001-r0-a0/"}
        },
    }
    assert provider.output_location(job) == (
        "b",
        "staging/j/bedrock-output/chunk-0001-r0-a0/abcdef123456/chunk-0001.requests.jsonl.out",
    )


def test_bedrock_is_configured_from_settings_without_reading_the_provider_secret() -> None:
    from batch_gateway.providers.bedrock.batch import BedrockBatchProvider
    from batch_gateway.providers.registry import provider_for
    from batch_gateway.settings import Settings

    settings = Settings.model_validate(
        {
            # A secret that does not exist: reading it would fail, so success proves it is not read.
            "PROVIDER_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:none",
            "DATA_BUCKET": "data-bucket",
            "BEDROCK_ROLE_ARN": "arn:aws:iam::123456789012:role/bedrock-batch",
            "BEDROCK_MIN_RECORDS": "7",
        }
    )
    provider = provider_for("bedrock", settings)

    assert isinstance(provider, BedrockBatchProvider)
    assert provider.min_records == 7
