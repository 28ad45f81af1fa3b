"""``POST /batches/estimate``: what ``POST /batches`` with the same body would send and cost.

The body is a submission's (``SubmitBatch``): its spec is checked as a submission's is
(``submission_checks.validate_spec``), then the items (or the ``source`` object, read as a stream) go through
intake's own checks and chunking (``intake.estimate``): nothing is written, no provider is called.
A source larger than ``MAX_ESTIMATE_SOURCE_BYTES`` is refused with the CLI to use instead: the API
answers within API Gateway's 29 seconds, and intake reads about 30,000 lines a second.
"""

from __future__ import annotations

import io
import json
from typing import IO

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from batch_gateway.api import submission_checks
from batch_gateway.api.errors import COMMON_ERRORS, TOO_LARGE, ApiError, documented, documented_error
from batch_gateway.api.models import MAX_BODY_BYTES, SubmitBatch
from batch_gateway.intake.estimate import estimate_file
from batch_gateway.models import Estimate
from batch_gateway.observability import logger
from batch_gateway.settings import Settings, get_settings
from batch_gateway.storage.s3 import open_object

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # (Router.__init__ lacks "-> None")

MAX_ESTIMATE_SOURCE_BYTES = 200 * 1024 * 1024


def _stream(request: SubmitBatch, settings: Settings) -> IO[bytes]:
    if request.items is not None:
        lines = (item if isinstance(item, str) else json.dumps(item) for item in request.items)
        return io.BytesIO("".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass"))
    assert request.source is not None  # SubmitBatch requires one of the two
    bucket, key, size = submission_checks.check_source(request.source, settings)
    if size > MAX_ESTIMATE_SOURCE_BYTES:
        raise ApiError(
            413,
            "payload_too_large",
            f"{request.source} is {size} bytes; the API estimates sources up to "
            f"{MAX_ESTIMATE_SOURCE_BYTES // 2**20} MB: run `batch-gateway estimate FILE` on a copy instead",
        )
    return open_object(bucket, key)


@router.post(
    "/batches/estimate",
    summary="Estimate a batch",
    description="Checks the items or the source exactly as intake would and answers without writing "
    "anything or calling the provider: requests, invalid lines with their line numbers, provider "
    "batches, estimated input tokens (and the method), the output-token ceiling, the cost range at "
    "batch prices (null when a model has no price), and how many chunks the stack's quota runs at once.",
    tags=["batches"],
    operation_id="estimateBatch",
    responses={
        200: documented("The estimate (`accepted`: whether intake would take the file).", Estimate),
        400: documented_error("The body is not JSON."),
        413: documented_error("Too large a body or source."),
        415: documented_error("The body is not application/json."),
        **COMMON_ERRORS,
        422: documented_error("The request is invalid; `details` lists each problem."),
    },
)
def estimate_batch(request: SubmitBatch) -> Estimate:
    body = router.current_event.body or ""
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", TOO_LARGE)
    settings = get_settings()
    spec = submission_checks.validate_spec(request)
    estimate = estimate_file(_stream(request, settings), spec, settings)
    logger.info("batch estimated", extra={"requests": estimate.requests, "accepted": estimate.accepted})
    return estimate
