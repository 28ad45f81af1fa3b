"""Job events: publish each job status change from the jobs table's stream to EventBridge."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import metrics
from batch_gateway.settings import get_settings
from batch_gateway.triggers.job_events import publish, state_changes

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def lambda_handler(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    published = publish(state_changes(event.records, settings.data_bucket), settings.event_bus_name)
    return {"published": published}
