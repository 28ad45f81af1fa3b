"""The data every provider hands back, in the gateway's terms (pydantic models; no SDK, no I/O).

A provider's answers differ in shape (OpenAI ``batch`` objects, Anthropic ``message_batch``
objects, Bedrock ``GetModelInvocationJob``); each provider's parsing module turns them into these,
so the workflow (submit, poll, collect, cancel) reads one shape whatever the provider:

* :class:`SubmittedBatch`: the batch a submission created;
* :class:`BatchProgress`: where a batch stands, in our ``BatchStatus`` and the provider's words;
* :class:`ProviderResult`: one result line, keyed by the provider-side custom_id;
* :class:`ProviderLimits`: how much one provider batch may hold (intake splits files by it).

``raw`` fields keep the provider's own JSON, for the results row and for debugging.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from batch_gateway.models import BatchStatus, LLMResponse

Outcome = Literal["succeeded", "errored", "expired", "cancelled"]


class ProviderLimits(BaseModel):
    """How many requests and bytes one provider batch may hold, as the provider documents them."""

    max_requests: int
    max_bytes: int


class SubmittedBatch(BaseModel):
    provider_batch_id: str
    status: BatchStatus
    raw: Any = None


class BatchProgress(BaseModel):
    """Where a provider batch stands, in our terms and in the provider's own words."""

    status: BatchStatus
    provider_status: str
    request_counts: dict[str, int] = Field(default_factory=dict)
    # Readable reason when the whole batch failed (for example OpenAI validation errors).
    message: str | None = None
    # True when the batch failed for the account's quota (OpenAI/Azure token_limit_exceeded): requeued.
    quota_exceeded: bool = False
    raw: Any = None


class ProviderResult(BaseModel):
    """One provider output line, keyed by the provider-side custom_id."""

    provider_custom_id: str
    outcome: Outcome
    response: LLMResponse | None = None
    error: str | None = None
    # True when the same request may well succeed if sent again (expired, 429, 5xx, overloaded).
    retryable: bool = False
    raw: Any = None
