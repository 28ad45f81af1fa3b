"""MarkFailed: the workflow's catch-all ends the job failed with a readable reason.

The state machine's MarkFailed task, reached from any Catch (``MarkFailedInput``: the job and the
caught ``{Error, Cause}``), and a chunk's RecordChunkFailure (the same with the chunk); returns the
job's ending (``MarkFailedOutput``). The domain is ``batch_gateway.workflow.chunk_failure.mark_failed``.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import QuotaSettings, StorageSettings, get_settings
from batch_gateway.workflow.chunk_failure import mark_failed
from batch_gateway.workflow.payloads import MarkFailedInput

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, QuotaSettings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=MarkFailedInput)
def lambda_handler(event: MarkFailedInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return mark_failed(event, get_settings(*NEEDS)).model_dump(mode="json")
