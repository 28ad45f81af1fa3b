"""Poll: where does the chunk's provider batch stand, and how long to wait before asking again.

The state machine's PollChunk task (``PollInput``); returns the next ``ChunkState``, terminal once
the batch ended. The domain is ``batch_gateway.workflow.poll``; this handler only parses and wires.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import ProviderSettings, StorageSettings, get_settings
from batch_gateway.workflow.payloads import PollInput
from batch_gateway.workflow.poll import poll_chunk

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, ProviderSettings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PollInput)
def lambda_handler(event: PollInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.state.job_id, chunk=event.state.chunk)
    return poll_chunk(event.state, event.backoff, get_settings(*NEEDS)).model_dump(mode="json")
