"""Scheduler: on its EventBridge schedule, submit every file under scheduled/ not submitted yet."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import StorageSettings, get_settings
from batch_gateway.triggers.scheduling import run_scheduled_submissions

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings,)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(schedule=event.resources[0] if event.resources else None, scheduled_time=event.time)
    report = run_scheduled_submissions(
        get_settings(*NEEDS), time_left_ms=context.get_remaining_time_in_millis
    )
    return {
        "submitted": len(report.submitted),
        "skipped": len(report.skipped),
        "deferred": len(report.deferred),
        "report_uri": report.report_uri,
    }
