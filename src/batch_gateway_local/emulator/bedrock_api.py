"""Amazon Bedrock batch inference control plane (model invocation jobs), reached through boto3.

The routes are the REST-JSON ones boto3's ``bedrock`` client calls with ``endpoint_url`` pointed
here: CreateModelInvocationJob, GetModelInvocationJob, StopModelInvocationJob and
ListModelInvocationJobs. Like the real service, a job reads its ``{recordId, modelInput}`` records
from S3 and writes ``<output uri>/<job id>/<input file name>.out`` and ``manifest.json.out`` to S3,
through an ordinary boto3 S3 client: offline that is moto's in-process S3 (the emulator runs in the
same process as the offline stack), standalone whatever ``AWS_ENDPOINT_URL_S3`` points at. A job's
data and its S3 side (records, answers, output, its JSON) are :mod:`.bedrock_jobs`'.

Jobs advance one step per GetModelInvocationJob (never by wall time): Submitted, then InProgress,
then Completed (PartiallyCompleted when a record failed) after ``polls_to_complete`` polls. The
server's scenarios apply as for the other providers (``fail``: Failed while validating, with the
scenario's message; ``expire``: Expired with the first half of the records processed;
``item-errors``: per-record ``error`` lines; ``slow``, ``throttle``...). Claude answers are the same
deterministic ones the Anthropic emulator gives. ``Limits.bedrock_max_concurrent_jobs`` caps the
submitted + in-progress jobs per model: one more is ``ServiceQuotaExceededException`` on create.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any
from urllib.parse import unquote

from .bedrock_jobs import (
    ActAs,
    BedrockJob,
    act_as_nobody,
    bad_request,
    job_json,
    output_line,
    read_records,
    write_output,
)
from .common import choose_scenario, emission_order, guard
from .protocol import ApiError, Handler, Reply, Request, bedrock_error, dumps, json_reply
from .scenario_base import BatchRequest, CreateContext, PollAction, PollContext, Scenario
from .state import Store

log = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT = "123456789012"
SCENARIO_HEADER = "x-emulator-scenario"
PENDING = ("Submitted", "Validating", "Scheduled")
TERMINAL = ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired")


class BedrockApi:
    def __init__(self, store: Store, min_records: int = 1, act_as: ActAs = act_as_nobody) -> None:
        self.store = store
        self.min_records = min_records
        """The per-job minimum the emulated account has (Bedrock's default quota is 100)."""
        self.act_as = act_as
        """Around a job's S3 reads and writes, given its role ARN (the offline IAM check's hook)."""
        self.jobs: dict[str, BedrockJob] = {}
        self._by_token: dict[str, str] = {}
        job = r"/model-invocation-job/(?P<job_id>[^/]+)"
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/model-invocation-job"), self.create_job),
            ("GET", re.compile(r"/model-invocation-jobs"), self.list_jobs),
            ("GET", re.compile(job), self.get_job),
            ("POST", re.compile(job + "/stop"), self.stop_job),
        ]

    def dispatch(self, request: Request, server_scenario: Scenario) -> Reply:
        """Route one request (Bedrock's own error shapes for unknown routes and failures)."""
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match is None or method != request.method:
                continue
            try:
                if "job_id" not in match.groupdict():
                    guard(server_scenario, request, None)
                return handler(request, match)
            except ApiError as exc:
                return exc.reply
            except Exception:
                log.exception("emulator handler failed for %s %s", request.method, request.path)
                return bedrock_error(500, "InternalServerException", "The emulator failed (see its log).")
        return bedrock_error(
            404, "UnknownOperationException", f"No route for {request.method} {request.path}"
        )

    # ------------------------------------------------------------ create

    def create_job(self, request: Request, _: re.Match[str]) -> Reply:
        body = self._body(request)
        token = body.get("clientRequestToken")
        with self.store.lock:
            existing = self._by_token.get(token) if isinstance(token, str) else None
        if existing is not None:
            return json_reply({"jobArn": existing})  # the same request again: the same job, no error
        name, model, role = (self._required_text(body, key) for key in ("jobName", "modelId", "roleArn"))
        input_uri = self._s3_uri(body, "inputDataConfig", "s3InputDataConfig")
        output_uri = self._s3_uri(body, "outputDataConfig", "s3OutputDataConfig")
        timeout = body.get("timeoutDurationInHours", 24)
        if not isinstance(timeout, int) or not 24 <= timeout <= 168:
            raise ApiError(bad_request("timeoutDurationInHours must be between 24 and 168."))
        with self.store.lock:
            if any(job.name == name for job in self.jobs.values()):
                raise ApiError(bedrock_error(409, "ConflictException", f"A job named {name} already exists."))
        records = read_records(input_uri, role, self.act_as)
        scenario = choose_scenario(self.store, request.header(SCENARIO_HEADER), bad_request)
        context = CreateContext(
            provider="bedrock",
            model=model,
            requests=[BatchRequest(i, r.record_id, r.model_input) for i, r in enumerate(records)],
        )
        rejection = scenario.on_create(context)
        if rejection is not None:
            raise ApiError(rejection)
        for batch_request, record in zip(context.requests, records, strict=True):
            record.fault = scenario.item_fault(context, batch_request)
        now = self.store.now()
        job = BedrockJob(
            arn=f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-invocation-job/{secrets.token_hex(6)}",
            name=name,
            token=token if isinstance(token, str) else None,
            model=model,
            role_arn=role,
            input_uri=input_uri,
            output_uri=output_uri,
            timeout_hours=timeout,
            created_at=now,
            modified_at=now,
            scenario=scenario,
            polls_needed=max(1, scenario.polls_to_complete(self.store.config.polls_to_complete)),
            records=records,
        )
        with self.store.lock:
            self._hold_job(model)
            self.jobs[job.job_id] = job
            if job.token:
                self._by_token[job.token] = job.arn
            self.store.batches_created["bedrock"] = self.store.batches_created.get("bedrock", 0) + 1
        return json_reply({"jobArn": job.arn})

    def _hold_job(self, model: str) -> None:
        """The per-model quota of submitted + in-progress jobs (store lock held): over it, boto3 raises
        ``ServiceQuotaExceededException``; a job that fits holds its place until it ends."""
        cap = self.store.config.limits.bedrock_max_concurrent_jobs
        held = sum(1 for job in self.jobs.values() if job.model == model and job.status not in TERMINAL)
        if cap is not None and held + 1 > cap:
            raise ApiError(
                bedrock_error(
                    400,
                    "ServiceQuotaExceededException",
                    f"The number of submitted and in-progress batch inference jobs for model {model} "
                    f"has reached this account's quota of {cap} ({held} in use). Wait for a job to end "
                    "or request a quota increase.",
                )
            )
        self.store.note_held("bedrock", model, held + 1)

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError:
            raise ApiError(bad_request("The request body is not valid JSON.")) from None
        if not isinstance(body, dict):
            raise ApiError(bad_request("The request body must be a JSON object."))
        return body

    def _required_text(self, body: dict[str, Any], key: str) -> str:
        value = body.get(key)
        if not isinstance(value, str) or not value:
            raise ApiError(
                bad_request(f"1 validation error detected: Value at '{key}' failed to satisfy constraint.")
            )
        return value

    def _s3_uri(self, body: dict[str, Any], config: str, kind: str) -> str:
        uri = (body.get(config) or {}).get(kind, {}).get("s3Uri")
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise ApiError(bad_request(f"{config}.{kind}.s3Uri must be an s3:// URI."))
        return uri

    # ------------------------------------------------------------ read, list, stop

    def _job(self, job_identifier: str) -> BedrockJob:
        job_identifier = unquote(job_identifier)  # boto3 sends a job ARN URL-encoded in the path
        with self.store.lock:
            job = self.jobs.get(job_identifier.rsplit("/", 1)[-1])
        if job is None:
            raise ApiError(
                bedrock_error(404, "ResourceNotFoundException", f"Job {job_identifier} was not found.")
            )
        return job

    def get_job(self, request: Request, match: re.Match[str]) -> Reply:
        job = self._job(match["job_id"])
        guard(job.scenario, request, job.arn)
        with job.lock:
            self._advance(job)
            return json_reply(job_json(job))

    def list_jobs(self, request: Request, _: re.Match[str]) -> Reply:
        with self.store.lock:
            jobs = list(reversed(self.jobs.values()))
        summaries = []
        for job in jobs:
            with job.lock:
                summaries.append(job_json(job))
        return json_reply({"invocationJobSummaries": summaries})

    def stop_job(self, request: Request, match: re.Match[str]) -> Reply:
        job = self._job(match["job_id"])
        guard(job.scenario, request, job.arn)
        with job.lock:
            if job.status in TERMINAL or job.status == "Stopping":
                raise ApiError(bad_request(f"Job {job.arn} is {job.status} and cannot be stopped."))
            job.status, job.modified_at = "Stopping", self.store.now()
        return json_reply({})

    # ------------------------------------------------------------ life cycle (job.lock held)

    def _advance(self, job: BedrockJob) -> None:
        if job.status in TERMINAL:
            return
        job.polls += 1
        job.modified_at = self.store.now()
        pending = job.status in PENDING
        context = PollContext(
            provider="bedrock",
            batch_id=job.arn,
            status="validating" if pending else job.status,
            poll=job.polls,
            total=len(job.records),
        )
        action = job.scenario.on_poll(context)
        if job.status == "Stopping":
            self._end(job, "Stopped")
        elif action is PollAction.HOLD:
            job.polls -= 1
        elif pending and len(job.records) < self.min_records:
            self._fail(
                job,
                f"The job has {len(job.records)} records, fewer than the minimum of {self.min_records} "
                f"records per batch inference job for {job.model}.",
            )
        elif action is PollAction.FAIL and pending:
            self._fail(job, "; ".join(issue.message for issue in job.scenario.validation_errors()))
        elif action is PollAction.STALL:
            job.polls -= 1
            job.status = "InProgress"
        elif action is PollAction.EXPIRE:
            self._end(job, "Expired")
        else:
            job.status = "InProgress"
            job.finished = len(job.records) * min(job.polls, job.polls_needed) // job.polls_needed
            if job.polls >= job.polls_needed:
                job.finished = len(job.records)
                self._end(job, None)

    def _fail(self, job: BedrockJob, reason: str) -> None:
        job.status, job.message, job.ended_at = "Failed", reason, self.store.now()

    def _end(self, job: BedrockJob, status: str | None) -> None:
        """Write the output of the records processed so far, then take the final status."""
        outputs = [
            output_line(job, job.records[index], self.store.answer_memory)
            for index in emission_order(len(job.records))
            if index < job.finished
        ]
        job.errored = sum(1 for output in outputs if "error" in output)
        job.succeeded = len(outputs) - job.errored
        try:
            write_output(job, [dumps(output) for output in outputs], self.act_as)
        except Exception as exc:  # as on Bedrock: a job that cannot write its output fails, saying why
            job.status, job.message = "Failed", f"Unable to write the output to {job.output_uri}: {exc}"
        else:
            job.status = status or ("PartiallyCompleted" if job.errored else "Completed")
        job.ended_at = self.store.now()
