"""Data lifecycle: with ResultsRetentionDays set, results expire in DynamoDB (TTL) and in S3 (lifecycle)."""

from __future__ import annotations

import time
from pathlib import Path

import boto3

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.conftest import write_jsonl

RETENTION_DAYS = 7
DAY = 86_400
OPTIONS = LocalOptions(parameter_overrides=(("ResultsRetentionDays", str(RETENTION_DAYS)),))


def test_results_rows_and_objects_expire_after_the_configured_days(tmp_path: Path) -> None:
    lines: list[dict[str, object] | str] = [
        {"custom_id": "ok-1", "user_message": "Is a late parcel a delivery issue?"},
        "not json",  # skipped at intake: its error row is written by the intake function
        {"custom_id": "ok-2", "user_message": "Is a double charge a billing issue?"},
    ]
    with LocalGateway(OPTIONS) as gateway:
        started = time.time()
        source = write_jsonl(tmp_path / "tickets.jsonl", lines)
        job_id = gateway.submit_file(
            source, JobSpec(provider="openai", model="gpt-4o-mini", on_invalid="skip")
        )
        job = gateway.wait(job_id, timeout_s=120)
        rows = list(gateway.results_table_rows(job_id))
        ttl = boto3.client("dynamodb").describe_time_to_live(TableName=gateway.outputs["ResultsTableName"])
        rules = boto3.client("s3").get_bucket_lifecycle_configuration(Bucket=gateway.bucket)["Rules"]

    assert job.status.value == "completed"
    assert sorted(row["custom_id"] for row in rows) == ["line-2", "ok-1", "ok-2"]
    expected = started + RETENTION_DAYS * DAY
    for row in rows:  # answered rows (collect) and the skipped line's row (intake) alike
        assert expected - 60 <= row["expires_at"] <= expected + 600, row
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    by_id = {rule["ID"]: rule for rule in rules}
    assert by_id["expire-results"]["Status"] == "Enabled"
    assert by_id["expire-results"]["Expiration"]["Days"] == RETENTION_DAYS
    assert by_id["expire-old-versions-and-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 1
    }
