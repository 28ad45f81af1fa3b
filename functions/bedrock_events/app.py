"""Bedrock events: a batch inference job ended (EventBridge) - wake the chunk waiting for it at once."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import StorageSettings, get_settings
from batch_gateway.triggers.bedrock_events import handle_bedrock_job_state_change

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings,)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(event_id=event.get_id)
    outcome = handle_bedrock_job_state_change(event.detail, get_settings(*NEEDS).jobs_table)
    return outcome.model_dump(exclude_none=True)
