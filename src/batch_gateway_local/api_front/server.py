"""A local stand-in for API Gateway in front of the offline stack's API function (``local up``).

For each request it does what the REST API stage does on AWS, as far as a caller can tell: routes
as template.yaml's API definition says (``routes``), checks auth (``IAM``: a SigV4 ``Authorization``
header, **any signature accepted locally**; ``API_KEY``: ``x-api-key``), throttles (optional token
bucket), refuses bodies over 10 MB, then sends a REST API (payload v1) Lambda proxy event to the
deployed function through ``lambda.invoke`` and turns its answer into the HTTP response. One
local-only addition: presigned S3 URLs in answers point at ``/_local/s3/<bucket>/<key>`` here.
Plain ``http.server``: the answers must be API Gateway's to the byte (refusals, headers), which a web
framework would only get in the way of. Details: docs/offline-stack.md.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3

from batch_gateway_local.api_front.routes import ApiDefinition, Route
from batch_gateway_local.stack.app_files import TEMPLATE
from batch_gateway_local.stack.local_gateway import LocalGateway

API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
LOCAL_ACCOUNT_ID = "123456789012"
AUTH_MODES = ("IAM", "API_KEY")
_S3_URL = re.compile(
    r"https://(?:(?P<vhost>[a-z0-9][a-z0-9.-]*)\.s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com/"
    r"|s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com/(?P<path>[a-z0-9][a-z0-9.-]*)/)"
)
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")

IDENTITY_FIELDS = (
    "accessKey",
    "accountId",
    "apiKey",
    "apiKeyId",
    "caller",
    "cognitoAuthenticationProvider",
    "cognitoAuthenticationType",
    "cognitoIdentityId",
    "cognitoIdentityPoolId",
    "principalOrgId",
    "user",
    "userArn",
)


class TokenBucket:
    """API Gateway's throttle: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class LocalApiServer:
    """The front: a threading HTTP server on 127.0.0.1 that invokes ``function_name`` per request."""

    def __init__(
        self,
        definition: ApiDefinition,
        function_name: str,
        bucket: str,
        *,
        port: int = 8000,
        auth: str = "IAM",
        api_key: str | None = None,
        throttle: tuple[float, int] | None = None,
        access_log: Any = None,
        functions: Mapping[str, str] | None = None,
    ) -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {AUTH_MODES}")
        self.definition, self.function_name, self.bucket = definition, function_name, bucket
        # Logical id -> deployed function name, for routes integrated with another function than the API's.
        self.functions = dict(functions or {})
        self.auth = auth
        self.api_key = api_key or f"local-{secrets.token_urlsafe(18)}"
        self.api_key_id = "localkey" + secrets.token_hex(4)
        self.bucket_limit = TokenBucket(*throttle) if throttle else None
        self.access_log = access_log
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The API's base URL, stage included (what the stack's ApiUrl output is on AWS)."""
        return f"{self.root}/{self.definition.stage}"

    def start(self) -> LocalApiServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> LocalApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- one request
    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, client_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        split = urlsplit(target)
        raw_path = split.path
        if raw_path.startswith("/_local/s3/") and method in ("GET", "HEAD"):
            return self._serve_object(raw_path.removeprefix("/_local/s3/"))
        stage_prefix = f"/{self.definition.stage}"
        path = raw_path.removeprefix(stage_prefix) if raw_path.startswith(stage_prefix + "/") else None
        matched = self.definition.match(method, path) if path else None
        if path is None or matched is None:
            return self._refuse("MISSING_AUTHENTICATION_TOKEN")
        header_map = {name.lower(): value for name, value in headers}
        if method in matched[0].open_methods:
            identity, refusal = self._anonymous(header_map, client_ip), None
        else:
            identity, refusal = self._authenticate(header_map, client_ip)
        if refusal:
            return self._refuse(refusal)
        if self.bucket_limit is not None and not self.bucket_limit.take():
            return self._refuse("THROTTLED")
        if len(body) > API_GATEWAY_MAX_BODY_BYTES:
            return self._refuse("REQUEST_TOO_LARGE")
        route, path_parameters = matched
        event = self._event(
            method, path, split.query, headers, body, route, path_parameters, identity, header_map
        )
        logical_id = route.function_for(method)
        function_name = (
            self.functions.get(logical_id, self.function_name) if logical_id else self.function_name
        )
        response = boto3.client("lambda").invoke(
            FunctionName=function_name, Payload=json.dumps(event).encode()
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if "FunctionError" in response or not isinstance(payload, dict) or "statusCode" not in payload:
            return self._refuse("DEFAULT_5XX")
        return self._answer(payload)

    @staticmethod
    def _anonymous(headers: Mapping[str, str], client_ip: str) -> dict[str, Any]:
        identity: dict[str, Any] = dict.fromkeys(IDENTITY_FIELDS)
        identity.update(sourceIp=client_ip, userAgent=headers.get("user-agent"))
        return identity

    def _authenticate(self, headers: Mapping[str, str], client_ip: str) -> tuple[dict[str, Any], str | None]:
        identity = self._anonymous(headers, client_ip)
        if self.auth == "API_KEY":
            if not secrets.compare_digest(headers.get("x-api-key", ""), self.api_key):
                return identity, "INVALID_API_KEY"
            identity.update(apiKey=self.api_key, apiKeyId=self.api_key_id)
            return identity, None
        authorization = headers.get("authorization")
        if not authorization:
            return identity, "MISSING_AUTHENTICATION_TOKEN"
        credential = _CREDENTIAL.search(authorization)
        if not authorization.startswith("AWS4-HMAC-SHA256 ") or credential is None:
            return identity, "INCOMPLETE_SIGNATURE"
        # The signature itself is not checked locally (documented): any signed request is let in.
        access_key = credential.group(1)
        identity.update(
            accessKey=access_key,
            accountId=LOCAL_ACCOUNT_ID,
            caller=access_key,
            user=access_key,
            userArn=f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/{access_key}",
        )
        return identity, None

    def _event(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        route: Route,
        path_parameters: dict[str, str],
        identity: dict[str, Any],
        header_map: Mapping[str, str],
    ) -> dict[str, Any]:
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            multi_headers.setdefault(name, []).append(value)
        multi_headers.setdefault("X-Forwarded-Proto", ["http"])
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        request_id = str(uuid.uuid4())
        now = time.time()
        return {
            "resource": route.resource,
            "path": path,
            "httpMethod": method,
            "headers": {name: values[-1] for name, values in multi_headers.items()},
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": {k: unquote(v) for k, v in path_parameters.items()} or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": LOCAL_ACCOUNT_ID,
                "apiId": "local",
                "domainName": header_map.get("host", f"127.0.0.1:{self.port}"),
                "domainPrefix": "127",
                "extendedRequestId": request_id,
                "httpMethod": method,
                "identity": identity,
                "path": f"/{self.definition.stage}{path}",
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "requestTimeEpoch": int(now * 1000),
                "resourceId": "local",
                "resourcePath": route.resource,
                "stage": self.definition.stage,
            },
            "body": text if body else None,
            "isBase64Encoded": encoded,
        }

    def _answer(self, payload: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        headers: list[tuple[str, str]] = []
        multi = payload.get("multiValueHeaders") or {}
        for name, values in multi.items():
            headers.extend((name, str(value)) for value in values)
        for name, value in (payload.get("headers") or {}).items():
            if name not in multi:
                headers.append((name, str(value)))
        raw = payload.get("body") or ""
        body = base64.b64decode(raw) if payload.get("isBase64Encoded") else str(raw).encode()
        body = self._rewrite_s3_urls(body)
        return int(payload["statusCode"]), headers, body

    def _rewrite_s3_urls(self, body: bytes) -> bytes:
        def local(match: re.Match[str]) -> str:
            bucket = match.group("vhost") or match.group("path")
            return f"{self.root}/_local/s3/{bucket}/"

        return _S3_URL.sub(local, body.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def _serve_object(self, rest: str) -> tuple[int, list[tuple[str, str]], bytes]:
        bucket, _, key = rest.partition("/")
        if bucket != self.bucket or not key:
            return 403, [("Content-Type", "application/xml")], b"<Error><Code>AccessDenied</Code></Error>"
        s3 = boto3.client("s3")
        try:
            obj = s3.get_object(Bucket=bucket, Key=unquote(key))
        except s3.exceptions.NoSuchKey:
            return 404, [("Content-Type", "application/xml")], b"<Error><Code>NoSuchKey</Code></Error>"
        content_type = str(obj.get("ContentType") or "application/octet-stream")
        return 200, [("Content-Type", content_type)], obj["Body"].read()

    def _refuse(self, kind: str) -> tuple[int, list[tuple[str, str]], bytes]:
        status, headers, body = self.definition.gateway_response(kind)
        return status, list(headers.items()), body


class _FrontHandler(BaseHTTPRequestHandler):
    """One HTTP exchange: read the request, let ``front.handle`` answer it, write the answer."""

    protocol_version = "HTTP/1.1"
    server_version = "batch-gateway-local"
    front: LocalApiServer  # set on the subclass each server makes (see _handler_class)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, headers, payload = self.front.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
        except Exception as exc:  # the front itself failed: answer like API Gateway, keep serving
            status, headers_map, payload = self.front.definition.gateway_response("DEFAULT_5XX", str(exc))
            headers = list(headers_map.items())
        self.send_response(status)
        sent = {name.lower() for name, _ in headers}
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if "content-type" not in sent:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, PROPFIND...): API Gateway answers it like an unknown route.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        if self.front.access_log is not None:
            self.front.access_log.write(f"{self.address_string()} - {format % args}\n")
            self.front.access_log.flush()


def _handler_class(server: LocalApiServer) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_FrontHandler,), {"front": server})


def api_server_for(
    gateway: LocalGateway,
    *,
    port: int = 8000,
    api_key: str | None = None,
    throttle: tuple[float, int] | None = None,
    access_log: Any = None,
) -> LocalApiServer:
    """The front for a running LocalGateway: its template's API, its ApiFunction, its auth mode."""
    assert gateway.stack is not None, "enter the LocalGateway first"
    return LocalApiServer(
        ApiDefinition.from_template(TEMPLATE),
        gateway.stack.functions["ApiFunction"],
        gateway.bucket,
        port=port,
        auth=gateway.options.api_auth,
        api_key=api_key,
        throttle=throttle,
        access_log=access_log,
        functions=gateway.stack.functions,
    )
