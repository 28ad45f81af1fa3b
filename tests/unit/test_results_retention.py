"""Results-table rows carry the TTL attribute only when a retention is configured."""

from __future__ import annotations

import time

import pytest

from batch_gateway.models import BatchResult, LLMResponse
from batch_gateway.settings import Settings
from batch_gateway.storage.results import ResultsRepository

ANSWER = BatchResult(custom_id="t1", line=1, response=LLMResponse(content="delivery"))


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # a Table handle needs one; nothing is called


def test_rows_are_kept_forever_by_default() -> None:
    settings = Settings.model_validate({})
    repository = ResultsRepository("results", "bucket", 300_000, settings.results_retention_days)
    assert "expires_at" not in repository.row_for("job", ANSWER)


def test_rows_expire_the_configured_days_after_they_are_written() -> None:
    settings = Settings.model_validate({"RESULTS_RETENTION_DAYS": "30"})
    before = int(time.time())
    row = ResultsRepository("results", "bucket", 300_000, settings.results_retention_days).row_for(
        "job", ANSWER
    )
    assert before + 30 * 86_400 <= row["expires_at"] <= int(time.time()) + 30 * 86_400


def test_a_negative_retention_is_refused() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Settings.model_validate({"RESULTS_RETENTION_DAYS": "-1"})
