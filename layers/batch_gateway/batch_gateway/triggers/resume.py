"""Resuming a job whose workflow died: where each uncollected chunk starts again, and the execution.

A resumed execution ``<job>-resume-<n>`` gets only the chunks not yet collected (in its own
manifest, ``workflow.manifests``), each at its latest (round, attempt) as the chunk row records it
(:meth:`~batch_gateway.storage.chunk_row.ChunkRow.latest_step`); a chunk whose round was collected and
whose follow-up round is staged starts that round. Submit is exactly-once per (round, attempt) (a
recorded batch is adopted, never created again) and collected chunks are not in the manifest at all,
so nothing collected is redone or lost, and nothing is paid twice. The execution's name is the
idempotency key: starting the same resume twice starts it once.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

from batch_gateway.models import BatchStatus, JobSummary
from batch_gateway.storage import keys, s3
from batch_gateway.storage.chunk_row import ChunkRow
from batch_gateway.workflow.manifests import write_manifest
from batch_gateway.workflow.payloads import ChunkRef

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient


def execution_name(job_id: str, resumes: int) -> str:
    """Intake names the first execution after the job; each resume gets the next number."""
    return job_id if resumes == 0 else f"{job_id}-resume-{resumes}"


def ended_by_catch_all(job: JobSummary) -> bool:
    """The workflow's MarkFailed ended it: failed, with staged chunks, and no results file written."""
    return job.status is BatchStatus.FAILED and job.chunk_count > 0 and job.results_uri is None


def resume_point(job_id: str, bucket: str, chunk: ChunkRow) -> ChunkRef | str:
    """Where an uncollected chunk resumes (the Map item for it), or why it cannot."""
    round_, attempt = chunk.latest_step()
    next_round_staged = s3.object_exists(bucket, keys.chunk_requests_key(job_id, chunk.chunk, round_ + 1))
    if round_ in chunk.round_reports and next_round_staged:
        round_, attempt = round_ + 1, 0  # its round was collected and the follow-up round staged
    for key in (
        keys.chunk_requests_key(job_id, chunk.chunk, round_),
        keys.chunk_index_key(job_id, chunk.chunk, round_),
    ):
        if not s3.object_exists(bucket, key):
            return f"its staged input {key} no longer exists"
    return ChunkRef(job_id=job_id, bucket=bucket, chunk=chunk.chunk, round=round_, attempt=attempt)


def start_execution(
    sfn: SFNClient, state_machine_arn: str, name: str, job_id: str, bucket: str, points: list[ChunkRef]
) -> None:
    """Write the named execution's manifest (its chunks' resume points) and start it; one already
    there (an earlier try of this resume) is left running."""
    execution = write_manifest(job_id, bucket, name, points)
    with suppress(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=execution.model_dump_json())
