"""The job spec of an uploaded file: the object-metadata keys that carry it, and the job id.

An input file says how it runs through S3 object metadata (``x-amz-meta-provider``, ``-model``,
``-system-prompt`` or ``-system-prompt-b64``, ``-on-invalid``, ``-response-schema``: the name of
a JSON Schema object under ``schemas/``); the stack's defaults fill what it
leaves out. The HTTP API writes these keys when it puts a submission in the inbox, intake reads
them back here, and the offline gateway sets them on uploads: one list of names for all three.

A job's id is ``<name>-<hash of the object version>`` (:func:`job_id_for`; the name is the file's
stem, or for an API submission the request's ``name``), so a re-delivered S3 event, a
scheduled run and an API retry of the same version all land on the same job and execution name.
:func:`new_job` is the ``pending`` row both the API and intake create for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from batch_gateway.models import BatchStatus, Endpoint, InputFormat, InvalidLinePolicy, JobSpec, JobSummary
from batch_gateway.providers.structured import SchemaError, prepare_schema
from batch_gateway.settings import Settings

# Object metadata keys (x-amz-meta-*) that carry the job spec of an uploaded file.
META_PROVIDER = "provider"
META_MODEL = "model"
META_SYSTEM_PROMPT = "system-prompt"
META_SYSTEM_PROMPT_B64 = "system-prompt-b64"
META_ON_INVALID = "on-invalid"
# The name of a JSON Schema object under schemas/ in the data bucket: every answer must match it.
META_RESPONSE_SCHEMA = "response-schema"
# A response schema larger than this is refused (the providers' own limits are far below it).
MAX_SCHEMA_BYTES = 256 * 1024
# The input file's format (intake.formats) and, for CSV, its prompt template and id column; the
# template travels as base64 (template-b64) when it is not plain ASCII, as the system prompt does.
META_FORMAT = "format"
META_TEMPLATE = "template"
META_TEMPLATE_B64 = "template-b64"
META_ID_COLUMN = "id-column"
# What the provider runs: "chat" (the default) or "embeddings" (OpenAI and Azure).
META_ENDPOINT = "endpoint"
ENDPOINTS: tuple[str, ...] = get_args(Endpoint)
INPUT_FORMATS: tuple[str, ...] = get_args(InputFormat)
# The readable part of an API submission's job id (the request's `name`, default "batch"); honoured
# only on keys under API_INBOX_PREFIX, where only the API writes, so no other copy changes its id.
META_API_NAME = "api-name"
API_INBOX_PREFIX = "inbox/api/"
ON_INVALID_POLICIES: tuple[str, ...] = get_args(InvalidLinePolicy)
# Only objects with these suffixes are input files (others under inbox/ are ignored).
ACCEPTED_SUFFIXES = (".jsonl", ".ndjson", ".csv")


class JobSpecError(ValueError):
    """The job spec (metadata or defaults) is unusable; the message says which key to fix."""


def job_id_for(bucket: str, key: str, version: str, name: str | None = None) -> str:
    """Deterministic job id ``<name>-<16 hex>``: the same object version always maps to the same job.

    ``name`` is the readable part (an API submission's ``name``, see :func:`api_name`); without it,
    the file's stem. The hash is of the object version alone.
    """
    digest = hashlib.sha256(f"{bucket}/{key}#{version}".encode()).hexdigest()[:16]
    stem = name or Path(key).name.rsplit(".", 1)[0]
    safe_stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40] or "job"
    return f"{safe_stem}-{digest}"


def api_name(key: str, metadata: dict[str, str]) -> str | None:
    """The name an API submission's job id carries (None for any object outside the API's inbox)."""
    return metadata.get(META_API_NAME) if key.startswith(API_INBOX_PREFIX) else None


def response_schema_name(metadata: dict[str, str]) -> str | None:
    """The ``response-schema`` metadata value: a name under schemas/ (JobSpecError when unusable)."""
    name = {k.lower(): v for k, v in metadata.items()}.get(META_RESPONSE_SCHEMA, "").strip()
    if not name:
        return None
    if name.startswith("/") or ".." in name.split("/") or not re.fullmatch(r"[A-Za-z0-9._/-]+", name):
        raise JobSpecError(
            f"metadata '{META_RESPONSE_SCHEMA}' is {name!r}: name an object under schemas/ in the data "
            "bucket, such as tickets.json for schemas/tickets.json (letters, digits, . _ - /)"
        )
    return name


def decode_response_schema(name: str, body: bytes) -> Any:
    """The schema object's JSON; JobSpecError (names the object) when it is too large or not JSON."""
    if len(body) > MAX_SCHEMA_BYTES:
        raise JobSpecError(f"the response schema schemas/{name} is over {MAX_SCHEMA_BYTES:,} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise JobSpecError(f"the response schema schemas/{name} is not valid JSON ({exc})") from None


def job_spec_from_metadata(
    metadata: dict[str, str], settings: Settings, response_schema: Any = None, key: str | None = None
) -> JobSpec:
    """The spec of an uploaded file: object metadata first, stack defaults second.

    ``response_schema``: the schema the ``response-schema`` key names, as read (checked here for the
    job's provider, see ``providers.structured.prepare_schema``); ``key``: the object's key, whose
    ``.csv`` suffix means format csv unless the metadata says otherwise."""
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
        spec = JobSpec(
            provider=meta.get(META_PROVIDER) or settings.default_provider,
            model=meta.get(META_MODEL) or settings.default_model,
            system_prompt=system_prompt,
            on_invalid=on_invalid,  # checked against the Literal above
            **_format_fields(meta, key),
        )
    except ValidationError as exc:
        whole = [e["msg"].removeprefix("Value error, ") for e in exc.errors() if not e["loc"]]
        if whole and "embeddings" in whole[0]:  # JobSpec's own rule for the endpoint
            raise JobSpecError(f"{whole[0]} (x-amz-meta-{META_ENDPOINT})") from exc
        if whole:  # the format's own rule (JobSpec's validator): a CSV file needs a template
            raise JobSpecError(
                f"{whole[0]}: set x-amz-meta-{META_TEMPLATE} (or -{META_TEMPLATE_B64}), "
                f"x-amz-meta-{META_FORMAT} and x-amz-meta-{META_ID_COLUMN} to match"
            ) from exc
        problems = "; ".join(
            f"'{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise JobSpecError(
            f"the job spec is invalid ({problems}); set object metadata x-amz-meta-provider "
            "(openai|anthropic) and x-amz-meta-model, or the stack's DefaultProvider/DefaultModel"
        ) from exc
    if response_schema is None:
        return spec
    try:
        return spec.model_copy(update={"response_schema": prepare_schema(response_schema, spec.provider)})
    except SchemaError as exc:
        raise JobSpecError(str(exc)) from None


def _format_fields(meta: dict[str, str], key: str | None) -> dict[str, str]:
    """The spec's format, template and id_column from object metadata (lower-cased keys)."""
    fields: dict[str, str] = {}
    input_format = (meta.get(META_FORMAT) or "").strip().lower()
    if input_format and input_format not in INPUT_FORMATS:
        raise JobSpecError(
            f"metadata '{META_FORMAT}' is {meta[META_FORMAT]!r}: set x-amz-meta-{META_FORMAT} to one of "
            f"{', '.join(INPUT_FORMATS)} (or leave it out to detect it from the first line)"
        )
    if input_format or (key or "").lower().endswith(".csv"):
        fields["format"] = input_format or "csv"
    template = meta.get(META_TEMPLATE)
    if META_TEMPLATE_B64 in meta:
        try:
            template = base64.b64decode(meta[META_TEMPLATE_B64], validate=True).decode()
        except ValueError as exc:
            raise JobSpecError(f"metadata '{META_TEMPLATE_B64}' is not base64 of UTF-8 text") from exc
    if template:
        fields["template"] = template
    if meta.get(META_ID_COLUMN):
        fields["id_column"] = meta[META_ID_COLUMN]
    endpoint = (meta.get(META_ENDPOINT) or "").strip().lower()
    if endpoint and endpoint not in ENDPOINTS:
        raise JobSpecError(
            f"metadata '{META_ENDPOINT}' is {meta[META_ENDPOINT]!r}: set x-amz-meta-{META_ENDPOINT} to "
            f"{' or '.join(ENDPOINTS)} (or leave it out for chat)"
        )
    if endpoint:
        fields["endpoint"] = endpoint
    return fields


def format_metadata(spec: JobSpec) -> dict[str, str]:
    """The object metadata that carries a spec's format, template and id column (for uploads)."""
    metadata: dict[str, str] = {}
    if spec.format:
        metadata[META_FORMAT] = spec.format
    if spec.template:
        metadata[META_TEMPLATE_B64] = base64.b64encode(spec.template.encode()).decode()
    if spec.id_column:
        metadata[META_ID_COLUMN] = spec.id_column
    if spec.endpoint != "chat":
        metadata[META_ENDPOINT] = spec.endpoint
    return metadata


def new_job(job_id: str, spec: JobSpec, source: str) -> JobSummary:
    """The ``pending`` row of a job that has not been staged yet."""
    return JobSummary(
        job_id=job_id,
        provider=spec.provider,
        model=spec.model,
        status=BatchStatus.PENDING,
        created_at=time.time(),
        source=source,
    )
