"""Webhook: OpenAI's batch.* webhooks, verified, wake the chunk waiting for that batch at once."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import StorageSettings, WebhookSettings, get_settings
from batch_gateway.triggers.openai_webhooks import handle_openai_webhook

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, WebhookSettings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=APIGatewayProxyEvent)
def lambda_handler(event: APIGatewayProxyEvent, context: LambdaContext) -> dict[str, Any]:
    # The signature covers the exact bytes OpenAI sent: verify the decoded body, never a re-encoding.
    body = event.decoded_body or ""
    return handle_openai_webhook(body, dict(event.headers), get_settings(*NEEDS), context).to_proxy_response()
