"""The results resource: a job's results as rows of the results table, one by custom_id, or a link.

``GET /batches/{job_id}/results`` pages through the results table in custom_id order (``limit``
rows, ``only=errors`` for the failed ones, an opaque ``next_token`` from ``tokens``), and stops a
page early when the answer would outgrow what a Lambda response may carry. ``format=url`` answers
a presigned URL of ``results.jsonl`` instead (409 until the job has one). ``GET
/batches/{job_id}/results/{custom_id}`` reads one row; custom_ids arrive percent-encoded.

A row whose answer was too large for the table points at an S3 object (``result_uri``); answers
carry a presigned ``result_url`` for it when it lives in the data bucket.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, unquote

import boto3
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from botocore.config import Config
from botocore.exceptions import ClientError

from batch_gateway.api.errors import JOB_ERRORS, ApiError, documented, documented_error
from batch_gateway.api.models import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ResultFilter,
    ResultFormat,
    ResultPage,
    ResultRow,
    ResultsLink,
)
from batch_gateway.api.submission_checks import split_s3_uri
from batch_gateway.api.tokens import decode_token, encode_token, invalid_start
from batch_gateway.api.views import JobIdPath, find_job
from batch_gateway.settings import get_settings
from batch_gateway.storage.results import ResultsRepository

PRESIGNED_URL_SECONDS = 3600
# What a response may carry (Lambda returns at most 6 MB): result pages stop early past this.
RESPONSE_BUDGET_BYTES = 4 * 1024 * 1024

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # (Router.__init__ lacks "-> None")


def _presigner() -> Any:
    return boto3.client("s3", config=Config(signature_version="s3v4"))


def _result_row(row: dict[str, Any], bucket: str) -> ResultRow:
    result = ResultRow.model_validate({k: v for k, v in row.items() if k in ResultRow.model_fields})
    if result.result_uri:
        result_bucket, key = split_s3_uri(result.result_uri)
        if result_bucket == bucket:
            result.result_url = _presigner().generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGNED_URL_SECONDS
            )
    return result


@router.get(
    "/batches/<job_id>/results",
    summary="A job's results: rows (paginated) or a link to results.jsonl",
    description="`format=json` (default): rows of the results table in custom_id order, `limit` per "
    "page, `only=errors` for the failed ones. `format=url`: a presigned URL of results.jsonl (one "
    "BatchResult per input line, input order); 409 until the job has results.",
    tags=["results"],
    operation_id="getBatchResults",
    responses={
        200: documented("Rows, or the link.", ResultPage | ResultsLink),
        400: documented_error("next_token is malformed or belongs to another listing."),
        409: documented_error("format=url: the job has no results file yet."),
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
    job = find_job(job_id)
    if format_ == "url":
        if not job.results_uri:
            raise ApiError(
                409,
                "results_not_ready",
                f"job {job_id} is {job.status.value} and has no results file yet: try again when it has "
                "finished (GET /batches/{job_id} shows its progress)",
            )
        bucket, key = split_s3_uri(job.results_uri)
        url = _presigner().generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGNED_URL_SECONDS
        )
        return ResultsLink(url=url, expires_in=PRESIGNED_URL_SECONDS, results_uri=job.results_uri)
    return _page(job_id, limit, next_token, only)


def _page(job_id: str, limit: int, next_token: str | None, only: ResultFilter | None) -> ResultPage:
    """One page of result rows, cut short when the answer would outgrow RESPONSE_BUDGET_BYTES."""
    settings = get_settings()
    scope = f"results:{job_id}:{only or '*'}"
    start = decode_token(next_token, scope, {"job_id": str, "custom_id": str}) if next_token else None
    if start is not None and start["job_id"] != job_id:
        raise ApiError(400, "invalid_next_token", "next_token belongs to another job")
    repository = ResultsRepository(settings.results_table, settings.data_bucket, 1)
    try:
        rows, last_key = repository.page(job_id, limit, start, errors_only=only == "errors")
    except ClientError as exc:
        raise invalid_start(exc) from exc
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


@router.get(
    "/batches/<job_id>/results/<custom_id>",
    summary="One result, by custom_id (URL-encoded)",
    tags=["results"],
    operation_id="getBatchResult",
    responses={200: documented("The result row.", ResultRow), **JOB_ERRORS},
)
def get_result(
    job_id: JobIdPath,
    custom_id: Annotated[str, Path(max_length=3 * 1024, description="The item's custom_id, URL-encoded.")],
) -> ResultRow:
    settings = get_settings()
    find_job(job_id)
    # REST API paths arrive still percent-encoded: decode once.
    try:
        wanted = unquote(custom_id, errors="strict")
        fits = 0 < len(wanted.encode("utf-8")) <= 1024  # longer ids cannot be in the table
    except UnicodeError:
        wanted, fits = custom_id, False
    row = None
    if fits:
        row = ResultsRepository(settings.results_table, settings.data_bucket, 1).get(job_id, wanted)
    if row is None:
        raise ApiError(
            404, "not_found", f"job {job_id} has no result for custom_id '{quote(wanted, safe='')}' (yet)"
        )
    return _result_row(row, settings.data_bucket)
