"""Scheduled submissions on the offline stack: files under scheduled/ become jobs, each exactly once."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from batch_gateway.intake.spec import job_id_for
from batch_gateway.storage.claims import ScheduledClaims
from batch_gateway.triggers.scheduling import ScheduledRunReport, run_scheduled_submissions
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from batch_gateway_local.stack.schedules import ScheduleTimer
from tests.stack_helpers import event, invoke

SPEC = {"provider": "anthropic", "model": "claude-3-5-haiku-latest"}


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=5)) as local:
        yield local


def put_scheduled(gateway: LocalGateway, name: str, count: int) -> None:
    lines = "".join(
        json.dumps({"custom_id": f"{name}-{n}", "user_message": f"Classify ticket {n}"}) + "\n"
        for n in range(count)
    )
    boto3.client("s3").put_object(
        Bucket=gateway.bucket, Key=f"scheduled/{name}.jsonl", Body=lines.encode(), Metadata=SPEC
    )


def results_of(gateway: LocalGateway, job_id: str) -> list[dict[str, Any]]:
    job = gateway.wait(job_id, timeout_s=120)
    assert job.status.value == "completed", job.reason
    body = boto3.client("s3").get_object(Bucket=gateway.bucket, Key=f"results/{job_id}/results.jsonl")["Body"]
    return [json.loads(line) for line in body.read().decode().splitlines()]


def overlapping_runs(gateway: LocalGateway) -> list[ScheduledRunReport]:
    """Run A lists the files and submits the first; then run B starts and runs to its end; then A goes on.

    The overlap is placed deterministically through ``time_left_ms``, which a run consults before each
    file (on Lambda it is the context's remaining time): B is the real SchedulerFunction, invoked from
    inside A as EventBridge would start it while A is still running.
    """
    calls = 0
    run_b: list[dict[str, Any]] = []

    def time_left_ms() -> int:
        nonlocal calls
        calls += 1
        if calls == 2:  # A has submitted one file and is about to take the next
            run_b.append(
                invoke(gateway, "SchedulerFunction", event("eventbridge_scheduled_submissions.json"))
            )
        return 600_000

    run_a = run_scheduled_submissions(gateway.settings(), time_left_ms=time_left_ms)
    assert len(run_b) == 1
    bucket, key = run_b[0]["report_uri"].removeprefix("s3://").split("/", 1)
    report_b = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return [run_a, ScheduledRunReport.model_validate_json(report_b)]


def test_two_overlapping_runs_submit_each_of_three_files_exactly_once(gateway: LocalGateway) -> None:
    for name, count in (("tickets-a", 3), ("tickets-b", 4), ("tickets-c", 2)):
        put_scheduled(gateway, name, count)
    boto3.client("s3").put_object(Bucket=gateway.bucket, Key="scheduled/zz-notes.txt", Body=b"notes")
    batches_before = gateway.emulator.batches_created["anthropic"]

    reports = overlapping_runs(gateway)

    submitted = [s for report in reports for s in report.submitted]
    assert sorted(s.key for s in submitted) == [
        "scheduled/tickets-a.jsonl",
        "scheduled/tickets-b.jsonl",
        "scheduled/tickets-c.jsonl",
    ]
    # Whichever run lost a file says why it left it alone.
    lost = [s for report in reports for s in report.skipped if s.key.endswith(".jsonl")]
    assert len(lost) == 3
    assert all(skip.reason.startswith("this version was already submitted at ") for skip in lost), lost
    assert [len(r.submitted) for r in reports] == [1, 2]  # A took the first file, B the other two
    assert {s.reason for r in reports for s in r.skipped if s.key.endswith(".txt")} == {
        "not a .jsonl or .ndjson or .csv file"
    }
    # Each file ran as one job whose results answer every line, in order.
    lines = {"tickets-a": 3, "tickets-b": 4, "tickets-c": 2}
    for item in submitted:
        name = Path(item.key).stem
        results = results_of(gateway, item.job_id)
        assert [r["custom_id"] for r in results] == [f"{name}-{n}" for n in range(lines[name])]
        assert all(r["error"] is None for r in results)
    assert gateway.emulator.batches_created["anthropic"] - batches_before == 3  # one batch per file


def test_a_later_run_skips_submitted_files_and_reports_why(gateway: LocalGateway) -> None:
    put_scheduled(gateway, "tickets-d", 2)
    first = invoke(gateway, "SchedulerFunction", event("eventbridge_scheduled_submissions.json"))
    again = invoke(gateway, "SchedulerFunction", event("eventbridge_scheduled_submissions.json"))

    assert first["submitted"] == 1
    assert again["submitted"] == 0
    bucket, key = again["report_uri"].removeprefix("s3://").split("/", 1)
    report = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    reasons = {s["key"]: s["reason"] for s in report["skipped"]}
    assert reasons["scheduled/tickets-d.jsonl"].startswith("this version was already submitted at ")
    first_report = boto3.client("s3").get_object(Bucket=bucket, Key=first["report_uri"].split("/", 3)[3])
    first_job = json.loads(first_report["Body"].read())["submitted"][0]["job_id"]
    assert reasons["scheduled/tickets-d.jsonl"].endswith(f"as job {first_job}")
    assert len(results_of(gateway, first_job)) == 2


def test_a_changed_file_is_a_new_version_and_is_submitted_again(gateway: LocalGateway) -> None:
    put_scheduled(gateway, "tickets-e", 2)
    invoke(gateway, "SchedulerFunction", event("eventbridge_scheduled_submissions.json"))
    put_scheduled(gateway, "tickets-e", 5)  # the user replaced the file

    body = invoke(gateway, "SchedulerFunction", event("eventbridge_scheduled_submissions.json"))

    assert body["submitted"] == 1
    bucket, key = body["report_uri"].removeprefix("s3://").split("/", 1)
    report = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert [s["key"] for s in report["submitted"]] == ["scheduled/tickets-e.jsonl"]
    assert len(results_of(gateway, report["submitted"][0]["job_id"])) == 5


def test_the_local_timer_fires_scheduled_submissions_and_the_reconciler(gateway: LocalGateway) -> None:
    put_scheduled(gateway, "tickets-timer", 2)
    out = io.StringIO()
    timer = ScheduleTimer(gateway, interval=0.2, out=out).start()
    try:
        deadline = time.monotonic() + 60
        while "ReconcilerFunction" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        timer.stop()
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"schedule: SchedulerFunction submitted=1, skipped=\d+, deferred=0", lines[0])
    assert lines[1].startswith("schedule: ReconcilerFunction checked=")
    assert gateway.run_scheduler()["submitted"] == 0  # the timer's run already took the file


def test_a_file_another_run_is_still_submitting_is_left_to_it(gateway: LocalGateway) -> None:
    put_scheduled(gateway, "tickets-claimed", 2)
    version = boto3.client("s3").head_object(Bucket=gateway.bucket, Key="scheduled/tickets-claimed.jsonl")
    claim_id = job_id_for(gateway.bucket, "scheduled/tickets-claimed.jsonl", version["VersionId"])
    # Another run holds the claim (it is copying the file right now, or died less than a lease ago).
    assert ScheduledClaims(gateway.outputs["JobsTableName"]).claim(claim_id, "s3://elsewhere", 600)

    report = run_scheduled_submissions(gateway.settings())

    assert "scheduled/tickets-claimed.jsonl" not in [s.key for s in report.submitted]
    assert {s.key: s.reason for s in report.skipped}["scheduled/tickets-claimed.jsonl"] == (
        "another scheduled run is submitting this version right now"
    )
