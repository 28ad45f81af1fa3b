"""Submit: create the provider batch of one staged chunk (exactly once).

The state machine's SubmitChunk task: the Map item, or a collected chunk going round again for a
resubmission or a follow-up round (``SubmitInput``). Returns the chunk's ``ChunkState`` for the
wait loop. The domain is ``batch_gateway.workflow.submit``; this handler only parses and wires.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import ProviderSettings, StorageSettings, get_settings
from batch_gateway.workflow.payloads import SubmitInput
from batch_gateway.workflow.submit import submit_chunk

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, ProviderSettings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=SubmitInput)
def lambda_handler(event: SubmitInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.chunk.job_id, chunk=event.chunk.chunk)
    return submit_chunk(event.chunk, event.backoff, get_settings(*NEEDS)).model_dump(mode="json")
