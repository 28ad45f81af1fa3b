"""A function whose environment lacks a variable it needs fails at once, naming the variable."""

from __future__ import annotations

import pytest

from batch_gateway.settings import (
    ProviderSettings,
    ResultsSettings,
    Settings,
    SettingsError,
    StorageSettings,
    WebhookSettings,
    get_settings,
)

STORAGE = {"DATA_BUCKET": "data", "JOBS_TABLE": "jobs", "RESULTS_TABLE": "results"}


def _environ(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name in ("DATA_BUCKET", "JOBS_TABLE", "RESULTS_TABLE", "PROVIDER_SECRET_ARN", "WEBHOOK_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_a_missing_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _environ(monkeypatch, {**STORAGE, "JOBS_TABLE": ""})
    with pytest.raises(SettingsError, match=r"JOBS_TABLE is not set; this function needs StorageSettings"):
        get_settings(StorageSettings)


def test_results_settings_need_the_results_table(monkeypatch: pytest.MonkeyPatch) -> None:
    _environ(monkeypatch, {**STORAGE, "RESULTS_TABLE": ""})
    assert get_settings(StorageSettings).jobs_table == "jobs"
    with pytest.raises(SettingsError, match=r"RESULTS_TABLE is not set"):
        get_settings(StorageSettings, ResultsSettings)


def test_every_missing_variable_of_every_group_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _environ(monkeypatch, STORAGE)
    with pytest.raises(
        SettingsError, match=r"PROVIDER_SECRET_ARN, WEBHOOK_SECRET_ARN, WEBHOOK_DELIVERIES_TABLE"
    ):
        get_settings(StorageSettings, ProviderSettings, WebhookSettings)


def test_a_complete_environment_gives_the_flat_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    _environ(monkeypatch, {**STORAGE, "PROVIDER_SECRET_ARN": "arn:secret", "CHUNK_MAX_ITEMS": "7"})
    settings = get_settings(StorageSettings, ProviderSettings)
    assert isinstance(settings, Settings)
    assert (settings.data_bucket, settings.provider_secret_arn, settings.chunk_max_items) == (
        "data",
        "arn:secret",
        7,
    )
    # A group the function does not name is not checked: its empty defaults stand.
    assert settings.webhook_secret_arn == ""


def test_a_changed_environment_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    _environ(monkeypatch, STORAGE)
    assert get_settings(StorageSettings).data_bucket == "data"
    monkeypatch.setenv("DATA_BUCKET", "other")
    assert get_settings(StorageSettings).data_bucket == "other"
