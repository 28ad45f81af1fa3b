"""Chunk files: spool provider-ready request lines to local disk and upload them a chunk at a time.

A chunk is one future provider batch: ``staging/<job>/chunk-NNNN.requests.jsonl`` (the request
lines) and its index (line number, user custom_id and provider custom_id of each request, written
by ``storage.chunk_index``) so results can be mapped back. A chunk closes when it reaches the
provider's request count or byte cap (or the stack's smaller ChunkMaxItems/ChunkMaxBytes); each
model gets its own chunks (OpenAI takes one model per batch file), numbered 1..N across models.
For OpenAI and Azure every request line's input tokens are estimated (``token_estimate``) and a
chunk also closes before its estimate would pass the model's enqueued-token quota (a chunk bigger
than the whole quota could never run); Anthropic's chunks hold at most its request quota.

Memory stays flat: the open chunks live in spool files, at most ``MAX_OPEN_CHUNKS`` at once.
:class:`ChunkManifest` is what a closed chunk reports; the split, the Bedrock minimum and the start
of the workflow read it.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple, Protocol

from pydantic import BaseModel

from batch_gateway.providers.token_estimate import estimate_request_line
from batch_gateway.storage.keys import chunk_index_key, chunk_requests_key
from batch_gateway.storage.s3 import UploadQueue
from batch_gateway.workflow.capacity import chunk_amount

# Keep provider batches comfortably below the provider's byte cap: JSON overhead differs slightly.
PROVIDER_BYTES_HEADROOM = 0.95
# Chunks open at once (one per model in use); past this the least recently used one is uploaded early.
MAX_OPEN_CHUNKS = 16
# Spool files are written a line at a time: a larger buffer means fewer system calls.
_SPOOL_BUFFER = 256 * 1024
# Providers whose quota counts enqueued input tokens (workflow.capacity.TOKEN_PROVIDERS).
TOKEN_QUOTA_PROVIDERS = frozenset({"openai", "azure-openai"})


class ChunkManifest(BaseModel):
    """A staged chunk: its number, how many requests and bytes it holds, the model they run on."""

    chunk: int
    item_count: int
    byte_count: int
    model: str | None = None  # every request of a chunk runs on this model
    estimated_tokens: int | None = None  # input tokens, estimated (OpenAI and Azure chunks)


def quota_fields(provider: str, manifest: ChunkManifest) -> dict[str, int]:
    """The chunk row's estimate: input tokens (OpenAI, Azure) and the units it holds of the quota."""
    fields = {"quota_amount": chunk_amount(provider, manifest.item_count, manifest.estimated_tokens)}
    if manifest.estimated_tokens is not None:
        fields["estimated_tokens"] = manifest.estimated_tokens
    return fields


class ChunkSink(Protocol):
    """Where closed chunk files go: S3 through a background ``UploadQueue`` (intake), or a counter that
    reads and drops them (``intake.estimate``). ``put`` owns the file: it deletes it when done."""

    def put(self, path: Path, bucket: str, key: str) -> None: ...

    def wait(self) -> None: ...

    def close(self) -> None: ...


class StagedLine(NamedTuple):
    """A valid input line, ready to stage (a NamedTuple: one is made per line, it must stay cheap)."""

    model: str  # the model it runs on: its chunk's model
    request_line: bytes  # the provider-ready request line
    index_line: bytes  # line number, user custom_id and provider custom_id, to map results back
    tokens: int | None = None  # its estimated input tokens, when the encoder counted them


