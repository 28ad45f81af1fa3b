"""The submit page: a JSONL upload and the job spec, checked, then sent to the API inline.

Lines that are not JSON are reported with their line numbers by the console and nothing is sent;
the rest are sent as inline items, and the API's own checks (a 422 with one detail per bad line)
come back before any job exists: the console maps each detail's item position back to the line
number of the file (blank lines are skipped) and shows it with the form still filled in. Each form
carries its own Idempotency-Key, so sending it twice (a double click, a retry) makes one job.
An optional response schema (a JSON object) goes into the spec as ``response_schema``.

The same form's Estimate button (``action=estimate``) reads and checks it the same way
(:func:`read_submission`) and asks ``POST /batches/estimate`` instead: requests, invalid lines (the
file's line numbers), provider batches, input tokens and the cost range; nothing is submitted.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, get_args

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from batch_gateway.models import Estimate, Provider
from batch_gateway_local.console.api import ApiError, ConsoleApi
from batch_gateway_local.console.views import usd

MAX_BYTES = 5 * 1024 * 1024  # the API's inline cap (larger files: `batch-gateway submit --source`)
MAX_ITEMS = 5_000
MAX_SHOWN = 50
PROVIDERS = get_args(Provider)
KEY = re.compile(r"^console-[A-Za-z0-9_-]{16,64}$")
FIELDS = ("provider", "model", "system_prompt", "response_schema", "on_invalid", "key")


def submit_form(values: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """The template's context: the form's values (and a fresh idempotency key), problems if any."""
    form = {
        "provider": "openai",
        "model": "",
        "system_prompt": "",
        "response_schema": "",
        "on_invalid": "reject",
        **(values or {}),
    }
    if not KEY.match(form.get("key", "")):
        form["key"] = f"console-{secrets.token_urlsafe(24)}"
    return {"form": form, "providers": PROVIDERS, "problems": [], "message": None, "estimate": None, **extra}


def parse_jsonl(data: bytes) -> tuple[list[Any], list[int], list[dict[str, Any]]]:
    """(items, the file line of each item, problems of lines that are not JSON objects)."""
    items: list[Any] = []
    numbers: list[int] = []
    problems: list[dict[str, Any]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
        except ValueError as exc:
            problems.append({"line": number, "reason": f"not JSON: {exc}"})
            continue
        items.append(item)
        numbers.append(number)
    return items, numbers, problems


def _file_lines(details: Any, numbers: list[int]) -> list[dict[str, Any]]:
    """The API's details with each item position turned into the file's line number (a spec
    problem's ``loc``/``msg`` shown as its field and reason)."""
    problems = []
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        position = detail.get("line")
        line = (
            numbers[position - 1] if isinstance(position, int) and 0 < position <= len(numbers) else position
        )
        problem = {**detail, "line": line}
        loc = detail.get("loc")
        if not problem.get("field") and isinstance(loc, list):
            problem["field"] = ".".join(str(part) for part in loc if part != "body")
        if not problem.get("reason") and not problem.get("message") and detail.get("msg"):
            problem["reason"] = detail["msg"]
        problems.append(problem)
    return problems


def parse_schema(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the response schema or None when the field is empty, a problem to show)."""
    if not text.strip():
        return None, None
    try:
        schema = json.loads(text)
    except ValueError as exc:
        return None, f"the response schema is not JSON ({exc}); nothing was sent"
    if not isinstance(schema, dict):
        return None, "the response schema must be a JSON object (a JSON Schema); nothing was sent"
    return schema, None


@dataclass
class Prepared:
    """A form that passed the console's checks: what to send and how to map lines back."""

    values: dict[str, str]
    name: str
    spec: dict[str, Any]
    items: list[Any]
    numbers: list[int]


async def read_submission(form: FormData) -> Prepared | dict[str, Any]:
    """The form's spec and items (submit and estimate share it), or the page's context with what
    is wrong: a missing field, a schema that is no JSON object, too large a file, lines that are
    not JSON."""
    values = {name: str(form.get(name) or "") for name in FIELDS}
    upload = form.get("file")
    problem = _check_fields(values, upload)
    schema, schema_problem = parse_schema(values["response_schema"])
    if problem or schema_problem:
        return submit_form(values, message=problem or schema_problem)
    assert isinstance(upload, UploadFile)
    data = await upload.read(MAX_BYTES + 1)
    name = upload.filename or "the file"
    if len(data) > MAX_BYTES:
        return submit_form(
            values, message=f"{name} is over 5 MB: submit it with `batch-gateway submit --source`"
        )
    items, numbers, problems = parse_jsonl(data)
    if problems or not items or len(items) > MAX_ITEMS:
        message = (
            f"{name}: {len(problems)} line(s) are not JSON; nothing was sent"
            if problems
            else f"{name} has no items"
            if not items
            else f"{name} has {len(items)} items, more than {MAX_ITEMS}: submit it with `batch-gateway submit --source`"
        )
        return submit_form(values, message=message, problems=problems[:MAX_SHOWN])
    spec: dict[str, Any] = {
        "provider": values["provider"],
        "model": values["model"].strip(),
        "system_prompt": values["system_prompt"] or None,
        "on_invalid": values["on_invalid"],
    }
    if schema is not None:
        spec["response_schema"] = schema
    return Prepared(values, name, spec, items, numbers)


def _refused(prepared: Prepared, exc: ApiError) -> dict[str, Any]:
    """The form's context for what the API refused (a 4xx before any job exists)."""
    if exc.status not in (400, 409, 413, 422):
        raise exc
    shown = _file_lines(exc.details, prepared.numbers)[:MAX_SHOWN]
    return submit_form(
        prepared.values, message=f"{prepared.name}: {exc.message}; nothing was started", problems=shown
    )


async def submit_post(api: ConsoleApi, form: FormData) -> tuple[str | None, dict[str, Any]]:
    """(the new job's id, None) or (None, the form's context with what is wrong)."""
    prepared = await read_submission(form)
    if not isinstance(prepared, Prepared):
        return None, prepared
    try:
        # The file's stem names the job (tickets.jsonl -> tickets-<hash>), as the CLI does.
        job = await run_in_threadpool(
            api.submit, prepared.spec, prepared.items, prepared.values["key"], PurePath(prepared.name).stem
        )
    except ApiError as exc:
        return None, _refused(prepared, exc)
    return str(job["job_id"]), {}


async def estimate_post(api: ConsoleApi, form: FormData) -> tuple[bool, dict[str, Any]]:
    """(whether the API estimated it, the form's context with the estimate or what is wrong).
    Nothing is submitted; the form stays filled but for the file, which browsers cannot refill."""
    prepared = await read_submission(form)
    if not isinstance(prepared, Prepared):
        return False, prepared
    try:
        estimate = await run_in_threadpool(api.estimate, prepared.spec, prepared.items)
    except ApiError as exc:
        return False, _refused(prepared, exc)
    return True, submit_form(prepared.values, estimate=estimate_summary(prepared, estimate))


def estimate_summary(prepared: Prepared, estimate: Estimate) -> dict[str, Any]:
    """What the page shows of an estimate, its line numbers the file's."""
    errors = [error.model_dump() for error in estimate.errors]
    cost = estimate.cost
    if cost is None or cost.unpriced_models or cost.expected_usd is None or cost.ceiling_usd is None:
        unpriced = ", ".join(cost.unpriced_models) if cost and cost.unpriced_models else estimate.model
        price = f"no price for this model ({unpriced})"
    else:
        price = f"{usd(cost.expected_usd)} expected, up to {usd(cost.ceiling_usd)}"
        if cost.input_usd is not None:
            price += f" (input alone {usd(cost.input_usd)})"
    return {
        "name": prepared.name,
        "accepted": estimate.accepted,
        "reason": estimate.reason,
        "requests": estimate.requests,
        "invalid_lines": estimate.invalid_lines,
        "errors": _file_lines(errors, prepared.numbers)[:MAX_SHOWN],
        "provider_batches": estimate.provider_batches,
        "input_tokens": estimate.estimated_input_tokens,
        "price": price,
    }


def _check_fields(values: dict[str, str], upload: Any) -> str | None:
    if not isinstance(upload, UploadFile) or not upload.filename:
        return "choose a JSONL file"
    if values["provider"] not in PROVIDERS:
        return "choose a provider"
    if not values["model"].strip():
        return "give a model"
    if values["on_invalid"] not in ("reject", "skip"):
        return "choose what to do with invalid lines"
    if not KEY.match(values["key"]):
        return "the form is stale: reload the page"
    return None
