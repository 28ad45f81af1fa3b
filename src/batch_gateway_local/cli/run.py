"""``batch-gateway local run``: one JSONL file end to end on the offline stack, results to a folder.

Starts the whole gateway on this machine (moto + the provider emulator, ``stack.local_gateway``),
uploads the file as a job, follows it on one progress line, exports results.jsonl, summary.json,
workflow.json (every execution and its history size), chunks.jsonl (every chunk row) and the rest to
``--out`` and prints a summary. The stack is imported only when the command runs, so
``batch-gateway --help`` does not wait for moto.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO, get_args

from pydantic import ValidationError

from batch_gateway.models import JobSpec, JobSummary, Provider
from batch_gateway.providers.structured import prepare_schema
from batch_gateway_local.cli.client_commands import RESPONSE_SCHEMA_HELP, read_response_schema
from batch_gateway_local.cli.file_formats import add_format_arguments, format_fields
from batch_gateway_local.cli.progress import ProgressLine
from batch_gateway_local.emulator.scenarios import scenario_names  # stdlib-only: keeps --help fast


def job_finished(job: JobSummary) -> bool:
    """The workflow ran to the end: results.jsonl accounts for every line, whatever each line's fate.

    A file rejected at intake (or one with no valid line) and a workflow that failed before it could
    write results are the cases that exit non-zero.
    """
    return job.chunk_count > 0 and job.results_uri is not None


NO_IAM_HELP = (
    "do not check AWS calls against the roles in template.yaml (by default every function, the state "
    "machine and the Bedrock service role sign with their own role's credentials, moto enforces IAM, "
    "and a call a role does not allow is refused with AccessDenied, as on AWS)"
)


def add_local_run(local: Any) -> None:
    run = local.add_parser("run", help="run one JSONL file end to end on the offline stack")
    run.add_argument(
        "file", type=Path, help="JSONL file (BatchItems or a provider's batch lines) or CSV file"
    )
    run.add_argument("--provider", required=True, choices=get_args(Provider))
    run.add_argument("--model", required=True)
    run.add_argument("--system-prompt", default=None)
    run.add_argument("--response-schema", type=Path, default=None, metavar="FILE", help=RESPONSE_SCHEMA_HELP)
    run.add_argument(
        "--on-invalid",
        choices=["reject", "skip"],
        default="reject",
        help="invalid lines: reject the whole file (default) or skip them, each with an error result",
    )
    run.add_argument("--out", type=Path, required=True, help="directory for results.jsonl, summary.json, ...")
    run.add_argument("--chunk-size", type=int, default=10_000, help="most items per provider batch")
    run.add_argument(
        "--quota",
        type=int,
        default=None,
        metavar="N",
        help="the provider's quota, in the stack and enforced by the emulator: OpenAI/Azure enqueued "
        "input tokens per model, Anthropic requests in batches, Bedrock jobs per model",
    )
    run.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the job")
    run.add_argument(
        "--no-results-table",
        dest="results_table",
        action="store_false",
        help="skip results-table.jsonl (reading every row back from the offline DynamoDB takes about "
        "3 ms a row: over a minute for 25,000 lines)",
    )
    run.add_argument("--no-iam", dest="iam", action="store_false", help=NO_IAM_HELP)
    add_format_arguments(run)
    scenarios = scenario_names()
    run.add_argument(
        "--scenario",
        default="ok",
        choices=scenarios,
        metavar="NAME",
        help=f"provider emulator scenario, one of: {', '.join(scenarios)} (default: ok; "
        "see batch_gateway_local/emulator/scenarios.py)",
    )


def _sample_answers(results: Path, count: int = 2) -> list[str]:
    samples: list[str] = []
    if not results.exists():
        return samples
    with results.open() as lines:
        for line in lines:
            result = json.loads(line)
            if result.get("response") and result["response"].get("content"):
                answer = " ".join(result["response"]["content"].split())
                samples.append(f"{result['custom_id']}: {answer[:160]}")
            if len(samples) == count:
                break
    return samples


def _print_summary(job: JobSummary, files: dict[str, Path], seconds: float, out: TextIO) -> None:
    c = job.counts
    out.write(f"job       {job.job_id}\n")
    out.write(f"status    {job.status.value}{f' ({job.reason})' if job.reason else ''}\n")
    out.write(f"provider  {job.provider} / {job.model}, {job.chunk_count} chunk(s), {seconds:.1f} s\n")
    out.write(
        f"items     {c.total or job.request_count}: {c.succeeded} succeeded, {c.errored} errored, "
        f"{c.expired} expired, {c.cancelled} cancelled, {c.invalid} invalid (skipped)\n"
    )
    if job.cost.usd is not None:
        out.write(f"cost      ${job.cost.usd:.6f} at batch prices (as of {job.cost.prices_as_of})\n")
    elif job.cost.unpriced_models:
        out.write(f"cost      unknown: no price for {', '.join(job.cost.unpriced_models)}\n")
    for round_ in job.retry_rounds:
        out.write(
            f"retries   round {round_['round']}: {round_['retried']} sent again, {round_['recovered']} recovered\n"
        )
    if job.usage:
        out.write(
            f"tokens    {job.usage.get('prompt_tokens', 0)} in, {job.usage.get('completion_tokens', 0)} out\n"
        )
    for name, path in files.items():
        out.write(f"  {name:<20} {path}\n")
    for sample in _sample_answers(files.get("results.jsonl", Path("/nonexistent"))):
        out.write(f"  answer  {sample}\n")


def spec_from_args(args: argparse.Namespace) -> tuple[JobSpec, dict[str, Any] | None]:
    """The job spec of ``local run``'s (and ``estimate``'s) flags, and the response schema read from
    ``--response-schema`` (checked for the provider, as given); ValueError (readable) when either
    is unusable, so it fails before anything starts."""
    try:
        spec = JobSpec(
            provider=args.provider,
            model=args.model,
            system_prompt=args.system_prompt,
            on_invalid=args.on_invalid,
            **format_fields(args, args.file),
        )
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    schema = read_response_schema(args.response_schema)
    if schema is not None:
        prepare_schema(schema, spec.provider)
    return spec, schema


def job_from_args(args: argparse.Namespace) -> tuple[JobSpec, dict[str, Any] | None] | None:
    """:func:`spec_from_args` for a command that reads ``args.file``; None (the error written to
    stderr, for exit code 2) when the file is missing or the flags are unusable."""
    if not args.file.is_file():
        sys.stderr.write(f"error: {args.file} is not a file\n")
        return None
    try:
        return spec_from_args(args)
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return None


def local_run(args: argparse.Namespace) -> int:
    if (given := job_from_args(args)) is None:
        return 2
    spec, schema = given
    spec.response_schema = schema  # as read: intake checks it for the provider, as for an upload
    progress_line = ProgressLine(sys.stderr)
    progress_line.show("starting the offline stack (moto + provider emulator)...")
    # Imported here: moto and the stack take a moment, and `--help` should not wait for them.
    from batch_gateway_local.stack.errors import IamDeniedError
    from batch_gateway_local.stack.local_gateway import JobProgress, LocalGateway, LocalOptions

    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "function-logs.jsonl"
    # The functions log JSON to stdout as on Lambda; here that goes to a file, not over the progress line.
    with (
        log_path.open("w") as function_logs,
        contextlib.redirect_stdout(function_logs),
        LocalGateway(
            LocalOptions(
                chunk_max_items=args.chunk_size, scenario=args.scenario, iam=args.iam, quota=args.quota
            )
        ) as gateway,
    ):
        progress_line.show(f"uploading {args.file} to s3://{gateway.bucket}/inbox/ ...")
        job_id = gateway.submit_file(args.file, spec)

        def show(progress: object) -> None:
            assert isinstance(progress, JobProgress)
            total = progress.job.request_count if progress.job else 0
            progress_line.show(
                f"job {job_id}: {progress.stage} — {progress.items_done}/{total} items, "
                f"{len(progress.chunks)} chunk(s), {time.monotonic() - started:.0f} s"
            )

        try:
            job = gateway.wait(job_id, timeout_s=args.timeout, on_progress=show)
        except IamDeniedError as exc:
            progress_line.done()
            sys.stderr.write(f"job {job_id} failed: {exc}\n")
            return 1
        progress_line.done()
        files = gateway.export(job_id, args.out, results_table=args.results_table)
        files.update(gateway.export_workflow(job_id, args.out))
    files["function-logs.jsonl"] = log_path
    _print_summary(job, files, time.monotonic() - started, sys.stdout)
    if job_finished(job):
        return 0
    sys.stderr.write(f"job {job_id} {job.status.value}: {job.reason or 'see summary.json'}\n")
    return 1
