"""The intake entry: an uploaded object becomes a job that is started, rejected or failed.

:func:`intake_object` is what the Intake function runs for each S3 event record. It reads the
object's metadata into a job spec (``spec``), creates the job's row (a re-delivered event for the
same object version finds it and starts nothing new, except the execution an earlier attempt
staged every chunk for and died before starting), splits the file into staged chunks
(``split``), then records one of three outcomes:

- started: a chunk row per staged chunk, the job's manifest (the chunk list, in S3) and one Step
  Functions execution named after the job;
- rejected: the job ends ``failed`` with the reason (bad metadata, too large, invalid lines, a
  duplicate custom_id, Bedrock's minimum), ``results/<job>/errors.jsonl`` lists every bad line;
- failed without a workflow: on_invalid=skip and no valid line (every line has its error result).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from batch_gateway.intake.chunk_writer import quota_fields
from batch_gateway.intake.spec import (
    ACCEPTED_SUFFIXES,
    MAX_SCHEMA_BYTES,
    JobSpecError,
    api_name,
    decode_response_schema,
    job_id_for,
    job_spec_from_metadata,
    new_job,
    response_schema_name,
)
from batch_gateway.intake.split import IntakeReport, split_into_chunks
from batch_gateway.models import BatchStatus, JobSummary, ResultCounts
from batch_gateway.observability import MetricUnit, metrics
from batch_gateway.settings import Settings
from batch_gateway.storage.aws import s3_client, stepfunctions_client
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.storage.keys import errors_key, results_key, s3_uri, schema_key, summary_key
from batch_gateway.storage.s3 import open_object, put_json
from batch_gateway.workflow.manifests import new_job_manifest


class IntakeOutcome(BaseModel):
    """What happened to one uploaded object (the Intake function logs and returns it)."""

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
    client = s3_client()
    head = (
        client.head_object(Bucket=bucket, Key=key, VersionId=version_id)
        if version_id
        else (client.head_object(Bucket=bucket, Key=key))
    )
    name = api_name(key, head.get("Metadata", {}))
    job_id = job_id_for(bucket, key, version_id or head["ETag"].strip('"'), name)
    jobs = JobsRepository(settings.jobs_table)
    source = s3_uri(bucket, key)
    try:
        spec = job_spec_from_metadata(
            head.get("Metadata", {}), settings, _response_schema(bucket, head), key=key
        )
    except JobSpecError as exc:
        return _reject_without_spec(jobs, job_id, source, str(exc), settings)
    job = new_job(job_id, spec, source)
    if not jobs.create_job(job):
        existing = jobs.get_job(job_id)
        if existing is None or existing.status is not BatchStatus.PENDING:
            return _duplicate(job_id)
        if existing.chunk_count:
            # chunk_count is saved after every chunk row, so the earlier attempt staged them all; it
            # may have died before StartExecution (found by the chaos run): start the job's execution,
            # which its name makes happen once. Chunks are numbered 1..n (one counter for all
            # writers, each opened chunk gets items), so no query (nor its permission) is needed.
            chunks = list(range(1, existing.chunk_count + 1))
            return _start_execution(existing, chunks, settings, retried=True)
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


def _duplicate(job_id: str) -> IntakeOutcome:
    return IntakeOutcome(job_id=job_id, status="duplicate", reason="this object version already has a job")


def _response_schema(bucket: str, head: Any) -> Any:
    """The JSON of the schema the upload's ``response-schema`` key names (None without one)."""
    name = response_schema_name(head.get("Metadata", {}))
    if name is None:
        return None
    try:
        with open_object(bucket, schema_key(name)) as stream:
            body = stream.read(MAX_SCHEMA_BYTES + 1)
    except ClientError as exc:
        raise JobSpecError(
            f"the response schema s3://{bucket}/{schema_key(name)} could not be read "
            f"({exc.response.get('Error', {}).get('Code', 'error')}): upload the schema there, or fix the "
            "response-schema metadata key"
        ) from None
    return decode_response_schema(name, body)


def workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="batch-gateway-")


def open_source(bucket: str, key: str, version_id: str | None) -> IO[bytes]:
    return open_object(bucket, key, version_id)


def _reject_without_spec(
    jobs: JobsRepository, job_id: str, source: str, reason: str, settings: Settings
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


def _reject(jobs: JobsRepository, job: JobSummary, report: IntakeReport, settings: Settings) -> IntakeOutcome:
    metrics.add_metric(name="FilesRejected", unit=MetricUnit.Count, value=1)
    job.status = BatchStatus.FAILED
    job.reason = report.reason
    job.request_count = report.request_count
    job.finished_at = time.time()
    if report.error_count:
        job.errors_uri = s3_uri(settings.data_bucket, errors_key(job.job_id))
    jobs.save_job(job)
    put_json(settings.data_bucket, summary_key(job.job_id), job.model_dump(mode="json", exclude={"raw"}))
    return IntakeOutcome(job_id=job.job_id, status="rejected", reason=report.reason)


def _finish_without_valid_lines(
    jobs: JobsRepository, job: JobSummary, report: IntakeReport, settings: Settings
) -> IntakeOutcome:
    """on_invalid=skip and no line is valid: every line already has its error result; no workflow."""
    bucket = settings.data_bucket
    job.status = BatchStatus.FAILED
    job.reason = report.reason
    job.request_count = 0
    job.invalid_count = report.invalid_count
    job.counts = ResultCounts(invalid=report.invalid_count)
    job.results_uri = s3_uri(bucket, results_key(job.job_id))
    job.errors_uri = s3_uri(bucket, errors_key(job.job_id))
    job.finished_at = time.time()
    jobs.save_job(job)
    put_json(bucket, summary_key(job.job_id), job.model_dump(mode="json", exclude={"raw"}))
    return IntakeOutcome(job_id=job.job_id, status="failed", reason=report.reason)


def _start(jobs: JobsRepository, job: JobSummary, report: IntakeReport, settings: Settings) -> IntakeOutcome:
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
        fields.update(quota_fields(job.provider, manifest))
        jobs.put_chunk(job.job_id, manifest.chunk, fields)
    job.request_count = report.request_count
    job.invalid_count = report.invalid_count
    if report.invalid_count:
        job.errors_uri = s3_uri(settings.data_bucket, errors_key(job.job_id))
    job.chunk_count = len(report.chunks)
    jobs.save_job(job)
    return _start_execution(job, [c.chunk for c in report.chunks], settings)


def _start_execution(
    job: JobSummary, chunks: list[int], settings: Settings, retried: bool = False
) -> IntakeOutcome:
    """Write the job's manifest and start its execution, named after the job (so at most one)."""
    # The chunk list goes to S3 (the job's manifest): the execution's input stays small whatever
    # the file size, and the Distributed Map reads the list from there. Written again on a retry,
    # it is the same object.
    execution_input = new_job_manifest(job.job_id, settings.data_bucket, job.job_id, chunks)
    sfn = stepfunctions_client()
    try:
        execution = sfn.start_execution(
            stateMachineArn=settings.state_machine_arn,
            name=job.job_id,
            input=execution_input.model_dump_json(),
        )
        execution_arn: str | None = execution["executionArn"]
    except sfn.exceptions.ExecutionAlreadyExists:
        if retried:
            return _duplicate(job.job_id)
        execution_arn = None  # started by an earlier delivery of the same event
    return IntakeOutcome(job_id=job.job_id, status="started", execution_arn=execution_arn)
