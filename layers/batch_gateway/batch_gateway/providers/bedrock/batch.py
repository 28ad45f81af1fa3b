"""Amazon Bedrock batch inference provider (CreateModelInvocationJob, Anthropic Claude via InvokeModel).

No API key: boto3 signs every call with the function's IAM role, and Bedrock reads the input and
writes the output in our bucket with the service role the template creates (``BEDROCK_ROLE_ARN``).

- Input: the staged chunk file itself (``staging/<job>/chunk-NNNN[.rR].requests.jsonl``), already in
  Bedrock's ``{recordId, modelInput}`` format; nothing is copied.
- Output: ``staging/<job>/bedrock-output/chunk-NNNN-rR-aA/<bedrock job id>/<input name>.out``
  (Bedrock adds the job id folder), plus ``manifest.json.out`` with counts.
- Idempotency: ``clientRequestToken`` and ``jobName`` derive from (bucket, job, chunk, round,
  attempt), so a create retried after a timeout returns the job it already made: no second paid job,
  even when the first answer was lost.
- Minimum records: Bedrock refuses jobs below a per-model quota (100 records by default); such a
  batch is refused here, before any call, with a message that says what to do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from batch_gateway.lines import iter_numbered_lines
from batch_gateway.models import BatchItem, BatchStatus, JobSpec
from batch_gateway.providers.bedrock.parsing import bedrock_progress, decode_record_line, parse_bedrock_line
from batch_gateway.providers.errors import (
    BEDROCK_QUOTA_ERROR_CODE,
    ProviderError,
    ProviderQuotaError,
    ProviderUnavailableError,
    is_transient_status,
)
from batch_gateway.providers.requests import request_builder_for
from batch_gateway.providers.streaming import resumable_lines
from batch_gateway.providers.types import BatchProgress, ProviderResult, SubmittedBatch
from batch_gateway.storage.aws import s3_client
from batch_gateway.storage.keys import chunk_requests_key, s3_uri, staging_prefix
from batch_gateway.storage.s3 import open_object

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient

# Other providers' batches run within 24 hours; Bedrock allows 24 to 168. Same window everywhere.
TIMEOUT_HOURS: Final = 24
JOB_NAME_PREFIX: Final = "bg"
OUTPUT_FOLDER: Final = "bedrock-output"
# botocore error codes that mean "try again later" rather than "this request is wrong".
TRANSIENT_ERROR_CODES: Final = frozenset(
    {"ThrottlingException", "ServiceQuotaExceededException", "InternalServerException", "ServiceUnavailable"}
)


def submission_ids(bucket: str, metadata: dict[str, str]) -> tuple[str, str]:
    """``(jobName, clientRequestToken)`` of one (job, chunk, round, attempt): the same on every retry.

    Both fit Bedrock's patterns (letters, digits, hyphens; a job name at most 63 characters).
    """
    key = "|".join(
        [bucket, metadata["batch_gateway_job"], *(metadata[k] for k in ("chunk", "round", "attempt"))]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()
    where = f"c{metadata['chunk']}-r{metadata['round']}-a{metadata['attempt']}"
    return f"{JOB_NAME_PREFIX}-{digest[:24]}-{where}"[:63], f"{JOB_NAME_PREFIX}{digest[:40]}"


def output_prefix(job_id: str, metadata: dict[str, str]) -> str:
    """Where one (round, attempt) of a chunk has Bedrock write its output (under staging/: same lifecycle)."""
    chunk = int(metadata["chunk"])
    return (
        f"{staging_prefix(job_id)}{OUTPUT_FOLDER}/"
        f"chunk-{chunk:04d}-r{metadata['round']}-a{metadata['attempt']}/"
    )


def job_id_of(job_arn: str) -> str:
    """The job id Bedrock names the output folder after: the last part of the job ARN."""
    return job_arn.rsplit("/", 1)[-1]


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def count_records(requests_file: Path) -> int:
    with requests_file.open("rb") as fh:
        return sum(1 for _, line in iter_numbered_lines(fh) if line.strip())


def min_records_message(count: int, minimum: int, model: str) -> str:
    return (
        f"Amazon Bedrock batch inference needs at least {minimum} records per job and this batch has "
        f"{count} for model {model}: send at least {minimum} lines for this model in one file, or run "
        "this file with provider anthropic (Message Batches take any number of requests)"
    )


class BedrockBatchProvider:
    name = "bedrock"
    label = "Amazon Bedrock"

    def __init__(
        self,
        api_key: str = "",
        base_url: str | None = None,
        max_retries: int = 5,
        *,
        bucket: str = "",
        role_arn: str = "",
        min_records: int = 100,
        client: BedrockClient | None = None,
    ) -> None:
        # api_key is accepted for the common factory signature and ignored: Bedrock uses IAM only.
        self._endpoint_url = base_url
        self._max_retries = max_retries
        self._bucket = bucket
        self._role_arn = role_arn
        self.min_records = min_records
        self._client = client
        self._requests = request_builder_for(self.name)
        self.limits = self._requests.limits

    @property
    def client(self) -> BedrockClient:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(retries={"max_attempts": self._max_retries + 1, "mode": "adaptive"})
            self._client = boto3.client("bedrock", endpoint_url=self._endpoint_url, config=config)
        return self._client

    def provider_custom_id(self, custom_id: str, line: int) -> str:
        return self._requests.provider_custom_id(custom_id, line)

    def build_request(self, provider_custom_id: str, item: BatchItem, spec: JobSpec) -> dict[str, Any]:
        return self._requests.build_request(provider_custom_id, item, spec)

    # ---------------------------------------------------------------------------------- API calls

    def submit(self, requests_file: Path, spec: JobSpec, metadata: dict[str, str]) -> SubmittedBatch:
        """Create the job on the staged chunk file; a retry with the same metadata gets the same job."""
        count = count_records(requests_file)
        if count < self.min_records:
            raise ProviderError(min_records_message(count, self.min_records, spec.model))
        if not (self._role_arn and self._bucket):
            raise ProviderError(
                "Bedrock is not configured: BEDROCK_ROLE_ARN (the template's BedrockBatchRole) and "
                "DATA_BUCKET must be set"
            )
        job_id = metadata["batch_gateway_job"]
        input_key = chunk_requests_key(job_id, int(metadata["chunk"]), int(metadata["round"]))
        job_name, token = submission_ids(self._bucket, metadata)
        with self._errors("the batch inference job", quota_refusal=True):
            created = self.client.create_model_invocation_job(
                jobName=job_name,
                clientRequestToken=token,
                roleArn=self._role_arn,
                modelId=spec.model,
                inputDataConfig={
                    "s3InputDataConfig": {
                        "s3Uri": s3_uri(self._bucket, input_key),
                        "s3InputFormat": "JSONL",
                    }
                },
                outputDataConfig={
                    "s3OutputDataConfig": {"s3Uri": s3_uri(self._bucket, output_prefix(job_id, metadata))}
                },
                timeoutDurationInHours=TIMEOUT_HOURS,
            )
        # Every new job starts Submitted; the poll loop reads its state from here on.
        return SubmittedBatch(
            provider_batch_id=created["jobArn"], status=BatchStatus.PENDING, raw=_json_form(created)
        )

    def find_batch(self, metadata: dict[str, str], created_after: float) -> SubmittedBatch | None:
        # Not needed: submit's clientRequestToken makes a repeated create return the existing job.
        return None

    def poll(self, provider_batch_id: str) -> BatchProgress:
        with self._errors(f"the status request for job {provider_batch_id}"):
            job = self.client.get_model_invocation_job(jobIdentifier=provider_batch_id)
        return bedrock_progress(_json_form(dict(job)))

    def cancel(self, provider_batch_id: str) -> BatchProgress:
        with self._errors(f"the stop request for job {provider_batch_id}"):
            self.client.stop_model_invocation_job(jobIdentifier=provider_batch_id)
        # The job is Stopping now; the poll loop sees it end Stopped (with what it processed so far).
        return BatchProgress(status=BatchStatus.CANCELLING, provider_status="Stopping")

    def delete_batch_data(self, batch_ids: list[str]) -> None:
        """Nothing to delete at Bedrock: a job's input and output are in our bucket, under staging/.

        The reconciler deletes that prefix with the job's other staged files, and Bedrock has no call
        that deletes a batch inference job's record (it keeps the job's metadata, not the data).
        """

    def iter_results(self, provider_batch_id: str) -> Iterator[ProviderResult]:
        """Stream the job's ``.out`` file (resumable). A job that processed nothing may have none."""
        progress = self.poll(provider_batch_id)
        if not progress.status.is_terminal:
            raise ProviderError(
                f"Bedrock job {provider_batch_id} is still {progress.provider_status}; "
                "its results can be read once it has ended"
            )
        bucket, key = self.output_location(progress.raw)
        if not self._exists(bucket, key):
            return
        source = f"Bedrock output {s3_uri(bucket, key)}"

        def open_lines() -> AbstractContextManager[Iterable[str]]:
            return _object_lines(bucket, key)

        from botocore.exceptions import BotoCoreError

        lines = resumable_lines(
            open_lines, what=source, retryable=(BotoCoreError,), attempts=self._max_retries + 1
        )
        for number, text in lines:
            yield parse_bedrock_line(decode_record_line(text, source=source, number=number))

    # -------------------------------------------------------------------------------------- helpers

    def output_location(self, job: Any) -> tuple[str, str]:
        """``<output uri>/<job id>/<input file name>.out``, as Bedrock names it."""
        job = job if isinstance(job, dict) else {}
        input_uri = str(job.get("inputDataConfig", {}).get("s3InputDataConfig", {}).get("s3Uri", ""))
        output_uri = str(job.get("outputDataConfig", {}).get("s3OutputDataConfig", {}).get("s3Uri", ""))
        bucket, prefix = split_s3_uri(output_uri)
        if not bucket or not input_uri:
            raise ProviderError(f"Bedrock job {job.get('jobArn')} names no input or output location")
        input_name = input_uri.rstrip("/").rsplit("/", 1)[-1]
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        return bucket, f"{folder}{job_id_of(str(job.get('jobArn', '')))}/{input_name}.out"

    def _exists(self, bucket: str, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            s3_client().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _errors(self, subject: str, quota_refusal: bool = False) -> AbstractContextManager[None]:
        return _readable_aws_errors(subject, quota_refusal)


@contextmanager
def _object_lines(bucket: str, key: str) -> Iterator[Iterable[str]]:
    body = open_object(bucket, key)
    try:
        yield (line.decode("utf-8") for _, line in iter_numbered_lines(body))
    finally:
        body.close()


def _json_form(value: Any) -> Any:
    """boto3's answer with datetimes as ISO strings, so it can be stored and logged as JSON."""
    if isinstance(value, dict):
        return {key: _json_form(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, list):
        return [_json_form(item) for item in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@contextmanager
def _readable_aws_errors(subject: str, quota_refusal: bool = False) -> Iterator[None]:
    """botocore errors as ProviderErrors with Bedrock's own message (transient ones retried by the state machine).

    ``quota_refusal``: ServiceQuotaExceededException means the model's job quota is full (CreateModelInvocationJob):
    a ProviderQuotaError, so the chunk waits for capacity instead of failing."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Error")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = error.get("Message") or "no error message given"
        transient = code in TRANSIENT_ERROR_CODES or is_transient_status(status)
        error_class: type[ProviderError] = ProviderUnavailableError if transient else ProviderError
        if quota_refusal and code == BEDROCK_QUOTA_ERROR_CODE:
            error_class = ProviderQuotaError
        raise error_class(f"Amazon Bedrock rejected {subject}: {code}: {message} (HTTP {status})") from exc
    except BotoCoreError as exc:
        raise ProviderUnavailableError(f"Could not reach Amazon Bedrock for {subject}: {exc}") from exc
