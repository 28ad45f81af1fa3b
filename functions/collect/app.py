"""Collect: turn a finished provider batch into ordered BatchResults (S3 chunk file + results table)."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import metrics
from batch_gateway.settings import get_settings
from batch_gateway.workflow.collect import collect_chunk
from batch_gateway.workflow.steps import Backoff, ChunkState, RetryPolicy

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = ChunkState.model_validate(event["state"])
    logger.append_keys(job_id=state.job_id, chunk=state.chunk)
    policy = RetryPolicy.model_validate(event["policy"])
    backoff = Backoff.model_validate(event["backoff"])
    return collect_chunk(state, policy, backoff, get_settings()).model_dump(mode="json")
