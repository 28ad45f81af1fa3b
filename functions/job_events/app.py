"""Job events: publish each job status change from the jobs table's stream to EventBridge.

Returns the records that failed (``batchItemFailures``): the stream mapping reports batch item
failures, so Lambda retries from the first of them instead of replaying the whole batch.
"""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import metrics
from batch_gateway.settings import get_settings
from batch_gateway.triggers.job_events import publish_stream_records

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    settings = get_settings()
    return publish_stream_records(event, settings.data_bucket, settings.event_bus_name, context)
