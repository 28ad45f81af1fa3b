"""Finalize: results.jsonl in input order, summary.json and the final jobs-table row.

The state machine's Finalize task once every chunk is collected (``FinalizeInput``); returns how
the job ended (``FinalizeOutput``). The domain is ``batch_gateway.workflow.finalize``.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import QuotaSettings, StorageSettings, get_settings
from batch_gateway.workflow.finalize import finalize_job
from batch_gateway.workflow.payloads import FinalizeInput, FinalizeOutput

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, QuotaSettings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=FinalizeInput)
def lambda_handler(event: FinalizeInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    job = finalize_job(event.job_id, event.bucket, get_settings(*NEEDS))
    return FinalizeOutput(job_id=job.job_id, status=job.status, counts=job.counts).model_dump(mode="json")
