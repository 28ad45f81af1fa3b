"""Cancelling a job: ``POST /batches/{job_id}/cancel`` (idempotent).

Running provider batches are cancelled (``workflow.cancel.cancel_job``); finished answers are kept,
the rest end ``cancelled``; a finished job is returned unchanged. A provider that is unavailable
gets a 503 with Retry-After, one that refuses or fails the request a 502.

This action on a batch has a Router of its own (not the batches one) for the OpenAPI document:
Powertools lists paths in the order routes are included, and the committed ``openapi.json`` has
the cancel path after the results paths (``app.py`` includes batches, results, cancel).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from batch_gateway.api.errors import JOB_ERRORS, ApiError, documented, documented_error
from batch_gateway.api.models import JobView
from batch_gateway.api.views import JobIdPath, find_job, job_view
from batch_gateway.providers.errors import ProviderError, ProviderUnavailableError
from batch_gateway.settings import get_settings
from batch_gateway.workflow.cancel import cancel_job

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # (Router.__init__ lacks "-> None")


@router.post(
    "/batches/<job_id>/cancel",
    summary="Cancel a job (idempotent)",
    description="Running provider batches are cancelled; finished answers are kept, the rest end "
    "`cancelled`. A finished job is returned unchanged.",
    tags=["batches"],
    operation_id="cancelBatch",
    responses={
        202: documented("Cancellation requested.", JobView),
        502: documented_error("The provider refused or failed the cancel request."),
        503: documented_error("The provider is unavailable: retry."),
        **JOB_ERRORS,
    },
)
def cancel_batch(job_id: JobIdPath) -> Response[JobView]:
    find_job(job_id)
    try:
        job = cancel_job(job_id, get_settings())
    except ProviderUnavailableError as exc:
        raise ApiError(503, "provider_unavailable", str(exc), headers={"Retry-After": "30"}) from exc
    except ProviderError as exc:
        raise ApiError(502, "provider_error", str(exc)) from exc
    view = job_view(job, router.current_event)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=view)
