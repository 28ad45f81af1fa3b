"""Error answers of the HTTP API: one shape, ``{"error": CODE, "message": TEXT, "details": ...}``.

Routes raise :class:`ApiError` (status, code, message, details, headers); the exception handlers
here turn it, and whatever else escapes a route, into that shape: a request that does not match
the schema is a 422 naming the fields (never their values), a body that is not JSON a 400, too
many inline items a 413, AWS throttling a 429 with Retry-After, an unknown path a 404, anything
unexpected a logged 500 without a stack trace.

The handlers travel as a Powertools Router without routes (:data:`handlers`): ``app.py`` includes
it, and Powertools merges a router's exception handlers into the resolver. :func:`documented` and
:func:`documented_error` describe responses for the OpenAPI document; ``COMMON_ERRORS`` are the
errors every operation documents.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from botocore.exceptions import ClientError

from batch_gateway.api.models import MAX_BODY_BYTES, MAX_INLINE_ITEMS, ErrorBody
from batch_gateway.observability import logger

MAX_DETAILS = 100
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "TooManyRequestsException",
    }
)
TOO_LARGE = (
    f"at most {MAX_INLINE_ITEMS} inline items and {MAX_BODY_BYTES // 2**20} MB per request: "
    "upload larger files to S3 and submit them with 'source'"
)


class ApiError(Exception):
    """An error answer: HTTP status, code, message and optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers or {}


ErrorResponse = Response[dict[str, Any]]


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> ErrorResponse:
    body = ErrorBody(error=code, message=message, details=details).model_dump(mode="json")
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


# ------------------------------------------------------------------ responses in the OpenAPI document
def documented(description: str, model: Any) -> OpenAPIResponse:
    """An operation's response in the OpenAPI document: a JSON body of ``model``."""
    return {"description": description, "content": {"application/json": {"model": model}}}


def documented_error(description: str) -> OpenAPIResponse:
    return documented(description, ErrorBody)


# Every route can answer these (429: API Gateway's throttling, or AWS throttling behind it).
COMMON_ERRORS: dict[int, OpenAPIResponse] = {
    403: documented_error("Missing or invalid credentials (answered by API Gateway)."),
    422: documented_error("A parameter or the body does not match the schema; `details` names the fields."),
    429: documented_error("Too many requests: retry after the Retry-After header's seconds."),
}
JOB_ERRORS: dict[int, OpenAPIResponse] = {**COMMON_ERRORS, 404: documented_error("No such job.")}


# ------------------------------------------------------------------ exception handlers
handlers = APIGatewayRouter()  # type: ignore[no-untyped-call]  # (Router.__init__ lacks "-> None")


def _api_error(exc: ApiError) -> ErrorResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _invalid_request(exc: RequestValidationError) -> ErrorResponse:
    errors = list(exc.errors())
    if any(error.get("loc", ("",))[0] == "response" for error in errors):
        logger.error("a response did not match its model", extra={"errors": _field_errors(errors)})
        return error_response(500, "internal_error", "internal error: the answer did not match its schema")
    if any(error.get("type") == "json_invalid" for error in errors):
        detail = next(
            str(e.get("ctx", {}).get("error", "")) for e in errors if e.get("type") == "json_invalid"
        )
        return error_response(
            400, "malformed_json", f"the body is not valid JSON ({detail}): send one JSON object"
        )
    if any(tuple(e.get("loc", ()))[:2] == ("body", "items") and e.get("type") == "too_long" for e in errors):
        return error_response(413, "payload_too_large", TOO_LARGE)
    return error_response(
        422,
        "validation_error",
        "the request does not match the API schema: see details",
        _field_errors(errors),
    )


def _field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    # loc, type and pydantic's sentence only: no input values, no Python or file names.
    return [
        {"loc": [str(part) for part in e.get("loc", ())], "type": e.get("type"), "msg": e.get("msg")}
        for e in errors[:MAX_DETAILS]
    ]


def _unsupported_media(exc: RequestUnsupportedContentType) -> ErrorResponse:
    return error_response(415, "unsupported_media_type", "send the body as application/json")


def _no_route(exc: NotFoundError) -> ErrorResponse:
    return error_response(404, "not_found", "no such resource")


def _aws_error(exc: ClientError) -> ErrorResponse:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in THROTTLING_CODES:
        return error_response(
            429, "throttled", "the service is busy: retry in a moment", headers={"Retry-After": "1"}
        )
    logger.exception("AWS call failed")
    return error_response(500, "internal_error", f"internal error (request {_request_id()})")


def _unexpected(exc: Exception) -> ErrorResponse:
    logger.exception("unhandled error")
    return error_response(500, "internal_error", f"internal error (request {_request_id()})")


def _request_id() -> str:
    return str(handlers.current_event.request_context.request_id or "unknown")


for _exception, _handler in (
    (ApiError, _api_error),
    (RequestValidationError, _invalid_request),
    (RequestUnsupportedContentType, _unsupported_media),
    (NotFoundError, _no_route),
    (ClientError, _aws_error),
    (Exception, _unexpected),
):
    handlers.exception_handler(_exception)(_handler)
