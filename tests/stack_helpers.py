"""Driving the deployed offline stack the way AWS would (real-shaped events, Lambda Invoke), and reading it.

Reads of the stack's tables go through ``LocalGateway.progress``, under the runtime's lock, so they never
overlap a handler's writes (moto changes items in place).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from batch_gateway.models import JobSpec
from batch_gateway.storage.jobs import JobsRepository
from batch_gateway_local.stack.app_files import PROJECT_ROOT
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl

EVENTS = PROJECT_ROOT / "events"


def until(condition: Callable[[], Any], what: str, timeout_s: float = 60) -> Any:
    """``condition()``'s first truthy value, polled; TimeoutError naming ``what`` past ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting for {what}")
        time.sleep(0.1)
    return value


def execution_arn(gateway: LocalGateway, name: str) -> str:
    return gateway.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"


def event(name: str, **replacements: str) -> dict[str, Any]:
    """A sample event from events/, with its placeholders (BUCKET, JOB, …) filled in."""
    text = (EVENTS / name).read_text()
    for placeholder, value in replacements.items():
        text = text.replace(placeholder, value)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def invoke(gateway: LocalGateway, logical_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Invoke a function of the template by logical id; fails the test on a function error."""
    assert gateway.stack is not None
    response = boto3.client("lambda").invoke(
        FunctionName=gateway.stack.functions[logical_id], Payload=json.dumps(payload).encode()
    )
    body: dict[str, Any] = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def parked_chunk(gateway: LocalGateway, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """The job's first chunk row once it has parked its task token: it waits for the provider now.

    Read through ``LocalGateway.progress``, under the runtime's lock (never while a handler writes).
    """
    deadline = time.monotonic() + timeout_s
    chunks: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        chunks = gateway.progress(job_id).chunks
        if chunks and chunks[0].get("wait_token"):
            return chunks[0]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never parked its chunk: {chunks}")


# ------------------------------------------------------------------ a stack whose chunks wait long
# 600 s between polls: a job that ends within a test's wait was woken (a webhook, an event), not polled.
LONG_WAIT = 600


def parked_options(stack_name: str) -> LocalOptions:
    """A stack that polls every LONG_WAIT seconds, whose provider batches end on their first poll."""
    return LocalOptions(
        poll_initial_wait_seconds=LONG_WAIT,
        poll_backoff_factor="1",
        poll_max_wait_seconds=LONG_WAIT,
        polls_to_complete=1,
        stack_name=stack_name,
    )


def start_parked_job(
    gateway: LocalGateway, tmp_path: Path, name: str, spec: JobSpec
) -> tuple[str, dict[str, Any]]:
    """Submit a 3-item job and wait until its chunk waits for the provider in the callback task."""
    rows = [{"custom_id": f"{name}-{n}", "user_message": f"Question {n}?"} for n in range(3)]
    job_id = gateway.submit_file(write_jsonl(tmp_path / f"{name}.jsonl", rows), spec)
    return job_id, parked_chunk(gateway, job_id)


def first_chunk_row(gateway: LocalGateway, job_id: str) -> dict[str, Any]:
    """The job's first chunk row as stored (read once the job's handlers are done with it)."""
    return JobsRepository(gateway.outputs["JobsTableName"]).get_chunk(job_id, 1)
