"""The boto3 clients and table handles the layer shares.

Every S3, DynamoDB and Step Functions call of the layer gets its client here, made when it is
needed (so tests and the offline stack, which point boto3 at moto or the local stack through the
environment, reach the same endpoints as the code under test). boto3 caches credentials and
endpoint data per session, so making a client per call costs little next to the call itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_stepfunctions.client import SFNClient


def s3_client() -> S3Client:
    """An S3 client."""
    return boto3.client("s3")


def stepfunctions_client() -> SFNClient:
    """A Step Functions client (starting executions, sending task tokens back)."""
    return boto3.client("stepfunctions")


def dynamodb_table(name: str) -> Table:
    """A DynamoDB table resource by name."""
    return boto3.resource("dynamodb").Table(name)
