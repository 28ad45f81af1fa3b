"""Split an input file into provider-ready chunks, streaming it line by line.

:func:`split_into_chunks` reads the file in blocks (``lines.iter_numbered_lines``), checks every
line (``line_validator``) and stages the valid ones through ``chunk_writer``; memory stays flat as
files grow (only duplicate detection grows, by ~16 bytes per line: ``seen_ids``). The outcome is
an :class:`IntakeReport`: accepted with its chunk manifests, or rejected with a reason.

Invalid lines follow the job's ``on_invalid`` policy: ``reject`` stops staging at the first one,
keeps validating for the report and deletes what was staged; ``skip`` stages the valid lines and
gives each invalid one an error result here (results-table rows, plus
``staging/<job>/invalid.results.jsonl`` that finalization merges, or results.jsonl itself when no
line is valid). Bedrock jobs then get their chunks topped up to Bedrock's minimum record count.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterator
from pathlib import Path
from typing import IO

from pydantic import BaseModel

from batch_gateway.intake.bedrock_minimum import below_minimum_reason, top_up_short_chunks
from batch_gateway.intake.chunk_writer import PROVIDER_BYTES_HEADROOM, ChunkManifest, ChunkSink, ChunkWriters
from batch_gateway.intake.formats.csv_rows import FormatError
from batch_gateway.intake.formats.detect import Records, open_records
from batch_gateway.intake.line_validator import LineValidator
from batch_gateway.intake.seen_ids import SeenIds
from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import BatchResult, JobSpec
from batch_gateway.providers.requests import request_builder_for
from batch_gateway.settings import Settings
from batch_gateway.storage.keys import errors_key, invalid_results_key, results_key, s3_uri, staging_prefix
from batch_gateway.storage.results import ResultsRepository, StagedWriter, upload_staged
from batch_gateway.storage.s3 import delete_prefix, upload_file

NO_VALID_LINES = "no valid lines to submit"


class IntakeReport(BaseModel):
    """What splitting a file found and staged."""

    job_id: str
    accepted: bool
    request_count: int = 0
    line_count: int = 0
    chunks: list[ChunkManifest] = []
    error_count: int = 0
    invalid_count: int = 0  # lines skipped under on_invalid=skip, each with an error result
    reason: str | None = None


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
    try:  # the file's format, decided once (intake.formats): the loop below checks every record
        records = open_records(stream, spec, settings.max_line_bytes)
    except FormatError as exc:
        return IntakeReport(job_id=job_id, accepted=False, reason=f"rejected: {exc}")
    builder = request_builder_for(spec.provider)
    writers = chunk_writers_for(job_id, spec, settings, workdir)
    errors_path, spool_path = workdir / "errors.jsonl", workdir / "invalid.spool.jsonl"
    with errors_path.open("wb") as errors_file, spool_path.open("wb") as spool:
        validator = LineValidator(builder, spec, errors_file, spool, seen, settings.max_line_bytes)
        line_count = stage_records(records, validator, writers)
    report = IntakeReport(
        job_id=job_id, accepted=False, line_count=line_count, error_count=validator.error_count
    )
    if validator.rejects_file:
        writers.abandon()
        upload_file(errors_path, settings.data_bucket, errors_key(job_id))
        delete_prefix(settings.data_bucket, staging_prefix(job_id))
        report.reason = validator.rejection_reason(_errors_uri(job_id, settings))
        return report
    report.chunks = writers.finish()
    return _conclude(report, validator, spec, settings, workdir, spool_path)


def chunk_writers_for(
    job_id: str, spec: JobSpec, settings: Settings, workdir: Path, sink: ChunkSink | None = None
) -> ChunkWriters:
    """The chunk writers of a job: the provider's and the stack's caps, and chunks that fit its quota."""
    builder = request_builder_for(spec.provider)
    max_bytes = min(settings.chunk_max_bytes, int(builder.limits.max_bytes * PROVIDER_BYTES_HEADROOM))
    max_items = min(settings.chunk_max_items, builder.limits.max_requests)
    quota = (spec.provider, settings.quota_for(spec.provider))
    return ChunkWriters(workdir, job_id, settings.data_bucket, max_items, max_bytes, quota, sink)


def stage_records(records: Records, validator: LineValidator, writers: ChunkWriters) -> int:
    """Check every record and stage the valid ones; the last line number read. Intake and the
    estimate (``intake.estimate``) both run this loop, so an estimate sees what intake would do."""
    check, stage, staging = validator.checker(records), writers.add, True
    line_count = 0
    for line_count, raw in records.lines:
        if not raw or raw.isspace():
            continue  # blank lines carry nothing to answer
        checked = check(line_count, raw)
        if checked is None:
            # Once the file is sure to be rejected, keep validating for the report but stop staging.
            staging = not validator.rejects_file
        elif staging:
            stage(checked)
    return line_count


def _conclude(
    report: IntakeReport,
    validator: LineValidator,
    spec: JobSpec,
    settings: Settings,
    workdir: Path,
    spool_path: Path,
) -> IntakeReport:
    """Every line is staged or skipped: apply Bedrock's minimum, stage the skipped lines' results."""
    job_id = report.job_id
    if spec.provider == "bedrock" and report.chunks:
        rejection = _bedrock_minimum(report.chunks, job_id, settings, workdir)
        if rejection is not None:
            delete_prefix(settings.data_bucket, staging_prefix(job_id))
            report.chunks, report.reason = [], rejection
            return report
    report.request_count = sum(c.item_count for c in report.chunks)
    report.invalid_count = validator.invalid_lines
    if report.invalid_count:
        _stage_invalid(job_id, spool_path, validator.seen, report.request_count, settings, workdir)
    if report.request_count == 0:
        report.reason = (
            f"{NO_VALID_LINES}: all {report.invalid_count} line(s) are invalid; see "
            f"{_errors_uri(job_id, settings)}"
            if report.invalid_count
            else "rejected: nothing to submit — the file is empty or holds only blank lines"
        )
        return report
    report.accepted = True
    return report


def _errors_uri(job_id: str, settings: Settings) -> str:
    return s3_uri(settings.data_bucket, errors_key(job_id))


def _bedrock_minimum(
    chunks: list[ChunkManifest], job_id: str, settings: Settings, workdir: Path
) -> str | None:
    """Every Bedrock job must hold BEDROCK_MIN_RECORDS records: top chunks up, or say why not."""
    minimum = settings.bedrock_min_records
    return below_minimum_reason(chunks, minimum) or top_up_short_chunks(
        chunks, job_id=job_id, bucket=settings.data_bucket, min_records=minimum, workdir=workdir
    )


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
    upload_file(workdir / "errors.jsonl", bucket, errors_key(job_id))
    out_path = workdir / "invalid.results.jsonl"
    with out_path.open("wb") as out:
        staged = StagedWriter(out)  # the bytes results.jsonl holds, whether staged or final

        def written() -> Iterator[BatchResult]:
            for result in invalid_results(spool, taken):
                staged.write(result.line or 0, result.model_dump_json().encode())
                yield result

        results = ResultsRepository.for_writing(settings, bucket)
        results.write(job_id, written())
    if submitted:
        upload_staged(out_path, staged, bucket, invalid_results_key(job_id))
    else:
        upload_file(out_path, bucket, results_key(job_id))
