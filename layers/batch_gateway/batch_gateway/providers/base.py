"""The one protocol every batch provider implements, and what the SDK-backed providers share.

:class:`BatchProvider` is all the workflow knows of a provider: build a request line, submit a
file of them as one provider batch, find a batch an interrupted submission created, poll it,
stream its results, cancel it, and delete what the provider keeps of it once the job's retention
ended. Each provider lives in its own folder (``openai/``, ``anthropic/``, ``bedrock/``) and
``registry`` picks one by name.

:class:`SdkBatchProvider` is the common part of the providers built on the ``openai`` and
``anthropic`` SDKs: a client created on first use (so building lines or reading ``limits`` costs no
SDK import), the SDK-free request builder of ``requests``, and a resumable result download.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from batch_gateway.models import BatchItem, JobSpec
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.parsing import decode_result_line
from batch_gateway.providers.requests import request_builder_for
from batch_gateway.providers.streaming import resumable_lines
from batch_gateway.providers.types import BatchProgress, ProviderLimits, ProviderResult, SubmittedBatch

ClientT = TypeVar("ClientT")


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

    def delete_batch_data(self, batch_ids: list[str]) -> None:
        """Delete what the provider keeps of these ended batches (their files, or the batches).

        Called once per job when its retention has ended; what is gone already is skipped, so a
        run that failed half way can be repeated.
        """
        ...


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
        # The SDKs' HTTP library, imported with them: only once a download starts, like the SDK.
        import httpx2

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
