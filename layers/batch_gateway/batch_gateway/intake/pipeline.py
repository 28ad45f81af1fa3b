"""Intake: stream an input file, validate every line, split it into provider-ready chunk files.

Memory stays flat as files grow: lines are read in blocks, each chunk is spooled to local disk and
uploaded when full. Only duplicate detection grows with the file, by ~16 bytes per line
(``seen_ids.SeenIds``: compact hashes in memory, the ids themselves on local disk).

Invalid lines follow the job's ``on_invalid`` policy (object metadata ``on-invalid``):

- ``reject`` (default): any invalid line rejects the whole file before any provider call; the job
  ends ``failed`` and ``results/<job>/errors.jsonl`` lists every bad line.
- ``skip``: valid lines are submitted; each invalid line gets an error result (its custom_id when
  readable, else ``line-<n>``), staged as ``staging/<job>/invalid.results.jsonl`` (merged into
  results.jsonl by finalization), written to the results table and listed in errors.jsonl. When no
  line is valid, no workflow starts: intake itself writes results.jsonl and summary.json and the job
  ends ``failed`` with the reason "no valid lines to submit".

Duplicate custom_ids always reject the whole file, whatever the policy: results are keyed by id.
Items run on ``extra.model`` when set: each model gets its own provider batches (OpenAI takes one
model per batch file); chunk numbers stay global and contiguous (1..N).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import tempfile
import time
from collections import OrderedDict
from collections.abc import Container, Iterator
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO, Any, get_args

from pydantic import BaseModel, ValidationError

from batch_gateway import storage
from batch_gateway.intake.checks import LineError, describe, parse_fields
from batch_gateway.intake.seen_ids import SeenIds
from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import (
    BatchResult,
    BatchStatus,
    InvalidLinePolicy,
    JobSpec,
    JobSummary,
    ResultCounts,
)
from batch_gateway.observability import MetricUnit, metrics
from batch_gateway.providers.custom_ids import RESERVED_PREFIX, SAFE_ID_PATTERN
from batch_gateway.providers.line_encoder import LineEncoder
from batch_gateway.providers.requests import RequestBuilder, request_builder_for
from batch_gateway.settings import Settings
from batch_gateway.storage.chunk_index import encode_index_line

# Object metadata keys (x-amz-meta-*) that carry the job spec of an uploaded file.
META_PROVIDER = "provider"
META_MODEL = "model"
META_SYSTEM_PROMPT = "system-prompt"
META_SYSTEM_PROMPT_B64 = "system-prompt-b64"
META_ON_INVALID = "on-invalid"
ON_INVALID_POLICIES: tuple[str, ...] = get_args(InvalidLinePolicy)
NO_VALID_LINES = "no valid lines to submit"
# Keep provider batches comfortably below the provider's byte cap: JSON overhead differs slightly.
PROVIDER_BYTES_HEADROOM = 0.95
MAX_REASON_ERRORS = 3
# Chunks open at once (one per model in use); past this the least recently used one is uploaded early.
MAX_OPEN_CHUNKS = 16


class JobSpecError(ValueError):
    """The job spec (metadata or defaults) is unusable; the message says which key to fix."""


class ChunkManifest(BaseModel):
    chunk: int
    item_count: int
    byte_count: int
    model: str | None = None  # every request of a chunk runs on this model


class IntakeReport(BaseModel):
    job_id: str
    accepted: bool
    request_count: int = 0
    line_count: int = 0
    chunks: list[ChunkManifest] = []
    error_count: int = 0
    invalid_count: int = 0  # lines skipped under on_invalid=skip, each with an error result
    reason: str | None = None


def job_id_for(bucket: str, key: str, version: str) -> str:
    """Deterministic job id: the same object version always maps to the same job (and execution name)."""
    digest = hashlib.sha256(f"{bucket}/{key}#{version}".encode()).hexdigest()[:16]
    stem = Path(key).name.rsplit(".", 1)[0]
    safe_stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40] or "job"
    return f"{safe_stem}-{digest}"


def job_spec_from_metadata(metadata: dict[str, str], settings: Settings) -> JobSpec:
    """The spec of an uploaded file: object metadata first, stack defaults second."""
    meta = {k.lower(): v for k, v in metadata.items()}
    system_prompt = meta.get(META_SYSTEM_PROMPT) or settings.default_system_prompt or None
    if META_SYSTEM_PROMPT_B64 in meta:
        try:
            system_prompt = base64.b64decode(meta[META_SYSTEM_PROMPT_B64], validate=True).decode()
        except ValueError as exc:
            raise JobSpecError(f"metadata '{META_SYSTEM_PROMPT_B64}' is not base64 of UTF-8 text") from exc
    on_invalid = (meta.get(META_ON_INVALID) or "reject").strip().lower()
    if on_invalid not in ON_INVALID_POLICIES:
        raise JobSpecError(
            f"metadata '{META_ON_INVALID}' is {meta[META_ON_INVALID]!r}: set x-amz-meta-{META_ON_INVALID} "
            f"to {' or '.join(ON_INVALID_POLICIES)} (or leave it out to reject files with invalid lines)"
        )
    try:
        return JobSpec(
            provider=meta.get(META_PROVIDER) or settings.default_provider,
            model=meta.get(META_MODEL) or settings.default_model,
            system_prompt=system_prompt,
            on_invalid=on_invalid,  # checked against the Literal above
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"'{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise JobSpecError(
            f"the job spec is invalid ({problems}); set object metadata x-amz-meta-provider "
            "(openai|anthropic) and x-amz-meta-model, or the stack's DefaultProvider/DefaultModel"
        ) from exc


# A line ready to stage: (the model it runs on: its chunk's model, the provider-ready request line,
# its index line: line number, user custom_id and provider custom_id, to map results back).
_Staged = tuple[str, bytes, bytes]
_SAFE_ID = SAFE_ID_PATTERN.fullmatch
# Spool files are written a line at a time: a larger buffer means fewer system calls.
_SPOOL_BUFFER = 256 * 1024
# The index line, as json.dumps({"line", "custom_id", "provider_custom_id"}, ensure_ascii=False) writes it.


class _ChunkWriter:
    """Spools one model's provider-ready request lines and their index to local files, a chunk at a time."""

    def __init__(
        self,
        workdir: Path,
        job_id: str,
        bucket: str,
        limits: tuple[int, int],
        model: str,
        numbers: Iterator[int],
    ) -> None:
        self._workdir, self._job_id, self._bucket = workdir, job_id, bucket
        self._max_items, self._max_bytes = limits
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

    def add(self, request_line: bytes, index_line: bytes) -> None:
        size = len(request_line)
        full = self._items >= self._max_items or self._bytes + size > self._max_bytes
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

    def close_chunk(self) -> None:
        assert self._requests is not None
        assert self._index is not None
        chunk = self._chunk
        self._requests.close()
        self._index.close()
        storage.upload_file(
            Path(self._requests.name), self._bucket, storage.chunk_requests_key(self._job_id, chunk)
        )
        storage.upload_file(
            Path(self._index.name), self._bucket, storage.chunk_index_key(self._job_id, chunk)
        )
        Path(self._requests.name).unlink()
        Path(self._index.name).unlink()
        self.manifests.append(
            ChunkManifest(chunk=chunk, item_count=self._items, byte_count=self._bytes, model=self.model)
        )
        self._requests = self._index = None
        self._items = self._bytes = 0

    def abandon(self) -> None:
        for handle in (self._requests, self._index):
            if handle is not None:
                handle.close()
        self._requests = self._index = None


