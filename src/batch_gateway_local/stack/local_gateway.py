"""The whole gateway on this machine: the real template and state machine on moto, the emulator as providers.

Used by ``batch-gateway local run``, ``local up``, the e2e tests and the benchmarks, so all of them
exercise exactly what AWS would run: template.yaml, statemachine/batch_job.asl.json and
functions/*/app.py. :class:`LocalGateway` starts the provider emulator, deploys the template as an
:class:`~batch_gateway_local.stack.offline_stack.OfflineStack` with parameters that point every
provider at the emulator and keep waits short (:class:`~.local_options.LocalOptions`, which says
what each option sets), and stores the emulator's API keys in the stack's provider secret. Then it
submits files as an upload would, follows a job (:class:`JobProgress`), fires the schedules, and
exports a job's results and summary to a folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

from batch_gateway.intake.spec import (
    META_MODEL,
    META_ON_INVALID,
    META_PROVIDER,
    META_RESPONSE_SCHEMA,
    META_SYSTEM_PROMPT_B64,
    format_metadata,
    job_id_for,
)
from batch_gateway.models import JobSpec, JobSummary
from batch_gateway.settings import Settings
from batch_gateway.storage.chunk_row import ChunkRow, counts_of
from batch_gateway.storage.dynamo import from_dynamo
from batch_gateway.storage.jobs import JOB_SK, JobsRepository
from batch_gateway.storage.keys import errors_key, results_key, schema_key, summary_key
from batch_gateway.storage.results import ResultsRepository
from batch_gateway.workflow.cancel import cancel_job
from batch_gateway_local.emulator import EmulatorServer
from batch_gateway_local.stack.app_files import PROJECT_ROOT, TEMPLATE
from batch_gateway_local.stack.errors import IamDeniedError
from batch_gateway_local.stack.iam.recorder import acting_for
from batch_gateway_local.stack.local_options import (
    LocalOptions,
    azure_openai_endpoint,
    emulator_limits,
    quota_settings,
    template_parameters,
)
from batch_gateway_local.stack.offline_stack import OfflineStack
from batch_gateway_local.stack.schedules import invoke_scheduled
from batch_gateway_local.stack.sfn_history import ExecutionHistory, job_executions, workflow_report

__all__ = ["JobProgress", "LocalGateway", "LocalOptions"]  # LocalOptions: from .local_options, as before


@dataclass
class JobProgress:
    """What a progress display shows: the stage and how many items are done."""

    job: JobSummary | None
    chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stage(self) -> str:
        if self.job is None or (self.job.chunk_count == 0 and not self.job.status.is_terminal):
            return "validating"
        if self.job.finished_at is not None:
            return self.job.status.value
        if not self.chunks or any("provider_batch_id" not in c for c in self.chunks):
            return "submitting"
        if any("collected_at" not in c and c.get("status") not in _TERMINAL for c in self.chunks):
            return "waiting for provider"
        if any("collected_at" not in c for c in self.chunks):
            return "collecting"
        return "finalizing"

    @property
    def items_done(self) -> int:
        return sum(counts_of(c).total for c in self.chunks if "collected_at" in c)


_TERMINAL = {"completed", "failed", "expired", "cancelled"}


class LocalGateway:
    """Context manager: emulator + offline stack up on enter, down on exit."""

    def __init__(self, options: LocalOptions | None = None) -> None:
        self.options = options or LocalOptions()
        self._exit = ExitStack()
        self.emulator = EmulatorServer(
            polls_to_complete=self.options.polls_to_complete,
            scenario=self.options.scenario,
            bedrock_min_records=self.options.bedrock_min_records,
            limits=emulator_limits(self.options.quota),
            act_as=acting_for,  # Bedrock's S3 calls are the job's service role's (the offline IAM check)
        )
        self.stack: OfflineStack | None = None

    def __enter__(self) -> LocalGateway:
        try:
            self.emulator.start()
            self._exit.callback(self.emulator.stop)
            self.stack = self._exit.enter_context(
                OfflineStack(
                    template_path=self.options.template or TEMPLATE,
                    project_root=PROJECT_ROOT,
                    stack_name=self.options.stack_name,
                    parameter_overrides=template_parameters(self.options, self.emulator),
                    iam=self.options.iam,
                )
            )
            boto3.client("secretsmanager").put_secret_value(
                SecretId=self.outputs["ProviderSecretArn"],
                SecretString=json.dumps(dict(self.options.provider_api_keys)),
            )
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit.close()

    def _bedrock_role_arn(self) -> str:
        assert self.stack is not None, "use LocalGateway as a context manager"
        role_name = self.stack.resources["BedrockBatchRole"]
        return boto3.client("iam").get_role(RoleName=role_name)["Role"]["Arn"]

    @property
    def outputs(self) -> dict[str, str]:
        assert self.stack is not None, "use LocalGateway as a context manager"
        return self.stack.outputs

    @property
    def bucket(self) -> str:
        return self.outputs["DataBucketName"]

    # ------------------------------------------------------------ jobs
    def submit_file(self, path: Path, spec: JobSpec, key: str | None = None) -> str:
        """Upload ``path`` under inbox/ with the spec as object metadata; returns the job id."""
        key = key or f"inbox/{path.name}"
        metadata = {META_PROVIDER: spec.provider, META_MODEL: spec.model, META_ON_INVALID: spec.on_invalid}
        if spec.system_prompt:
            metadata[META_SYSTEM_PROMPT_B64] = base64.b64encode(spec.system_prompt.encode()).decode()
        if spec.response_schema is not None:
            metadata[META_RESPONSE_SCHEMA] = self.put_response_schema(spec.response_schema)
        metadata.update(format_metadata(spec))
        with path.open("rb") as body:
            response = boto3.client("s3").put_object(
                Bucket=self.bucket, Key=key, Body=body, Metadata=metadata
            )
        return job_id_for(self.bucket, key, response.get("VersionId") or response["ETag"].strip('"'))

    def put_response_schema(self, schema: dict[str, Any]) -> str:
        """Store a response schema under schemas/local/ (named by its hash); the name an upload's
        ``response-schema`` metadata key gives."""
        body = json.dumps(schema).encode()  # in its own key order: properties are answered in it
        name = f"local/{hashlib.sha256(body).hexdigest()[:16]}.json"
        boto3.client("s3").put_object(Bucket=self.bucket, Key=schema_key(name), Body=body)
        return name

    def progress(self, job_id: str) -> JobProgress:
        assert self.stack is not None, "use LocalGateway as a context manager"
        jobs = JobsRepository(self.outputs["JobsTableName"])
        with self.stack.between_invocations():
            job = jobs.get_job(job_id)
            return JobProgress(job=job, chunks=jobs.list_chunks(job_id) if job else [])

    def wait(
        self, job_id: str, timeout_s: float = 600, on_progress: Callable[[JobProgress], None] | None = None
    ) -> JobSummary:
        """Block until the job has finished (any final status); raises TimeoutError after ``timeout_s``
        and IamDeniedError as soon as a handler made a call its role does not allow."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.raise_iam_denials()
            progress = self.progress(job_id)
            if on_progress:
                on_progress(progress)
            if progress.job is not None and progress.job.finished_at is not None:
                return progress.job
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} did not finish within {timeout_s:.0f} s (stage: {progress.stage})"
                )
            time.sleep(0.2)

    def raise_iam_denials(self) -> None:
        """Raise IamDeniedError naming each function, action and resource the offline IAM check refused."""
        check = self.stack.iam_check if self.stack else None
        denied = sorted({c.describe() for c in check.denied}) if check else []
        if denied:
            raise IamDeniedError(
                "AccessDenied: the offline IAM check refused "
                + "; ".join(denied)
                + " - the function's role in the template lacks the permission (see the function's logs)"
            )

    def settings(self) -> Settings:
        """The configuration the deployed functions run with, for calling domain functions directly."""
        return Settings.model_validate(
            {
                "DATA_BUCKET": self.bucket,
                "JOBS_TABLE": self.outputs["JobsTableName"],
                "RESULTS_TABLE": self.outputs["ResultsTableName"],
                "STATE_MACHINE_ARN": self.outputs["StateMachineArn"],
                "PROVIDER_SECRET_ARN": self.outputs["ProviderSecretArn"],
                "OPENAI_BASE_URL": self.emulator.openai_base_url,
                "ANTHROPIC_BASE_URL": self.emulator.anthropic_base_url,
                "AZURE_OPENAI_ENDPOINT": azure_openai_endpoint(self.options, self.emulator),
                "BEDROCK_ENDPOINT_URL": self.emulator.bedrock_endpoint_url,
                "BEDROCK_MIN_RECORDS": str(self.options.bedrock_min_records),
                "BEDROCK_ROLE_ARN": self._bedrock_role_arn(),
                **self._quota_settings(),
            }
        )

    def _quota_settings(self) -> dict[str, str]:
        assert self.stack is not None, "use LocalGateway as a context manager"
        ledger = self.stack.resources["QuotaLedgerTable"]
        return {"QUOTA_LEDGER_TABLE": ledger, **quota_settings(self.options.quota)}

    def cancel(self, job_id: str) -> JobSummary:
        """Cancel a job the way the API will: the domain function, against this stack."""
        return cancel_job(job_id, self.settings())

    def run_scheduler(self) -> dict[str, Any]:
        """Fire the scheduled-submissions schedule once (moto stores schedules but never fires them)."""
        return invoke_scheduled(self, "SchedulerFunction")

    def run_reconciler(self) -> dict[str, Any]:
        """Fire the reconciler's schedule once; returns its report."""
        return invoke_scheduled(self, "ReconcilerFunction")

    def results_table_rows(self, job_id: str) -> Iterator[dict[str, Any]]:
        return ResultsRepository(self.outputs["ResultsTableName"], self.bucket, 1).query(job_id)

    def job_row(self, job_id: str) -> dict[str, Any]:
        table = boto3.resource("dynamodb").Table(self.outputs["JobsTableName"])
        item = table.get_item(Key={"job_id": job_id, "sk": JOB_SK}).get("Item") or {}
        row: dict[str, Any] = from_dynamo(item)
        return row

    def export(self, job_id: str, out_dir: Path, *, results_table: bool = True) -> dict[str, Path]:
        """Copy what the job left in the stack into ``out_dir``; returns the files written.

        ``results_table=False`` leaves out results-table.jsonl: moto serializes every row it returns
        slowly, so for large jobs reading the table back costs more than running the job.
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        s3 = boto3.client("s3")
        written: dict[str, Path] = {}
        for name, key in (
            ("results.jsonl", results_key(job_id)),
            ("summary.json", summary_key(job_id)),
            ("errors.jsonl", errors_key(job_id)),
        ):
            target = out_dir / name
            try:
                s3.download_file(self.bucket, key, str(target))
            except s3.exceptions.ClientError:
                target.unlink(missing_ok=True)  # not every job has every file (errors.jsonl)
                continue
            written[name] = target
        written["job.json"] = out_dir / "job.json"
        written["job.json"].write_text(json.dumps(self.job_row(job_id), indent=2, default=str) + "\n")
        if not results_table:
            return written
        written["results-table.jsonl"] = out_dir / "results-table.jsonl"
        with written["results-table.jsonl"].open("w") as rows:
            for row in self.results_table_rows(job_id):
                rows.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        return written

    # ------------------------------------------------------------ workflow (issue 13: scale)
    def executions(self, job_id: str) -> list[ExecutionHistory]:
        """Every state-machine execution the job used: its own (first and resumes), each followed by
        its Distributed Map children, with their history sizes (``stack.sfn_history``)."""
        assert self.stack is not None, "use LocalGateway as a context manager"
        sfn = boto3.client("stepfunctions")
        arn = self.outputs["StateMachineArn"]
        deadline = time.monotonic() + 10  # the job's row ends a moment before its execution does
        while (found := job_executions(sfn, arn, job_id, self.stack.child_histories)) and any(
            e.status == "RUNNING" for e in found if e.parent is None
        ):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return found

    def chunk_rows(self, job_id: str) -> list[dict[str, Any]]:
        """Every chunk row as :class:`ChunkRow` dumps (new fields of the model appear by themselves);
        ``batches`` and ``intents`` are keyed ``r<round>_a<attempt>``."""
        assert self.stack is not None, "use LocalGateway as a context manager"
        with self.stack.between_invocations():
            items = JobsRepository(self.outputs["JobsTableName"]).list_chunks(job_id)
        rows = []
        for item in items:
            row = ChunkRow.model_validate(item)
            dump = row.model_dump(mode="json", exclude_none=True)
            dump["batches"] = {f"r{r}_a{a}": batch for (r, a), batch in row.batches.items()}
            dump["intents"] = {f"r{r}_a{a}": at for (r, a), at in row.intents.items()}
            rows.append(dump)
        return sorted(rows, key=lambda row: int(row["chunk"]))

    def export_workflow(self, job_id: str, out_dir: Path) -> dict[str, Path]:
        """Write workflow.json (every execution and the largest history) and chunks.jsonl (every chunk row)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        workflow, chunks = out_dir / "workflow.json", out_dir / "chunks.jsonl"
        workflow.write_text(json.dumps(workflow_report(self.executions(job_id)), indent=2) + "\n")
        with chunks.open("w") as lines:
            for row in self.chunk_rows(job_id):
                lines.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        return {"workflow.json": workflow, "chunks.jsonl": chunks}
