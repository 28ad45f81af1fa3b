"""Function configuration, read from the environment the template sets.

The variables come in small groups (storage, results, workflow, providers, intake limits, API, events,
webhooks); each group is a model of its own. A function names the groups it needs when it reads
its settings (``get_settings(StorageSettings, WebhookSettings)``), and a variable of those groups
that the template should have set but did not fails there, on the first invocation after a cold
start, with the variable's name: not later, as an empty bucket name deep inside boto3.
``Settings`` is every group in one flat, frozen model: what the domain functions take.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

_CONFIG = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class SettingsError(RuntimeError):
    """A variable the function needs is not set: a deployment fault, named for the operator."""


class _Group(BaseModel):
    model_config = _CONFIG
    # Variables of the group that must be non-empty for a function that uses the group.
    required: ClassVar[tuple[str, ...]] = ()


class StorageSettings(_Group):
    """The data bucket and the jobs table: every function that reads or writes a job."""

    required: ClassVar[tuple[str, ...]] = ("DATA_BUCKET", "JOBS_TABLE")
    data_bucket: str = Field(default="", alias="DATA_BUCKET")
    jobs_table: str = Field(default="", alias="JOBS_TABLE")


class ResultsSettings(_Group):
    """The results table: the functions that write result rows (intake, collect, reconciler) or read them (API)."""

    required: ClassVar[tuple[str, ...]] = ("RESULTS_TABLE",)
    results_table: str = Field(default="", alias="RESULTS_TABLE")
    # Answers bigger than this are kept in S3 and referenced from the results-table row (400 KB item cap).
    result_row_max_bytes: int = Field(default=300 * 1024, gt=0, alias="RESULT_ROW_MAX_BYTES")
    # Results-table rows carry expires_at (DynamoDB TTL) this many days ahead; 0 = kept forever.
    results_retention_days: int = Field(default=0, ge=0, alias="RESULTS_RETENTION_DAYS")


class WorkflowSettings(_Group):
    """The state machine that runs a job: intake and the API start it, the reconciler resumes it."""

    required: ClassVar[tuple[str, ...]] = ("STATE_MACHINE_ARN",)
    state_machine_arn: str = Field(default="", alias="STATE_MACHINE_ARN")


class ProviderSettings(_Group):
    """How to reach the providers: the API-key secret, endpoint overrides, Azure and Bedrock set-up."""

    required: ClassVar[tuple[str, ...]] = ("PROVIDER_SECRET_ARN",)
    provider_secret_arn: str = Field(default="", alias="PROVIDER_SECRET_ARN")
    openai_base_url: str = Field(default="", alias="OPENAI_BASE_URL")
    anthropic_base_url: str = Field(default="", alias="ANTHROPIC_BASE_URL")
    # https://<resource>.openai.azure.com; empty = Azure OpenAI not configured (its jobs fail, saying so).
    azure_openai_endpoint: str = Field(default="", alias="AZURE_OPENAI_ENDPOINT")
    azure_openai_api_version: str = Field(default="2024-10-21", alias="AZURE_OPENAI_API_VERSION")
    # Bedrock batch inference: the service role Bedrock assumes to read inputs and write outputs, an
    # endpoint override (empty in AWS; the emulator offline) and the per-job minimum record count.
    bedrock_role_arn: str = Field(default="", alias="BEDROCK_ROLE_ARN")
    bedrock_endpoint_url: str = Field(default="", alias="BEDROCK_ENDPOINT_URL")
    bedrock_min_records: int = Field(default=100, ge=1, alias="BEDROCK_MIN_RECORDS")


class IntakeLimits(_Group):
    """How files are read and split, and the job spec a file without metadata gets."""

    default_provider: str = Field(default="openai", alias="DEFAULT_PROVIDER")
    default_model: str = Field(default="", alias="DEFAULT_MODEL")
    default_system_prompt: str = Field(default="", alias="DEFAULT_SYSTEM_PROMPT")
    chunk_max_items: int = Field(default=50_000, gt=0, alias="CHUNK_MAX_ITEMS")
    chunk_max_bytes: int = Field(default=100 * 1024 * 1024, gt=0, alias="CHUNK_MAX_BYTES")
    # Input caps (template MaxInputBytes / MaxLineBytes): a bigger file is rejected before it is
    # read, a longer line is an invalid line; both keep intake's memory and run time bounded.
    max_input_bytes: int = Field(default=5 * 1024**3, gt=0, alias="MAX_INPUT_BYTES")
    max_line_bytes: int = Field(default=10 * 1024**2, gt=0, alias="MAX_LINE_BYTES")
    # Opt-in (template LogContent): log text that may quote prompts, e.g. why a line was rejected.
    log_content: bool = Field(default=False, alias="LOG_CONTENT")


class ApiSettings(_Group):
    """The HTTP API's own: buckets (comma-separated) it may read a `source` from, besides uploads/."""

    api_source_buckets: str = Field(default="", alias="API_SOURCE_BUCKETS")


