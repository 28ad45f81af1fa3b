"""Scheduled submissions: every file under ``scheduled/`` is submitted once, by the intake path.

A scheduled run lists the latest version of each file under ``scheduled/``, claims each version
with a conditional write (``storage.claims.ScheduledClaims``: overlapping runs cannot both take it)
and hands it to intake with a server-side copy to ``inbox/scheduled/<version tag>/<path>``. The
copy keeps the object's metadata (the job spec), and its upload event starts the job exactly like
any upload: one intake invocation per file, in parallel, instead of one long function holding every
file. The copy's key is derived from the source version, so a run that died after copying is
finished by the next run without a second copy (hence without a second job).

Each run writes a report (``scheduled-runs/<time>.json``, and the log): what it submitted, as
which job, and what it skipped and why.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from batch_gateway.intake.spec import ACCEPTED_SUFFIXES, job_id_for
from batch_gateway.observability import MetricUnit, logger, metrics
from batch_gateway.settings import Settings
from batch_gateway.storage.aws import s3_client
from batch_gateway.storage.claims import ScheduledClaims
from batch_gateway.storage.keys import s3_uri
from batch_gateway.storage.s3 import put_json

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CopySourceTypeDef


SCHEDULED_PREFIX = "scheduled/"
INBOX_PREFIX = "inbox/scheduled/"
REPORTS_PREFIX = "scheduled-runs/"
# A claim outlives any run (the function's timeout is 15 minutes): then a dead run's file is retaken.
CLAIM_LEASE_SECONDS = 20 * 60
# CopyObject copies at most 5 GB in one request; larger objects go through a multipart copy.
SINGLE_COPY_MAX_BYTES = 5 * 1024**3


class ScheduledFile(BaseModel):
    key: str
    version_id: str | None  # None in a bucket without versioning
    etag: str
    size: int

    @property
    def version(self) -> str:
        """What identifies this content of the file: its version id, else its ETag."""
        return self.version_id or self.etag


class Submitted(BaseModel):
    key: str
    version: str
    job_id: str
    inbox_key: str


class Skipped(BaseModel):
    key: str
    reason: str


class ScheduledRunReport(BaseModel):
    """What one scheduled run did; written to ``scheduled-runs/<time>.json``."""

    started_at: float
    finished_at: float | None = None
    submitted: list[Submitted] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list)
    deferred: list[str] = Field(default_factory=list, description="Left for the next run: time ran out.")
    report_uri: str | None = None


def latest_files(bucket: str) -> Iterator[ScheduledFile]:
    """The current version of every object under ``scheduled/`` (deleted files excluded)."""
    client = s3_client()
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=SCHEDULED_PREFIX):
        for version in page.get("Versions", []):
            if version.get("IsLatest") and not version["Key"].endswith("/"):
                version_id = version.get("VersionId")
                yield ScheduledFile(
                    key=version["Key"],
                    version_id=version_id if version_id and version_id != "null" else None,
                    etag=version["ETag"].strip('"'),
                    size=version.get("Size", 0),
                )


def inbox_key_for(file: ScheduledFile, claim_id: str) -> str:
    """Where the copy goes: unique per source version, and keeping the file's name (it names the job)."""
    relative = file.key.removeprefix(SCHEDULED_PREFIX)
    return f"{INBOX_PREFIX}{claim_id.rsplit('-', 1)[-1]}/{relative}"


def _existing_version(bucket: str, key: str) -> str | None:
    try:
        head = s3_client().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return str(head.get("VersionId") or head["ETag"].strip('"'))


