"""A job's manifest: the chunk list its Distributed Map reads from S3, while the execution input stays small."""

from __future__ import annotations

import json

import boto3
import pytest

from batch_gateway.storage.keys import manifest_key, staging_prefix
from batch_gateway.workflow.manifests import new_job_manifest, write_manifest
from batch_gateway.workflow.payloads import ChunkRef

BUCKET = "manifest-bucket"


@pytest.fixture
def s3(mocked_aws: None) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)


def read(key: str) -> list[dict[str, object]]:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    items: list[dict[str, object]] = json.loads(body)
    return items


def test_the_execution_input_is_the_same_size_for_one_chunk_and_a_thousand(s3: None) -> None:
    small = new_job_manifest("job-a", BUCKET, "job-a", [1])
    large = new_job_manifest("job-b", BUCKET, "job-b", list(range(1, 1001)))

    assert len(small.model_dump_json()) == len(large.model_dump_json()) < 200
    assert large.manifest_key == manifest_key("job-b", "job-b")
    assert large.manifest_key.startswith(staging_prefix("job-b"))  # deleted with the staging after retention
    items = read(large.manifest_key)
    assert [ChunkRef.model_validate(item).chunk for item in items] == list(range(1, 1001))
    assert items[0] == {"job_id": "job-b", "bucket": BUCKET, "chunk": 1}  # round 0, attempt 0 left out


def test_a_resume_gets_a_manifest_of_its_own_with_each_chunk_at_its_step(s3: None) -> None:
    new_job_manifest("job-c", BUCKET, "job-c", [1, 2, 3])
    points = [ChunkRef(job_id="job-c", bucket=BUCKET, chunk=3, round=1, attempt=2)]

    resumed = write_manifest("job-c", BUCKET, "job-c-resume-1", points)

    assert resumed.manifest_key != manifest_key("job-c", "job-c")
    assert [ChunkRef.model_validate(i) for i in read(resumed.manifest_key)] == points
    assert len(read(manifest_key("job-c", "job-c"))) == 3  # the first execution's is kept