class EventSettings(_Group):
    """Job state-change events go to this EventBridge bus."""

    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME")


class WebhookSettings(_Group):
    """OpenAI webhooks: the signing secret and the table of deliveries already handled."""

    required: ClassVar[tuple[str, ...]] = ("WEBHOOK_SECRET_ARN", "WEBHOOK_DELIVERIES_TABLE")
    webhook_secret_arn: str = Field(default="", alias="WEBHOOK_SECRET_ARN")
    webhook_deliveries_table: str = Field(default="", alias="WEBHOOK_DELIVERIES_TABLE")


class QuotaSettings(_Group):
    """The provider quotas the stack's jobs share (the quota ledger table) and how long a chunk waits.

    OpenAI and Azure: input tokens enqueued per model; Anthropic: requests in batches being
    processed; Bedrock: submitted + in-progress jobs per model (docs/providers.md has the tiers)."""

    required: ClassVar[tuple[str, ...]] = ("QUOTA_LEDGER_TABLE",)
    quota_ledger_table: str = Field(default="", alias="QUOTA_LEDGER_TABLE")
    openai_enqueued_tokens_quota: int = Field(default=2_000_000, gt=0, alias="OPENAI_ENQUEUED_TOKENS_QUOTA")
    azure_enqueued_tokens_quota: int = Field(default=1_000_000_000, gt=0, alias="AZURE_ENQUEUED_TOKENS_QUOTA")
    anthropic_batch_requests_quota: int = Field(default=100_000, gt=0, alias="ANTHROPIC_BATCH_REQUESTS_QUOTA")
    bedrock_concurrent_jobs_quota: int = Field(default=20, gt=0, alias="BEDROCK_CONCURRENT_JOBS_QUOTA")
    # After a quota refusal the pool's usable limit stays lowered this long.
    quota_cooldown_seconds: int = Field(default=900, ge=0, alias="QUOTA_COOLDOWN_SECONDS")
    # A chunk that waited this long for room fails (its items end with a message that says so).
    capacity_max_wait_seconds: int = Field(default=7 * 24 * 3600, gt=0, alias="CAPACITY_MAX_WAIT_SECONDS")
    # A parked chunk's safety-net timeout (AwaitCapacity): the release of capacity normally wakes it.
    capacity_wait_timeout_seconds: int = Field(default=3600, gt=0, alias="CAPACITY_WAIT_TIMEOUT_SECONDS")

    def quota_for(self, provider: str) -> int:
        """The quota bought for one model of ``provider``, in its unit (tokens, requests or jobs)."""
        return {
            "openai": self.openai_enqueued_tokens_quota,
            "azure-openai": self.azure_enqueued_tokens_quota,
            "anthropic": self.anthropic_batch_requests_quota,
            "bedrock": self.bedrock_concurrent_jobs_quota,
        }.get(provider, self.openai_enqueued_tokens_quota)


class Settings(
    StorageSettings,
    ResultsSettings,
    WorkflowSettings,
    ProviderSettings,
    IntakeLimits,
    ApiSettings,
    EventSettings,
    WebhookSettings,
    QuotaSettings,
):
    """Every group in one model: what the domain functions take."""

    model_config = _CONFIG


def missing_variables(environ: dict[str, str], *groups: type[_Group]) -> list[str]:
    """The required variables of ``groups`` that ``environ`` leaves unset or empty, in order."""
    names = [name for group in groups for name in group.required]
    return [name for name in dict.fromkeys(names) if not environ.get(name)]


@lru_cache(maxsize=8)
def _cached(environ_items: frozenset[tuple[str, str]], groups: tuple[type[_Group], ...]) -> Settings:
    environ = dict(environ_items)
    missing = missing_variables(environ, *groups)
    if missing:
        needs = ", ".join(group.__name__ for group in groups)
        raise SettingsError(
            f"environment variable {', '.join(missing)} is not set; this function needs {needs} "
            "(template.yaml sets them: is the function deployed from it?)"
        )
    return Settings.model_validate(environ)


def get_settings(*groups: type[_Group]) -> Settings:
    """Settings of the running function, checked for the variables of ``groups``.

    Re-read when the environment changes, as in local runs where one process hosts every function.
    """
    return _cached(frozenset(os.environ.items()), groups)
