"""``batch-gateway``: the command line's parser and the dispatch to each command's module.

``local run`` (``cli.run``) runs one file on the offline stack; ``local up`` (``cli.up``) serves the
HTTP API on it; ``submit``, ``status``, ``list``, ``results`` and ``cancel`` (``cli.client_commands``)
call the API of ``local up`` or of a deployed stack; ``console`` (``console.server``) serves the web
console for either. Every command module imports only the stdlib,
botocore and the layer's models at the top, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys

from batch_gateway_local.cli.chaos import add_local_chaos, local_chaos
from batch_gateway_local.cli.client_commands import CLIENT_COMMANDS, add_client_commands, run_client_command
from batch_gateway_local.cli.estimate import add_estimate, run_estimate
from batch_gateway_local.cli.run import add_local_run, local_run
from batch_gateway_local.cli.up import add_local_up, local_up
from batch_gateway_local.console.server import add_console, run_console


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batch-gateway", description="LLM batch jobs through provider batch APIs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser(
        "local", help="the offline stack: moto + the provider emulator"
    ).add_subparsers(dest="local_command", required=True)
    add_local_run(local)
    add_local_up(local)
    add_local_chaos(local)
    add_client_commands(commands)
    add_estimate(commands)
    add_console(commands)
    return parser


# What `local` needs beyond the base install (pyproject's `local` extra).
_LOCAL_EXTRA = frozenset({"moto", "samtranslator", "yaml", "aws_lambda_powertools", "openai", "anthropic"})
# What the web console needs (pyproject's `console` extra).
_CONSOLE_EXTRA = frozenset({"starlette", "uvicorn", "jinja2", "multipart", "python_multipart"})


def _missing_extra(exc: ModuleNotFoundError) -> str | None:
    name = (exc.name or "").split(".")[0]
    return "local" if name in _LOCAL_EXTRA else "console" if name in _CONSOLE_EXTRA else None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("local", "console", "estimate"):
        try:
            if args.command == "console":
                return run_console(args)
            if args.command == "estimate":
                return run_estimate(args)
            if args.local_command == "chaos":
                return local_chaos(args)
            return local_run(args) if args.local_command == "run" else local_up(args)
        except ModuleNotFoundError as exc:
            extra = _missing_extra(exc)
            if extra is None:
                raise
            what = "the offline stack's" if extra == "local" else "the web console's"
            print(
                f"batch-gateway {args.command} needs {what} packages ({exc.name} is missing): "
                f"pip install 'batch-gateway[{extra}]'",
                file=sys.stderr,
            )
            return 2
    if args.command in CLIENT_COMMANDS:
        return run_client_command(args)
    return 2
