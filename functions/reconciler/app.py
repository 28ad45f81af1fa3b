"""Reconciler: on its EventBridge schedule, repair jobs that cannot finish by themselves, clean up old ones.

Resumes or ends unfinished jobs whose workflow died, and deletes the staged and provider-side data
of jobs past retention; the options come from the environment the template sets. The domain is
``batch_gateway.triggers.reconciliation``; the run's report is logged and returned.
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import (
    ProviderSettings,
    ResultsSettings,
    StorageSettings,
    WorkflowSettings,
    get_settings,
)
from batch_gateway.triggers.reconciliation import ReconcileOptions, Reconciler

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, ResultsSettings, WorkflowSettings, ProviderSettings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(scheduled_time=event.time)
    report = Reconciler(
        get_settings(*NEEDS),
        ReconcileOptions.from_environ(),
    ).run()
    logger.info("reconciled", extra=report.model_dump(mode="json"))
    return report.model_dump(mode="json")
