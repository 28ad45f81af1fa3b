"""A job's manifest: the chunk list one execution's Distributed Map reads from S3, and its start.

An execution's input stays the same size whatever the chunk count (a state's input is capped at
256 KiB, and a 1,000-chunk list would pass through every state of an inline Map): intake and the
reconciler write the chunks to ``staging/<job>/manifests/<execution>.json`` as a JSON array of
:class:`~batch_gateway.workflow.payloads.ChunkRef` (the Map's ``ItemReader`` with ``InputType``
JSON), then start the execution with an :class:`~batch_gateway.workflow.payloads.ExecutionInput`
naming that key. This module is the one writer of manifests; the key comes from ``storage.keys``.
"""

from __future__ import annotations

import json

from batch_gateway.storage.aws import s3_client
from batch_gateway.storage.keys import manifest_key
from batch_gateway.workflow.payloads import ChunkRef, ExecutionInput


def write_manifest(job_id: str, bucket: str, execution_name: str, chunks: list[ChunkRef]) -> ExecutionInput:
    """Write the chunk list of the named execution; returns the execution's input.

    Defaults are left out of each item (a chunk without round and attempt starts at 0, 0), so a new
    job's manifest is small. Writing it again (a retried intake or resume) writes the same object.
    """
    key = manifest_key(job_id, execution_name)
    items = [json.loads(chunk.model_dump_json(exclude_defaults=True)) for chunk in chunks]
    body = json.dumps(items, separators=(",", ":")).encode()
    s3_client().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return ExecutionInput(job_id=job_id, bucket=bucket, manifest_key=key)


def new_job_manifest(job_id: str, bucket: str, execution_name: str, chunks: list[int]) -> ExecutionInput:
    """The manifest of a job's first execution: every chunk from round 0, attempt 0."""
    refs = [ChunkRef(job_id=job_id, bucket=bucket, chunk=chunk) for chunk in chunks]
    return write_manifest(job_id, bucket, execution_name, refs)
