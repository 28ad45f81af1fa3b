"""The one protocol every batch provider implements: build, submit, poll, stream results, cancel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from batch_gateway.models import BatchItem, BatchStatus, JobSpec, LLMResponse

Outcome = Literal["succeeded", "errored", "expired", "cancelled"]


class ProviderLimits(BaseModel):
    """Per-batch limits a provider enforces (DESIGN.md section 3)."""

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
    raw: Any = None


class ProviderResult(BaseModel):
    """One provider output line, keyed by the provider-side custom_id."""

    provider_custom_id: str
    outcome: Outcome
    response: LLMResponse | None = None
    error: str | None = None
    raw: Any = None


class ProviderError(Exception):
    """A provider call failed in a way the user must hear about; ``str()`` is readable."""


class BatchProvider(Protocol):
    name: str
    limits: ProviderLimits

    def provider_custom_id(self, custom_id: str, line: int) -> str:
        """The id sent to the provider for a user custom_id (which may be unsafe there)."""
        ...

    def build_request(self, provider_custom_id: str, item: BatchItem, spec: JobSpec) -> dict[str, Any]:
        """One provider-ready request line (a JSON object) for the item."""
        ...

    def submit(self, requests_file: Path, spec: JobSpec, metadata: dict[str, str]) -> SubmittedBatch:
        """Create one provider batch from a file of ``build_request`` lines (JSONL)."""
        ...

    def poll(self, provider_batch_id: str) -> BatchProgress: ...

    def iter_results(self, provider_batch_id: str) -> Iterator[ProviderResult]:
        """Stream every result line of a finished (or expired/cancelled) batch, in provider order."""
        ...

    def cancel(self, provider_batch_id: str) -> BatchProgress: ...
