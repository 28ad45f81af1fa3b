"""Collect: turn a finished provider batch into ordered BatchResults (S3 chunk file + results table).

The state machine's CollectChunk task (``CollectInput``); returns the ``ChunkState`` whose
``next_step`` says whether the chunk is submitted again (a resubmission or a follow-up round) or
done. The domain is ``batch_gateway.workflow.collect``; this handler only parses and wires.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import ProviderSettings, ResultsSettings, StorageSettings, get_settings
from batch_gateway.workflow.collect import collect_chunk
from batch_gateway.workflow.payloads import CollectInput

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, ResultsSettings, ProviderSettings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=CollectInput)
def lambda_handler(event: CollectInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.state.job_id, chunk=event.state.chunk)
    state = collect_chunk(
        event.state,
        event.policy,
        event.backoff,
        get_settings(*NEEDS),
    )
    return state.model_dump(mode="json")
