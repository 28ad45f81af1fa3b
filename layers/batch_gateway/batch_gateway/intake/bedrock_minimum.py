"""Bedrock's minimum records per job, applied when a file is staged.

Bedrock refuses a batch inference job with fewer records than a per-model quota (100 by default,
``BEDROCK_MIN_RECORDS``). Intake splits a file into chunks while streaming it, so the last chunk of a
model (or one closed early when many models are open) can end up below the minimum although the
model has plenty of lines. Such a chunk is topped up with lines moved from its neighbour of the same
model: the donor stays at or above the minimum, both stay in input order, and nothing is lost. A
model with fewer lines in the whole file than the minimum cannot be helped: the file is rejected
before any provider call, with a reason that says what to do.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from batch_gateway.intake.chunk_writer import ChunkManifest
from batch_gateway.lines import iter_numbered_lines
from batch_gateway.storage.keys import chunk_index_key, chunk_requests_key
from batch_gateway.storage.s3 import download_file, upload_file

KeyFunction = Callable[[str, int], str]


def below_minimum_reason(chunks: list[ChunkManifest], min_records: int) -> str | None:
    """Why the file cannot run on Bedrock (a model with fewer lines than the minimum), or None."""
    totals: dict[str, int] = {}
    for chunk in chunks:
        totals[chunk.model or ""] = totals.get(chunk.model or "", 0) + chunk.item_count
    short = [f"{count} for {model}" for model, count in totals.items() if count < min_records]
    if not short:
        return None
    return (
        f"rejected: Amazon Bedrock batch inference needs at least {min_records} records per job and this "
        f"file has {', '.join(short)}: add lines to reach {min_records} for each model, or send the file "
        "with provider anthropic (Message Batches take any number of requests)"
    )


def top_up_short_chunks(
    chunks: list[ChunkManifest], *, job_id: str, bucket: str, min_records: int, workdir: Path
) -> str | None:
    """Move lines between a model's chunks until every chunk has ``min_records``; a reason if impossible.

    Call after :func:`below_minimum_reason` found every model large enough.
    """
    for _, group_iter in itertools.groupby(
        sorted(chunks, key=lambda c: (c.model or "", c.chunk)), key=_model
    ):
        group = list(group_iter)
        for position, chunk in enumerate(group):
            missing = min_records - chunk.item_count
            if missing <= 0:
                continue
            from_previous = position > 0
            donor = group[position - 1] if from_previous else group[position + 1]
            if donor.item_count - missing < min_records:
                return (
                    f"rejected: cannot make every Bedrock job hold {min_records} records with chunks of "
                    f"{donor.item_count}: set ChunkMaxItems to at least twice BedrockMinRecords"
                )
            moved_bytes = _move_lines(job_id, bucket, donor, chunk, missing, from_previous, workdir)
            donor.item_count -= missing
            chunk.item_count += missing
            donor.byte_count -= moved_bytes
            chunk.byte_count += moved_bytes
    return None


def _model(chunk: ChunkManifest) -> str:
    return chunk.model or ""


def _move_lines(
    job_id: str,
    bucket: str,
    donor: ChunkManifest,
    receiver: ChunkManifest,
    count: int,
    from_previous: bool,
    workdir: Path,
) -> int:
    """Move ``count`` lines: the donor's last ones before the receiver's (a previous donor), or the
    donor's first ones after them (a next donor). Both request and index files; returns request bytes."""
    moved_bytes = 0
    for key_of in (chunk_requests_key, chunk_index_key):
        donor_path, receiver_path = workdir / "donor.jsonl", workdir / "receiver.jsonl"
        download_file(bucket, key_of(job_id, donor.chunk), donor_path)
        download_file(bucket, key_of(job_id, receiver.chunk), receiver_path)
        keep = donor.item_count - count if from_previous else count
        new_donor, new_receiver = workdir / "new-donor.jsonl", workdir / "new-receiver.jsonl"
        with donor_path.open("rb") as source, new_donor.open("wb") as kept, new_receiver.open("wb") as out:
            lines = _lines(source)
            head = itertools.islice(lines, keep)
            if from_previous:
                _write(head, kept)
                moved = _write(lines, out)
                with receiver_path.open("rb") as existing:
                    _write(_lines(existing), out)
            else:
                with receiver_path.open("rb") as existing:
                    _write(_lines(existing), out)
                moved = _write(head, out)
                _write(lines, kept)
        if key_of is chunk_requests_key:
            moved_bytes = moved
        upload_file(new_donor, bucket, key_of(job_id, donor.chunk))
        upload_file(new_receiver, bucket, key_of(job_id, receiver.chunk))
    return moved_bytes


def _lines(source: BinaryIO) -> Iterator[bytes]:
    return (line + b"\n" for _, line in iter_numbered_lines(source) if line.strip())


def _write(lines: Iterator[bytes], out: BinaryIO) -> int:
    written = 0
    for line in lines:
        out.write(line)
        written += len(line)
    return written