class _ChunkWriters:
    """One chunk writer per model; chunk numbers are shared, so they run 1..N across models."""

    def __init__(self, workdir: Path, job_id: str, bucket: str, max_items: int, max_bytes: int) -> None:
        self._args = (workdir, job_id, bucket, (max_items, max_bytes))
        self._numbers = itertools.count(1)
        self._writers: OrderedDict[str, _ChunkWriter] = OrderedDict()  # least recently used first
        self._last: _ChunkWriter | None = None  # the most recently used writer (fast path)

    def add(self, staged: _Staged) -> None:
        writer = self._last
        if writer is None or writer.model != staged[0] or writer._requests is None:
            writer = self._writer_for(staged[0])
        writer.add(staged[1], staged[2])

    def _writer_for(self, model: str) -> _ChunkWriter:
        writer = self._writers.get(model)
        if writer is None:
            writer = self._writers[model] = _ChunkWriter(*self._args, model, self._numbers)
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
        return sorted(
            (m for w in self._writers.values() for m in w.manifests), key=lambda manifest: manifest.chunk
        )

    def abandon(self) -> None:
        for writer in self._writers.values():
            writer.abandon()


class _Validator:
    """Validates lines one by one, remembering custom_ids (readable ones of invalid lines too) to
    refuse duplicates, and spooling every invalid line's error result in line order.

    This runs once per input line: valid lines take a fast path (validated into a dict, request
    line written by ``LineEncoder``, index line by formatting); any line that needs explaining goes
    through ``validation.parse_item``, so messages are the same either way.
    """

    def __init__(
        self,
        builder: RequestBuilder,
        spec: JobSpec,
        errors_file: IO[bytes],
        invalid_file: IO[bytes],
        seen: SeenIds,
        max_line_bytes: int,
    ) -> None:
        self._builder, self._spec = builder, spec
        self._max_line_bytes = max_line_bytes
        self._encoder = LineEncoder(builder, spec)
        self._keeps_safe_ids = builder.keeps_safe_ids
        self._limit = int(builder.limits.max_bytes * PROVIDER_BYTES_HEADROOM)
        self._errors, self._invalid = errors_file, invalid_file
        self.seen = seen
        self.error_count = 0  # LineErrors (a line may have several)
        self.invalid_lines = 0
        self.duplicate_count = 0
        self.first_duplicates: list[LineError] = []  # the first few, for the job's reason
        self.first_errors: list[LineError] = []

    def _fail(self, errors: list[LineError]) -> None:
        for error in errors:
            self._errors.write(error.model_dump_json(exclude_none=True).encode() + b"\n")
            self.error_count += 1
            if len(self.first_errors) < MAX_REASON_ERRORS:
                self.first_errors.append(error)
        self.invalid_lines += 1
        record = {"line": errors[0].line, "custom_id": errors[0].custom_id, "error": describe(errors)}
        self._invalid.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")

    def _duplicate(self, custom_id: str | None, line: int) -> list[LineError]:
        if not custom_id:
            return []
        first_line = self.seen.add(custom_id, line)
        if first_line == line:
            return []
        error = LineError(
            line=line,
            field="custom_id",
            custom_id=custom_id,
            reason=f"duplicate custom_id '{custom_id}' (first used on line {first_line}): "
            "every custom_id must be unique in a file; give each item its own id",
        )
        self.duplicate_count += 1
        if len(self.first_duplicates) < MAX_REASON_ERRORS:
            self.first_duplicates.append(error)
        return [error]

    def check(self, line: int, raw: bytes) -> _Staged | None:
        if len(raw) > self._max_line_bytes:  # cut short by the reader: its JSON cannot be read
            self._fail([LineError(line=line, reason=_too_long(self._max_line_bytes))])
            return None
        fields = parse_fields(line, raw)
        if isinstance(fields, list):
            self._fail(fields + self._duplicate(fields[0].custom_id, line))
            return None
        custom_id: str = fields["custom_id"]
        # custom_ids.is_safe_custom_id, inlined: a safe id is sent unchanged, and JSON-encoded as is.
        if (
            self._keeps_safe_ids
            and _SAFE_ID(custom_id) is not None
            and not custom_id.startswith(RESERVED_PREFIX)
        ):
            provider_id = custom_id
            encoded_id = encoded_provider_id = f'"{custom_id}"'
        else:
            provider_id = self._builder.provider_custom_id(custom_id, line)
            encoded_id, encoded_provider_id = encode_basestring(custom_id), encode_basestring(provider_id)
        if self.seen.add(custom_id, line, encoded_id) != line:  # a duplicate: _duplicate explains it
            self._fail(self._duplicate(custom_id, line))
            return None
        try:
            request_line = self._encoder.encode(provider_id, fields, raw, encoded_provider_id)
        except ValueError as exc:
            self._fail([LineError(line=line, field="extra", reason=str(exc), custom_id=custom_id)])
            return None
        if len(request_line) > self._limit:
            self._fail(
                [
                    LineError(
                        line=line,
                        field="user_message",
                        reason=f"the request is {len(request_line)} bytes, more than {self._builder.name} "
                        f"accepts in one batch ({self._limit} bytes): shorten user_message or extra",
                        custom_id=custom_id,
                    )
                ]
            )
            return None
        index_line = encode_index_line(line, encoded_id, encoded_provider_id)
        model = self._encoder.model(fields) if "extra" in fields else self._spec.model
        return model, request_line, index_line


