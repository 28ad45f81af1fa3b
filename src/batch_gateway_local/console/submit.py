"""The submit page: a JSONL upload and the job spec, checked, then sent to the API inline.

Lines that are not JSON are reported with their line numbers by the console and nothing is sent;
the rest are sent as inline items, and the API's own checks (a 422 with one detail per bad line)
come back before any job exists: the console maps each detail's item position back to the line
number of the file (blank lines are skipped) and shows it with the form still filled in. Each form
carries its own Idempotency-Key, so sending it twice (a double click, a retry) makes one job.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import PurePath
from typing import Any, get_args

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from batch_gateway.models import Provider
from batch_gateway_local.console.api import ApiError, ConsoleApi

MAX_BYTES = 5 * 1024 * 1024  # the API's inline cap (larger files: `batch-gateway submit --source`)
MAX_ITEMS = 5_000
MAX_SHOWN = 50
PROVIDERS = get_args(Provider)
KEY = re.compile(r"^console-[A-Za-z0-9_-]{16,64}$")


def submit_form(values: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """The template's context: the form's values (and a fresh idempotency key), problems if any."""
    form = {"provider": "openai", "model": "", "system_prompt": "", "on_invalid": "reject", **(values or {})}
    if not KEY.match(form.get("key", "")):
        form["key"] = f"console-{secrets.token_urlsafe(24)}"
    return {"form": form, "providers": PROVIDERS, "problems": [], "message": None, **extra}


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
    """The API's details with each item position turned into the file's line number."""
    problems = []
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        position = detail.get("line")
        line = (
            numbers[position - 1] if isinstance(position, int) and 0 < position <= len(numbers) else position
        )
        problems.append({**detail, "line": line})
    return problems


async def submit_post(api: ConsoleApi, form: FormData) -> tuple[str | None, dict[str, Any]]:
    """(the new job's id, None) or (None, the form's context with what is wrong)."""
    values = {
        name: str(form.get(name) or "")
        for name in ("provider", "model", "system_prompt", "on_invalid", "key")
    }
    upload = form.get("file")
    problem = _check_fields(values, upload)
    if problem:
        return None, submit_form(values, message=problem)
    assert isinstance(upload, UploadFile)
    data = await upload.read(MAX_BYTES + 1)
    name = upload.filename or "the file"
    if len(data) > MAX_BYTES:
        return None, submit_form(
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
        return None, submit_form(values, message=message, problems=problems[:MAX_SHOWN])
    spec = {
        "provider": values["provider"],
        "model": values["model"].strip(),
        "system_prompt": values["system_prompt"] or None,
        "on_invalid": values["on_invalid"],
    }
    try:
        # The file's stem names the job (tickets.jsonl -> tickets-<hash>), as the CLI does.
        job = await run_in_threadpool(api.submit, spec, items, values["key"], PurePath(name).stem)
    except ApiError as exc:
        if exc.status not in (400, 409, 413, 422):
            raise
        shown = _file_lines(exc.details, numbers)[:MAX_SHOWN]
        return None, submit_form(
            values, message=f"{name}: {exc.message}; nothing was started", problems=shown
        )
    return str(job["job_id"]), {}


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
