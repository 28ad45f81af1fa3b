"""Submitting a batch: the request becomes an object in the data bucket's inbox, as any upload.

The API reuses the S3 intake path exactly: the inline items (checked first with intake's own rules
by :mod:`.submission_checks`, so a bad request gets a 422 with line-level details), or the
``source`` object (copied server-side), are written to ``inbox/api/<name>.jsonl`` with the job spec
as object metadata (``intake.spec``'s keys). The bucket notification starts the Intake function as
for any upload, and the job id is ``intake.spec.job_id_for(bucket, key, version, name)``:
``<name>-<16 hex>``, the request's ``name`` (default ``batch``) and a hash of the object version.

Idempotency: with an Idempotency-Key the object key derives from the key and the caller and the
object is written only if absent (S3 conditional write); the inbox object itself is the idempotency
record, and the request's hash on it tells a retry from a reuse of the key (409).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from batch_gateway.api.errors import ApiError
from batch_gateway.api.models import SubmitBatch
from batch_gateway.api.submission_checks import check_inline, check_source, validate_spec
from batch_gateway.intake.spec import (
    API_INBOX_PREFIX,
    META_API_NAME,
    META_MODEL,
    META_ON_INVALID,
    META_PROVIDER,
    META_RESPONSE_SCHEMA,
    META_SYSTEM_PROMPT_B64,
    format_metadata,
    job_id_for,
)
from batch_gateway.models import JobSpec
from batch_gateway.settings import Settings
from batch_gateway.storage.aws import s3_client
from batch_gateway.storage.keys import schema_key

DEFAULT_NAME = "batch"
# Hash of the canonical request body, kept on the object: a retry under the same key must match it.
# (All metadata stays under S3's 2 KB: keys 66 bytes, provider/on-invalid/hash 79, model at most 200,
# the name at most 40, the system prompt at most 1,200 bytes -> 1,600 in base64.)
META_REQUEST_SHA256 = "api-request-sha256"
SOURCE_PART_BYTES = 256 * 1024 * 1024


class Submission(NamedTuple):
    """A request written to the inbox: the job it starts, and whether an earlier write had done it."""

    job_id: str
    spec: JobSpec
    key: str
    replayed: bool  # the object was already there (the same Idempotency-Key and request)


def submit(
    request: SubmitBatch, idempotency_key: str | None, caller: Callable[[], str], settings: Settings
) -> Submission:
    """Write the request's items (or copy its source) into the inbox, once per Idempotency-Key."""
    spec = validate_spec(request)
    request_hash = _request_hash(request)
    name = request.name or DEFAULT_NAME
    metadata = {**spec_metadata(spec, request_hash), META_API_NAME: name}
    bucket, key = settings.data_bucket, object_key(idempotency_key, caller)
    if request.response_schema is not None:
        metadata[META_RESPONSE_SCHEMA] = put_schema(bucket, request.response_schema)
    if request.items is not None:
        version = write_inline(bucket, key, check_inline(request.items, spec), metadata)
    else:
        assert request.source is not None
        version = _submit_source(request.source, key, request_hash, metadata, idempotency_key, settings)
    replayed = version is None
    if version is None:
        version = existing_submission(bucket, key, request_hash)
    return Submission(job_id=job_id_for(bucket, key, version, name), spec=spec, key=key, replayed=replayed)


def _submit_source(
    source_uri: str,
    key: str,
    request_hash: str,
    metadata: dict[str, str],
    idempotency_key: str | None,
    settings: Settings,
) -> str | None:
    bucket = settings.data_bucket
    source = check_source(source_uri, settings)
    try:
        version = existing_submission(bucket, key, request_hash) if idempotency_key else None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
            raise
        version = None
    if version is None:
        version = copy_source(source, bucket, key, metadata)
    return version


# ------------------------------------------------------------------ the response schema
def put_schema(bucket: str, schema: dict[str, Any]) -> str:
    """Store a submission's response schema under schemas/api/, named by its hash (the same schema
    is one object); the name the ``response-schema`` metadata key carries to intake."""
    # In the schema's own key order: providers answer properties in the order the schema lists them.
    body = json.dumps(schema, separators=(",", ":"), ensure_ascii=False).encode()
    name = f"api/{hashlib.sha256(body).hexdigest()}.json"
    s3_client().put_object(Bucket=bucket, Key=schema_key(name), Body=body, ContentType="application/json")
    return name