def _too_long(max_line_bytes: int) -> str:
    return (
        f"the line is longer than {max_line_bytes:,} bytes (the stack's MaxLineBytes): "
        "shorten user_message or extra, or raise MaxLineBytes"
    )


def _listed(errors: list[LineError], total: int) -> str:
    shown = "; ".join(f"line {e.line}: {e.reason}" for e in errors[:MAX_REASON_ERRORS])
    more = total - min(len(errors), MAX_REASON_ERRORS)
    return shown + (f" (and {more} more)" if more > 0 else "")


def _reason(validator: _Validator, key: str, policy: InvalidLinePolicy) -> str:
    if policy == "skip":
        count = validator.duplicate_count
        return (
            f"rejected: {count} duplicate custom_id(s) — {_listed(validator.first_duplicates, count)}. "
            f"Duplicate ids reject the whole file even with {META_ON_INVALID}=skip. See {key}"
        )
    listed = _listed(validator.first_errors, validator.error_count)
    return f"rejected: {validator.invalid_lines} invalid line(s) — {listed}. See {key}"


def _fallback_id(line: int, taken: Container[str]) -> str:
    """``line-<n>`` for an invalid line without a readable custom_id, unless the file uses that id."""
    candidate = f"line-{line}"
    while candidate in taken:
        candidate += "-invalid"
    return candidate