class ChunkWriter:
    """Spools one model's provider-ready request lines and their index to local files, a chunk at a time."""

    def __init__(
        self,
        workdir: Path,
        job_id: str,
        bucket: str,
        limits: tuple[int, int],
        model: str,
        numbers: Iterator[int],
        sink: ChunkSink,
        token_budget: tuple[str, int] | None = None,
    ) -> None:
        self._workdir, self._job_id, self._bucket = workdir, job_id, bucket
        self._sink = sink  # shared by every model's writer: uploads overlap the intake loop
        self._max_items, self._max_bytes = limits
        # (provider, most estimated input tokens a chunk may hold), for providers counting tokens.
        self._token_budget = token_budget
        self._tokens = 0
        self.model, self._numbers = model, numbers
        self.manifests: list[ChunkManifest] = []
        self._chunk = 0
        self._requests: IO[bytes] | None = None
        self._index: IO[bytes] | None = None
        self._items = 0
        self._bytes = 0

    @property
    def is_open(self) -> bool:
        return self._requests is not None

    def add(self, request_line: bytes, index_line: bytes, tokens: int | None = None) -> None:
        """Stage one line; ``tokens``: its estimate if known (else estimated here from the line)."""
        size = len(request_line)
        full = self._items >= self._max_items or self._bytes + size > self._max_bytes
        if self._token_budget is None:
            tokens = 0
        else:
            if tokens is None:
                tokens = estimate_request_line(request_line, self._token_budget[0])
            full = full or self._tokens + tokens > self._token_budget[1]
        if full and self._requests is not None:  # a closed writer is empty (0 items, 0 bytes)
            self.close_chunk()
        if self._requests is None or self._index is None:
            self._chunk = next(self._numbers)  # numbered when opened: every opened chunk gets items
            self._requests = (self._workdir / f"requests-{self._chunk}.jsonl").open("wb", _SPOOL_BUFFER)
            self._index = (self._workdir / f"index-{self._chunk}.jsonl").open("wb", _SPOOL_BUFFER)
        self._requests.write(request_line)
        self._index.write(index_line)
        self._items += 1
        self._bytes += size
        self._tokens += tokens

    def close_chunk(self) -> None:
        assert self._requests is not None
        assert self._index is not None
        chunk = self._chunk
        self._requests.close()
        self._index.close()
        # Queued: uploaded (then deleted) in the background while the loop stages the next chunk.
        self._sink.put(Path(self._requests.name), self._bucket, chunk_requests_key(self._job_id, chunk))
        self._sink.put(Path(self._index.name), self._bucket, chunk_index_key(self._job_id, chunk))
        self.manifests.append(
            ChunkManifest(
                chunk=chunk,
                item_count=self._items,
                byte_count=self._bytes,
                model=self.model,
                estimated_tokens=self._tokens if self._token_budget is not None else None,
            )
        )
        self._requests = self._index = None
        self._items = self._bytes = self._tokens = 0

    def abandon(self) -> None:
        for handle in (self._requests, self._index):
            if handle is not None:
                handle.close()
        self._requests = self._index = None


class ChunkWriters:
    """One chunk writer per model; chunk numbers are shared, so they run 1..N across models."""

    def __init__(
        self,
        workdir: Path,
        job_id: str,
        bucket: str,
        max_items: int,
        max_bytes: int,
        quota: tuple[str, int] | None = None,
        sink: ChunkSink | None = None,
    ) -> None:
        """``quota``: the job's provider and its quota per model (:func:`chunk_quota`), if it binds chunks;
        ``sink``: where closed chunks go (default: S3, uploaded in the background)."""
        token_budget = quota if quota is not None and quota[0] in TOKEN_QUOTA_PROVIDERS else None
        if quota is not None and quota[0] == "anthropic":
            max_items = min(max_items, quota[1])
        self._args = (workdir, job_id, bucket, (max_items, max_bytes))
        self._token_budget = token_budget
        self._numbers = itertools.count(1)
        self._sink: ChunkSink = sink if sink is not None else UploadQueue()
        self._writers: OrderedDict[str, ChunkWriter] = OrderedDict()  # least recently used first
        self._last: ChunkWriter | None = None  # the most recently used writer (fast path)

    def add(self, staged: StagedLine) -> None:
        writer = self._last
        # Runs once per line: the open check reads the field, not the property.
        if writer is None or writer.model != staged.model or writer._requests is None:
            writer = self._writer_for(staged.model)
        writer.add(staged.request_line, staged.index_line, staged.tokens)

    def _writer_for(self, model: str) -> ChunkWriter:
        writer = self._writers.get(model)
        if writer is None:
            writer = self._writers[model] = ChunkWriter(
                *self._args, model, self._numbers, self._sink, self._token_budget
            )
        self._writers.move_to_end(model)
        if not writer.is_open:
            open_writers = [w for w in self._writers.values() if w.is_open]
            if len(open_writers) >= MAX_OPEN_CHUNKS:
                open_writers[0].close_chunk()  # bounded file handles and disk, however many models
        self._last = writer
        return writer

    def finish(self) -> list[ChunkManifest]:
        for writer in self._writers.values():
            if writer.is_open:
                writer.close_chunk()
        self._sink.wait()  # every chunk is in S3 before the workflow (or the Bedrock top-up) reads it
        self._sink.close()
        return sorted(
            (m for w in self._writers.values() for m in w.manifests), key=lambda manifest: manifest.chunk
        )

    def abandon(self) -> None:
        for writer in self._writers.values():
            writer.abandon()
        self._sink.close()