# ------------------------------------------------------------------ the inbox object
def spec_metadata(spec: JobSpec, request_hash: str) -> dict[str, str]:
    """The object metadata intake reads the job spec from, plus the request's hash."""
    metadata = {
        META_PROVIDER: spec.provider,
        META_MODEL: spec.model,
        META_ON_INVALID: spec.on_invalid,
        META_REQUEST_SHA256: request_hash,
    }
    if spec.system_prompt:
        metadata[META_SYSTEM_PROMPT_B64] = base64.b64encode(spec.system_prompt.encode()).decode()
    metadata.update(format_metadata(spec))
    return metadata


def _request_hash(request: SubmitBatch) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def object_key(idempotency_key: str | None, caller: Callable[[], str]) -> str:
    """The inbox key of a submission (``caller`` is asked only when there is an Idempotency-Key)."""
    # Idempotency: with an Idempotency-Key the object key derives from it (and from the caller, so two
    # callers' keys never collide) and the object is written only if absent (S3 conditional write,
    # IfNoneMatch="*"). The inbox object itself is the idempotency record: the write that starts the
    # job and the record are one atomic step, concurrent retries race on S3 and exactly one wins, and
    # the job id follows from that object's version, so a key maps to the same job for good. Powertools
    # Idempotency would need a table of its own (with TTLs) and still leave a window between writing
    # the object and saving the record; the request's hash on the object tells a retry from a reuse.
    if idempotency_key is None:
        return f"{API_INBOX_PREFIX}req-{uuid.uuid4().hex}.jsonl"
    digest = hashlib.sha256(f"{caller()}\n{idempotency_key}".encode()).hexdigest()[:32]
    return f"{API_INBOX_PREFIX}idem-{digest}.jsonl"


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412"}


def existing_submission(bucket: str, key: str, request_hash: str) -> str:
    """The version of an earlier submission under this Idempotency-Key, if it was the same request."""
    head = s3_client().head_object(Bucket=bucket, Key=key)
    if head.get("Metadata", {}).get(META_REQUEST_SHA256) != request_hash:
        raise ApiError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request: use a new key for a new batch",
        )
    return str(head.get("VersionId") or head["ETag"].strip('"'))


def write_inline(bucket: str, key: str, body: bytes, metadata: dict[str, str]) -> str | None:
    """Write the items; the new version, or None when the key was taken (an earlier submission)."""
    try:
        response = s3_client().put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            Metadata=metadata,
            ContentType="application/x-ndjson",
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if _is_condition_failure(exc):
            return None
        if exc.response.get("Error", {}).get("Code") == "ConditionalRequestConflict":
            raise ApiError(409, "conflict", "the same request is being submitted right now: retry") from exc
        raise
    return str(response.get("VersionId") or response["ETag"].strip('"'))


def copy_source(source: tuple[str, str, int], bucket: str, key: str, metadata: dict[str, str]) -> str | None:
    """Server-side copy into the inbox, created only if the key is free (multipart, conditional complete)."""
    s3 = s3_client()
    source_bucket, source_key, size = source
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key=key, Metadata=metadata, ContentType="application/x-ndjson"
    )
    upload_id = upload["UploadId"]
    part_size = max(SOURCE_PART_BYTES, math.ceil(size / 10_000))

    def copy_part(number: int) -> dict[str, Any]:
        first = (number - 1) * part_size
        last = min(size, first + part_size) - 1
        part = s3.upload_part_copy(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": source_bucket, "Key": source_key},
            CopySourceRange=f"bytes={first}-{last}",
        )
        return {"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]}

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            parts = list(pool.map(copy_part, range(1, math.ceil(size / part_size) + 1)))
        response = s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            IfNoneMatch="*",
        )
    except ClientError as exc:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        if _is_condition_failure(exc):
            return None
        raise
    version = response.get("VersionId")
    if version:
        return str(version)
    return str(s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"'))
