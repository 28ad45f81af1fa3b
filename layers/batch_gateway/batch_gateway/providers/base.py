"""The one protocol every batch provider implements: build, submit, poll, stream results, cancel."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field

from batch_gateway.models import BatchItem, BatchStatus, JobSpec, LLMResponse

Outcome = Literal["succeeded", "errored", "expired", "cancelled"]
ClientT = TypeVar("ClientT")


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
    # True when the same request may well succeed if sent again (expired, 429, 5xx, overloaded).
    retryable: bool = False
    raw: Any = None


class ProviderError(Exception):
    """A provider call failed in a way the user must hear about; ``str()`` is readable."""


class ProviderUnavailableError(ProviderError):
    """Rate limited (429), a server error (5xx) or unreachable, after the SDK's own retries.

    The state machine retries a task that raises this, with a longer backoff than the SDK's.
    """


def is_transient_status(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


@contextmanager
def readable_sdk_errors(
    provider: str,
    subject: str,
    status_error: type[Exception],
    connection_error: type[Exception],
    base_error: type[Exception],
) -> Iterator[None]:
    """Turn an SDK exception into a ProviderError whose message a user can act on (never a repr)."""
    from batch_gateway.providers.parsing import api_error_message

    try:
        yield
    except status_error as exc:
        status_code = int(getattr(exc, "status_code", 0))
        error_class = ProviderUnavailableError if is_transient_status(status_code) else ProviderError
        message = api_error_message(getattr(exc, "body", None), "no error message given")
        raise error_class(f"{provider} rejected {subject}: {message} (HTTP {status_code})") from exc
    except connection_error as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None and str(exc.__cause__) else ""
        detail = getattr(exc, "message", str(exc))
        raise ProviderUnavailableError(f"Could not reach {provider} for {subject}: {detail}{cause}") from exc
    except base_error as exc:
        # For example "No `results_url` for the given batch; Has it finished processing? in_progress"
        raise ProviderError(f"{provider} client error for {subject}: {exc}") from exc


class SdkBatchProvider(Generic[ClientT]):
    """What both SDK-backed providers share: a lazily created client and the SDK-free request parts.

    The SDK is imported only when the client is first used, so building request lines or reading
    ``limits`` costs no SDK import.
    """

    name: str
    label: str  # as users know the provider: "OpenAI", "Anthropic"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        max_retries: int = 5,
        *,
        client: ClientT | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._max_retries = max_retries
        self._client = client
        self._sleep = sleep
        from batch_gateway.providers.requests import request_builder_for  # requests imports this module

        self._requests = request_builder_for(self.name)
        self.limits = self._requests.limits

    def _new_client(self) -> ClientT:
        raise NotImplementedError

    def _errors(self, subject: str) -> AbstractContextManager[None]:
        """SDK exceptions raised inside become readable ProviderErrors about ``subject``."""
        raise NotImplementedError

    def _connection_error(self) -> type[Exception]:
        """The SDK's exception for a connection that failed or broke."""
        raise NotImplementedError

    def _stream_results(
        self,
        open_lines: Callable[[], AbstractContextManager[Iterable[str]]],
        parse: Callable[[dict[str, Any]], ProviderResult],
        *,
        source: str,
        subject: str,
    ) -> Iterator[ProviderResult]:
        """Every line of a JSONL result download, parsed, in the provider's order.

        A broken connection reopens the download and skips the lines already yielded (see
        ``streaming.resumable_lines``), so no result is lost or duplicated; ``source`` names the
        download in messages about bad lines, ``subject`` in SDK errors.
        """
        import httpx2

        from batch_gateway.providers.parsing import decode_result_line  # parsing imports this module
        from batch_gateway.providers.streaming import resumable_lines  # so does streaming

        lines = resumable_lines(
            open_lines,
            what=source,
            retryable=(httpx2.TransportError, self._connection_error()),
            attempts=self._max_retries + 1,
            sleep=self._sleep,
        )
        with self._errors(subject):
            for number, text in lines:
                yield parse(decode_result_line(text, source=source, number=number))

    @property
    def client(self) -> ClientT:
        if self._client is None:
            if not self._api_key:
                raise ProviderError(f"no {self.label} API key configured: the SDK cannot authenticate")
            self._client = self._new_client()
        return self._client

    def provider_custom_id(self, custom_id: str, line: int) -> str:
        return self._requests.provider_custom_id(custom_id, line)

    def build_request(self, provider_custom_id: str, item: BatchItem, spec: JobSpec) -> dict[str, Any]:
        return self._requests.build_request(provider_custom_id, item, spec)


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

    def find_batch(self, metadata: dict[str, str], created_after: float) -> SubmittedBatch | None:
        """A batch created since ``created_after`` carrying exactly ``metadata``, if the provider can tell.

        Used when a submission was interrupted after the provider created the batch but before we
        recorded its id; a provider without batch metadata returns None.
        """
        ...

    def poll(self, provider_batch_id: str) -> BatchProgress: ...

    def iter_results(self, provider_batch_id: str) -> Iterator[ProviderResult]:
        """Stream every result line of a finished (or expired/cancelled) batch, in provider order."""
        ...

    def cancel(self, provider_batch_id: str) -> BatchProgress: ...
