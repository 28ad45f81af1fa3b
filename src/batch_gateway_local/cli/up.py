"""``batch-gateway local up``: the HTTP API on 127.0.0.1 over the offline stack, until Ctrl-C.

Starts the whole gateway on this machine, puts the local stand-in for API Gateway (``api_front``) in
front of its ApiFunction, and optionally fires the stack's schedules every few seconds and lets the
emulated OpenAI send signed webhooks to the local API (``--webhooks``), and can serve the web
console next to it (``--console``). The functions' JSON logs go to
a file; the terminal shows the access log and one line per schedule run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from batch_gateway_local.cli.run import NO_IAM_HELP
from batch_gateway_local.emulator.scenarios import scenario_names

# With --webhooks: polls this far apart, so a job that finishes sooner was woken by its webhook.
WEBHOOK_MODE_POLL_SECONDS = 60


def add_local_up(local: Any) -> None:
    up = local.add_parser("up", help="serve the HTTP API on 127.0.0.1 over the offline stack until Ctrl-C")
    up.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0 = any free)")
    up.add_argument(
        "--auth",
        choices=["iam", "api-key"],
        default="iam",
        help="iam (default): requests need an 'Authorization: AWS4-HMAC-SHA256 ...' header, any "
        "signature accepted locally; api-key: requests need x-api-key (printed at start)",
    )
    up.add_argument("--api-key", default=None, help="the local API key (api-key auth; default: random)")
    up.add_argument("--chunk-size", type=int, default=10_000, help="most items per provider batch")
    up.add_argument(
        "--scenario",
        default="ok",
        choices=scenario_names(),
        metavar="NAME",
        help="provider emulator scenario (see `local run --help`)",
    )
    up.add_argument(
        "--throttle",
        default=None,
        metavar="RATE,BURST",
        help="throttle like the API stage, e.g. 20,40 (default: off)",
    )
    up.add_argument(
        "--webhooks",
        action="store_true",
        help="the emulated OpenAI ends batches on its own and sends signed batch.* webhooks to this "
        f"server's /webhooks/openai; polls are then {WEBHOOK_MODE_POLL_SECONDS} s apart, so the webhook is "
        "what finishes an OpenAI job",
    )
    up.add_argument(
        "--schedule-interval",
        type=float,
        default=60,
        metavar="SECONDS",
        help="fire the stack's schedules (scheduled submissions, then the reconciler) every SECONDS "
        "(default 60; 0 = never)",
    )
    up.add_argument("--no-iam", dest="iam", action="store_false", help=NO_IAM_HELP)
    up.add_argument(
        "--console", action="store_true", help="also serve the web console (see `batch-gateway console`)"
    )
    up.add_argument("--console-port", type=int, default=8080, help="the console's port (default 8080)")
    up.add_argument(
        "--demo-jobs", action="store_true", help="submit three small demo jobs at start (for the console)"
    )
    up.add_argument(
        "--logs",
        type=Path,
        default=Path("local-api-logs.jsonl"),
        help="file for the functions' JSON logs (default local-api-logs.jsonl)",
    )


def _start_webhooks(gateway: Any, server: Any) -> Any:
    """Point the emulated OpenAI's webhooks at the local API, signed with a fresh stack secret."""
    import boto3

    from batch_gateway_local.emulator.webhooks import ProviderClock, WebhookSender, new_secret

    secret = new_secret()
    boto3.client("secretsmanager").put_secret_value(
        SecretId=gateway.outputs["WebhookSecretArn"],
        SecretString=json.dumps({"openai_webhook_secret": secret}),
    )
    sender = WebhookSender(f"{server.url}/webhooks/openai", secret)
    return ProviderClock(gateway.emulator.openai_base_url, sender).start()


def _start_console(server: Any, auth: str, port: int) -> Any:
    """The web console on 127.0.0.1:port, calling this server's API as any client would."""
    from batch_gateway_local.console.server import ConsoleServer

    return ConsoleServer(_console_api(server, auth), port=port).start()


def _console_api(server: Any, auth: str) -> Any:
    from batch_gateway_local.console.api import ConsoleApi

    return ConsoleApi.connect(server.url, api_key=server.api_key if auth == "API_KEY" else None)


def local_up(args: argparse.Namespace) -> int:
    # Imported here: moto and the stack take a moment, and `--help` should not wait for them.
    from batch_gateway_local.api_front.server import api_server_for
    from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
    from batch_gateway_local.stack.schedules import ScheduleTimer

    throttle = None
    if args.throttle:
        rate, _, burst = args.throttle.partition(",")
        throttle = (float(rate), int(burst or rate))
    auth = "API_KEY" if args.auth == "api-key" else "IAM"
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sys.stderr.write("starting the offline stack (moto + provider emulator)...\n")
    options = LocalOptions(
        chunk_max_items=args.chunk_size, scenario=args.scenario, api_auth=auth, iam=args.iam
    )
    if args.webhooks:
        wait = WEBHOOK_MODE_POLL_SECONDS
        options = dataclasses.replace(
            options, poll_initial_wait_seconds=wait, poll_backoff_factor="1", poll_max_wait_seconds=wait
        )
    with (
        args.logs.open("w") as logs,
        contextlib.redirect_stdout(logs),
        LocalGateway(options) as gateway,
        api_server_for(
            gateway, port=args.port, api_key=args.api_key, throttle=throttle, access_log=sys.stderr
        ) as server,
    ):
        out = sys.__stdout__ or sys.stderr
        out.write(f"Batch Gateway API: {server.url}\n")
        if auth == "IAM":
            out.write(
                "auth: IAM - send an 'Authorization: AWS4-HMAC-SHA256 Credential=...' header; "
                "any signature is accepted locally\n"
            )
        else:
            out.write(f"auth: API key - send 'x-api-key: {server.api_key}'\n")
        clock = _start_webhooks(gateway, server) if args.webhooks else None
        if clock is not None:
            out.write(f"webhooks: the emulated OpenAI posts signed batch.* events to {clock.sender.url}\n")
        timer = None
        if args.schedule_interval > 0:
            timer = ScheduleTimer(gateway, args.schedule_interval, out).start()
            out.write(
                f"schedules: scheduled submissions, then the reconciler, every {args.schedule_interval:g} s\n"
            )
        console = _start_console(server, auth, args.console_port) if args.console else None
        if console is not None:
            out.write(f"Batch Gateway console: {console.url}\n")
        if args.demo_jobs:
            from batch_gateway_local.console.demo import submit_demo_jobs

            demo = submit_demo_jobs(console.api if console is not None else _console_api(server, auth))
            out.write(f"demo jobs: {', '.join(demo)}\n")
        out.write(f"function logs: {args.logs}; Ctrl-C to stop\n")
        out.flush()
        while not stop.wait(0.5):
            pass
        if timer is not None:
            timer.stop()
        if clock is not None:
            clock.stop()
        if console is not None:
            console.stop()
    sys.stderr.write("stopped\n")
    return 0
