"""The HTTP API behind API Gateway: submit a batch, follow it, fetch its results, cancel it.

One resolver (Powertools ``APIGatewayRestResolver`` with request validation); ``functions/api/app.py``
only calls ``app.resolve``. The OpenAPI document is generated from these routes (:func:`openapi_json`,
committed as ``openapi.json``).

Submitting reuses the S3 intake path exactly: the items (or the ``source`` object, copied
server-side) are written to ``inbox/api/<name>.jsonl`` with the spec as object metadata, the bucket
notification starts the Intake function as for any upload, and the job id is
``intake.job_id_for(bucket, key, version)``. The API also inserts the job's ``pending`` row right
away (intake takes over a pending row without chunks), so the job can be read as soon as the 202
is out. Items are validated here first with intake's own rules, so a bad request gets a 422 with
line-level details instead of a failed job.

Errors are always ``{"error": CODE, "message": TEXT, "details": ...}`` with the HTTP status; an
unexpected exception is logged and answered 500 without a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any
from urllib.parse import quote, unquote

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import ClientError

from batch_gateway import storage
from batch_gateway.api.models import (
    DEFAULT_PAGE_SIZE,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_BODY_BYTES,
    MAX_INLINE_ITEMS,
    MAX_PAGE_SIZE,
    MAX_SOURCE_BYTES,
    MAX_SYSTEM_PROMPT_BYTES,
    ChunkView,
    ErrorBody,
    JobDetail,
    JobList,
    JobView,
    Links,
    ProviderBatch,
    ResultFilter,
    ResultFormat,
    ResultPage,
    ResultRow,
    ResultsLink,
    SubmitBatch,
)
from batch_gateway.intake.checks import LineError, parse_item
from batch_gateway.intake.pipeline import (
    META_MODEL,
    META_ON_INVALID,
    META_PROVIDER,
    META_SYSTEM_PROMPT_B64,
    job_id_for,
    new_job,
)
from batch_gateway.models import BatchStatus, JobSpec, JobSummary
from batch_gateway.observability import MetricUnit, metrics
from batch_gateway.providers.errors import ProviderError, ProviderUnavailableError
from batch_gateway.providers.requests import request_builder_for
from batch_gateway.settings import Settings, get_settings
from batch_gateway.workflow.cancel import cancel_job

logger = Logger(child=True)

API_TITLE = "Batch Gateway"
API_VERSION = "1.0.0"
API_INBOX_PREFIX = "inbox/api/"
# Sources inside the data bucket must live here: an upload under inbox/ starts a job by itself.
UPLOADS_PREFIX = "uploads/"
# Hash of the canonical request body, kept on the object: a retry under the same key must match it.
# (All metadata stays under S3's 2 KB: keys 58 bytes, provider/on-invalid/hash 79, model at most 200,
# the system prompt at most 1,200 bytes -> 1,600 in base64.)
META_REQUEST_SHA256 = "api-request-sha256"
PRESIGNED_URL_SECONDS = 3600
# What a response may carry (Lambda returns at most 6 MB): result pages stop early past this.
RESPONSE_BUDGET_BYTES = 4 * 1024 * 1024
MAX_DETAILS = 100
SOURCE_PART_BYTES = 256 * 1024 * 1024
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "TooManyRequestsException",
    }
)

# Powertools would parse these as forms (and fail on a multipart body without a boundary): JSON only.
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class JsonApiResolver(APIGatewayRestResolver):
    """The REST resolver, refusing what Powertools' body parsing would fail on: form bodies (415) and
    base64 bodies that are not UTF-8 (400)."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        if headers.get("content-type", "").strip().lower().startswith(FORM_CONTENT_TYPES):
            return _refusal(415, "unsupported_media_type", "send the body as application/json")
        if event.get("isBase64Encoded") and event.get("body"):
            try:
                base64.b64decode(str(event["body"]), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return _refusal(400, "malformed_json", "the body is not UTF-8 text: send one JSON object")
        return super().resolve(event, context)


def _refusal(status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "body": ErrorBody(error=code, message=message).model_dump_json(),
        "isBase64Encoded": False,
    }


app = JsonApiResolver(enable_validation=True)


class ApiError(Exception):
    """An error answer: HTTP status, code, message and optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers or {}


ErrorResponse = Response[dict[str, Any]]


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> ErrorResponse:
    body = ErrorBody(error=code, message=message, details=details).model_dump(mode="json")
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


def _ok(description: str, model: Any) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


def _error(description: str) -> OpenAPIResponse:
    return _ok(description, ErrorBody)


# Every route can answer these (429: API Gateway's throttling, or AWS throttling behind it).
COMMON_ERRORS: dict[int, OpenAPIResponse] = {
    403: _error("Missing or invalid credentials (answered by API Gateway)."),
    422: _error("A parameter or the body does not match the schema; `details` names the fields."),
    429: _error("Too many requests: retry after the Retry-After header's seconds."),
}
JOB_ERRORS: dict[int, OpenAPIResponse] = {**COMMON_ERRORS, 404: _error("No such job.")}


# ------------------------------------------------------------------ errors
def _api_error(exc: ApiError) -> ErrorResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _invalid_request(exc: RequestValidationError) -> ErrorResponse:
    errors = list(exc.errors())
    if any(error.get("loc", ("",))[0] == "response" for error in errors):
        logger.error("a response did not match its model", extra={"errors": _field_errors(errors)})
        return error_response(500, "internal_error", "internal error: the answer did not match its schema")
    if any(error.get("type") == "json_invalid" for error in errors):
        detail = next(
            str(e.get("ctx", {}).get("error", "")) for e in errors if e.get("type") == "json_invalid"
        )
        return error_response(
            400, "malformed_json", f"the body is not valid JSON ({detail}): send one JSON object"
        )
    if any(tuple(e.get("loc", ()))[:2] == ("body", "items") and e.get("type") == "too_long" for e in errors):
        return _too_many_items()
    return error_response(
        422,
        "validation_error",
        "the request does not match the API schema: see details",
        _field_errors(errors),
    )


def _field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    # loc, type and pydantic's sentence only: no input values, no Python or file names.
    return [
        {"loc": [str(part) for part in e.get("loc", ())], "type": e.get("type"), "msg": e.get("msg")}
        for e in errors[:MAX_DETAILS]
    ]


TOO_LARGE = (
    f"at most {MAX_INLINE_ITEMS} inline items and {MAX_BODY_BYTES // 2**20} MB per request: "
    "upload larger files to S3 and submit them with 'source'"
)


def _too_many_items() -> ErrorResponse:
    return error_response(413, "payload_too_large", TOO_LARGE)


def _unsupported_media(exc: RequestUnsupportedContentType) -> ErrorResponse:
    return error_response(415, "unsupported_media_type", "send the body as application/json")


@app.not_found
def _no_route(exc: NotFoundError) -> ErrorResponse:
    return error_response(404, "not_found", "no such resource")


def _aws_error(exc: ClientError) -> ErrorResponse:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in THROTTLING_CODES:
        return error_response(
            429, "throttled", "the service is busy: retry in a moment", headers={"Retry-After": "1"}
        )
    logger.exception("AWS call failed")
    return error_response(500, "internal_error", f"internal error (request {_request_id()})")


def _unexpected(exc: Exception) -> ErrorResponse:
    logger.exception("unhandled error")
    return error_response(500, "internal_error", f"internal error (request {_request_id()})")


for _exception, _handler in (
    (ApiError, _api_error),
    (RequestValidationError, _invalid_request),
    (RequestUnsupportedContentType, _unsupported_media),
    (ClientError, _aws_error),
    (Exception, _unexpected),
):
    app.exception_handler(_exception)(_handler)


def _request_id() -> str:
    return str(app.current_event.request_context.request_id or "unknown")


# ------------------------------------------------------------------ helpers
def _settings() -> Settings:
    return get_settings()


def _base_url() -> str:
    """The API's own URL (scheme, host and stage), for links."""
    event = app.current_event
    context = event.request_context
    host = event.headers.get("Host") or context.domain_name or ""
    scheme = event.headers.get("X-Forwarded-Proto") or "https"
    stage = context.stage or ""
    prefix = f"/{stage}" if stage and (context.path or "").startswith(f"/{stage}/") else ""
    return f"{scheme}://{host}{prefix}" if host else prefix


def _links(job_id: str) -> Links:
    base = f"{_base_url()}/batches/{job_id}"
    return Links.model_validate({"self": base, "results": f"{base}/results", "cancel": f"{base}/cancel"})


def _view(job: JobSummary) -> JobView:
    return JobView.model_validate({**job.model_dump(exclude={"raw"}), "links": _links(job.job_id)})


def _caller() -> str:
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.api_key_id or identity.caller or identity.account_id or ""


def _job(job_id: str) -> JobSummary:
    job = storage.JobsRepository(_settings().jobs_table).get_job(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job '{job_id}'")
    return job


def _presigner() -> Any:
    return boto3.client("s3", config=Config(signature_version="s3v4"))


def _split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


# ------------------------------------------------------------------ pagination tokens
def encode_token(scope: str, key: dict[str, Any]) -> str:
    """An opaque continuation token: the query it belongs to and where to go on (base64url JSON).

    Not signed: a token only selects where a listing continues inside data the caller may already
    read in full, so a hand-made one reveals nothing. A token of another listing is refused (400).
    """
    raw = json.dumps({"v": 1, "q": scope, "k": key}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, scope: str, fields: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError):
        document = None
    key = document.get("k") if isinstance(document, dict) else None
    valid = (
        isinstance(document, dict)
        and document.get("v") == 1
        and document.get("q") == scope
        and isinstance(key, dict)
        and set(key) == set(fields)
        and all(_key_value_ok(key[name], kind) for name, kind in fields.items())
    )
    if not valid:
        raise ApiError(
            400,
            "invalid_next_token",
            "next_token is not a token this listing handed out: pass the next_token of the previous "
            "page unchanged, with the same filters (or leave it out to start over)",
        )
    assert isinstance(key, dict)
    return key


def _key_value_ok(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) or not isinstance(value, kind):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return 0 < len(value.encode("utf-8")) <= 1024  # DynamoDB's sort-key cap
        except UnicodeEncodeError:
            return False
    return True


def _invalid_start(exc: ClientError) -> ApiError:
    """DynamoDB refused the continuation key (only a hand-made token gets here)."""
    if exc.response.get("Error", {}).get("Code") != "ValidationException":
        raise exc
    return ApiError(400, "invalid_next_token", "next_token does not point into this listing")


# ------------------------------------------------------------------ POST /batches
def check_items(items: list[Any], spec: JobSpec) -> tuple[list[LineError], int, bool]:
    """Intake's checks on inline items: (line errors, invalid item count, any duplicate custom_id)."""
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


def _spec_metadata(spec: JobSpec, request_hash: str) -> dict[str, str]:
    metadata = {
        META_PROVIDER: spec.provider,
        META_MODEL: spec.model,
        META_ON_INVALID: spec.on_invalid,
        META_REQUEST_SHA256: request_hash,
    }
    if spec.system_prompt:
        metadata[META_SYSTEM_PROMPT_B64] = base64.b64encode(spec.system_prompt.encode()).decode()
    return metadata


def _request_hash(request: SubmitBatch) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _object_key(idempotency_key: str | None) -> str:
    # Idempotency: with an Idempotency-Key the object key derives from it (and from the caller, so two
    # callers' keys never collide) and the object is written only if absent (S3 conditional write,
    # IfNoneMatch="*"). The inbox object itself is the idempotency record: the write that starts the
    # job and the record are one atomic step, concurrent retries race on S3 and exactly one wins, and
    # the job id follows from that object's version, so a key maps to the same job for good. Powertools
    # Idempotency would need a table of its own (with TTLs) and still leave a window between writing
    # the object and saving the record; the request's hash on the object tells a retry from a reuse.
    if idempotency_key is None:
        return f"{API_INBOX_PREFIX}req-{uuid.uuid4().hex}.jsonl"
    digest = hashlib.sha256(f"{_caller()}\n{idempotency_key}".encode()).hexdigest()[:32]
    return f"{API_INBOX_PREFIX}idem-{digest}.jsonl"


def _validate_spec(request: SubmitBatch) -> JobSpec:
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
    return JobSpec(
        provider=request.provider,
        model=request.model,
        system_prompt=request.system_prompt or None,
        on_invalid=request.on_invalid,
    )


def _check_inline(items: list[Any], spec: JobSpec) -> bytes:
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


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412"}


def _existing_submission(bucket: str, key: str, request_hash: str) -> str:
    """The version of an earlier submission under this Idempotency-Key, if it was the same request."""
    head = storage.s3_client().head_object(Bucket=bucket, Key=key)
    if head.get("Metadata", {}).get(META_REQUEST_SHA256) != request_hash:
        raise ApiError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request: use a new key for a new batch",
        )
    return str(head.get("VersionId") or head["ETag"].strip('"'))


def _write_inline(bucket: str, key: str, body: bytes, metadata: dict[str, str]) -> str | None:
    """Write the items; the new version, or None when the key was taken (an earlier submission)."""
    try:
        response = storage.s3_client().put_object(
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


def _check_source(source: str, settings: Settings) -> tuple[str, str, int]:
    bucket, key = _split_s3_uri(source)
    allowed = {b.strip() for b in settings.api_source_buckets.split(",") if b.strip()}
    if not ((bucket == settings.data_bucket and key.startswith(UPLOADS_PREFIX)) or bucket in allowed):
        raise ApiError(
            403,
            "source_not_allowed",
            f"the API may not read {source}: put the file under s3://{settings.data_bucket}/{UPLOADS_PREFIX} "
            "or add its bucket to the stack parameter ApiSourceBuckets",
        )
    try:
        head = storage.s3_client().head_object(Bucket=bucket, Key=key)
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


def _copy_source(source: tuple[str, str, int], bucket: str, key: str, metadata: dict[str, str]) -> str | None:
    """Server-side copy into the inbox, created only if the key is free (multipart, conditional complete)."""
    s3 = storage.s3_client()
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


@app.post(
    "/batches",
    summary="Submit a batch",
    description="Starts a job for inline `items` or an S3 `source`. With an `Idempotency-Key` header a "
    "retry returns the same job (the same key with a different body: 409).",
    tags=["batches"],
    operation_id="submitBatch",
    responses={
        202: _ok("Accepted: the job (pending, or further along already).", JobView),
        400: _error("The body is not JSON."),
        409: _error("The Idempotency-Key was used for a different request."),
        413: _error("Too many inline items or too large a body or source."),
        415: _error("The body is not application/json."),
        **COMMON_ERRORS,
        422: _error("The request or its items are invalid; `details` lists each problem."),
    },
)
def submit_batch(
    request: SubmitBatch,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Makes retries safe: the same key and body give the same job.",
        ),
    ] = None,
) -> Response[JobView]:
    body = app.current_event.body or ""
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", TOO_LARGE)
    settings = _settings()
    spec = _validate_spec(request)
    request_hash = _request_hash(request)
    metadata = _spec_metadata(spec, request_hash)
    bucket, key = settings.data_bucket, _object_key(idempotency_key)
    if request.items is not None:
        version = _write_inline(bucket, key, _check_inline(request.items, spec), metadata)
    else:
        assert request.source is not None
        source = _check_source(request.source, settings)
        try:
            version = _existing_submission(bucket, key, request_hash) if idempotency_key else None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
                raise
            version = None
        if version is None:
            version = _copy_source(source, bucket, key, metadata)
    replayed = version is None
    if version is None:
        version = _existing_submission(bucket, key, request_hash)
    job_id = job_id_for(bucket, key, version)
    jobs = storage.JobsRepository(settings.jobs_table)
    # The S3 notification starts intake; this row makes the job readable before it runs.
    jobs.create_job(new_job(job_id, spec, storage.s3_uri(bucket, key)))
    job = jobs.get_job(job_id)
    assert job is not None
    logger.info("batch submitted", extra={"job_id": job_id, "key": key, "replayed": replayed})
    if not replayed:
        metrics.add_dimension(name="provider", value=spec.provider)
        metrics.add_metric(name="ApiBatchesSubmitted", unit=MetricUnit.Count, value=1)
    view = _view(job)
    headers = {"Location": view.links.self_}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=view, headers=headers)


