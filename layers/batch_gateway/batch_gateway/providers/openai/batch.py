"""OpenAI Batch API provider (Files + Batches, ``/v1/chat/completions``).

A chunk's request lines are uploaded as one batch input file and run as one batch with a 24-hour
completion window; its results come back as an output file (answers) and an error file (requests
that failed or expired), both streamed line by line and resumable. The batch carries our metadata
(job, chunk, round, attempt), so a submission interrupted after OpenAI created the batch finds it
again instead of paying twice. Once a job's retention ends, the batch's three files are deleted.

The ``openai`` SDK is imported only inside the methods that talk to OpenAI (the client is created
on first use), so building request lines or reading ``limits`` costs no SDK import.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from batch_gateway.models import JobSpec
from batch_gateway.providers.base import SdkBatchProvider
from batch_gateway.providers.errors import ProviderError, readable_sdk_errors
from batch_gateway.providers.openai.embeddings import OPENAI_EMBEDDINGS_ENDPOINT
from batch_gateway.providers.openai.parsing import openai_progress, parse_openai_line
from batch_gateway.providers.requests import OPENAI_ENDPOINT
from batch_gateway.providers.types import BatchProgress, ProviderResult, SubmittedBatch

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types import Batch

# Our clock and OpenAI's may differ a little; look this much further back for an interrupted create.
CLOCK_SKEW_SECONDS = 300
METADATA_MAX_KEYS = 16
METADATA_MAX_KEY_CHARS = 64
METADATA_MAX_VALUE_CHARS = 512


def trim_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """Fit metadata into OpenAI's limits: at most 16 keys, keys <= 64 and values <= 512 characters."""
    trimmed: dict[str, str] = {}
    for key, value in metadata.items():
        if len(trimmed) >= METADATA_MAX_KEYS:
            break
        short_key = str(key)[:METADATA_MAX_KEY_CHARS]
        if short_key and short_key not in trimmed:
            trimmed[short_key] = str(value)[:METADATA_MAX_VALUE_CHARS]
    return trimmed


