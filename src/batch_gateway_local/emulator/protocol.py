"""Transport-neutral request and reply types, and each provider's error bodies.

The provider emulations see a :class:`Request` (method, path, query, headers, body, provider) and
return a :class:`Reply` (status, headers, body, optionally the chunks to stream it in), so they never
touch HTTP; ``http_transport`` does. :func:`openai_error`, :func:`anthropic_error` and :func:`bedrock_error`
give each API's error shape; raising :class:`ApiError` answers with one from anywhere in a handler.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Provider = Literal["openai", "anthropic", "bedrock"]

JSON_TYPE = "application/json"


@dataclass
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Lower-cased header names."""
    body: bytes
    provider: Provider

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int
    body: bytes | memoryview = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes | memoryview] | None = None
    """When set, the body is streamed from these chunks; `body` gives the announced Content-Length."""
    close: bool = False
    """Close the connection after this reply."""


# A route's handler: the request and its path's match (named groups such as ``batch_id``).
Handler = Callable[[Request, "re.Match[str]"], Reply]


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_reply(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=dumps(value), headers=dict(headers or {}))


def request_id() -> str:
    return "req_" + secrets.token_hex(12)


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return json_reply(body, status, headers)


def anthropic_error(
    status: int, message: str, *, type_: str = "invalid_request_error", headers: dict[str, str] | None = None
) -> Reply:
    rid = request_id()
    body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": rid}
    return json_reply(body, status, {"request-id": rid, **(headers or {})})


def bedrock_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An AWS REST-JSON error as Bedrock sends it: botocore reads the code from ``x-amzn-ErrorType``."""
    return json_reply({"message": message}, status, {"x-amzn-ErrorType": code, **(headers or {})})


_BEDROCK_CODES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    409: "ConflictException",
    429: "ThrottlingException",
    500: "InternalServerException",
}

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


def error_reply(
    provider: Provider,
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """A provider-shaped error reply (for scenarios that inject faults)."""
    if provider == "bedrock":
        return bedrock_error(status, _BEDROCK_CODES.get(status, "InternalServerException"), message, headers)
    if provider == "anthropic":
        return anthropic_error(
            status, message, type_=_ANTHROPIC_TYPES.get(status, "api_error"), headers=headers
        )
    return openai_error(
        status, message, type_=_OPENAI_TYPES.get(status, "invalid_request_error"), code=code, headers=headers
    )


class ApiError(Exception):
    """Raised by handlers to answer with an error reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply
