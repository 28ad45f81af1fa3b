"""Api: the HTTP API (API Gateway REST, Lambda proxy): submit, follow, fetch results, cancel.

A thin handler: logging with the API Gateway request id as correlation id, tracing and metrics
around ``batch_gateway.api.app.app.resolve``, which routes the event to its Router.
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.api.app import app
from batch_gateway.observability import logger, metrics, tracer
from batch_gateway.settings import (
    ApiSettings,
    ProviderSettings,
    ResultsSettings,
    StorageSettings,
    get_settings,
)

# The settings groups this function reads: a variable of theirs that is not set fails the first
# invocation with its name.
NEEDS = (StorageSettings, ResultsSettings, ProviderSettings, ApiSettings)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    get_settings(*NEEDS)  # the routers read them again, from the cache
    return app.resolve(event, context)