def invalid_results(spool: Path, taken: Container[str]) -> Iterator[BatchResult]:
    """The error results of the skipped lines, in line order, each with a unique custom_id."""
    with spool.open("rb") as records:
        for _, raw in iter_numbered_lines(records):
            record = json.loads(raw)
            yield BatchResult(
                custom_id=record["custom_id"] or _fallback_id(record["line"], taken),
                line=record["line"],
                error=record["error"],
            )


def _stage_invalid(
    job_id: str, spool: Path, taken: Container[str], submitted: int, settings: Settings, workdir: Path
) -> None:
    """Skipped lines' results: results-table rows, plus the staged keyed file finalization merges
    (or, when nothing was submitted, results.jsonl itself)."""
    bucket = settings.data_bucket
    storage.upload_file(workdir / "errors.jsonl", bucket, storage.errors_key(job_id))
    out_path = workdir / "invalid.results.jsonl"
    with out_path.open("wb") as out:

        def written() -> Iterator[BatchResult]:
            for result in invalid_results(spool, taken):
                payload = result.model_dump_json().encode()
                out.write(
                    storage.keyed_result(result.line or 0, payload, "invalid")
                    if submitted
                    else payload + b"\n"
                )
                yield result

        results = storage.ResultsRepository.for_writing(settings, bucket)
        results.write(job_id, written())
    key = storage.invalid_results_key(job_id) if submitted else storage.results_key(job_id)
    storage.upload_file(out_path, bucket, key)


