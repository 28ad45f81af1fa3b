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
    default_provider: str = Field(default="openai", alias="DEFAULT_PROVIDER")
    default_model: str = Field(default="", alias="DEFAULT_MODEL")
    default_system_prompt: str = Field(default="", alias="DEFAULT_SYSTEM_PROMPT")
    # Buckets (comma-separated) the HTTP API may read a `source` from, besides the data bucket's uploads/.
    api_source_buckets: str = Field(default="", alias="API_SOURCE_BUCKETS")
    chunk_max_items: int = Field(default=10_000, gt=0, alias="CHUNK_MAX_ITEMS")
    chunk_max_bytes: int = Field(default=100 * 1024 * 1024, gt=0, alias="CHUNK_MAX_BYTES")
    # Answers bigger than this are kept in S3 and referenced from the results-table row (400 KB item cap).
    result_row_max_bytes: int = Field(default=300 * 1024, gt=0, alias="RESULT_ROW_MAX_BYTES")


@lru_cache(maxsize=1)
def _cached(environ_items: frozenset[tuple[str, str]]) -> Settings:
    return Settings.model_validate(dict(environ_items))


def get_settings() -> Settings:
    """Settings of the running function (re-read when the environment changes, as in local runs)."""
    return _cached(frozenset(os.environ.items()))