# ------------------------------------------------------------------ GET /batches
@app.get(
    "/batches",
    summary="List jobs, newest first",
    tags=["batches"],
    operation_id="listBatches",
    responses={
        200: _ok("A page of jobs.", JobList),
        400: _error("next_token is malformed or belongs to another listing."),
        **COMMON_ERRORS,
    },
)
def list_batches(
    status: Annotated[BatchStatus | None, Query(description="Only jobs in this state.")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Most jobs per page.")
    ] = DEFAULT_PAGE_SIZE,
    next_token: Annotated[str | None, Query(max_length=4096, description="From the previous page.")] = None,
) -> JobList:
    scope = f"jobs:{status.value if status else '*'}"
    start = None
    if next_token is not None:
        start = decode_token(
            next_token,
            scope,
            {"job_id": str, "sk": str, "record_type": str, "created_at": (int, float)},
        )
        if start["sk"] != storage.JOB_SK or start["record_type"] != storage.JOB_RECORD_TYPE:
            raise ApiError(400, "invalid_next_token", "next_token does not belong to this listing")
    try:
        jobs, last_key = storage.JobsRepository(_settings().jobs_table).list_jobs(limit, status, start)
    except ClientError as exc:
        raise _invalid_start(exc) from exc
    return JobList(
        jobs=[_view(job) for job in jobs],
        next_token=encode_token(scope, last_key) if last_key else None,
    )