def split_into_chunks(
    stream: IO[bytes], *, job_id: str, spec: JobSpec, settings: Settings, workdir: Path
) -> IntakeReport:
    """Validate every line of ``stream`` and stage provider-ready chunks under staging/<job>/.

    Under ``on_invalid=skip`` the skipped lines' results are staged (and written to the results
    table) here too; ``report.invalid_count`` says how many.
    """
    seen = SeenIds(workdir / "seen-ids.spill")
    try:
        return _split(stream, job_id=job_id, spec=spec, settings=settings, workdir=workdir, seen=seen)
    finally:
        seen.close()


def _split(
    stream: IO[bytes], *, job_id: str, spec: JobSpec, settings: Settings, workdir: Path, seen: SeenIds
) -> IntakeReport:
    builder = request_builder_for(spec.provider)
    max_bytes = min(settings.chunk_max_bytes, int(builder.limits.max_bytes * PROVIDER_BYTES_HEADROOM))
    max_items = min(settings.chunk_max_items, builder.limits.max_requests)
    writers = _ChunkWriters(workdir, job_id, settings.data_bucket, max_items, max_bytes)
    skip = spec.on_invalid == "skip"
    errors_path, spool_path = workdir / "errors.jsonl", workdir / "invalid.spool.jsonl"
    line_count = 0
    with errors_path.open("wb") as errors_file, spool_path.open("wb") as spool:
        validator = _Validator(builder, spec, errors_file, spool, seen, settings.max_line_bytes)
        check, stage, staging = validator.check, writers.add, True
        for line_count, raw in iter_numbered_lines(stream, max_line_bytes=settings.max_line_bytes):
            if not raw or raw.isspace():
                continue  # blank lines carry nothing to answer
            checked = check(line_count, raw)
            if checked is None:
                # Once the file is sure to be rejected, keep validating for the report but stop staging.
                staging = not (validator.duplicate_count or (validator.invalid_lines and not skip))
            elif staging:
                stage(checked)
    report = IntakeReport(
        job_id=job_id, accepted=False, line_count=line_count, error_count=validator.error_count
    )
    if validator.duplicate_count or (validator.invalid_lines and not skip):
        writers.abandon()
        storage.upload_file(errors_path, settings.data_bucket, storage.errors_key(job_id))
        storage.delete_prefix(settings.data_bucket, storage.staging_prefix(job_id))
        errors_uri = storage.s3_uri(settings.data_bucket, storage.errors_key(job_id))
        report.reason = _reason(validator, errors_uri, spec.on_invalid)
        return report
    report.chunks = writers.finish()
    if spec.provider == "bedrock" and report.chunks:
        rejection = _bedrock_minimum(report.chunks, job_id, settings, workdir)
        if rejection is not None:
            storage.delete_prefix(settings.data_bucket, storage.staging_prefix(job_id))
            report.chunks, report.reason = [], rejection
            return report
    report.request_count = sum(c.item_count for c in report.chunks)
    report.invalid_count = validator.invalid_lines
    if report.invalid_count:
        _stage_invalid(job_id, spool_path, validator.seen, report.request_count, settings, workdir)
    if report.request_count == 0:
        report.reason = (
            f"{NO_VALID_LINES}: all {report.invalid_count} line(s) are invalid; see "
            f"{storage.s3_uri(settings.data_bucket, storage.errors_key(job_id))}"
            if report.invalid_count
            else "rejected: nothing to submit — the file is empty or holds only blank lines"
        )
        return report
    report.accepted = True
    return report


