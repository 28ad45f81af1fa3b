import pytest

from batch_gateway.intake.spec import JobSpecError, job_id_for, job_spec_from_metadata
from batch_gateway.models import BatchStatus
from batch_gateway.settings import Settings
from batch_gateway.workflow.finalize import job_status, readable_failure
from batch_gateway.workflow.payloads import Backoff


def test_job_id_is_stable_per_object_version_and_a_valid_execution_name() -> None:
    first = job_id_for("bucket", "inbox/My File (2).jsonl", "v1")
    assert first == job_id_for("bucket", "inbox/My File (2).jsonl", "v1")
    assert first != job_id_for("bucket", "inbox/My File (2).jsonl", "v2")
    assert first.startswith("My-File-2-")
    assert len(first) <= 80
    assert all(ch.isalnum() or ch in "-_" for ch in first)


def test_metadata_wins_over_stack_defaults() -> None:
    settings = Settings.model_validate({"DEFAULT_PROVIDER": "openai", "DEFAULT_MODEL": "gpt-4o-mini"})
    spec = job_spec_from_metadata(
        {"provider": "anthropic", "model": "claude-x", "system-prompt": "Be brief."}, settings
    )
    assert (spec.provider, spec.model, spec.system_prompt) == ("anthropic", "claude-x", "Be brief.")
    fallback = job_spec_from_metadata({}, settings)
    assert (fallback.provider, fallback.model, fallback.system_prompt) == ("openai", "gpt-4o-mini", None)


def test_a_base64_system_prompt_carries_non_ascii_text() -> None:
    settings = Settings.model_validate({"DEFAULT_MODEL": "m"})
    spec = job_spec_from_metadata({"system-prompt-b64": "UsOpcG9uZHMgZW4gZnJhbsOnYWlzLg=="}, settings)
    assert spec.system_prompt == "Réponds en français."


def test_an_unknown_provider_is_a_readable_spec_error() -> None:
    with pytest.raises(JobSpecError, match="x-amz-meta-provider"):
        job_spec_from_metadata({"provider": "mistral", "model": "m"}, Settings())


def test_backoff_grows_to_its_cap() -> None:
    backoff = Backoff(initial_seconds=30, factor=2, max_seconds=600)
    waits = [30]
    for _ in range(7):
        waits.append(backoff.next_wait(waits[-1]))
    assert waits == [30, 60, 120, 240, 480, 600, 600, 600]
    assert Backoff(initial_seconds=0, factor=1, max_seconds=5).next_wait(0) == 1


def test_job_status_reports_the_most_severe_chunk_ending() -> None:
    assert job_status([BatchStatus.COMPLETED, BatchStatus.COMPLETED]) is BatchStatus.COMPLETED
    assert job_status([BatchStatus.COMPLETED, BatchStatus.EXPIRED]) is BatchStatus.EXPIRED
    assert job_status([BatchStatus.CANCELLED, BatchStatus.FAILED]) is BatchStatus.FAILED


def test_a_lambda_error_becomes_one_readable_sentence() -> None:
    cause = '{"errorMessage": "no API key for openai", "errorType": "ProviderError", "stackTrace": ["..."]}'
    assert (
        readable_failure({"Error": "ProviderError", "Cause": cause}) == "ProviderError: no API key for openai"
    )
    assert readable_failure({"Error": "States.Timeout", "Cause": ""}) == "States.Timeout"
    assert "without a reason" in readable_failure(None)