# ------------------------------------------------------------------ GET /batches/{job_id}
JobIdPath = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="The job id.")]


def _chunk_view(row: dict[str, Any]) -> ChunkView:
    batches = []
    for name, value in row.items():
        match = re.fullmatch(r"batch_r(\d+)_a(\d+)", name)
        if match and value:
            batches.append(ProviderBatch(round=int(match[1]), attempt=int(match[2]), id=str(value)))
    batches.sort(key=lambda b: (b.round, b.attempt))
    fields = {name: row.get(name) for name in ChunkView.model_fields if name != "provider_batches"}
    return ChunkView.model_validate({**fields, "provider_batches": batches})


@app.get(
    "/batches/<job_id>",
    summary="One job: status, counts, usage, retry rounds and its provider batches",
    tags=["batches"],
    operation_id="getBatch",
    responses={200: _ok("The job.", JobDetail), **JOB_ERRORS},
)
def get_batch(job_id: JobIdPath) -> JobDetail:
    job = _job(job_id)
    chunks = storage.JobsRepository(_settings().jobs_table).list_chunks(job_id)
    return JobDetail.model_validate(
        {
            **_view(job).model_dump(by_alias=True),
            "chunks": [_chunk_view(row) for row in sorted(chunks, key=lambda c: int(c["chunk"]))],
        }
    )


