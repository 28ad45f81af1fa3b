"""Anthropic Message Batches provider.

A chunk's requests (``{custom_id, params}``) are sent in one JSON body as one Message Batch; its
results file is streamed line by line, resumable, as Anthropic sends it. Message Batches carry no
metadata, so an interrupted submission cannot be found again (``find_batch`` says so), and once a
job's retention ends its batches are deleted (that deletes their results with them).

The ``anthropic`` SDK takes about 2 s to import: it is imported only inside the methods that talk
to Anthropic (the client is created on first use), so building request lines or reading ``limits``
stays cheap, for intake above all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from batch_gateway.models import JobSpec
from batch_gateway.providers.anthropic.parsing import anthropic_progress, parse_anthropic_line
from batch_gateway.providers.base import SdkBatchProvider
from batch_gateway.providers.errors import ProviderError, readable_sdk_errors
from batch_gateway.providers.types import BatchProgress, ProviderResult, SubmittedBatch

if TYPE_CHECKING:
    from anthropic import Anthropic
    from anthropic.types.messages import MessageBatch, batch_create_params


def read_requests(requests_file: Path) -> list[dict[str, Any]]:
    """The ``{custom_id, params}`` requests of a JSONL file (the API takes them in one JSON body)."""
    requests: list[dict[str, Any]] = []
    with requests_file.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError as exc:
                raise ProviderError(f"{requests_file.name} line {number} is not valid JSON ({exc})") from None
            if not isinstance(request, dict):
                raise ProviderError(f"{requests_file.name} line {number} is not a JSON object")
            requests.append(request)
    return requests


class AnthropicBatchProvider(SdkBatchProvider["Anthropic"]):
    name = "anthropic"
    label = "Anthropic"

    def _new_client(self) -> Anthropic:
        import anthropic

        # The SDK retries connection errors, 408/409/429 and 5xx (and overloaded) with backoff.
        return anthropic.Anthropic(
            api_key=self._api_key, base_url=self._base_url, max_retries=self._max_retries
        )

    # ---------------------------------------------------------------------------------- API calls

    def submit(self, requests_file: Path, spec: JobSpec, metadata: dict[str, str]) -> SubmittedBatch:
        """Create the batch. Message Batches take no metadata: the caller keeps its own records."""
        requests = cast("list[batch_create_params.Request]", read_requests(requests_file))
        # A 429 on create is the queue of requests in batches being full: a quota refusal.
        with self._errors("the batch", quota_on_429=True):
            batch = self.client.messages.batches.create(requests=requests)
        progress = self._progress(batch)
        return SubmittedBatch(provider_batch_id=batch.id, status=progress.status, raw=progress.raw)

    def find_batch(self, metadata: dict[str, str], created_after: float) -> SubmittedBatch | None:
        # Message Batches carry no metadata, so an interrupted create cannot be told apart from
        # someone else's batch; the window is the few milliseconds between create and our record.
        return None

    def poll(self, provider_batch_id: str) -> BatchProgress:
        with self._errors(f"the status request for batch {provider_batch_id}"):
            batch = self.client.messages.batches.retrieve(provider_batch_id)
        return self._progress(batch)

    def cancel(self, provider_batch_id: str) -> BatchProgress:
        with self._errors(f"the cancel request for batch {provider_batch_id}"):
            batch = self.client.messages.batches.cancel(provider_batch_id)
        return self._progress(batch)

    def delete_batch_data(self, batch_ids: list[str]) -> None:
        """Delete the batches (their results go with them); a batch already gone is skipped."""
        import anthropic

        for batch_id in batch_ids:
            with suppress(anthropic.NotFoundError):
                self.client.messages.batches.delete(batch_id)

    def iter_results(self, provider_batch_id: str) -> Iterator[ProviderResult]:
        """Stream the results file line by line (resumable), as the provider sends it."""
        return self._stream_results(
            lambda: self._result_lines(provider_batch_id),
            parse_anthropic_line,
            source=f"Anthropic results of batch {provider_batch_id}",
            subject=f"the results download of batch {provider_batch_id}",
        )

    # -------------------------------------------------------------------------------------- helpers

    @contextmanager
    def _result_lines(self, provider_batch_id: str) -> Iterator[Iterable[str]]:
        # with_streaming_response gives the raw JSONL text, so ProviderResult.raw is the provider's
        # own line and parsing does not depend on how the SDK models it.
        with self.client.messages.batches.with_streaming_response.results(provider_batch_id) as response:
            yield response.iter_lines()

    def _progress(self, batch: MessageBatch) -> BatchProgress:
        return anthropic_progress(batch.to_dict(mode="json"))

    def _connection_error(self) -> type[Exception]:
        import anthropic

        return anthropic.APIConnectionError

    def _errors(self, subject: str, quota_on_429: bool = False) -> AbstractContextManager[None]:
        import anthropic

        return readable_sdk_errors(
            "Anthropic",
            subject,
            anthropic.APIStatusError,
            anthropic.APIConnectionError,
            anthropic.AnthropicError,
            quota_on_429=quota_on_429,
        )
