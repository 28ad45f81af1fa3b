"""S3 object access: streamed reads, uploads from disk or a stream, JSON documents, prefix deletes.

Large objects never pass through memory whole: reads are Powertools' seekable ``S3Object`` (range
requests), uploads go through boto3's managed transfer (multipart from disk or from a stream).
Keys come from :mod:`batch_gateway.storage.keys`; clients from :mod:`batch_gateway.storage.aws`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from aws_lambda_powertools.utilities.streaming import S3Object
from botocore.exceptions import ClientError

from batch_gateway.storage.aws import s3_client


def open_object(bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
    """A seekable stream over an object (Powertools streaming: range reads, never the whole body)."""
    return S3Object(bucket=bucket, key=key, version_id=version_id, boto3_client=s3_client())


def object_exists(bucket: str, key: str) -> bool:
    """Whether the object exists (a HEAD request; other errors than not-found raise)."""
    try:
        s3_client().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def upload_file(path: Path, bucket: str, key: str, content_type: str = "application/x-ndjson") -> None:
    """Upload a local file; large files go up as a multipart upload streamed from disk."""
    s3_client().upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})


def upload_stream(stream: IO[bytes], bucket: str, key: str, content_type: str) -> None:
    """Upload what a readable stream yields (a multipart upload for large streams)."""
    s3_client().upload_fileobj(stream, bucket, key, ExtraArgs={"ContentType": content_type})


def download_file(bucket: str, key: str, path: Path) -> None:
    """Download an object to a local file."""
    s3_client().download_file(bucket, key, str(path))


def put_json(bucket: str, key: str, document: Any) -> None:
    """Write a document as indented JSON (values JSON cannot hold are written as strings)."""
    body = json.dumps(document, indent=2, default=str).encode()
    s3_client().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def delete_prefix(bucket: str, prefix: str) -> None:
    """Delete every object under a prefix, a page (up to 1000 keys) per request."""
    client = s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})  # type: ignore[typeddict-item]
