"""Function configuration, read once from the environment the template sets."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    data_bucket: str = Field(default="", alias="DATA_BUCKET")
    jobs_table: str = Field(default="", alias="JOBS_TABLE")
    results_table: str = Field(default="", alias="RESULTS_TABLE")
    state_machine_arn: str = Field(default="", alias="STATE_MACHINE_ARN")
    provider_secret_arn: str = Field(default="", alias="PROVIDER_SECRET_ARN")
    openai_base_url: str = Field(default="", alias="OPENAI_BASE_URL")
    anthropic_base_url: str = Field(default="", alias="ANTHROPIC_BASE_URL")
    # Job state-change events go to this EventBridge bus (job_events); webhooks wake waiting chunks.
    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME")
    webhook_secret_arn: str = Field(default="", alias="WEBHOOK_SECRET_ARN")
    webhook_deliveries_table: str = Field(default="", alias="WEBHOOK_DELIVERIES_TABLE")
    # https://<resource>.openai.azure.com; empty = Azure OpenAI not configured (its jobs fail, saying so).
    azure_openai_endpoint: str = Field(default="", alias="AZURE_OPENAI_ENDPOINT")
    azure_openai_api_version: str = Field(default="2024-10-21", alias="AZURE_OPENAI_API_VERSION")
    # Bedrock batch inference: the service role Bedrock assumes to read inputs and write outputs, an
    # endpoint override (empty in AWS; the emulator offline) and the per-job minimum record count.
    bedrock_role_arn: str = Field(default="", alias="BEDROCK_ROLE_ARN")
    bedrock_endpoint_url: str = Field(default="", alias="BEDROCK_ENDPOINT_URL")
    bedrock_min_records: int = Field(default=100, ge=1, alias="BEDROCK_MIN_RECORDS")
    default_provider: str = Field(default="openai", alias="DEFAULT_PROVIDER")
    default_model: str = Field(default="", alias="DEFAULT_MODEL")
    default_system_prompt: str = Field(default="", alias="DEFAULT_SYSTEM_PROMPT")
    # Buckets (comma-separated) the HTTP API may read a `source` from, besides the data bucket's uploads/.
    api_source_buckets: str = Field(default="", alias="API_SOURCE_BUCKETS")
    chunk_max_items: int = Field(default=10_000, gt=0, alias="CHUNK_MAX_ITEMS")
    chunk_max_bytes: int = Field(default=100 * 1024 * 1024, gt=0, alias="CHUNK_MAX_BYTES")
    # Answers bigger than this are kept in S3 and referenced from the results-table row (400 KB item cap).
    result_row_max_bytes: int = Field(default=300 * 1024, gt=0, alias="RESULT_ROW_MAX_BYTES")
    # Results-table rows carry expires_at (DynamoDB TTL) this many days ahead; 0 = kept forever.
    results_retention_days: int = Field(default=0, ge=0, alias="RESULTS_RETENTION_DAYS")
    # Input caps (template MaxInputBytes / MaxLineBytes): a bigger file is rejected before it is
    # read, a longer line is an invalid line; both keep intake's memory and run time bounded.
    max_input_bytes: int = Field(default=5 * 1024**3, gt=0, alias="MAX_INPUT_BYTES")
    max_line_bytes: int = Field(default=10 * 1024**2, gt=0, alias="MAX_LINE_BYTES")
    # Opt-in (template LogContent): log text that may quote prompts, e.g. why a line was rejected.
    log_content: bool = Field(default=False, alias="LOG_CONTENT")


@lru_cache(maxsize=1)
def _cached(environ_items: frozenset[tuple[str, str]]) -> Settings:
    return Settings.model_validate(dict(environ_items))


def get_settings() -> Settings:
    """Settings of the running function (re-read when the environment changes, as in local runs)."""
    return _cached(frozenset(os.environ.items()))
