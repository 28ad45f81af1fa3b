"""The API client commands: ``submit``, ``status``, ``list``, ``results``, ``cancel``.

They call the HTTP API of ``batch-gateway local up`` or of a deployed stack (``--endpoint`` or
``--stack``) through the Python client (``batch_gateway_client.GatewayClient``: one client, not
two), and import nothing heavier than it. A file is sent inline up to the API's inline cap, its stem
as the job's name; larger files go through S3 (``--source``). ``submit --wait`` follows the job on a
progress bar and can download its results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, get_args

from batch_gateway.models import Provider
from batch_gateway_client import GatewayClient, GatewayConfig
from batch_gateway_client import GatewayError as ApiError
from batch_gateway_client.core import job_name
from batch_gateway_local.cli.file_formats import add_format_arguments, format_fields
from batch_gateway_local.cli.progress import ProgressLine, api_job_progress, bar

# The API's inline cap (batch_gateway.api.models): larger files go through S3 (--source).
MAX_INLINE_ITEMS = 5_000
MAX_INLINE_BYTES = 5 * 1024 * 1024
CLIENT_COMMANDS = ("submit", "status", "list", "results", "cancel")


RESPONSE_SCHEMA_HELP = (
    "a JSON Schema file (an object at its root): every answer must match it, parsed into "
    "response.parsed (docs/input-and-output.md#structured-answers)"
)


def read_response_schema(path: Path | None) -> dict[str, Any] | None:
    """The JSON Schema of ``--response-schema FILE`` (None without one); ValueError, readable, when
    the file cannot be read or is not a JSON object."""
    if path is None:
        return None
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--response-schema {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"--response-schema {path} is not valid JSON ({exc})") from None
    if not isinstance(schema, dict):
        raise ValueError(f"--response-schema {path} must hold a JSON object (a JSON Schema)")
    return schema


def add_api_location(parser: argparse.ArgumentParser) -> None:
    """--endpoint | --stack, --api-key, --region: where the API is (the client commands, the console)."""
    where = parser.add_argument_group("where the API is")
    where.add_argument(
        "--endpoint",
        default=os.environ.get("BATCH_GATEWAY_ENDPOINT"),
        help="API base URL incl. stage, e.g. http://127.0.0.1:8000/v1 (env BATCH_GATEWAY_ENDPOINT)",
    )
    where.add_argument("--stack", default=None, help="a deployed stack's name: read its ApiUrl output")
    where.add_argument(
        "--api-key",
        default=os.environ.get("BATCH_GATEWAY_API_KEY"),
        help="use API-key auth with this key (env BATCH_GATEWAY_API_KEY); default: IAM (SigV4)",
    )
    where.add_argument("--region", default=None, help="AWS region (SigV4 and --stack)")


def add_client_commands(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_api_location(common)

    submit = commands.add_parser("submit", parents=[common], help="submit a JSONL file (or an S3 object)")
    submit.add_argument("file", type=Path, nargs="?", help="JSONL file of BatchItems (sent inline)")
    submit.add_argument("--source", default=None, help="s3:// URI to submit instead of a local file")
    submit.add_argument("--provider", required=True, choices=get_args(Provider))
    submit.add_argument("--model", required=True)
    submit.add_argument("--system-prompt", default=None)
    submit.add_argument("--on-invalid", choices=["reject", "skip"], default="reject")
    submit.add_argument(
        "--response-schema", type=Path, default=None, metavar="FILE", help=RESPONSE_SCHEMA_HELP
    )
    submit.add_argument(
        "--name", default=None, help="the readable part of the job id (default: the file's stem)"
    )
    submit.add_argument(
        "--idempotency-key",
        default=None,
        help="default: derived from the file's items and spec (the same file finds the same job)",
    )
    submit.add_argument(
        "--wait", action="store_true", help="follow the job with a progress bar until it ends"
    )
    submit.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits")
    submit.add_argument(
        "-o", "--output", type=Path, default=None, help="with --wait: write results.jsonl here"
    )
    add_format_arguments(submit)

    status = commands.add_parser("status", parents=[common], help="a job's status, counts and batches")
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true", help="print the API's JSON")

    listing = commands.add_parser("list", parents=[common], help="jobs, newest first")
    listing.add_argument("--status", default=None, help="only jobs in this state")
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    results = commands.add_parser("results", parents=[common], help="download a job's results.jsonl")
    results.add_argument("job_id")
    results.add_argument("-o", "--output", type=Path, default=None, help="file (default: stdout)")
    results.add_argument("--errors", action="store_true", help="only the failed rows (results-table rows)")

    cancel = commands.add_parser("cancel", parents=[common], help="cancel a job")
    cancel.add_argument("job_id")


def _client(args: argparse.Namespace) -> GatewayClient:
    return GatewayClient(GatewayConfig.locate(args.endpoint, args.stack, args.api_key, args.region))


def _read_items(path: Path) -> list[Any]:
    """The file's items (blank lines skipped); exits with the line number of a line that is not JSON."""
    if path.stat().st_size > MAX_INLINE_BYTES:
        raise ApiError(
            0,
            "too_large",
            f"{path} is over {MAX_INLINE_BYTES // 2**20} MB: upload it to S3 and submit it with --source",
        )
    items: list[Any] = []
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                items.append(json.loads(raw.decode("utf-8-sig")))
            except ValueError as exc:
                raise ApiError(0, "not_json", f"{path} line {number} is not JSON: {exc}") from None
    if len(items) > MAX_INLINE_ITEMS:
        raise ApiError(
            0,
            "too_large",
            f"{path} has {len(items)} items, more than {MAX_INLINE_ITEMS} per request: submit it with --source",
        )
    return items