# ------------------------------------------------------------------ results
def _result_row(row: dict[str, Any], bucket: str) -> ResultRow:
    result = ResultRow.model_validate({k: v for k, v in row.items() if k in ResultRow.model_fields})
    if result.result_uri:
        result_bucket, key = _split_s3_uri(result.result_uri)
        if result_bucket == bucket:
            result.result_url = _presigner().generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGNED_URL_SECONDS
            )
    return result


@app.get(
    "/batches/<job_id>/results",
    summary="A job's results: rows (paginated) or a link to results.jsonl",
    description="`format=json` (default): rows of the results table in custom_id order, `limit` per "
    "page, `only=errors` for the failed ones. `format=url`: a presigned URL of results.jsonl (one "
    "BatchResult per input line, input order); 409 until the job has results.",
    tags=["results"],
    operation_id="getBatchResults",
    responses={
        200: _ok("Rows, or the link.", ResultPage | ResultsLink),
        400: _error("next_token is malformed or belongs to another listing."),
        409: _error("format=url: the job has no results file yet."),
        **JOB_ERRORS,
    },
)
def get_results(
    job_id: JobIdPath,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Most rows per page.")
    ] = DEFAULT_PAGE_SIZE,
    next_token: Annotated[str | None, Query(max_length=4096, description="From the previous page.")] = None,
    only: Annotated[ResultFilter | None, Query(description="`errors`: only rows that failed.")] = None,
    format_: Annotated[ResultFormat, Query(alias="format", description="`json` rows or a `url`.")] = "json",
) -> ResultPage | ResultsLink:
    settings = _settings()
    job = _job(job_id)
    if format_ == "url":
        if not job.results_uri:
            raise ApiError(
                409,
                "results_not_ready",
                f"job {job_id} is {job.status.value} and has no results file yet: try again when it has "
                "finished (GET /batches/{job_id} shows its progress)",
            )
        bucket, key = _split_s3_uri(job.results_uri)
        url = _presigner().generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGNED_URL_SECONDS
        )
        return ResultsLink(url=url, expires_in=PRESIGNED_URL_SECONDS, results_uri=job.results_uri)
    scope = f"results:{job_id}:{only or '*'}"
    start = decode_token(next_token, scope, {"job_id": str, "custom_id": str}) if next_token else None
    if start is not None and start["job_id"] != job_id:
        raise ApiError(400, "invalid_next_token", "next_token belongs to another job")
    repository = storage.ResultsRepository(settings.results_table, settings.data_bucket, 1)
    try:
        rows, last_key = repository.page(job_id, limit, start, errors_only=only == "errors")
    except ClientError as exc:
        raise _invalid_start(exc) from exc
    results: list[ResultRow] = []
    size = 0
    for row in rows:
        result = _result_row(row, settings.data_bucket)
        size += len(result.model_dump_json())
        if results and size > RESPONSE_BUDGET_BYTES:
            last_key = {"job_id": job_id, "custom_id": results[-1].custom_id}
            break
        results.append(result)
    return ResultPage(results=results, next_token=encode_token(scope, last_key) if last_key else None)


