"""S3 object access: streamed reads, uploads from disk or a stream, JSON documents, prefix deletes.

Large objects never pass through memory whole: reads are Powertools' seekable ``S3Object`` (range
requests), uploads go through boto3's managed transfer (multipart from disk or from a stream).
``concatenate`` joins objects server-side: a multipart upload whose parts are ``UploadPartCopy``
of the sources, small sources (a part must be >= 5 MiB, except the last) read and buffered into a
part, topped up with the head of the next source and the rest of that one copied by range.
Keys come from :mod:`batch_gateway.storage.keys`; clients from :mod:`batch_gateway.storage.aws`.
"""

from __future__ import annotations

import json
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.streaming import S3Object
from botocore.exceptions import ClientError

from batch_gateway.storage.aws import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_COPY_BYTES = 5 * 1024**3  # S3's maximum for one UploadPartCopy
MAX_PARTS = 10_000
COPY_THREADS = 10  # parts copied at once: botocore's default connection pool (one client, thread-safe)


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


class UploadQueue:
    """Uploads local files in a background thread while the caller goes on producing the next.

    Intake's loop is one Python thread; a synchronous upload per chunk would stall it for the
    transfer. At most ``depth`` files wait (so /tmp stays bounded); ``wait`` raises the first
    failed upload. Each file is deleted once uploaded.
    """

    def __init__(self, depth: int = 4) -> None:
        self._client = s3_client()  # made here: creating clients from several threads is unsafe
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="upload")  # boto3 parallelises parts
        self._pending: deque[Future[None]] = deque()
        self._depth = depth

    def _upload(self, path: Path, bucket: str, key: str, content_type: str) -> None:
        self._client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})
        path.unlink()

    def put(self, path: Path, bucket: str, key: str, content_type: str = "application/x-ndjson") -> None:
        """Queue ``path`` for upload to ``key`` (blocks while ``depth`` uploads are waiting)."""
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._upload, path, bucket, key, content_type))

    def wait(self) -> None:
        """Block until every queued file is uploaded; the first failure raises."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        """Drop what is still queued (an abandoned intake) and stop the thread."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)


def upload_stream(stream: IO[bytes], bucket: str, key: str, content_type: str) -> None:
    """Upload what a readable stream yields (a multipart upload for large streams)."""
    s3_client().upload_fileobj(stream, bucket, key, ExtraArgs={"ContentType": content_type})


def download_file(bucket: str, key: str, path: Path) -> None:
    """Download an object to a local file."""
    s3_client().download_file(bucket, key, str(path))


def put_bytes(bucket: str, key: str, body: bytes, content_type: str) -> None:
    """Write a small object from memory."""
    s3_client().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


class RangedReader:
    """A readable stream that fetches each ``read`` as its own ranged GET and holds no connection.

    For the many small objects one process reads side by side (a merge over 1,000 sidecars): an
    open streaming GET each would hold a socket each, past Lambda's 1,024 file descriptors.
    """

    def __init__(self, bucket: str, key: str) -> None:
        self._bucket, self._key, self._position = bucket, key, 0
        self._client = s3_client()
        self._done = False

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        end = "" if size < 0 else str(self._position + size - 1)
        try:
            response = self._client.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end}"
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidRange":  # at or past the end
                raise
            self._done = True
            return b""
        data: bytes = response["Body"].read()
        self._position += len(data)
        self._done = size < 0 or len(data) < size
        return data


def read_heads(bucket: str, keys: list[str], size: int) -> list[bytes | None]:
    """The first ``size`` bytes (fewer if shorter) of each object, read in parallel, in order;
    None for an object that does not exist."""
    client = s3_client()  # one client shared by the threads (clients are thread-safe; making them is not)

    def head(key: str) -> bytes | None:
        try:
            return client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    with ThreadPoolExecutor(COPY_THREADS) as pool:
        return list(pool.map(head, keys))


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


@dataclass
class Part:
    """One part of a concatenation: byte ranges ``(key, start, end)`` of the sources, in order.

    A part of one range of at least ``MIN_PART_BYTES`` is copied server-side; any other is read
    and uploaded (at most ``MIN_PART_BYTES``, so memory stays bounded).
    """

    ranges: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(end - start for _, start, end in self.ranges)

    @property
    def copied(self) -> bool:
        return len(self.ranges) == 1 and self.size >= MIN_PART_BYTES


def plan_parts(sources: list[tuple[str, int]]) -> list[Part]:
    """The parts that concatenate ``(key, size)`` sources in order, as few bytes read as S3 allows."""
    parts: list[Part] = []
    buffered = Part()
    for key, size in sources:
        position = 0
        while position < size:
            if not buffered.ranges and size - position >= MIN_PART_BYTES:
                take = min(size - position, MAX_COPY_BYTES)
                parts.append(Part([(key, position, position + take)]))
            else:  # too small to copy: buffer it, or top a buffered part up to the minimum
                take = min(size - position, MIN_PART_BYTES - buffered.size)
                buffered.ranges.append((key, position, position + take))
                if buffered.size >= MIN_PART_BYTES:
                    parts.append(buffered)
                    buffered = Part()
            position += take
    if buffered.ranges:
        parts.append(buffered)
    return parts


def _send_part(client: S3Client, bucket: str, target: dict[str, Any], number: int, part: Part) -> str:
    """Copy or upload one part; its ETag."""
    if part.copied:
        key, start, end = part.ranges[0]
        copied = client.upload_part_copy(
            **target,
            PartNumber=number,
            CopySource={"Bucket": bucket, "Key": key},
            CopySourceRange=f"bytes={start}-{end - 1}",
        )
        return copied["CopyPartResult"]["ETag"]
    body = b"".join(
        client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"].read()
        for key, start, end in part.ranges
    )
    return client.upload_part(**target, PartNumber=number, Body=body)["ETag"]


def concatenate(sources: list[tuple[str, int]], bucket: str, key: str, content_type: str) -> int:
    """Write the ``(key, size)`` sources, in order, as one object, server-side; the parts it took."""
    parts = plan_parts(sources)
    if len(parts) > MAX_PARTS:
        raise ValueError(f"{len(parts)} parts are more than S3's {MAX_PARTS} per object")
    client = s3_client()
    if not parts:
        client.put_object(Bucket=bucket, Key=key, Body=b"", ContentType=content_type)
        return 0
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
    target: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload["UploadId"]}
    try:
        with ThreadPoolExecutor(COPY_THREADS) as pool:
            etags = list(
                pool.map(
                    lambda n, p: _send_part(client, bucket, target, n, p), range(1, len(parts) + 1), parts
                )
            )
        client.complete_multipart_upload(
            **target,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
        )
    except BaseException:
        client.abort_multipart_upload(**target)  # no orphaned parts billed on
        raise
    return len(parts)
