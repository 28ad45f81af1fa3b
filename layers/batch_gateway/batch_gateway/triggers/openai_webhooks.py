"""OpenAI webhooks (``POST /webhooks/openai``): verify, drop replays, wake the batch's chunk.

OpenAI signs each delivery the Standard Webhooks way (headers ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``: HMAC-SHA256 of ``id.timestamp.body`` with the endpoint's ``whsec_`` secret).
The official SDK checks the signature and that the timestamp is within 5 minutes, which stops a
captured delivery from being replayed later; a replay inside those 5 minutes carries a
``webhook-id`` already seen, and Powertools Idempotency, keyed on that id in the deliveries table
(kept 4 days by TTL: OpenAI retries a delivery for up to 72 hours under the same id), answers it as
a duplicate without acting. A delivery is claimed before it is acted on and the claim is released
when acting fails, so OpenAI's retry of a failed delivery is processed, never swallowed; forged,
unsigned and stale deliveries are refused before any claim.

The route carries no API Gateway auth: the signature is the auth. The secret lives in its own
Secrets Manager secret (``{"openai_webhook_secret": "whsec_..."}``), read through Powertools
Parameters with caching; this function cannot read the provider API keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from pydantic import BaseModel

from batch_gateway.observability import MetricUnit, logger, metrics
from batch_gateway.settings import Settings
from batch_gateway.workflow.wakeup import wake

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext


SECRET_CACHE_SECONDS = 300
SECRET_FIELD = "openai_webhook_secret"  # noqa: S105 - the key inside the secret, not a secret
# OpenAI retries a delivery for up to 72 hours with the same webhook-id: remember ids a bit longer.
DELIVERY_MEMORY_SECONDS = 4 * 24 * 3600
# The batch events that end a batch; any other event type is acknowledged and ignored.
BATCH_END_EVENTS = frozenset({"batch.completed", "batch.failed", "batch.expired", "batch.cancelled"})


class WebhookAnswer(BaseModel):
    """The HTTP answer: a status code and a JSON body (errors in the API's ``{error, message}`` shape)."""

    status_code: int
    body: dict[str, Any]

    def to_proxy_response(self) -> dict[str, Any]:
        return {
            "statusCode": self.status_code,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(self.body),
        }


def _refuse(status_code: int, error: str, message: str) -> WebhookAnswer:
    metrics.add_metric(name="WebhooksRefused", unit=MetricUnit.Count, value=1)
    logger.warning("webhook refused", extra={"error": error, "reason": message})
    return WebhookAnswer(status_code=status_code, body={"error": error, "message": message})


def webhook_secret(settings: Settings) -> str:
    secret: Any = parameters.get_secret(
        settings.webhook_secret_arn, transform="json", max_age=SECRET_CACHE_SECONDS
    )
    value = secret.get(SECRET_FIELD) if isinstance(secret, dict) else None
    return str(value or "")


def _wake_for_delivery(delivery: dict[str, str], jobs_table: str) -> dict[str, Any]:
    """Act on one delivery (the replay guard wraps this: see :func:`wake_once`)."""
    outcome = wake(delivery["batch_id"], delivery["event_type"], jobs_table)
    return {"outcome": outcome.outcome, "replayed": False}


def _mark_replay(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools calls this instead of acting when the delivery's id was acted on before."""
    return {**response, "replayed": True}


def wake_once(
    delivery: dict[str, str], deliveries_table: str, jobs_table: str, context: LambdaContext | None = None
) -> dict[str, Any]:
    """Wake for this delivery once per ``webhook-id``: ``replayed`` is True when it was done before.

    Powertools Idempotency keeps one record per id in the deliveries table: claimed (in progress)
    before acting, completed after, deleted again when acting raises (so OpenAI's retry acts).
    A delivery whose twin is being acted on right now counts as replayed too.
    """
    config = IdempotencyConfig(
        event_key_jmespath="webhook_id",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=DELIVERY_MEMORY_SECONDS,
        response_hook=_mark_replay,
    )
    if context is not None:
        config.register_lambda_context(context)  # an in-progress claim ends with the invocation
    guarded = idempotent_function(
        data_keyword_argument="delivery",
        persistence_store=DynamoDBPersistenceLayer(table_name=deliveries_table),
        config=config,
    )(_wake_for_delivery)
    try:
        result: dict[str, Any] = guarded(delivery=delivery, jobs_table=jobs_table)
    except IdempotencyAlreadyInProgressError:
        return {"outcome": "in_progress", "replayed": True}
    return result


def _verified_event(body: str, headers: Mapping[str, str], secret: str) -> dict[str, Any] | str:
    """The event, once the signature and timestamp check out; otherwise why not (a sentence)."""
    # The SDK is imported only here: no other code path of this function needs it (about 0.5 s).
    from openai import InvalidWebhookSignatureError, OpenAI

    client = OpenAI(api_key="unused-for-webhook-verification", webhook_secret=secret, max_retries=0)
    try:
        client.webhooks.verify_signature(body, dict(headers))
    except InvalidWebhookSignatureError as exc:
        return f"the webhook signature does not verify ({exc})"
    except ValueError as exc:  # a missing webhook-id / -timestamp / -signature header
        return f"the request is not a signed webhook ({exc})"
    try:
        event = json.loads(body)
    except json.JSONDecodeError:
        return "the webhook body is not JSON"
    return event if isinstance(event, dict) else "the webhook body is not a JSON object"


def handle_openai_webhook(
    body: str, headers: Mapping[str, str], settings: Settings, context: LambdaContext | None = None
) -> WebhookAnswer:
    """Verify one delivery and, for a batch that ended, wake the chunk waiting for it (once per id)."""
    secret = webhook_secret(settings)
    if not secret:
        return _refuse(
            503,
            "webhook_secret_missing",
            f"no OpenAI webhook secret is configured: store it as '{SECRET_FIELD}' in the secret "
            f"{settings.webhook_secret_arn}",
        )
    lowered = {name.lower(): value for name, value in headers.items()}
    event = _verified_event(body, lowered, secret)
    if isinstance(event, str):
        return _refuse(400, "invalid_webhook", event)
    webhook_id = lowered["webhook-id"]
    event_type = str(event.get("type", ""))
    batch_id = str((event.get("data") or {}).get("id", ""))
    if event_type not in BATCH_END_EVENTS or not batch_id:
        logger.info("webhook event ignored", extra={"event_type": event_type})
        return WebhookAnswer(status_code=200, body={"status": "ignored", "type": event_type})
    delivery = {"webhook_id": webhook_id, "batch_id": batch_id, "event_type": event_type}
    result = wake_once(delivery, settings.webhook_deliveries_table, settings.jobs_table, context)
    if result["replayed"]:
        metrics.add_metric(name="WebhooksDuplicate", unit=MetricUnit.Count, value=1)
        logger.warning("webhook replayed or redelivered: ignored", extra={"webhook_id": webhook_id})
        return WebhookAnswer(status_code=200, body={"status": "duplicate", "webhook_id": webhook_id})
    return WebhookAnswer(
        status_code=200, body={"status": result["outcome"], "type": event_type, "batch": batch_id}
    )
