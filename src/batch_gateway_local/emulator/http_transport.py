"""The emulator's HTTP transport: reading requests off the socket and writing replies, streamed.

Its own ``http.server`` and not a web framework, because it must misbehave on purpose: a scenario
can send the full Content-Length and then close the connection half way (``flaky-download``), which
frameworks do not let a handler do. :class:`RequestHandler` reads the body (plain or chunked, capped
at 1 GiB), tells the provider from the path, hands a :class:`~.protocol.Request` to the server's
``dispatch`` and writes the :class:`~.protocol.Reply`'s chunks as they come, so large result files
stream; a reply cut short closes the connection. Routing, auth and the APIs are :mod:`.server`'s.
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

from .protocol import Provider, Reply, Request, anthropic_error, openai_error, request_id

log = logging.getLogger(__name__)

_MAX_BODY = 1024 * 1024 * 1024
"""Hard cap on any request body (1 GiB); provider limits are checked by the handlers."""


def provider_of(path: str) -> Provider:
    """Whose API a path belongs to (Azure OpenAI paths are OpenAI's here)."""
    if path.startswith("/model-invocation-job"):
        return "bedrock"
    return "anthropic" if path.startswith("/v1/messages") else "openai"


class Dispatcher(Protocol):
    """What answers a parsed request: the :class:`~.server.EmulatorServer`."""

    def dispatch(self, request: Request) -> Reply: ...


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Dispatcher


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms ACK stalls
    server: EmulatorHTTPServer
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
        provider = provider_of(path)
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
