"""Submit: create the provider batch of one staged chunk (exactly once)."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import metrics
from batch_gateway.settings import get_settings
from batch_gateway.workflow.steps import Backoff, ChunkRef, submit_chunk

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ref = ChunkRef.model_validate(event["chunk"])
    logger.append_keys(job_id=ref.job_id, chunk=ref.chunk)
    state = submit_chunk(ref, Backoff.model_validate(event["backoff"]), get_settings())
    return state.model_dump(mode="json")