def job_finished(job: dict[str, Any]) -> bool:
    """As for `local run`: the workflow ran to the end and results.jsonl accounts for every line."""
    return bool(job.get("chunk_count")) and job.get("results_uri") is not None


def wait_for(
    client: GatewayClient, job_id: str, timeout: float, stream: TextIO, interval: float = 1.0
) -> dict[str, Any]:
    line = ProgressLine(stream)

    def show(job: dict[str, Any], elapsed: float) -> None:
        done, total, status = api_job_progress(job)
        line.show(f"{bar(done, total)} {done}/{total} items  {status}  {elapsed:.0f} s")

    try:
        return client.wait(job_id, poll_interval_s=interval, max_wait_s=timeout, on_poll=show)
    except TimeoutError as exc:
        raise ApiError(0, "timeout", str(exc)) from None
    finally:
        line.done()


def _print_job(job: dict[str, Any], out: TextIO) -> None:
    counts = job.get("counts") or {}
    out.write(f"job       {job['job_id']}\n")
    reason = f" ({job['reason']})" if job.get("reason") else ""
    out.write(f"status    {job['status']}{reason}\n")
    out.write(f"provider  {job['provider']} / {job['model']}, {job.get('chunk_count', 0)} chunk(s)\n")
    out.write(
        f"items     {job.get('request_count', 0)} submitted: "
        + ", ".join(
            f"{counts.get(k, 0)} {k}" for k in ("succeeded", "errored", "expired", "cancelled", "invalid")
        )
        + "\n"
    )
    for chunk in job.get("chunks", []):
        batches = ", ".join(b["id"] for b in chunk.get("provider_batches", [])) or "-"
        out.write(f"  chunk {chunk['chunk']:>4}  {chunk.get('status') or '-':<12} {batches}\n")
    if job.get("results_uri"):
        out.write(f"results   {job['results_uri']}\n")


def _download_results(client: GatewayClient, job_id: str, output: Path | None) -> int:
    """Stream results.jsonl (line by line, as it downloads) to the file or stdout; bytes written."""
    written = 0
    with output.open("wb") if output else contextlib.nullcontext(sys.stdout.buffer) as target:
        for line in client.iter_lines(job_id):
            target.write(line + b"\n")
            written += len(line) + 1
    return written


