"""Pure logic of scheduled submissions and the reconciler."""

from __future__ import annotations

import pytest

from batch_gateway.intake.spec import job_id_for
from batch_gateway.models import BatchStatus, JobSummary
from batch_gateway.storage.chunk_row import latest_step
from batch_gateway.triggers.reconciliation import ReconcileOptions
from batch_gateway.triggers.resume import ended_by_catch_all, execution_name
from batch_gateway.triggers.scheduling import ScheduledFile, inbox_key_for


def job(**fields: object) -> JobSummary:
    base: dict[str, object] = {
        "job_id": "j",
        "provider": "openai",
        "model": "m",
        "status": BatchStatus.IN_PROGRESS,
        "created_at": 0.0,
    }
    return JobSummary.model_validate(base | fields)


@pytest.mark.parametrize(
    ("row", "step"),
    [
        ({"chunk": 1, "status": "staged"}, (0, 0)),
        ({"batch_r0_a0": "b1"}, (0, 0)),
        ({"batch_r0_a0": "b1", "batch_r0_a1_intent_at": 5.0}, (0, 1)),  # intent recorded, batch not yet
        ({"batch_r0_a0": "b1", "batch_r0_a2": "b3", "batch_r1_a0": "b4"}, (1, 0)),
        ({"batch_r10_a0": "b", "batch_r2_a5": "c"}, (10, 0)),  # numbers, not strings
    ],
)
def test_latest_step_is_the_last_recorded_round_and_attempt(
    row: dict[str, object], step: tuple[int, int]
) -> None:
    assert latest_step(row) == step


def test_executions_are_named_after_the_job_then_numbered_per_resume() -> None:
    assert execution_name("tickets-0123456789abcdef", 0) == "tickets-0123456789abcdef"
    assert execution_name("tickets-0123456789abcdef", 2) == "tickets-0123456789abcdef-resume-2"
    longest_job_id = "x" * 40 + "-" + "0" * 16
    assert len(execution_name(longest_job_id, 99)) <= 80  # Step Functions' limit on execution names


def test_only_a_job_the_workflow_catch_all_ended_counts_as_ended_by_it() -> None:
    assert ended_by_catch_all(job(status=BatchStatus.FAILED, chunk_count=2))
    # Finalize wrote results (a failed provider batch is a real ending), or intake rejected the file.
    assert not ended_by_catch_all(job(status=BatchStatus.FAILED, chunk_count=2, results_uri="s3://b/r"))
    assert not ended_by_catch_all(job(status=BatchStatus.FAILED, chunk_count=0))
    assert not ended_by_catch_all(job(status=BatchStatus.COMPLETED, chunk_count=2))


def test_reconcile_options_come_from_the_environment_the_template_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "3")
    monkeypatch.setenv("STUCK_AFTER_HOURS", "30")
    monkeypatch.setenv("MAX_RESUMES", "1")
    options = ReconcileOptions.from_environ()
    assert (options.retention_days, options.stuck_after_hours, options.max_resumes) == (3, 30, 1)
    assert options.lookback_seconds == 10 * 24 * 3600  # retention plus a week


def test_each_scheduled_version_is_copied_to_its_own_inbox_key_keeping_its_name() -> None:
    first = ScheduledFile(key="scheduled/team a/tickets.jsonl", version_id="v1", etag="e", size=1)
    second = first.model_copy(update={"version_id": "v2"})
    keys = [inbox_key_for(f, job_id_for("bucket", f.key, f.version)) for f in (first, second)]
    assert keys[0] != keys[1]
    assert all(k.startswith("inbox/scheduled/") and k.endswith("/team a/tickets.jsonl") for k in keys)
    assert ScheduledFile(key="scheduled/x.jsonl", version_id=None, etag="abc", size=1).version == "abc"
