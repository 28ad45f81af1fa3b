"""The HTTP API behind API Gateway (REST, Lambda proxy): submit, follow, fetch results, cancel.

One Powertools resolver with request validation (:data:`app`); ``functions/api/app.py`` only calls
``app.resolve``. The routes live in one Router per resource (``batches``, ``results``, ``cancel``)
and the exception handlers in ``errors``; this module includes them and refuses, before
Powertools parses a body, what it would fail on (form bodies, base64 bodies that are not UTF-8).

The OpenAPI document is generated from these routes (:func:`openapi_json`, committed as
``openapi.json`` and compared with the code by a test): the routers are included in the order the
document lists their paths. Errors are always ``{"error", "message", "details"}`` (``errors``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_gateway.api import batches, cancel, errors, estimates, results
from batch_gateway.api.models import ErrorBody

API_TITLE = "Batch Gateway"
API_VERSION = "1.0.0"
# Powertools would parse these as forms (and fail on a multipart body without a boundary): JSON only.
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class JsonApiResolver(APIGatewayRestResolver):
    """The REST resolver, refusing what Powertools' body parsing would fail on: form bodies (415) and
    base64 bodies that are not UTF-8 (400)."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        if headers.get("content-type", "").strip().lower().startswith(FORM_CONTENT_TYPES):
            return _refusal(415, "unsupported_media_type", "send the body as application/json")
        if event.get("isBase64Encoded") and event.get("body"):
            try:
                base64.b64decode(str(event["body"]), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return _refusal(400, "malformed_json", "the body is not UTF-8 text: send one JSON object")
        return super().resolve(event, context)


def _refusal(status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "body": ErrorBody(error=code, message=message).model_dump_json(),
        "isBase64Encoded": False,
    }


app = JsonApiResolver(enable_validation=True)
app.include_router(errors.handlers)
# This order is the order of the paths in openapi.json.
for _router in (batches.router, estimates.router, results.router, cancel.router):
    app.include_router(_router)


SECURITY_SCHEMES = {
    "sigv4": APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS Signature Version 4 (service execute-api): the default, stack parameter ApiAuth=IAM.",
    ),
    "api_key": APIKey(
        name="x-api-key",
        in_=APIKeyIn.header,
        description="An API key of the stack's usage plan: stack parameter ApiAuth=API_KEY.",
    ),
}


def openapi_json() -> str:
    """The OpenAPI document of this API (committed as openapi.json; `make openapi` rewrites it)."""
    return app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="Run JSONL files of LLM requests through provider batch APIs: submit, follow, "
        "fetch, cancel. Errors are {error, message, details}.",
        servers=[
            Server(
                url="/v1", description="The API stage (https://<api>.execute-api.<region>.amazonaws.com/v1)"
            )
        ],
        security_schemes=SECURITY_SCHEMES,  # type: ignore[arg-type]
        security=[{"sigv4": []}, {"api_key": []}],
    )
