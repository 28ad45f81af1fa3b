"""Await provider: park a chunk's execution (its task token) until a webhook or the poll timer wakes it."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.settings import get_settings
from batch_gateway.workflow.wakeup import ParkRequest, park

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    request = ParkRequest.model_validate(event)
    logger.append_keys(job_id=request.job_id, chunk=request.chunk)
    park(request, get_settings().jobs_table)
    return {"parked": request.provider_batch_id}