class OpenAIBatchProvider(SdkBatchProvider["OpenAI"]):
    name = "openai"
    label = "OpenAI"
    # The ``endpoint`` of batches.create; it must equal the ``url`` of every request line.
    endpoint: str = OPENAI_ENDPOINT
    # The endpoint of a batch whose lines are embeddings requests.
    embeddings_endpoint: str = OPENAI_EMBEDDINGS_ENDPOINT

    def _new_client(self) -> OpenAI:
        import openai

        # The SDK retries connection errors, 408/409/429 and 5xx with exponential backoff.
        return openai.OpenAI(api_key=self._api_key, base_url=self._base_url, max_retries=self._max_retries)

    # ---------------------------------------------------------------------------------- API calls

    def submit(self, requests_file: Path, spec: JobSpec, metadata: dict[str, str]) -> SubmittedBatch:
        with self._errors("the batch file"), requests_file.open("rb") as fh:
            uploaded = self.client.files.create(file=(requests_file.name, fh), purpose="batch")
        try:
            with self._errors("the batch"):
                # No SDK retry: a create whose answer was lost may have made the batch, and a blind
                # second POST would make another (paid twice). Submit's retry first looks for it by
                # its metadata (find_batch) and only then creates.
                batch = self.client.with_options(max_retries=0).batches.create(
                    input_file_id=uploaded.id,
                    # The SDK types the OpenAI routes only; Azure's "/chat/completions" passes as is.
                    endpoint=cast(Any, self._batch_endpoint(requests_file)),
                    completion_window="24h",
                    metadata=trim_metadata(metadata),
                )
        except ProviderError:
            self._delete_file_quietly(uploaded.id)
            raise
        progress = self._progress(batch)
        return SubmittedBatch(provider_batch_id=batch.id, status=progress.status, raw=progress.raw)

    def find_batch(self, metadata: dict[str, str], created_after: float) -> SubmittedBatch | None:
        wanted = trim_metadata(metadata)
        with self._errors("the batch list"):
            # The list is newest first: stop at the first batch older than the submission attempt.
            for batch in self.client.batches.list(limit=100):
                if batch.created_at < created_after - CLOCK_SKEW_SECONDS:
                    return None
                if dict(batch.metadata or {}) == wanted:
                    progress = self._progress(batch)
                    return SubmittedBatch(
                        provider_batch_id=batch.id, status=progress.status, raw=progress.raw
                    )
        return None

    def poll(self, provider_batch_id: str) -> BatchProgress:
        with self._errors(f"the status request for batch {provider_batch_id}"):
            batch = self.client.batches.retrieve(provider_batch_id)
        return self._progress(batch)

    def cancel(self, provider_batch_id: str) -> BatchProgress:
        with self._errors(f"the cancel request for batch {provider_batch_id}"):
            batch = self.client.batches.cancel(provider_batch_id)
        return self._progress(batch)

    def delete_batch_data(self, batch_ids: list[str]) -> None:
        """Delete each batch's input, output and error files (the batch object itself cannot be deleted)."""
        import openai

        for batch_id in batch_ids:
            try:
                batch = self.client.batches.retrieve(batch_id)
            except openai.NotFoundError:
                continue
            for file_id in {batch.input_file_id, batch.output_file_id, batch.error_file_id}:
                if not file_id:
                    continue  # OpenAI gives null or "" for a file it did not write
                with suppress(openai.NotFoundError):  # gone already: OpenAI expires batch files itself
                    self.client.files.delete(file_id)

    def iter_results(self, provider_batch_id: str) -> Iterator[ProviderResult]:
        """Results from the output file, then the error file (each streamed, resumable)."""
        progress = self.poll(provider_batch_id)
        if not progress.status.is_terminal:
            raise ProviderError(
                f"{self.label} batch {provider_batch_id} is still {progress.provider_status}; "
                "its results can be read once it has ended"
            )
        raw = progress.raw if isinstance(progress.raw, dict) else {}
        for kind in ("output", "error"):
            file_id = raw.get(f"{kind}_file_id")
            if not isinstance(file_id, str) or not file_id:
                continue  # null or "" when no request ended that way
            yield from self._iter_file(
                file_id, f"{self.label} {kind} file {file_id} of batch {provider_batch_id}"
            )

    # -------------------------------------------------------------------------------------- helpers

    def _batch_endpoint(self, requests_file: Path) -> str:
        """The batch's endpoint: the ``url`` of its lines (they must all match it), so a chunk of
        embeddings lines runs as an embeddings batch; the chat endpoint when the file does not say."""
        with requests_file.open("rb") as fh:
            first = fh.readline()
        try:
            url = json.loads(first).get("url") if first.strip() else None
        except (ValueError, AttributeError):
            url = None
        return self.embeddings_endpoint if url == self.embeddings_endpoint else self.endpoint

    def _iter_file(self, file_id: str, source: str) -> Iterator[ProviderResult]:
        return self._stream_results(
            lambda: self._file_lines(file_id),
            parse_openai_line,
            source=source,
            subject=f"the download of {source}",
        )

    @contextmanager
    def _file_lines(self, file_id: str) -> Iterator[Iterable[str]]:
        with self.client.files.with_streaming_response.content(file_id) as response:
            yield response.iter_lines()

    def _progress(self, batch: Batch) -> BatchProgress:
        return openai_progress(batch.to_dict(mode="json"), self.label)

    def _delete_file_quietly(self, file_id: str) -> None:
        import openai

        # Best effort: batch input files expire on their own after 30 days.
        with suppress(openai.OpenAIError):
            self.client.files.delete(file_id)

    def _connection_error(self) -> type[Exception]:
        import openai

        return openai.APIConnectionError

    def _errors(self, subject: str) -> AbstractContextManager[None]:
        import openai

        return readable_sdk_errors(
            self.label, subject, openai.APIStatusError, openai.APIConnectionError, openai.OpenAIError
        )
