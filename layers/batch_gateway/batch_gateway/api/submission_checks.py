"""The checks on a submission before anything is written: the job spec, the inline items, the source.

A bad request must get a 422 (or 403/413) that says what is wrong, line by line for items, instead
of a job that fails later: so the inline items go through intake's own rules (``intake.checks``,
the provider's request builder, ``intake.formats`` for provider batch lines), the spec through
:class:`~batch_gateway.models.JobSpec`'s validators and the response schema through
``providers.structured``, and a ``source`` must be an allowed, present, non-empty object under the
API's size limit. Writing the checked request into the inbox is :mod:`.submission`'s part.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from botocore.exceptions import ClientError
from pydantic import ValidationError

from batch_gateway.api.errors import MAX_DETAILS, THROTTLING_CODES, ApiError
from batch_gateway.api.models import MAX_SOURCE_BYTES, MAX_SYSTEM_PROMPT_BYTES, SubmitBatch
from batch_gateway.intake.checks import LineError, parse_item
from batch_gateway.intake.formats.detect import detect_format
from batch_gateway.intake.formats.translate import check_foreign_items
from batch_gateway.models import JobSpec
from batch_gateway.providers.requests import request_builder_for
from batch_gateway.providers.structured import SchemaError, prepare_schema
from batch_gateway.settings import Settings
from batch_gateway.storage.aws import s3_client

# Sources inside the data bucket must live here: an upload under inbox/ starts a job by itself.
UPLOADS_PREFIX = "uploads/"


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
