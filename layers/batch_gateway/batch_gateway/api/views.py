"""How a job appears in the API's answers, and the ``{job_id}`` path parameter every job route takes.

A job answer is the job's summary (``models.JobSummary``, without the provider's raw payload) plus
links to itself, its results and its cancel action. The links are absolute: they are built from
the request's Host, X-Forwarded-Proto and API Gateway stage, so they point back at whichever URL
(custom domain, execute-api URL or the local gateway) the caller used.

:func:`find_job` reads the job's row or answers 404; the batches, results and cancel routes share
it, and ``JobIdPath`` (the path parameter with its pattern, in the OpenAPI document too).
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from batch_gateway.api.errors import ApiError
from batch_gateway.api.models import JobView, Links
from batch_gateway.models import JobSummary
from batch_gateway.settings import get_settings
from batch_gateway.storage.jobs import JobsRepository

JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
JobIdPath = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="The job id.")]


def find_job(job_id: str) -> JobSummary:
    """The job's summary, or a 404."""
    job = JobsRepository(get_settings().jobs_table).get_job(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job '{job_id}'")
    return job


def job_view(job: JobSummary, event: APIGatewayProxyEvent) -> JobView:
    """The job as the API shows it, with links built from the request ``event``."""
    return JobView.model_validate({**job.model_dump(exclude={"raw"}), "links": _links(job.job_id, event)})


def _links(job_id: str, event: APIGatewayProxyEvent) -> Links:
    base = f"{_base_url(event)}/batches/{job_id}"
    return Links.model_validate({"self": base, "results": f"{base}/results", "cancel": f"{base}/cancel"})


def _base_url(event: APIGatewayProxyEvent) -> str:
    """The API's own URL (scheme, host and stage), for links."""
    context = event.request_context
    host = event.headers.get("Host") or context.domain_name or ""
    scheme = event.headers.get("X-Forwarded-Proto") or "https"
    stage = context.stage or ""
    prefix = f"/{stage}" if stage and (context.path or "").startswith(f"/{stage}/") else ""
    return f"{scheme}://{host}{prefix}" if host else prefix
