"""Amazon Bedrock's job state-change events (EventBridge) wake the chunk waiting for that job.

Bedrock publishes a ``Batch Inference Job State Change`` event (source ``aws.bedrock``) to the
account's default event bus whenever a batch inference job changes state. The stack's rule sends
the terminal ones here; the job ARN in ``detail.batchJobArn`` is exactly the provider batch id the
Bedrock provider stores on the chunk row, so :func:`batch_gateway.workflow.wakeup.wake` finds the waiting
chunk and resumes it at once instead of at its next poll.

Events are a hint, never the truth: the woken chunk polls Bedrock as usual and acts on what
``GetModelInvocationJob`` says. EventBridge delivers best effort and at least once, so a lost event
costs only the wait and a duplicate one finds no waiting token (``recorded``), changing nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batch_gateway.observability import logger
from batch_gateway.workflow.wakeup import WakeOutcome, wake

# The statuses after which a job changes no more (Stopping, InProgress... are on the way there).
TERMINAL_STATUSES: Final = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})


class BedrockJobStateChange(BaseModel):
    """The part of the event's ``detail`` used here; Bedrock sends more (model id, record counts)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    batch_job_arn: str = Field(alias="batchJobArn", min_length=1)
    status: str = Field(min_length=1)


def handle_bedrock_job_state_change(detail: Mapping[str, Any], jobs_table: str) -> WakeOutcome:
    """Wake the chunk waiting for the job this event reports ended; anything else is ignored."""
    try:
        change = BedrockJobStateChange.model_validate(detail)
    except ValidationError:
        # Not the documented shape: nothing to act on, and retrying would not change that.
        logger.warning("Bedrock state-change event without a job ARN and status: ignored")
        return WakeOutcome(outcome="ignored")
    if change.status not in TERMINAL_STATUSES:
        logger.info(
            "Bedrock job has not ended: nothing to wake",
            extra={"provider_batch_id": change.batch_job_arn, "bedrock_status": change.status},
        )
        return WakeOutcome(outcome="ignored")
    return wake(change.batch_job_arn, f"bedrock.{change.status}", jobs_table)
