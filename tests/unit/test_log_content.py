"""LogContent: a rejection's reason (which may quote the input) reaches the logs only when opted in."""

from __future__ import annotations

from batch_gateway.intake.intake_object import IntakeOutcome
from batch_gateway.settings import Settings

QUOTING = IntakeOutcome(
    job_id="j",
    status="rejected",
    reason="line 1: 'user_message': Input should be a valid string (got [\"secret\"])",
)


def test_content_logging_is_off_by_default() -> None:
    assert Settings.model_validate({}).log_content is False
    assert "secret" not in (QUOTING.loggable_reason(log_content=False) or "")


def test_opting_in_logs_the_whole_reason() -> None:
    settings = Settings.model_validate({"LOG_CONTENT": "true"})
    assert QUOTING.loggable_reason(settings.log_content) == QUOTING.reason


def test_reasons_that_quote_nothing_are_always_logged() -> None:
    duplicate = IntakeOutcome(job_id="j", status="duplicate", reason="this object version already has a job")
    assert duplicate.loggable_reason(log_content=False) == duplicate.reason
