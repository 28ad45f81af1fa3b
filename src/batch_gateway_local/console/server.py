"""Serving the console: uvicorn on a thread (for ``local up --console`` and tests), the command.

:class:`ConsoleServer` binds its own socket first, so port 0 picks a free port and the URL is known
before the first request; uvicorn then serves the app on that socket until :meth:`stop`.
``batch-gateway console`` parses ``--endpoint`` / ``--stack`` / ``--api-key`` like the client
commands, serves on 127.0.0.1 (``--host`` to change it, with a warning) and blocks until Ctrl-C.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from typing import Any

from batch_gateway_local.cli.client_commands import add_api_location

DEFAULT_PORT = 8080
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ConsoleServer:
    """The console app on host:port, served by uvicorn on a daemon thread."""

    def __init__(self, api: Any, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        import uvicorn

        from batch_gateway_local.console.app import create_app

        hosts = tuple(dict.fromkeys((host, "127.0.0.1", "localhost")))
        self.app = create_app(api, allowed_hosts=hosts)
        self.socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.host = host
        self.api = api
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="console", daemon=True
        )

    @property
    def url(self) -> str:
        port = self.socket.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    def start(self) -> ConsoleServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def add_console(commands: Any) -> None:
    console = commands.add_parser(
        "console", help="a web console for the API (jobs, errors, results, submit) on 127.0.0.1"
    )
    add_api_location(console)
    console.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    console.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )


def run_console(args: argparse.Namespace) -> int:
    import signal

    from botocore.exceptions import BotoCoreError, ClientError

    from batch_gateway_local.console.api import ApiError, ConsoleApi

    try:
        api = ConsoleApi.connect(args.endpoint, args.stack, args.api_key, args.region)
    except ApiError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 2
    except (BotoCoreError, ClientError) as exc:  # --stack: no credentials, no such stack, ...
        sys.stderr.write(f"error: cannot read the stack {args.stack}: {exc}\n")
        return 2
    if args.host not in LOOPBACK:
        sys.stderr.write(
            f"warning: serving on {args.host}: anyone who can reach it acts with your credentials\n"
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server = ConsoleServer(api, args.host, args.port)
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}\n")
        return 2
    with server:
        print(f"Batch Gateway console: {server.url} (API {api.endpoint}); Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            pass
    return 0
