"""Intake: an object created under inbox/ becomes a validated, staged job and one workflow execution.

A thin handler over S3 event records: each record's key (URL-decoded) and version go to
``batch_gateway.intake.intake_object.intake_object``; the outcome is logged (a rejection's reason
only when content logging is on: it may quote the input) and returned.
"""

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.intake.intake_object import intake_object
from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import (
    IntakeLimits,
    ResultsSettings,
    StorageSettings,
    WorkflowSettings,
    get_settings,
)

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, ResultsSettings, WorkflowSettings, IntakeLimits)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    outcomes = []
    for record in event.records:
        obj = record.s3.get_object
        key = unquote_plus(obj.key)  # S3 events carry the key URL-encoded ("+" for a space)
        settings = get_settings(*NEEDS)
        outcome = intake_object(record.s3.bucket.name, key, obj.get("versionId"), settings)
        logger.append_keys(job_id=outcome.job_id)
        reason = outcome.loggable_reason(settings.log_content)
        logger.info("intake", extra={"key": key, "outcome": outcome.status, "reason": reason})
        outcomes.append(outcome.model_dump())
    return {"jobs": outcomes}