def _copy_to_inbox(bucket: str, file: ScheduledFile, inbox_key: str) -> str:
    """Server-side copy, metadata included; returns the copy's version (what intake's job id uses)."""
    source: CopySourceTypeDef = {"Bucket": bucket, "Key": file.key}
    if file.version_id:  # exactly the version that was claimed, even if the file changed since
        source["VersionId"] = file.version_id
    client = s3_client()
    if file.size <= SINGLE_COPY_MAX_BYTES:
        copied = client.copy_object(Bucket=bucket, Key=inbox_key, CopySource=source, MetadataDirective="COPY")
        return str(copied.get("VersionId") or copied["CopyObjectResult"]["ETag"].strip('"'))
    # A multipart copy does not carry the metadata over by itself, and the metadata is the job spec.
    head = (
        client.head_object(Bucket=bucket, Key=file.key, VersionId=file.version_id)
        if file.version_id
        else client.head_object(Bucket=bucket, Key=file.key)
    )
    client.copy(source, bucket, inbox_key, ExtraArgs={"Metadata": head.get("Metadata", {})})
    version = _existing_version(bucket, inbox_key)
    assert version is not None
    return version


def submit_file(file: ScheduledFile, bucket: str, claims: ScheduledClaims) -> Submitted | Skipped:
    """Submit one scheduled file version at most once, whatever other runs do at the same time."""
    if not file.key.lower().endswith(ACCEPTED_SUFFIXES):
        return Skipped(key=file.key, reason=f"not a {' or '.join(ACCEPTED_SUFFIXES)} file")
    claim_id = job_id_for(bucket, file.key, file.version)
    if not claims.claim(claim_id, s3_uri(bucket, file.key), CLAIM_LEASE_SECONDS):
        return Skipped(key=file.key, reason=_skip_reason(claims, claim_id))
    inbox_key = inbox_key_for(file, claim_id)
    # A run that died after copying left the copy behind: adopt it instead of copying again.
    copy_version = _existing_version(bucket, inbox_key) or _copy_to_inbox(bucket, file, inbox_key)
    job_id = job_id_for(bucket, inbox_key, copy_version)
    claims.mark_submitted(claim_id, job_id, inbox_key)
    return Submitted(key=file.key, version=file.version, job_id=job_id, inbox_key=inbox_key)


def _skip_reason(claims: ScheduledClaims, claim_id: str) -> str:
    claim = claims.get(claim_id)
    if claim is None or claim.state != "submitted":
        return "another scheduled run is submitting this version right now"
    when = datetime.fromtimestamp(claim.submitted_at or claim.claimed_at, UTC).isoformat(timespec="seconds")
    return f"this version was already submitted at {when} as job {claim.started_job_id}"


def run_scheduled_submissions(
    settings: Settings, time_left_ms: Callable[[], int] | None = None, reserve_ms: int = 30_000
) -> ScheduledRunReport:
    """Submit every not-yet-submitted file under ``scheduled/``; stop early when time runs out."""
    bucket = settings.data_bucket
    claims = ScheduledClaims(settings.jobs_table)
    report = ScheduledRunReport(started_at=time.time())
    for file in latest_files(bucket):
        if time_left_ms is not None and time_left_ms() < reserve_ms:
            report.deferred.append(file.key)  # unclaimed: the next run takes it
            continue
        outcome = submit_file(file, bucket, claims)
        if isinstance(outcome, Submitted):
            report.submitted.append(outcome)
        else:
            report.skipped.append(outcome)
    report.finished_at = time.time()
    _publish(report, bucket)
    return report


def _publish(report: ScheduledRunReport, bucket: str) -> None:
    stamp = datetime.fromtimestamp(report.started_at, UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
    key = f"{REPORTS_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}.json"  # overlapping runs never collide
    report.report_uri = s3_uri(bucket, key)
    put_json(bucket, key, report.model_dump(mode="json"))
    metrics.add_metric(name="ScheduledFilesSubmitted", unit=MetricUnit.Count, value=len(report.submitted))
    metrics.add_metric(name="ScheduledFilesSkipped", unit=MetricUnit.Count, value=len(report.skipped))
    logger.info(
        "scheduled run",
        extra={
            "submitted": [{"key": s.key, "job_id": s.job_id} for s in report.submitted],
            "skipped": [s.model_dump() for s in report.skipped],
            "deferred": report.deferred,
            "report_uri": report.report_uri,
        },
    )