@app.get(
    "/batches/<job_id>/results/<custom_id>",
    summary="One result, by custom_id (URL-encoded)",
    tags=["results"],
    operation_id="getBatchResult",
    responses={200: _ok("The result row.", ResultRow), **JOB_ERRORS},
)
def get_result(
    job_id: JobIdPath,
    custom_id: Annotated[str, Path(max_length=3 * 1024, description="The item's custom_id, URL-encoded.")],
) -> ResultRow:
    settings = _settings()
    _job(job_id)
    # REST API paths arrive still percent-encoded: decode once.
    try:
        wanted = unquote(custom_id, errors="strict")
        fits = 0 < len(wanted.encode("utf-8")) <= 1024  # longer ids cannot be in the table
    except UnicodeError:
        wanted, fits = custom_id, False
    row = None
    if fits:
        row = storage.ResultsRepository(settings.results_table, settings.data_bucket, 1).get(job_id, wanted)
    if row is None:
        raise ApiError(
            404, "not_found", f"job {job_id} has no result for custom_id '{quote(wanted, safe='')}' (yet)"
        )
    return _result_row(row, settings.data_bucket)


# ------------------------------------------------------------------ cancel
@app.post(
    "/batches/<job_id>/cancel",
    summary="Cancel a job (idempotent)",
    description="Running provider batches are cancelled; finished answers are kept, the rest end "
    "`cancelled`. A finished job is returned unchanged.",
    tags=["batches"],
    operation_id="cancelBatch",
    responses={
        202: _ok("Cancellation requested.", JobView),
        502: _error("The provider refused or failed the cancel request."),
        503: _error("The provider is unavailable: retry."),
        **JOB_ERRORS,
    },
)
def cancel_batch(job_id: JobIdPath) -> Response[JobView]:
    _job(job_id)
    try:
        job = cancel_job(job_id, _settings())
    except ProviderUnavailableError as exc:
        raise ApiError(503, "provider_unavailable", str(exc), headers={"Retry-After": "30"}) from exc
    except ProviderError as exc:
        raise ApiError(502, "provider_error", str(exc)) from exc
    view = _view(job)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=view)


# ------------------------------------------------------------------ OpenAPI
SECURITY_SCHEMES = {
    "sigv4": APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS Signature Version 4 (service execute-api): the default, stack parameter ApiAuth=IAM.",
    ),
    "api_key": APIKey(
        name="x-api-key",
        in_=APIKeyIn.header,
        description="An API key of the stack's usage plan: stack parameter ApiAuth=API_KEY.",
    ),
}


def openapi_json() -> str:
    """The OpenAPI document of this API (committed as openapi.json; `make openapi` rewrites it)."""
    return app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="Run JSONL files of LLM requests through provider batch APIs: submit, follow, "
        "fetch, cancel. Errors are {error, message, details}.",
        servers=[
            Server(
                url="/v1", description="The API stage (https://<api>.execute-api.<region>.amazonaws.com/v1)"
            )
        ],
        security_schemes=SECURITY_SCHEMES,  # type: ignore[arg-type]
        security=[{"sigv4": []}, {"api_key": []}],
    )


__all__ = ["ApiError", "app", "check_items", "decode_token", "encode_token", "openapi_json"]
