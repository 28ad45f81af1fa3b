"""Await capacity: park a chunk that found no room in its provider's quota until a release wakes it.

The state machine's AwaitCapacity callback task (``AwaitCapacityInput``): the task token is queued
as a waiter in the quota ledger (oldest first) and the task waits until a release of capacity
sends it back, or its long timeout (a safety net) sends the chunk to Submit again. Right after
parking, the function wakes whoever fits itself, closing the race with a release that came in
between; ``CapacityFreed`` means this chunk fits now: submit at once. The domain is
``batch_gateway.workflow.capacity``.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, tracer
from batch_gateway.settings import QuotaSettings, StorageSettings, get_settings
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway.workflow.capacity import Capacity, row_amount
from batch_gateway.workflow.payloads import AwaitCapacityInput, AwaitProviderOutput

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, QuotaSettings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=AwaitCapacityInput)
def lambda_handler(event: AwaitCapacityInput, context: LambdaContext) -> dict[str, Any]:
    state = event.state
    logger.append_keys(job_id=state.job_id, chunk=state.chunk)
    settings = get_settings(*NEEDS)
    row = JobsRepository(settings.jobs_table).chunk_row(state.job_id, state.chunk)
    amount = row_amount(state.provider, row)
    Capacity(settings).park(state, state.provider, state.model, amount, event.task_token)
    return AwaitProviderOutput(parked=f"{state.provider}#{state.model}").model_dump(mode="json")
