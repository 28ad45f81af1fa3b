"""The input policy end to end on the offline stack: on-invalid=skip, models per batch, odd encodings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from ractogateway.batch._models import BatchResult as ReferenceBatchResult

from batch_gateway.intake.spec import job_id_for
from batch_gateway.models import JobSpec, JobSummary
from batch_gateway_local.emulator import emulated_answer
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=3, stack_name="batch-gateway-input-policy")) as local:
        yield local


def run_job(
    gateway: LocalGateway, path: Path, spec: JobSpec, out: Path
) -> tuple[JobSummary, dict[str, Path]]:
    job_id = gateway.submit_file(path, spec)
    job = gateway.wait(job_id, timeout_s=300)
    return job, gateway.export(job_id, out)


def created(gateway: LocalGateway, before: dict[str, int]) -> dict[str, int]:
    """Provider batches created since ``before``, by provider (providers with none left out)."""
    counts = {name: count - before.get(name, 0) for name, count in gateway.emulator.batches_created.items()}
    return {name: count for name, count in counts.items() if count}


def ok(custom_id: str, **fields: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "user_message": f"Summarise ticket {custom_id}.", **fields}


def test_skip_answers_valid_lines_and_gives_each_invalid_line_an_error_result(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    rows: list[dict[str, Any] | str] = [
        ok("t1"),
        "{not json",  # line 2
        ok("t3"),
        "",  # line 4: blank, ignored
        ok("t5", temperature=7),  # line 5
        ok("t6"),
        ok("t7", extra={"messages": []}),  # line 7
        '{"user_message": "who am I?"}',  # line 8
        ok("t9"),
        ok("t10"),
        ok("t11", colour="red"),  # line 11
        ok("t12"),
        ok("t13"),
    ]
    source = write_jsonl(tmp_path / "mixed.jsonl", rows)
    before = gateway.emulator.batches_created

    job, files = run_job(
        gateway, source, JobSpec(provider="openai", model="m", on_invalid="skip"), tmp_path / "out"
    )

    non_blank = [n for n, row in enumerate(rows, 1) if row != ""]
    invalid = {2: "line-2", 5: "t5", 7: "t7", 8: "line-8", 11: "t11"}
    assert job.status.value == "completed"
    assert job.reason is None
    assert (job.request_count, job.invalid_count, job.chunk_count) == (7, 5, 3)
    assert created(gateway, before) == {"openai": 3}  # 3 + 3 + 1 valid items
    results = read_jsonl(files["results.jsonl"])
    assert [r["line"] for r in results] == non_blank
    for result in results:
        ReferenceBatchResult.model_validate(result)
        line = result["line"]
        if line in invalid:
            assert result["custom_id"] == invalid[line]
            assert result["response"] is None
            assert result["error"].startswith(f"invalid input: line {line}")
        else:
            assert result["custom_id"] == rows[line - 1]["custom_id"]  # type: ignore[index]
            assert result["error"] is None
    by_line = {r["line"]: r["error"] for r in results}
    assert "not valid JSON" in by_line[2]
    assert "field temperature" in by_line[5]
    assert "field extra" in by_line[7]
    assert "'messages'" in by_line[7]
    assert "field custom_id" in by_line[8]
    assert "is required" in by_line[8]
    assert "unknown field 'colour'" in by_line[11]
    summary = json.loads(files["summary.json"].read_text())
    assert summary["counts"]["succeeded"] == 7
    assert summary["counts"]["invalid"] == 5
    assert sum(summary["counts"].values()) == len(non_blank)
    assert summary["invalid_count"] == 5
    assert [e["line"] for e in read_jsonl(files["errors.jsonl"])] == sorted(invalid)
    job_row = json.loads(files["job.json"].read_text())
    assert job_row["status"] == "completed"
    assert job_row["counts"] == summary["counts"]
    assert job_row["invalid_count"] == 5
    table = {r["custom_id"]: r for r in read_jsonl(files["results-table.jsonl"])}
    assert len(table) == len(non_blank)
    assert {cid for cid, r in table.items() if not r["ok"]} == set(invalid.values())
    assert table["line-8"]["line"] == 8
    assert table["line-8"]["error"] == by_line[8]


def test_two_models_in_one_file_become_one_provider_batch_per_model(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    rows = [ok("a1"), ok("b1", extra={"model": "model-b"}), ok("a2"), ok("b2", extra={"model": "model-b"})]
    source = write_jsonl(tmp_path / "models.jsonl", rows)
    before = gateway.emulator.batches_created

    job_id = gateway.submit_file(source, JobSpec(provider="openai", model="model-a"))
    job = gateway.wait(job_id, timeout_s=300)
    files = gateway.export(job_id, tmp_path / "out")

    assert job.status.value == "completed"
    assert job.model == "model-a"
    assert created(gateway, before) == {"openai": 2}
    chunks = sorted(gateway.progress(job_id).chunks, key=lambda c: c["chunk"])
    assert [(c["chunk"], c["model"], c["item_count"]) for c in chunks] == [
        (1, "model-a", 2),
        (2, "model-b", 2),
    ]
    results = read_jsonl(files["results.jsonl"])
    assert [r["custom_id"] for r in results] == ["a1", "b1", "a2", "b2"]
    for row, result in zip(rows, results, strict=True):
        model = row.get("extra", {}).get("model", "model-a")
        assert result["response"]["content"] == emulated_answer(model, None, row["user_message"], 4096)


def test_duplicate_ids_reject_the_whole_file_even_with_skip(gateway: LocalGateway, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "dups.jsonl", [ok("x"), "broken", ok("y"), ok("x")])
    before = gateway.emulator.batches_created

    job, files = run_job(
        gateway, source, JobSpec(provider="anthropic", model="m", on_invalid="skip"), tmp_path / "out"
    )

    assert job.status.value == "failed"
    assert job.reason is not None
    assert "line 4: duplicate custom_id 'x' (first used on line 1)" in job.reason
    assert "on-invalid=skip" in job.reason
    assert created(gateway, before) == {}
    assert "results.jsonl" not in files
    assert [e["line"] for e in read_jsonl(files["errors.jsonl"])] == [2, 4]


def test_skip_with_no_valid_line_fails_with_one_error_result_per_line(
    gateway: LocalGateway, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "hopeless.jsonl", ["[]", "", ok("z", max_tokens=-1)])
    before = gateway.emulator.batches_created

    job, files = run_job(
        gateway, source, JobSpec(provider="openai", model="m", on_invalid="skip"), tmp_path / "out"
    )

    assert job.status.value == "failed"
    assert job.reason is not None
    assert job.reason.startswith("no valid lines to submit")
    assert (job.request_count, job.invalid_count, job.chunk_count) == (0, 2, 0)
    assert created(gateway, before) == {}
    results = read_jsonl(files["results.jsonl"])
    assert [(r["line"], r["custom_id"]) for r in results] == [(1, "line-1"), (3, "z")]
    assert "field max_tokens" in results[1]["error"]
    summary = json.loads(files["summary.json"].read_text())
    assert summary["counts"]["invalid"] == 2
    assert sum(summary["counts"].values()) == 2
    assert len(read_jsonl(files["results-table.jsonl"])) == 2


def test_a_crlf_file_with_a_bom_is_accepted(gateway: LocalGateway, tmp_path: Path) -> None:
    source = tmp_path / "windows.jsonl"
    source.write_bytes(
        b"\xef\xbb\xbf" + b"\r\n".join(json.dumps(ok(f"w{n}")).encode() for n in range(4)) + b"\r\n\r\n"
    )

    job, files = run_job(gateway, source, JobSpec(provider="anthropic", model="m"), tmp_path / "out")

    assert job.status.value == "completed"
    assert [r["custom_id"] for r in read_jsonl(files["results.jsonl"])] == ["w0", "w1", "w2", "w3"]


def test_an_invalid_utf8_line_is_rejected_naming_the_line(gateway: LocalGateway, tmp_path: Path) -> None:
    source = tmp_path / "latin1.jsonl"
    source.write_bytes(
        json.dumps(ok("fine")).encode()
        + b"\n"
        + '{"custom_id": "café", "user_message": "crème brûlée"}\n'.encode("latin-1")
    )

    job, files = run_job(gateway, source, JobSpec(provider="openai", model="m"), tmp_path / "out")

    assert job.status.value == "failed"
    assert job.reason is not None
    assert "line 2: the line is not valid UTF-8" in job.reason
    (error,) = read_jsonl(files["errors.jsonl"])
    assert error["line"] == 2
    assert "save the file as UTF-8" in error["reason"]


def test_a_bad_on_invalid_metadata_value_is_a_spec_error(gateway: LocalGateway, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "spec.jsonl", [ok("s")])
    # Uploaded by hand: JobSpec itself would refuse the value.
    job_id = gateway.submit_file(source, JobSpec(provider="openai", model="m"), key="inbox/spec-ok.jsonl")
    boto3.client("s3").put_object(
        Bucket=gateway.bucket,
        Key="inbox/spec.jsonl",
        Body=source.read_bytes(),
        Metadata={"provider": "openai", "model": "m", "on-invalid": "maybe"},
    )
    version = boto3.client("s3").head_object(Bucket=gateway.bucket, Key="inbox/spec.jsonl")["VersionId"]
    bad = gateway.wait(job_id_for(gateway.bucket, "inbox/spec.jsonl", version), timeout_s=60)

    assert bad.status.value == "failed"
    assert bad.reason is not None
    assert "on-invalid" in bad.reason
    assert "'maybe'" in bad.reason
    assert gateway.wait(job_id, timeout_s=300).status.value == "completed"  # the same file, a good spec
