"""A Bedrock model invocation job's data, and what the job does in S3: read, answer, write, describe.

:class:`BedrockJob` and its :class:`BedrockRecord` s; :func:`read_records` reads a job's
``{recordId, modelInput}`` input from S3, :func:`output_line` answers one record (Claude's
deterministic answer, or the record's ``error``), :func:`write_output` writes
``<output uri>/<job id>/<input file name>.out`` and ``manifest.json.out``, and :func:`job_json` is
the job as GetModelInvocationJob and ListModelInvocationJobs return it.

Apart from :mod:`.bedrock_api` (the control plane's routes, a create's checks and a job's life cycle,
one poll at a time) because this is the data side of a job, and the part that calls S3: through an
ordinary boto3 S3 client, as the real service does with the job's service role (offline, inside
the ``act_as`` hook the stack gives the emulator: :data:`ActAs`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

from .answers import AnswerMemory
from .anthropic_requests import check_params, message
from .protocol import ApiError, Reply, bedrock_error, dumps
from .scenario_base import ItemFault, Scenario

MAX_RECORDS = 50_000
"""Bedrock's default per-job record quota."""

ActAs = Callable[[str], AbstractContextManager[None]]
"""``act_as(role_arn)``: the block in which a job's S3 calls are made, as that role's. The offline
stack passes its IAM check's ``acting_for`` (so those calls are checked against the job's service
role); the emulator itself knows nothing of IAM."""


def act_as_nobody(role_arn: str) -> AbstractContextManager[None]:
    """The default :data:`ActAs`: nothing happens around the calls (the emulator on its own)."""
    return nullcontext()


def bad_request(message: str) -> Reply:
    """Bedrock's ``ValidationException`` (a 400)."""
    return bedrock_error(400, "ValidationException", message)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


@dataclass
class BedrockRecord:
    record_id: str
    model_input: dict[str, Any]
    fault: ItemFault | None = None


@dataclass
class BedrockJob:
    arn: str
    name: str
    token: str | None
    model: str
    role_arn: str
    input_uri: str
    output_uri: str
    timeout_hours: int
    created_at: float
    scenario: Scenario
    polls_needed: int
    records: list[BedrockRecord]
    status: str = "Submitted"
    message: str | None = None
    polls: int = 0
    finished: int = 0
    succeeded: int = 0
    errored: int = 0
    modified_at: float = 0.0
    ended_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def job_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


def read_records(input_uri: str, role_arn: str, act_as: ActAs = act_as_nobody) -> list[BedrockRecord]:
    """The job's input records; a file S3 will not give, or a line that is not a record, is a 400."""
    bucket, key = split_s3_uri(input_uri)
    try:
        with act_as(role_arn):  # Bedrock reads with the job's service role (offline IAM check)
            data = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:  # any S3 failure is the caller's input problem here
        raise ApiError(bad_request(f"Unable to read the input file {input_uri}: {exc}")) from None
    records: list[BedrockRecord] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise ApiError(bad_request(f"Line {number} of {input_uri} is not valid JSON.")) from None
        if not isinstance(value, dict) or not isinstance(value.get("modelInput"), dict):
            raise ApiError(bad_request(f"Line {number} of {input_uri} has no modelInput object."))
        record_id = value.get("recordId") or f"{number:011d}"
        records.append(BedrockRecord(record_id=str(record_id), model_input=value["modelInput"]))
    if len(records) > MAX_RECORDS:
        raise ApiError(
            bad_request(f"The input has {len(records)} records; a job takes at most {MAX_RECORDS}.")
        )
    return records


def output_line(job: BedrockJob, record: BedrockRecord, memory: AnswerMemory) -> dict[str, Any]:
    """The record's line of the output file: its ``modelOutput``, or the ``error`` Bedrock gives."""
    line: dict[str, Any] = {"recordId": record.record_id, "modelInput": record.model_input}
    params = {**record.model_input, "model": job.model}
    error = None
    if record.model_input.get("anthropic_version") != "bedrock-2023-05-31":
        error = {
            "errorCode": 400,
            "errorMessage": "Malformed input request: anthropic_version is required",
        }
    elif (problem := check_params(params)) is not None:
        status = 500 if problem["error"]["type"] == "api_error" else 400
        error = {"errorCode": status, "errorMessage": problem["error"]["message"]}
    elif record.fault is not None:
        error = {"errorCode": record.fault.status, "errorMessage": record.fault.message}
    if error is not None:
        line["error"] = error
    else:
        answer = message(params, seed=f"{job.arn}/{record.record_id}", memory=memory)
        line["modelOutput"] = answer
    return line


def write_output(job: BedrockJob, lines: list[bytes], act_as: ActAs = act_as_nobody) -> None:
    """Write the output file (when there are lines) and the manifest under the job's folder of its
    output URI; an S3 failure is raised."""
    bucket, prefix = split_s3_uri(job.output_uri)
    folder = f"{prefix.rstrip('/')}/{job.job_id}/" if prefix.strip("/") else f"{job.job_id}/"
    input_name = job.input_uri.rstrip("/").rsplit("/", 1)[-1]
    s3 = boto3.client("s3")
    with act_as(job.role_arn):  # Bedrock writes with the job's service role
        if lines:
            s3.put_object(Bucket=bucket, Key=f"{folder}{input_name}.out", Body=b"\n".join(lines) + b"\n")
        s3.put_object(Bucket=bucket, Key=f"{folder}manifest.json.out", Body=dumps(counts(job)))


def counts(job: BedrockJob) -> dict[str, int]:
    return {
        "totalRecordCount": len(job.records),
        "processedRecordCount": job.succeeded + job.errored,
        "successRecordCount": job.succeeded,
        "errorRecordCount": job.errored,
    }


def job_json(job: BedrockJob) -> dict[str, Any]:
    """The job as GetModelInvocationJob answers it (and ListModelInvocationJobs lists it)."""
    value: dict[str, Any] = {
        "jobArn": job.arn,
        "jobName": job.name,
        "modelId": job.model,
        "roleArn": job.role_arn,
        "status": job.status,
        "submitTime": _iso(job.created_at),
        "lastModifiedTime": _iso(job.modified_at),
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": job.input_uri, "s3InputFormat": "JSONL"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": job.output_uri}},
        "timeoutDurationInHours": job.timeout_hours,
        "jobExpirationTime": _iso(job.created_at + job.timeout_hours * 3600),
        **counts(job),
    }
    if job.token:
        value["clientRequestToken"] = job.token
    if job.message:
        value["message"] = job.message
    if job.ended_at is not None:
        value["endTime"] = _iso(job.ended_at)
    return value
