"""The input policy: every kind of bad line, on_invalid=reject|skip, models per batch, provider limits.

Intake runs on moto's S3 and DynamoDB (no stack): what it stages is read back as the workflow would.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from batch_gateway.intake import chunk_writer, split
from batch_gateway.intake.checks import LineError, describe, parse_item
from batch_gateway.intake.spec import JobSpecError, job_spec_from_metadata
from batch_gateway.intake.split import NO_VALID_LINES, IntakeReport, split_into_chunks
from batch_gateway.models import BatchResult, JobSpec
from batch_gateway.providers.requests import RequestBuilder, build_openai_request
from batch_gateway.providers.types import ProviderLimits
from batch_gateway.settings import Settings
from batch_gateway.storage.keys import (
    chunk_index_key,
    chunk_requests_key,
    errors_key,
    invalid_results_key,
    results_key,
    staging_prefix,
)
from batch_gateway.storage.results import ResultsRepository, iter_staged
from tests.conftest import create_table

BUCKET = "data-bucket"
RESULTS_TABLE = "results"
JOB = "job-1"
SETTINGS = Settings(
    DATA_BUCKET=BUCKET, RESULTS_TABLE=RESULTS_TABLE, JOBS_TABLE="jobs", CHUNK_MAX_ITEMS=100, DEFAULT_MODEL="m"
)
SKIP = JobSpec(provider="openai", model="job-model", on_invalid="skip")
REJECT = JobSpec(provider="openai", model="job-model")


# ------------------------------------------------------------------ validation messages
def only_error(raw: bytes, line: int = 4) -> LineError:
    result = parse_item(line, raw)
    assert isinstance(result, list), result
    (error,) = result
    assert error.line == line
    return error


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (
            b'{"custom_id": "a", "user_message": "x", "max_tokens": "many"}',
            "max_tokens",
            "use a whole number",
        ),
        (b'{"custom_id": "a", "user_message": 5}', "user_message", "use a non-empty string"),
        (b'{"custom_id": "a", "user_message": "x", "temperature": -1}', "temperature", "from 0 to 2"),
        (b'{"custom_id": "a", "user_message": "x", "extra": [1]}', "extra", "JSON object"),
        (b'{"custom_id": "a", "user_message": "x", "promt": "y"}', "promt", "remove it"),
        (b'{"user_message": "x"}', "custom_id", "add it"),
        (b'{"custom_id": "", "user_message": "x"}', "custom_id", "give it a non-empty string"),
    ],
)
def test_each_message_names_the_field_and_says_what_to_do(raw: bytes, field: str, words: str) -> None:
    error = only_error(raw)
    assert error.field == field
    assert words in error.reason


def test_malformed_json_names_the_column_not_a_confusing_line_1() -> None:
    error = only_error(b'{"custom_id": "a", "user_message": }')
    assert error.field is None
    assert "not valid JSON" in error.reason
    assert "at column" in error.reason
    assert "line 1" not in error.reason
    assert "check quotes, commas and braces" in error.reason


def test_invalid_utf8_says_save_the_file_as_utf8() -> None:
    error = only_error('{"custom_id": "a", "user_message": "café"}'.encode("latin-1"))
    assert "not valid UTF-8" in error.reason
    assert "byte 0xe9" in error.reason
    assert "save the file as UTF-8" in error.reason
    assert "unicode code point" not in error.reason


def test_an_unusable_custom_id_does_not_name_the_error() -> None:
    assert only_error(json.dumps({"custom_id": "x" * 2000, "user_message": ""}).encode()).custom_id is None
    assert only_error(b'{"custom_id": 7, "user_message": "x"}').custom_id is None


def test_describe_prefixes_invalid_input_line_and_field() -> None:
    errors = [
        LineError(line=3, field="temperature", reason="too hot"),
        LineError(line=3, field="colour", reason="unknown"),
    ]
    assert (
        describe(errors) == "invalid input: line 3, field temperature: too hot; line 3, field colour: unknown"
    )
    assert describe([LineError(line=9, reason="not JSON")]) == "invalid input: line 9: not JSON"


# ------------------------------------------------------------------ the job spec
def test_on_invalid_comes_from_object_metadata() -> None:
    assert job_spec_from_metadata({}, SETTINGS).on_invalid == "reject"
    assert job_spec_from_metadata({"on-invalid": "skip"}, SETTINGS).on_invalid == "skip"
    assert job_spec_from_metadata({"On-Invalid": " SKIP "}, SETTINGS).on_invalid == "skip"


def test_a_bad_on_invalid_is_a_spec_error_naming_the_key() -> None:
    with pytest.raises(JobSpecError, match=r"metadata 'on-invalid' is 'ignore'.*x-amz-meta-on-invalid"):
        job_spec_from_metadata({"on-invalid": "ignore"}, SETTINGS)


# ------------------------------------------------------------------ intake on moto
@pytest.fixture
def aws(mocked_aws: None) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    create_table(RESULTS_TABLE, "job_id", "custom_id")


def lines_of(rows: list[Any]) -> bytes:
    return b"".join(
        (
            row
            if isinstance(row, bytes)
            else json.dumps(row).encode()
            if not isinstance(row, str)
            else row.encode()
        )
        + b"\n"
        for row in rows
    )


def run(data: bytes, tmp_path: Path, spec: JobSpec = SKIP, settings: Settings = SETTINGS) -> IntakeReport:
    return split_into_chunks(io.BytesIO(data), job_id=JOB, spec=spec, settings=settings, workdir=tmp_path)


def s3_lines(key: str) -> list[bytes]:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return [line for line in body.split(b"\n") if line]


def s3_keys() -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def staged_results(key: str) -> list[BatchResult]:
    results = []
    for line, payload in iter_staged(BUCKET, key):
        result = BatchResult.model_validate_json(payload)
        assert result.line == line
        results.append(result)
    return results


def staged_requests(chunk: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in s3_lines(chunk_requests_key(JOB, chunk))]


def ok(custom_id: str, **fields: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "user_message": f"question {custom_id}", **fields}


MIXED = [
    ok("a"),
    "{not json",
    "",
    ok("b", temperature=3),
    ok("c"),
    ok("d", extra={"stream": True}),
    '{"user_message": "no id"}',
    ok("e"),
]


def test_skip_stages_valid_lines_and_an_error_result_per_invalid_line(aws: None, tmp_path: Path) -> None:
    report = run(lines_of(MIXED), tmp_path)

    assert report.accepted
    assert (report.request_count, report.invalid_count, report.line_count) == (3, 4, 8)
    assert [r["custom_id"] for r in staged_requests(1)] == ["a", "c", "e"]
    results = staged_results(invalid_results_key(JOB))
    assert [(r.line, r.custom_id) for r in results] == [(2, "line-2"), (4, "b"), (6, "d"), (7, "line-7")]
    assert all(r.error and r.error.startswith(f"invalid input: line {r.line}") for r in results)
    assert results[1].error is not None
    assert "field temperature" in results[1].error
    assert results[2].error is not None
    assert "field extra" in results[2].error
    assert "may not set 'stream'" in results[2].error
    errors = [json.loads(line) for line in s3_lines(errors_key(JOB))]
    assert [e["line"] for e in errors] == [2, 4, 6, 7]
    rows = {r["custom_id"]: r for r in ResultsRepository(RESULTS_TABLE, BUCKET, 1000).query(JOB)}
    assert sorted(rows) == ["b", "d", "line-2", "line-7"]
    assert rows["b"]["ok"] is False
    assert rows["b"]["line"] == 4
    assert rows["b"]["error"] == results[1].error


def test_reject_refuses_the_same_file_and_stages_nothing(aws: None, tmp_path: Path) -> None:
    report = run(lines_of(MIXED), tmp_path, spec=REJECT)

    assert not report.accepted
    assert report.reason is not None
    assert report.reason.startswith("rejected: 4 invalid line(s)")
    assert s3_keys() == [errors_key(JOB)]


def test_duplicate_ids_reject_the_file_even_with_skip_naming_both_lines(aws: None, tmp_path: Path) -> None:
    report = run(lines_of([ok("a"), "oops", ok("b"), ok("a")]), tmp_path)

    assert not report.accepted
    assert report.reason is not None
    assert report.reason.startswith("rejected: 1 duplicate custom_id(s) — line 4: duplicate custom_id 'a'")
    assert "first used on line 1" in report.reason
    assert "even with on-invalid=skip" in report.reason
    assert s3_keys() == [errors_key(JOB)]  # nothing staged, no results rows
    assert list(ResultsRepository(RESULTS_TABLE, BUCKET, 1000).query(JOB)) == []


def test_an_invalid_lines_readable_id_counts_for_duplicates(aws: None, tmp_path: Path) -> None:
    report = run(lines_of([ok("a", temperature=9), ok("a")]), tmp_path)
    assert not report.accepted
    assert report.reason is not None
    assert "first used on line 1" in report.reason


@pytest.mark.parametrize("data", [b"", b"\n\n  \r\n", b"\xef\xbb\xbf\r\n"])
@pytest.mark.parametrize("spec", [SKIP, REJECT])
def test_a_file_without_items_is_rejected_with_nothing_to_submit(
    aws: None, tmp_path: Path, data: bytes, spec: JobSpec
) -> None:
    report = run(data, tmp_path, spec=spec)
    assert not report.accepted
    assert report.invalid_count == 0
    assert report.reason is not None
    assert report.reason.startswith("rejected: nothing to submit")


def test_skip_with_no_valid_line_writes_every_result_and_submits_nothing(aws: None, tmp_path: Path) -> None:
    report = run(lines_of(["[1]", ok("x", max_tokens=0), ""]), tmp_path)

    assert not report.accepted
    assert (report.request_count, report.invalid_count) == (0, 2)
    assert report.reason is not None
    assert report.reason.startswith(NO_VALID_LINES)
    results = [BatchResult.model_validate_json(line) for line in s3_lines(results_key(JOB))]
    assert [(r.line, r.custom_id) for r in results] == [(1, "line-1"), (2, "x")]
    assert not any(k.startswith(staging_prefix(JOB)) for k in s3_keys())


def test_blank_lines_crlf_and_a_bom_are_accepted(aws: None, tmp_path: Path) -> None:
    data = (
        b"\xef\xbb\xbf"
        + b"\r\n".join([json.dumps(ok("a")).encode(), b"", b"   ", json.dumps(ok("b")).encode()])
        + b"\r\n"
    )

    report = run(data, tmp_path, spec=REJECT)

    assert report.accepted
    assert (report.request_count, report.line_count) == (2, 4)
    index = [json.loads(line) for line in s3_lines(chunk_index_key(JOB, 1))]
    assert [(i["line"], i["custom_id"]) for i in index] == [(1, "a"), (4, "b")]


def test_an_invalid_utf8_line_is_named_and_skipped(aws: None, tmp_path: Path) -> None:
    data = lines_of([ok("a")]) + '{"custom_id": "b", "user_message": "café"}\n'.encode("cp1252")
    report = run(data, tmp_path)
    assert report.accepted
    (result,) = staged_results(invalid_results_key(JOB))
    assert (result.line, result.custom_id) == (2, "line-2")
    assert result.error is not None
    assert "line 2" in result.error
    assert "save the file as UTF-8" in result.error


def test_a_fallback_id_never_collides_with_a_real_custom_id(aws: None, tmp_path: Path) -> None:
    run(lines_of([ok("q"), "{bad", ok("line-2")]), tmp_path)
    (result,) = staged_results(invalid_results_key(JOB))
    assert result.custom_id == "line-2-invalid"


def test_items_of_other_models_get_their_own_contiguously_numbered_batches(aws: None, tmp_path: Path) -> None:
    settings = SETTINGS.model_copy(update={"chunk_max_items": 2})
    rows = [
        ok("1"),
        ok("2", extra={"model": "big"}),
        ok("3"),
        ok("4", extra={"model": "big"}),
        ok("5"),
        ok("6", extra={"model": "big"}),
        ok("7", extra={"model": ""}),
    ]
    report = run(lines_of(rows), tmp_path, settings=settings)

    assert report.accepted
    assert report.invalid_count == 1  # an empty extra.model is a line error, not a silent default
    assert [c.chunk for c in report.chunks] == [1, 2, 3, 4]
    by_chunk = {c.chunk: (c.model, [r["custom_id"] for r in staged_requests(c.chunk)]) for c in report.chunks}
    assert by_chunk == {
        1: ("job-model", ["1", "3"]),
        2: ("big", ["2", "4"]),
        3: ("job-model", ["5"]),
        4: ("big", ["6"]),
    }
    for chunk, (model, _) in by_chunk.items():
        assert {r["body"]["model"] for r in staged_requests(chunk)} == {model}


def test_open_chunks_stay_bounded_however_many_models(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunk_writer, "MAX_OPEN_CHUNKS", 2)
    rows = [ok(str(n), extra={"model": f"m{n % 3}"}) for n in range(9)]
    report = run(lines_of(rows), tmp_path)

    assert report.accepted
    assert report.request_count == 9
    assert [c.chunk for c in report.chunks] == list(range(1, len(report.chunks) + 1))
    staged = sorted(r["custom_id"] for c in report.chunks for r in staged_requests(c.chunk))
    assert staged == sorted(str(n) for n in range(9))
    for c in report.chunks:
        assert {r["body"]["model"] for r in staged_requests(c.chunk)} == {c.model}


@pytest.fixture
def small_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenAI with per-batch limits small enough to hit: 3 requests, 2,000 bytes."""
    tiny = RequestBuilder("openai", ProviderLimits(max_requests=3, max_bytes=2000), build_openai_request)
    monkeypatch.setattr(split, "request_builder_for", lambda provider: tiny)


