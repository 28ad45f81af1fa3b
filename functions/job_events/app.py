"""Job events: publish each job status change from the jobs table's stream to EventBridge.

Returns the records that failed (``batchItemFailures``): the stream mapping reports batch item
failures, so Lambda retries from the first of them instead of replaying the whole batch.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import EventSettings, StorageSettings, get_settings
from batch_gateway.triggers.job_events import publish_stream_records

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, EventSettings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    settings = get_settings(*NEEDS)
    return publish_stream_records(event, settings.data_bucket, settings.event_bus_name, context)