def run_client_command(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ApiError as exc:
        sys.stderr.write(
            f"error: {exc.message}" + (f" ({exc.code}, HTTP {exc.status})" if exc.status else "") + "\n"
        )
        if isinstance(exc.details, list):
            for detail in exc.details[:10]:
                sys.stderr.write(f"  {json.dumps(detail, ensure_ascii=False)}\n")
        return 1
    except TimeoutError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


def _run(args: argparse.Namespace) -> int:
    command = _COMMANDS.get(args.command)
    if command is None:
        return 2
    with _client(args) as client:
        return command(client, args, sys.stdout)


def _submit(client: GatewayClient, args: argparse.Namespace, out: TextIO) -> int:
    if (args.file is None) == (args.source is None):
        raise ApiError(0, "usage", "give a FILE or --source s3://..., not both")
    spec = {
        "provider": args.provider,
        "model": args.model,
        "system_prompt": args.system_prompt,
        "on_invalid": args.on_invalid,
        **format_fields(args, args.file or args.source),
    }
    try:
        spec["response_schema"] = read_response_schema(args.response_schema)
    except ValueError as exc:
        raise ApiError(0, "usage", str(exc)) from None
    if spec["format"] == "csv" and args.file is not None:
        raise ApiError(
            0,
            "usage",
            "a CSV file goes to the API through S3: upload it (e.g. under uploads/ in the data bucket) "
            "and submit it with --source s3://... --template ...",
        )
    items = _read_items(args.file) if args.file is not None else None
    name = args.name or (job_name(args.file.stem) if args.file is not None else None)
    job = client.submit(
        spec, items=items, source=args.source, name=name, idempotency_key=args.idempotency_key
    )
    sys.stderr.write(f"submitted job {job['job_id']} ({job['status']})\n")
    if not args.wait:
        out.write(job["job_id"] + "\n")
        return 0
    job = wait_for(client, job["job_id"], args.timeout, sys.stderr)
    _print_job(job, out)
    if not job_finished(job):
        sys.stderr.write(f"job {job['job_id']} {job['status']}: {job.get('reason') or 'no results'}\n")
        return 1
    if args.output is not None:
        written = _download_results(client, job["job_id"], args.output)
        out.write(f"results   {args.output} ({written} bytes)\n")
    return 0


def _status(client: GatewayClient, args: argparse.Namespace, out: TextIO) -> int:
    job = client.job(args.job_id)
    if args.json:
        out.write(json.dumps(job, indent=2) + "\n")
    else:
        _print_job(job, out)
    return 0


def _list(client: GatewayClient, args: argparse.Namespace, out: TextIO) -> int:
    for count, job in enumerate(client.jobs(args.status, limit=min(args.limit, 1000)), start=1):
        if args.json:
            out.write(json.dumps(job) + "\n")
        else:
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job["created_at"]))
            out.write(
                f"{job['job_id']:<60} {job['status']:<12} {created}  "
                f"{job.get('request_count', 0):>7} items  {job['provider']}/{job['model']}\n"
            )
        if count >= args.limit:
            break
    return 0


def _results(client: GatewayClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.errors:
        target = args.output.open("w") if args.output else contextlib.nullcontext(out)
        with target as stream:
            for row in client.result_rows(args.job_id, errors_only=True):
                stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        return 0
    written = _download_results(client, args.job_id, args.output)
    if args.output is not None:
        sys.stderr.write(f"wrote {written} bytes to {args.output}\n")
    return 0


def _cancel(client: GatewayClient, args: argparse.Namespace, out: TextIO) -> int:
    job = client.cancel(args.job_id)
    out.write(f"job {job['job_id']}: {job['status']}\n")
    return 0


_COMMANDS: dict[str, Callable[[GatewayClient, argparse.Namespace, TextIO], int]] = {
    "submit": _submit,
    "status": _status,
    "list": _list,
    "results": _results,
    "cancel": _cancel,
}
