"""Await provider: park a chunk's execution (its task token) until a webhook or the poll timer wakes it.

The state machine's AwaitProvider callback task (``AwaitProviderInput``): the token is stored on the
chunk row and the task waits until a notification sends it back or its timeout (the backoff wait)
ends; ``ProviderAlreadyReported`` means poll at once. The domain is ``batch_gateway.workflow.wakeup``.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, tracer
from batch_gateway.settings import StorageSettings, get_settings
from batch_gateway.workflow.payloads import AwaitProviderInput, AwaitProviderOutput
from batch_gateway.workflow.wakeup import park

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings,)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=AwaitProviderInput)
def lambda_handler(event: AwaitProviderInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id, chunk=event.chunk)
    park(event, get_settings(*NEEDS).jobs_table)
    return AwaitProviderOutput(parked=event.provider_batch_id).model_dump(mode="json")
