"""The batches resource: submit a batch (``POST /batches``), list jobs, read one job.

One Powertools Router; ``app.py`` includes it. The routes stay thin: ``submission`` writes the
request into the inbox (the S3 notification then starts intake as for any upload), and this module
inserts the job's ``pending`` row right away (intake takes over a pending row without chunks), so
the job can be read as soon as the 202 is out.

Listing pages through the jobs table's newest-first index with an opaque ``next_token``
(``tokens``); one job's answer adds its chunks, each with its provider batches per retry round
and attempt (chunk-row fields ``batch_r<round>_a<attempt>``).
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from botocore.exceptions import ClientError

from batch_gateway.api import submission
from batch_gateway.api.errors import (
    COMMON_ERRORS,
    JOB_ERRORS,
    TOO_LARGE,
    ApiError,
    documented,
    documented_error,
)
from batch_gateway.api.models import (
    DEFAULT_PAGE_SIZE,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_BODY_BYTES,
    MAX_PAGE_SIZE,
    ChunkView,
    JobDetail,
    JobList,
    JobView,
    ProviderBatch,
    SubmitBatch,
)
from batch_gateway.api.tokens import decode_token, encode_token, invalid_start
from batch_gateway.api.views import JobIdPath, find_job, job_view
from batch_gateway.intake.spec import new_job
from batch_gateway.models import BatchStatus
from batch_gateway.observability import MetricUnit, logger, metrics
from batch_gateway.settings import get_settings
from batch_gateway.storage.chunk_row import ChunkRow
from batch_gateway.storage.jobs import JOB_RECORD_TYPE, JOB_SK, JobsRepository
from batch_gateway.storage.keys import s3_uri

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # (Router.__init__ lacks "-> None")


def _caller() -> str:
    identity = router.current_event.request_context.identity
    return identity.user_arn or identity.api_key_id or identity.caller or identity.account_id or ""


@router.post(
    "/batches",
    summary="Submit a batch",
    description="Starts a job for inline `items` or an S3 `source`. With an `Idempotency-Key` header a "
    "retry returns the same job (the same key with a different body: 409).",
    tags=["batches"],
    operation_id="submitBatch",
    responses={
        202: documented("Accepted: the job (pending, or further along already).", JobView),
        400: documented_error("The body is not JSON."),
        409: documented_error("The Idempotency-Key was used for a different request."),
        413: documented_error("Too many inline items or too large a body or source."),
        415: documented_error("The body is not application/json."),
        **COMMON_ERRORS,
        422: documented_error("The request or its items are invalid; `details` lists each problem."),
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
    body = router.current_event.body or ""
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", TOO_LARGE)
    settings = get_settings()
    submitted = submission.submit(request, idempotency_key, _caller, settings)
    jobs = JobsRepository(settings.jobs_table)
    # The S3 notification starts intake; this row makes the job readable before it runs.
    source = s3_uri(settings.data_bucket, submitted.key)
    jobs.create_job(new_job(submitted.job_id, submitted.spec, source))
    job = jobs.get_job(submitted.job_id)
    assert job is not None
    logger.info(
        "batch submitted",
        extra={"job_id": submitted.job_id, "key": submitted.key, "replayed": submitted.replayed},
    )
    if not submitted.replayed:
        metrics.add_dimension(name="provider", value=submitted.spec.provider)
        metrics.add_metric(name="ApiBatchesSubmitted", unit=MetricUnit.Count, value=1)
    view = job_view(job, router.current_event)
    headers = {"Location": view.links.self_}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=view, headers=headers)


@router.get(
    "/batches",
    summary="List jobs, newest first",
    tags=["batches"],
    operation_id="listBatches",
    responses={
        200: documented("A page of jobs.", JobList),
        400: documented_error("next_token is malformed or belongs to another listing."),
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
        if start["sk"] != JOB_SK or start["record_type"] != JOB_RECORD_TYPE:
            raise ApiError(400, "invalid_next_token", "next_token does not belong to this listing")
    try:
        jobs, last_key = JobsRepository(get_settings().jobs_table).list_jobs(limit, status, start)
    except ClientError as exc:
        raise invalid_start(exc) from exc
    return JobList(
        jobs=[job_view(job, router.current_event) for job in jobs],
        next_token=encode_token(scope, last_key) if last_key else None,
    )


def _chunk_view(row: ChunkRow) -> ChunkView:
    batches = [ProviderBatch(round=r, attempt=a, id=b) for (r, a), b in sorted(row.batches.items()) if b]
    fields = row.model_dump(include=set(ChunkView.model_fields) - {"provider_batches"})
    return ChunkView.model_validate({**fields, "provider_batches": batches})


@router.get(
    "/batches/<job_id>",
    summary="One job: status, counts, usage, retry rounds and its provider batches",
    tags=["batches"],
    operation_id="getBatch",
    responses={200: documented("The job.", JobDetail), **JOB_ERRORS},
)
def get_batch(job_id: JobIdPath) -> JobDetail:
    job = find_job(job_id)
    chunks = JobsRepository(get_settings().jobs_table).chunk_rows(job_id)  # in chunk order
    return JobDetail.model_validate(
        {
            **job_view(job, router.current_event).model_dump(by_alias=True),
            "chunks": [_chunk_view(row) for row in chunks],
        }
    )