def _bedrock_minimum(
    chunks: list[ChunkManifest], job_id: str, settings: Settings, workdir: Path
) -> str | None:
    """Every Bedrock job must hold BEDROCK_MIN_RECORDS records: top chunks up, or say why not."""
    from batch_gateway.intake.bedrock_minimum import below_minimum_reason, top_up_short_chunks

    minimum = settings.bedrock_min_records
    return below_minimum_reason(chunks, minimum) or top_up_short_chunks(
        chunks, job_id=job_id, bucket=settings.data_bucket, min_records=minimum, workdir=workdir
    )


def new_job(job_id: str, spec: JobSpec, source: str) -> JobSummary:
    return JobSummary(
        job_id=job_id,
        provider=spec.provider,
        model=spec.model,
        status=BatchStatus.PENDING,
        created_at=time.time(),
        source=source,
    )


def execution_input(job_id: str, bucket: str, chunks: list[ChunkManifest]) -> dict[str, Any]:
    """What the state machine receives: small, whatever the file size (chunk contents stay in S3)."""
    return {
        "job_id": job_id,
        "bucket": bucket,
        "chunks": [{"job_id": job_id, "bucket": bucket, "chunk": c.chunk} for c in chunks],
    }


def workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="batch-gateway-")


ACCEPTED_SUFFIXES = (".jsonl", ".ndjson")


class IntakeOutcome(BaseModel):
    job_id: str | None
    status: str
    reason: str | None = None
    execution_arn: str | None = None

    def loggable_reason(self, log_content: bool) -> str | None:
        """The reason as the logs may carry it: a rejection's reason quotes input values (a line's
        field, object metadata), so it is logged only when content logging is on."""
        if self.status != "rejected" or log_content:
            return self.reason
        return "withheld from the logs (it may quote the input): see the job's reason and errors.jsonl"


def intake_object(bucket: str, key: str, version_id: str | None, settings: Settings) -> IntakeOutcome:
    """Start a job for an uploaded object; a re-delivered event for the same version starts nothing new."""
    if not key.lower().endswith(ACCEPTED_SUFFIXES):
        return IntakeOutcome(
            job_id=None, status="ignored", reason=f"'{key}' does not end in {' or '.join(ACCEPTED_SUFFIXES)}"
        )
    client = storage.s3_client()
    head = (
        client.head_object(Bucket=bucket, Key=key, VersionId=version_id)
        if version_id
        else (client.head_object(Bucket=bucket, Key=key))
    )
    job_id = job_id_for(bucket, key, version_id or head["ETag"].strip('"'))
    jobs = storage.JobsRepository(settings.jobs_table)
    source = storage.s3_uri(bucket, key)
    try:
        spec = job_spec_from_metadata(head.get("Metadata", {}), settings)
    except JobSpecError as exc:
        return _reject_without_spec(jobs, job_id, source, str(exc), settings)
    job = new_job(job_id, spec, source)
    if not jobs.create_job(job):
        existing = jobs.get_job(job_id)
        if existing is None or existing.chunk_count or existing.status is not BatchStatus.PENDING:
            return IntakeOutcome(
                job_id=job_id, status="duplicate", reason="this object version already has a job"
            )
        job = existing  # an earlier attempt died while staging: stage again (same keys, same rows)
    size = int(head.get("ContentLength", 0))
    if size > settings.max_input_bytes:
        reason = (
            f"rejected: the file is {size:,} bytes, more than the {settings.max_input_bytes:,} bytes "
            "the stack takes (MaxInputBytes): split it into several files"
        )
        return _reject(jobs, job, IntakeReport(job_id=job_id, accepted=False, reason=reason), settings)
    with workdir() as tmp, open_source(bucket, key, version_id) as stream:
        report = split_into_chunks(stream, job_id=job_id, spec=spec, settings=settings, workdir=Path(tmp))
    if report.invalid_count and not report.accepted:
        return _finish_without_valid_lines(jobs, job, report, settings)
    if not report.accepted:
        return _reject(jobs, job, report, settings)
    return _start(jobs, job, report, settings)


