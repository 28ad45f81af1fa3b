"""Intake: stream an input file, validate every line, split it into provider-ready chunk files.

Memory stays flat as files grow: lines are read in blocks, each chunk is spooled to local disk and
uploaded when full. Only the custom_id -> line map (for duplicate detection) grows with the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
import time
from pathlib import Path
from typing import IO, Any, NamedTuple

from pydantic import BaseModel, ValidationError

from batch_gateway import storage
from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import BatchItem, BatchStatus, JobSpec, JobSummary
from batch_gateway.providers.requests import RequestBuilder, encode_request_line, request_builder_for
from batch_gateway.settings import Settings
from batch_gateway.validation import LineError, parse_item

# Object metadata keys (x-amz-meta-*) that carry the job spec of an uploaded file.
META_PROVIDER = "provider"
META_MODEL = "model"
META_SYSTEM_PROMPT = "system-prompt"
META_SYSTEM_PROMPT_B64 = "system-prompt-b64"
# Keep provider batches comfortably below the provider's byte cap: JSON overhead differs slightly.
PROVIDER_BYTES_HEADROOM = 0.95
MAX_REASON_ERRORS = 3


class JobSpecError(ValueError):
    """The job spec (metadata or defaults) is unusable; the message says which key to fix."""


class ChunkManifest(BaseModel):
    chunk: int
    item_count: int
    byte_count: int


class IntakeReport(BaseModel):
    job_id: str
    accepted: bool
    request_count: int = 0
    line_count: int = 0
    chunks: list[ChunkManifest] = []
    error_count: int = 0
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
    try:
        return JobSpec(
            provider=meta.get(META_PROVIDER) or settings.default_provider,
            model=meta.get(META_MODEL) or settings.default_model,
            system_prompt=system_prompt,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"'{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise JobSpecError(
            f"the job spec is invalid ({problems}); set object metadata x-amz-meta-provider "
            "(openai|anthropic) and x-amz-meta-model, or the stack's DefaultProvider/DefaultModel"
        ) from exc


class _Staged(NamedTuple):
    request_line: bytes  # the provider-ready line
    index_line: bytes  # line number, user custom_id and provider custom_id, to map results back


class _ChunkWriter:
    """Spools provider-ready request lines and their index to local files, one chunk at a time."""

    def __init__(self, workdir: Path, job_id: str, bucket: str, max_items: int, max_bytes: int) -> None:
        self._workdir, self._job_id, self._bucket = workdir, job_id, bucket
        self._max_items, self._max_bytes = max_items, max_bytes
        self.manifests: list[ChunkManifest] = []
        self._requests: IO[bytes] | None = None
        self._index: IO[bytes] | None = None
        self._items = 0
        self._bytes = 0

    def add(self, request_line: bytes, index_line: bytes) -> None:
        if self._requests and (
            self._items >= self._max_items or self._bytes + len(request_line) > self._max_bytes
        ):
            self._close_chunk()
        if self._requests is None or self._index is None:
            chunk = len(self.manifests) + 1
            self._requests = (self._workdir / f"requests-{chunk}.jsonl").open("wb")
            self._index = (self._workdir / f"index-{chunk}.jsonl").open("wb")
        self._requests.write(request_line)
        self._index.write(index_line)
        self._items += 1
        self._bytes += len(request_line)

    def _close_chunk(self) -> None:
        assert self._requests is not None
        assert self._index is not None
        chunk = len(self.manifests) + 1
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
        self.manifests.append(ChunkManifest(chunk=chunk, item_count=self._items, byte_count=self._bytes))
        self._requests = self._index = None
        self._items = self._bytes = 0

    def finish(self) -> list[ChunkManifest]:
        if self._requests is not None:
            self._close_chunk()
        return self.manifests

    def abandon(self) -> None:
        for handle in (self._requests, self._index):
            if handle is not None:
                handle.close()
        self._requests = self._index = None


def _request_line(builder: RequestBuilder, item: BatchItem, line: int, spec: JobSpec) -> _Staged | LineError:
    provider_id = builder.provider_custom_id(item.custom_id, line)
    try:
        request = builder.build_request(provider_id, item, spec)
    except ValueError as exc:
        return LineError(line=line, field="extra", reason=str(exc), custom_id=item.custom_id)
    encoded = encode_request_line(request)
    if len(encoded) > builder.limits.max_bytes * PROVIDER_BYTES_HEADROOM:
        return LineError(
            line=line,
            field="user_message",
            reason=f"the request is {len(encoded)} bytes, more than {builder.name} accepts in one batch",
            custom_id=item.custom_id,
        )
    index = {"line": line, "custom_id": item.custom_id, "provider_custom_id": provider_id}
    return _Staged(encoded, json.dumps(index, ensure_ascii=False).encode() + b"\n")


class _Validator:
    """Validates lines one by one, remembering custom_ids to refuse duplicates."""

    def __init__(self, builder: RequestBuilder, spec: JobSpec, errors_file: IO[bytes]) -> None:
        self._builder, self._spec, self._errors = builder, spec, errors_file
        self._seen: dict[str, int] = {}
        self.error_count = 0
        self.first_errors: list[LineError] = []

    def _fail(self, errors: list[LineError]) -> None:
        for error in errors:
            self._errors.write(error.model_dump_json(exclude_none=True).encode() + b"\n")
            self.error_count += 1
            if len(self.first_errors) < MAX_REASON_ERRORS:
                self.first_errors.append(error)

    def check(self, line: int, raw: bytes) -> _Staged | None:
        parsed = parse_item(line, raw)
        if isinstance(parsed, list):
            self._fail(parsed)
            return None
        first_line = self._seen.setdefault(parsed.custom_id, line)
        if first_line != line:
            self._fail(
                [
                    LineError(
                        line=line,
                        field="custom_id",
                        custom_id=parsed.custom_id,
                        reason=f"duplicate custom_id '{parsed.custom_id}' (first used on line {first_line}): "
                        "every custom_id must be unique in a file",
                    )
                ]
            )
            return None
        request = _request_line(self._builder, parsed, line, self._spec)
        if isinstance(request, LineError):
            self._fail([request])
            return None
        return request


def _reason(validator: _Validator, key: str) -> str:
    shown = "; ".join(f"line {e.line}: {e.reason}" for e in validator.first_errors)
    more = validator.error_count - len(validator.first_errors)
    suffix = f" (and {more} more)" if more > 0 else ""
    return f"rejected: {validator.error_count} invalid line(s) — {shown}{suffix}. See {key}"


def split_into_chunks(
    stream: IO[bytes], *, job_id: str, spec: JobSpec, settings: Settings, workdir: Path
) -> IntakeReport:
    """Validate every line of ``stream`` and stage provider-ready chunks under staging/<job>/."""
    builder = request_builder_for(spec.provider)
    max_bytes = min(settings.chunk_max_bytes, int(builder.limits.max_bytes * PROVIDER_BYTES_HEADROOM))
    max_items = min(settings.chunk_max_items, builder.limits.max_requests)
    writer = _ChunkWriter(workdir, job_id, settings.data_bucket, max_items, max_bytes)
    errors_path = workdir / "errors.jsonl"
    line_count = 0
    with errors_path.open("wb") as errors_file:
        validator = _Validator(builder, spec, errors_file)
        for line, raw in iter_numbered_lines(stream):
            line_count = line
            if not raw.strip():
                continue  # blank lines carry nothing to answer
            checked = validator.check(line, raw)
            # After the first bad line the file is rejected: keep validating for the report, stop staging.
            if checked is not None and validator.error_count == 0:
                writer.add(checked.request_line, checked.index_line)
    report = IntakeReport(
        job_id=job_id, accepted=False, line_count=line_count, error_count=validator.error_count
    )
    if validator.error_count:
        writer.abandon()
        storage.upload_file(errors_path, settings.data_bucket, storage.errors_key(job_id))
        storage.delete_prefix(settings.data_bucket, storage.staging_prefix(job_id))
        report.reason = _reason(validator, storage.s3_uri(settings.data_bucket, storage.errors_key(job_id)))
        return report
    report.chunks = writer.finish()
    report.request_count = sum(c.item_count for c in report.chunks)
    if report.request_count == 0:
        report.reason = "rejected: the file has no items (it is empty or holds only blank lines)"
        return report
    report.accepted = True
    return report


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
    with workdir() as tmp, open_source(bucket, key, version_id) as stream:
        report = split_into_chunks(stream, job_id=job_id, spec=spec, settings=settings, workdir=Path(tmp))
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


def _start(
    jobs: storage.JobsRepository, job: JobSummary, report: IntakeReport, settings: Settings
) -> IntakeOutcome:
    for manifest in report.chunks:
        jobs.put_chunk(
            job.job_id,
            manifest.chunk,
            {
                "status": "staged",
                "item_count": manifest.item_count,
                "byte_count": manifest.byte_count,
            },
        )
    job.request_count = report.request_count
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
