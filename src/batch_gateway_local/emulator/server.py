"""The emulator's HTTP server: routing to each provider's emulation, auth, bodies, streamed replies.

Its own ``http.server`` and not a web framework, because it must misbehave on purpose: a scenario
can send the full Content-Length and then close the connection half way (``flaky-download``), which
frameworks do not let a handler do. Requests are routed by path to the OpenAI, Azure OpenAI,
Anthropic and Bedrock emulations; each checks its provider's auth header; a reply's chunks are
written as they come, so large result files stream.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from .anthropic_api import AnthropicApi
from .azure_api import AzureOpenAIApi, azure_authorized, azure_unauthorized, check_api_version, is_azure_path
from .bedrock_api import BedrockApi
from .openai.api import OpenAIApi
from .protocol import (
    ApiError,
    Provider,
    Reply,
    Request,
    anthropic_error,
    bedrock_error,
    openai_error,
    request_id,
)
from .scenario_base import Scenario
from .scenarios import check_scenario_name
from .state import QUOTA_FIELDS, Config, Limits, QuotaHighWater, Store

log = logging.getLogger(__name__)

Handler = Callable[[Request, "re.Match[str]"], Reply]

_MAX_BODY = 1024 * 1024 * 1024
"""Hard cap on any request body (1 GiB); provider limits are checked by the handlers."""


def _provider_of(path: str) -> Provider:
    if path.startswith("/model-invocation-job"):
        return "bedrock"
    return "anthropic" if path.startswith("/v1/messages") else "openai"


def _authorized(provider: Provider, headers: dict[str, str]) -> bool:
    bearer = headers.get("authorization", "")
    has_bearer = bearer.lower().startswith("bearer ") and bool(bearer[7:].strip())
    if provider == "bedrock":  # IAM: a SigV4-signed request (the signature itself is not checked)
        return bearer.startswith("AWS4-HMAC-SHA256 ")
    if provider == "anthropic":
        return bool(headers.get("x-api-key", "").strip()) or has_bearer
    return has_bearer


def _unauthorized(provider: Provider) -> Reply:
    if provider == "bedrock":
        return bedrock_error(403, "AccessDeniedException", "Missing Authentication Token")
    if provider == "anthropic":
        return anthropic_error(401, "x-api-key header is required", type_="authentication_error")
    return openai_error(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: EmulatorServer


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms ACK stalls
    server: _HTTPServer
    server_version = "BatchGatewayEmulator/1.0"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s - " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > _MAX_BODY:
                    raise ValueError("request body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        provider = _provider_of(path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(
                openai_error(413, "Request body too large.")
                if provider == "openai"
                else anthropic_error(413, "Request body too large.", type_="request_too_large"),
                provider,
            )
            return
        request = Request(
            method=method,
            path=path,
            query=dict(parse_qsl(split.query)),
            headers=headers,
            body=body,
            provider=provider,
        )
        self._send(self.server.emulator.dispatch(request), provider)

    def _send(self, reply: Reply, provider: Provider) -> None:
        headers = dict(reply.headers)
        if provider == "openai":
            headers.setdefault("x-request-id", request_id())
        else:
            headers.setdefault("request-id", request_id())
        length = len(reply.body)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name, value)
        if reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        written = 0
        try:
            if reply.chunks is None:
                self.wfile.write(reply.body)
                written = length
            else:
                for chunk in reply.chunks:
                    self.wfile.write(chunk)
                    written += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if written != length:
            # A scenario cut the stream short: the client sees a truncated body.
            self.close_connection = True


class EmulatorServer:
    """Local OpenAI Files/Batches + Anthropic Message Batches API on 127.0.0.1.

    Batches advance one step per retrieve (never by wall time) and complete after
    `polls_to_complete` retrieves.
    """

    def __init__(
        self,
        polls_to_complete: int = 2,
        *,
        port: int = 0,
        scenario: str = "default",
        limits: Limits | None = None,
        non_2xx_file: Literal["output", "error"] = "error",
        clock: Callable[[], float] = time.time,
        bedrock_min_records: int = 1,
    ) -> None:
        if polls_to_complete < 1:
            raise ValueError("polls_to_complete must be >= 1")
        check_scenario_name(scenario)  # fail fast on unknown names
        self.config = Config(
            polls_to_complete=polls_to_complete,
            limits=limits or Limits(),
            scenario=scenario,
            non_2xx_file=non_2xx_file,
            clock=clock,
        )
        self.store = Store(self.config)
        self._scenario: Scenario = self.store.new_scenario(scenario)
        self._openai = OpenAIApi(self.store)
        self._anthropic = AnthropicApi(self.store)
        self._bedrock = BedrockApi(self.store, min_records=bedrock_min_records)
        self._azure = AzureOpenAIApi(self.store)
        self._requested_port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        if self._httpd is not None:
            return
        httpd = _HTTPServer(("127.0.0.1", self._requested_port), _RequestHandler)
        httpd.emulator = self
        self._httpd = httpd
        self.store.base_url = self.base_url
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="batch-emulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Start and block until KeyboardInterrupt."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("EmulatorServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """Pass to `openai.OpenAI(base_url=...)`."""
        return self.base_url + "/v1"

    @property
    def azure_openai_endpoint(self) -> str:
        """Pass to `openai.AzureOpenAI(azure_endpoint=...)` (the client adds /openai)."""
        return self.base_url

    @property
    def bedrock_endpoint_url(self) -> str:
        """Pass to `boto3.client("bedrock", endpoint_url=...)`."""
        return self.base_url

    @property
    def anthropic_base_url(self) -> str:
        """Pass to `anthropic.Anthropic(base_url=...)`."""
        return self.base_url

    @property
    def scenario(self) -> str:
        """The server's scenario: used for uploads and creates, and by batches created without a
        per-batch choice. Settable at runtime (thread-safe); setting it, even to the current name,
        starts that scenario afresh (its memory of seen requests and its counters are cleared).
        Batches already created keep their scenario."""
        with self.store.lock:
            return self.config.scenario

    @scenario.setter
    def scenario(self, name: str) -> None:
        check_scenario_name(name)
        with self.store.lock:
            self.store.reset_scenario_memory(name)
            self.config.scenario = name
            self._scenario = self.store.new_scenario(name)

    @property
    def limits(self) -> Limits:
        """The limits and quotas enforced; settable at runtime (later creates see the new ones)."""
        with self.store.lock:
            return self.config.limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        with self.store.lock:
            self.config.limits = limits

    def set_quota(self, provider: str, quota: int | None) -> None:
        """Set one provider's batch-queue quota (OpenAI/Azure: enqueued tokens per model; Anthropic:
        requests being processed; Bedrock: concurrent jobs per model); None lifts it."""
        if provider not in QUOTA_FIELDS:
            raise ValueError(f"no quota for provider {provider!r}; known: {', '.join(QUOTA_FIELDS)}")
        changes: dict[str, Any] = {QUOTA_FIELDS[provider]: quota}
        with self.store.lock:
            self.config.limits = replace(self.config.limits, **changes)

    @property
    def quota_high_water(self) -> QuotaHighWater:
        """The most each quota held at once so far (recorded with or without a quota set)."""
        return self.store.quota_high_water()

    @property
    def batches_created(self) -> dict[str, int]:
        """Successful batch creations per provider ("openai", "anthropic", "azure-openai")."""
        with self.store.lock:
            return dict(self.store.batches_created)

    @property
    def files_uploaded(self) -> int:
        with self.store.lock:
            return self.store.files_uploaded

    # ------------------------------------------------------------ dispatch

    def dispatch(self, request: Request) -> Reply:
        """Answer one request (used by the HTTP handler; callable directly in tests)."""
        provider = request.provider
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if provider == "bedrock":
            return self._bedrock.dispatch(request, self._scenario)
        routes = self._api_for(request).routes
        allowed: list[str] = []
        for method, pattern, handler in routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            try:
                groups = match.groupdict()
                if "batch_id" not in groups:  # batch-scoped routes consult the batch's own scenario
                    file_scenario = (
                        self._openai.file_scenario(groups["file_id"]) if "file_id" in groups else None
                    )
                    reply = (file_scenario or self._scenario).before_request(request, None)
                    if reply is not None:
                        return reply
                return handler(request, match)
            except ApiError as exc:
                return exc.reply
            except Exception:
                log.exception("emulator handler failed for %s %s", request.method, request.path)
                message = "The emulator failed while handling the request."
                if provider == "anthropic":
                    return anthropic_error(500, message, type_="api_error")
                return openai_error(500, message, type_="server_error")
        if allowed:
            message = f"Method {request.method} not allowed for {request.path}."
            if provider == "anthropic":
                return anthropic_error(405, message)
            return openai_error(405, message)
        if provider == "anthropic":
            return anthropic_error(
                404, f"Not found: {request.method} {request.path}", type_="not_found_error"
            )
        return openai_error(404, f"Invalid URL ({request.method} {request.path})")

    def _api_for(self, request: Request) -> OpenAIApi | AnthropicApi:
        if request.provider == "anthropic":
            return self._anthropic
        return self._azure if is_azure_path(request.path) else self._openai

    @staticmethod
    def _refusal(request: Request) -> Reply | None:
        """What the provider's front door answers before routing: no key, (Azure) no usable api-version,
        (Anthropic) no ``anthropic-version`` header."""
        headers = dict(request.headers)
        if is_azure_path(request.path):
            return check_api_version(request) if azure_authorized(headers) else azure_unauthorized()
        if not _authorized(request.provider, headers):
            return _unauthorized(request.provider)
        if request.provider == "anthropic" and not headers.get("anthropic-version", "").strip():
            return anthropic_error(400, "anthropic-version: header is required")
        return None