def open_source(bucket: str, key: str, version_id: str | None) -> IO[bytes]:
    return storage.open_object(bucket, key, version_id)


def _reject_without_spec(
    jobs: storage.JobsRepository, job_id: str, source: str, reason: str, settings: Settings
) -> IntakeOutcome:
    job = JobSummary(
        job_id=job_id,
        provider="unknown",
        model="unknown",
        status=BatchStatus.FAILED,
        created_at=time.time(),
        source=source,
    )
    jobs.create_job(job)
    report = IntakeReport(job_id=job_id, accepted=False, reason=f"rejected: {reason}")
    return _reject(jobs, job, report, settings)


def _reject(
    jobs: storage.JobsRepository, job: JobSummary, report: IntakeReport, settings: Settings
) -> IntakeOutcome:
    metrics.add_metric(name="FilesRejected", unit=MetricUnit.Count, value=1)
    job.status = BatchStatus.FAILED
    job.reason = report.reason
    job.request_count = report.request_count
    job.finished_at = time.time()
    if report.error_count:
        job.errors_uri = storage.s3_uri(settings.data_bucket, storage.errors_key(job.job_id))
    jobs.save_job(job)
    storage.put_json(
        settings.data_bucket, storage.summary_key(job.job_id), job.model_dump(mode="json", exclude={"raw"})
    )
    return IntakeOutcome(job_id=job.job_id, status="rejected", reason=report.reason)


def _finish_without_valid_lines(
    jobs: storage.JobsRepository, job: JobSummary, report: IntakeReport, settings: Settings
) -> IntakeOutcome:
    """on_invalid=skip and no line is valid: every line already has its error result; no workflow."""
    bucket = settings.data_bucket
    job.status = BatchStatus.FAILED
    job.reason = report.reason
    job.request_count = 0
    job.invalid_count = report.invalid_count
    job.counts = ResultCounts(invalid=report.invalid_count)
    job.results_uri = storage.s3_uri(bucket, storage.results_key(job.job_id))
    job.errors_uri = storage.s3_uri(bucket, storage.errors_key(job.job_id))
    job.finished_at = time.time()
    jobs.save_job(job)
    storage.put_json(bucket, storage.summary_key(job.job_id), job.model_dump(mode="json", exclude={"raw"}))
    return IntakeOutcome(job_id=job.job_id, status="failed", reason=report.reason)


def _start(
    jobs: storage.JobsRepository, job: JobSummary, report: IntakeReport, settings: Settings
) -> IntakeOutcome:
    metrics.add_metric(name="ItemsAccepted", unit=MetricUnit.Count, value=report.request_count)
    metrics.add_metric(name="ItemsInvalid", unit=MetricUnit.Count, value=report.error_count)
    for manifest in report.chunks:
        fields: dict[str, Any] = {
            "status": "staged",
            "item_count": manifest.item_count,
            "byte_count": manifest.byte_count,
        }
        if manifest.model:
            fields["model"] = manifest.model
        jobs.put_chunk(job.job_id, manifest.chunk, fields)
    job.request_count = report.request_count
    job.invalid_count = report.invalid_count
    if report.invalid_count:
        job.errors_uri = storage.s3_uri(settings.data_bucket, storage.errors_key(job.job_id))
    job.chunk_count = len(report.chunks)
    jobs.save_job(job)
    sfn = storage.stepfunctions_client()
    try:
        execution = sfn.start_execution(
            stateMachineArn=settings.state_machine_arn,
            name=job.job_id,
            input=json.dumps(execution_input(job.job_id, settings.data_bucket, report.chunks)),
        )
        execution_arn: str | None = execution["executionArn"]
    except sfn.exceptions.ExecutionAlreadyExists:
        execution_arn = None  # started by an earlier delivery of the same event
    return IntakeOutcome(job_id=job.job_id, status="started", execution_arn=execution_arn)
