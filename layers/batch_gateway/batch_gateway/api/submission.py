"""Submitting a batch: the request becomes an object in the data bucket's inbox, as any upload.

The API reuses the S3 intake path exactly: the inline items (checked here first with intake's own
rules, so a bad request gets a 422 with line-level details instead of a failed job), or the
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
from typing import Any, NamedTuple, NoReturn

from botocore.exceptions import ClientError
from pydantic import ValidationError

from batch_gateway.api.errors import MAX_DETAILS, THROTTLING_CODES, ApiError
from batch_gateway.api.models import MAX_SOURCE_BYTES, MAX_SYSTEM_PROMPT_BYTES, SubmitBatch
from batch_gateway.intake.checks import LineError, parse_item
from batch_gateway.intake.formats.detect import detect_format
from batch_gateway.intake.formats.translate import check_foreign_items
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
from batch_gateway.providers.requests import request_builder_for
from batch_gateway.providers.structured import SchemaError, prepare_schema
from batch_gateway.settings import Settings
from batch_gateway.storage.aws import s3_client
from batch_gateway.storage.keys import schema_key

DEFAULT_NAME = "batch"
# Sources inside the data bucket must live here: an upload under inbox/ starts a job by itself.
UPLOADS_PREFIX = "uploads/"
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


# ------------------------------------------------------------------ the request's checks
def check_items(items: list[Any], spec: JobSpec) -> tuple[list[LineError], int, bool]:
    """Intake's checks on inline items: (line errors, invalid item count, any duplicate custom_id)."""
    if spec.format not in (None, "items") or (spec.format is None and items and _is_foreign(items[0])):
        return check_foreign_items(items, spec)
    builder = request_builder_for(spec.provider)
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    invalid = 0
    duplicate = False
    for line, item in enumerate(items, start=1):
        parsed = parse_item(line, json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        found: list[LineError] = []
        custom_id: str | None
        if isinstance(parsed, list):
            found, custom_id = parsed, parsed[0].custom_id
        else:
            custom_id = parsed.custom_id
            try:
                builder.build_request(builder.provider_custom_id(custom_id, line), parsed, spec)
            except ValueError as exc:
                found = [LineError(line=line, field="extra", reason=str(exc), custom_id=custom_id)]
        if custom_id:
            first = seen.setdefault(custom_id, line)
            if first != line:
                duplicate = True
                found.append(
                    LineError(
                        line=line,
                        field="custom_id",
                        custom_id=custom_id,
                        reason=f"duplicate custom_id '{custom_id}' (first used on item {first}): "
                        "every custom_id must be unique in a batch",
                    )
                )
        if found:
            invalid += 1
            errors.extend(found)
    return errors, invalid, duplicate


def _is_foreign(item: Any) -> bool:
    """The first inline item is a provider's own batch line (not a BatchItem)."""
    return detect_format(json.dumps(item).encode()) != "items"


def validate_spec(request: SubmitBatch) -> JobSpec:
    """The request's job spec; a system prompt that cannot travel as object metadata is a 422."""
    if request.system_prompt is not None:
        try:
            size = len(request.system_prompt.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ApiError(
                422,
                "validation_error",
                "system_prompt is not valid Unicode text (it holds a lone surrogate escape)",
                [{"loc": ["body", "system_prompt"], "type": "string_unicode", "msg": str(exc.reason)}],
            ) from exc
        if size > MAX_SYSTEM_PROMPT_BYTES:
            raise ApiError(
                422,
                "validation_error",
                f"system_prompt is {size} bytes of UTF-8; the limit is {MAX_SYSTEM_PROMPT_BYTES} "
                "(the spec travels as S3 object metadata)",
                [{"loc": ["body", "system_prompt"], "type": "too_long", "msg": "too many bytes"}],
            )
    _check_format(request)
    if request.endpoint == "embeddings" and request.response_schema is not None:
        _endpoint_error("an embeddings job takes no response schema")
    try:
        spec = JobSpec(
            provider=request.provider,
            model=request.model,
            system_prompt=request.system_prompt or None,
            on_invalid=request.on_invalid,
            endpoint=request.endpoint,
            format=request.format,
            template=request.template,
            id_column=request.id_column,
        )
    except ValidationError as exc:  # JobSpec's rules across fields (the endpoint's providers)
        _endpoint_error(exc.errors()[0]["msg"].removeprefix("Value error, "))
    if request.response_schema is None:
        return spec
    try:
        schema = prepare_schema(request.response_schema, spec.provider)
    except SchemaError as exc:
        raise ApiError(
            422,
            "validation_error",
            str(exc),
            [{"loc": ["body", "response_schema"], "type": "invalid_schema", "msg": str(exc)}],
        ) from None
    return spec.model_copy(update={"response_schema": schema})


def put_schema(bucket: str, schema: dict[str, Any]) -> str:
    """Store a submission's response schema under schemas/api/, named by its hash (the same schema
    is one object); the name the ``response-schema`` metadata key carries to intake."""
    # In the schema's own key order: providers answer properties in the order the schema lists them.
    body = json.dumps(schema, separators=(",", ":"), ensure_ascii=False).encode()
    name = f"api/{hashlib.sha256(body).hexdigest()}.json"
    s3_client().put_object(Bucket=bucket, Key=schema_key(name), Body=body, ContentType="application/json")
    return name


def _endpoint_error(problem: str) -> NoReturn:
    raise ApiError(422, "validation_error", problem, [{"loc": ["body", "endpoint"], "msg": problem}])


def _check_format(request: SubmitBatch) -> None:
    """format, template and id_column fit together and, with the system prompt, in object metadata."""
    problem = None
    if (request.format == "csv" or request.template) and request.items is not None:
        problem = "a CSV table is submitted as a `source` (an s3:// URI of the .csv file), not as items"
    elif (request.template or request.id_column) and request.format not in (None, "csv"):
        problem = f"template and id_column apply to CSV files only, not to format {request.format!r}"
    elif (request.format == "csv" or request.id_column) and not request.template:
        problem = "a CSV table needs a template naming its columns, e.g. 'Classify this ticket: {text}'"
    elif (
        len((request.template or "").encode("utf-8", "surrogatepass"))
        + len((request.system_prompt or "").encode("utf-8", "surrogatepass"))
        > MAX_SYSTEM_PROMPT_BYTES
    ):
        problem = (
            f"system_prompt and template are more than {MAX_SYSTEM_PROMPT_BYTES} bytes of UTF-8 together "
            "(the spec travels as S3 object metadata)"
        )
    if problem:
        raise ApiError(422, "validation_error", problem, [{"loc": ["body", "format"], "msg": problem}])


def check_inline(items: list[Any], spec: JobSpec) -> bytes:
    """The items as a JSONL body, or a 422 that lists what is wrong with them."""
    errors, invalid, duplicate = check_items(items, spec)
    details = [e.model_dump(exclude_none=True) for e in errors[:MAX_DETAILS]]
    if duplicate:
        raise ApiError(
            422,
            "invalid_items",
            "duplicate custom_id: every custom_id must be unique in a batch (even with on_invalid=skip)",
            details,
        )
    if invalid and spec.on_invalid == "reject":
        raise ApiError(
            422,
            "invalid_items",
            f"{invalid} of {len(items)} item(s) are invalid: fix them, or send on_invalid=skip to run "
            "the valid ones (each invalid one then gets an error result)",
            details,
        )
    if invalid == len(items):
        raise ApiError(422, "invalid_items", "no valid item to submit", details)
    return b"".join(
        json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n" for item in items
    )


def check_source(source: str, settings: Settings) -> tuple[str, str, int]:
    """(bucket, key, size) of a source the API may copy: allowed, present, not empty, not too large."""
    bucket, key = split_s3_uri(source)
    allowed = {b.strip() for b in settings.api_source_buckets.split(",") if b.strip()}
    if not ((bucket == settings.data_bucket and key.startswith(UPLOADS_PREFIX)) or bucket in allowed):
        raise ApiError(
            403,
            "source_not_allowed",
            f"the API may not read {source}: put the file under s3://{settings.data_bucket}/{UPLOADS_PREFIX} "
            "or add its bucket to the stack parameter ApiSourceBuckets",
        )
    try:
        head = s3_client().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in THROTTLING_CODES:
            raise
        raise ApiError(
            422, "source_not_found", f"{source} does not exist or the API may not read it"
        ) from exc
    size = int(head.get("ContentLength", 0))
    if size == 0:
        raise ApiError(422, "invalid_items", f"{source} is empty: nothing to submit")
    if size > MAX_SOURCE_BYTES:
        raise ApiError(
            413,
            "payload_too_large",
            f"{source} is {size} bytes; the API copies at most {MAX_SOURCE_BYTES // 2**30} GB: upload "
            f"larger files to s3://{settings.data_bucket}/inbox/ directly (object metadata carries the spec)",
        )
    return bucket, key, size


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


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