def test_a_file_beyond_the_providers_request_limit_is_split(
    aws: None, tmp_path: Path, small_provider: None
) -> None:
    report = run(lines_of([ok(str(n)) for n in range(7)]), tmp_path)
    assert report.accepted
    assert [c.item_count for c in report.chunks] == [3, 3, 1]


def test_a_file_beyond_the_byte_limit_is_split(aws: None, tmp_path: Path) -> None:
    settings = SETTINGS.model_copy(update={"chunk_max_bytes": 500})
    report = run(lines_of([ok(str(n)) for n in range(10)]), tmp_path, settings=settings)
    assert report.accepted
    assert len(report.chunks) > 1
    assert all(c.byte_count <= 500 for c in report.chunks)
    assert sum(c.item_count for c in report.chunks) == 10


def test_a_line_larger_than_the_provider_accepts_is_a_line_error(
    aws: None, tmp_path: Path, small_provider: None
) -> None:
    report = run(lines_of([ok("small"), ok("huge", user_message="x" * 3000)]), tmp_path)
    assert report.accepted
    (result,) = staged_results(invalid_results_key(JOB))
    assert result.custom_id == "huge"
    assert result.error is not None
    assert "line 2, field user_message" in result.error
    assert "more than openai accepts in one batch" in result.error
    assert "shorten user_message" in result.error


def test_the_cli_takes_on_invalid() -> None:
    from batch_gateway_local.cli import commands as cli

    base = ["local", "run", "f.jsonl", "--provider", "openai", "--model", "m", "--out", "o"]
    assert cli._parser().parse_args(base).on_invalid == "reject"
    assert cli._parser().parse_args([*base, "--on-invalid", "skip"]).on_invalid == "skip"
