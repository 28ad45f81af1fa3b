"""results.jsonl from staged chunk files: copied server-side when each file is one run of lines,
merged by line when they interleave; both give the same bytes, in input order (moto's S3, which
enforces the 5 MiB minimum part size)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import boto3
import pytest

from batch_gateway.storage.results import StagedWriter, keyed_result, staged_spans, upload_staged
from batch_gateway.storage.s3 import MIN_PART_BYTES, plan_parts
from batch_gateway.workflow.finalize import merged_results, write_results

BUCKET = "staging-bucket"


@pytest.fixture
def s3(mocked_aws: None) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)


def result(line: int, size: int) -> bytes:
    return json.dumps({"custom_id": f"id-{line}", "line": line, "content": "x" * size}).encode()


def stage(tmp_path: Path, key: str, lines: list[int], size: int) -> None:
    path = tmp_path / key.replace("/", "_")
    with path.open("wb") as out:
        writer = StagedWriter(out)
        for line in lines:
            writer.write(line, result(line, size))
    upload_staged(path, writer, BUCKET, key)


def results_file() -> bytes:
    return boto3.client("s3").get_object(Bucket=BUCKET, Key="results/job/results.jsonl")["Body"].read()


def test_contiguous_chunks_are_copied_server_side_byte_for_byte_as_the_merge_writes(
    s3: None, tmp_path: Path
) -> None:
    # Small files get buffered into a part, a buffered part is topped up from the next file and
    # the rest of that one copied by range; a file over 5 MiB is copied whole.
    layout = [
        (1, 3_000, 1_000),
        (3_001, 9_000, 1_000),
        (12_001, 10, 50),
        (12_011, 7_000, 900),
        (19_011, 5, 10),
    ]
    keys = []
    for number, (first, count, size) in enumerate(layout):
        keys.append(f"staging/job/chunk-{number:04d}.results.jsonl")
        stage(tmp_path, keys[-1], list(range(first, first + count)), size)
    shuffled = random.Random(7).sample(keys, len(keys))  # chunk rows need not come in line order

    assert write_results(BUCKET, shuffled, "results/job/results.jsonl") == "copy"
    copied = results_file()
    lines = [json.loads(raw)["line"] for raw in copied.splitlines()]
    assert lines == list(range(1, 19_016))
    assert copied == b"".join(merged_results(BUCKET, staged_spans(BUCKET, keys)))


def test_interleaved_chunks_and_skipped_lines_are_merged_into_input_order(s3: None, tmp_path: Path) -> None:
    stage(tmp_path, "staging/job/chunk-0000.results.jsonl", [1, 2, 5, 6, 9], 20)  # one model
    stage(tmp_path, "staging/job/chunk-0001.results.jsonl", [3, 7, 8], 20)  # another model
    stage(tmp_path, "staging/job/invalid.results.jsonl", [4, 10], 20)  # lines skipped at intake
    keys = ["staging/job/chunk-0000.results.jsonl", "staging/job/chunk-0001.results.jsonl"]
    keys.append("staging/job/invalid.results.jsonl")

    assert write_results(BUCKET, keys, "results/job/results.jsonl") == "merge"
    assert results_file() == b"".join(result(line, 20) + b"\n" for line in range(1, 11))


def test_every_part_but_the_last_is_at_least_the_minimum_and_the_parts_cover_every_byte() -> None:
    sources = [("a", 10), ("b", MIN_PART_BYTES * 2 + 3), ("c", 1), ("d", MIN_PART_BYTES - 1), ("e", 7)]
    parts = plan_parts(sources)
    assert all(part.size >= MIN_PART_BYTES for part in parts[:-1])
    covered = [(key, start, end) for part in parts for key, start, end in part.ranges]
    for key, size in sources:
        spans = sorted((start, end) for k, start, end in covered if k == key)
        assert spans[0][0] == 0
        assert spans[-1][1] == size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert any(part.copied for part in parts)  # the big source's rest goes server-side


def test_queued_uploads_all_arrive_and_their_local_files_are_removed(s3: None, tmp_path: Path) -> None:
    from batch_gateway.storage.s3 import UploadQueue

    queue = UploadQueue(depth=2)
    paths = []
    for number in range(5):
        paths.append(tmp_path / f"part-{number}")
        paths[-1].write_bytes(b"chunk %d\n" % number)
        queue.put(paths[-1], BUCKET, f"staging/job/part-{number}")
    queue.wait()
    queue.close()
    client = boto3.client("s3")
    bodies = [client.get_object(Bucket=BUCKET, Key=f"staging/job/part-{n}")["Body"].read() for n in range(5)]
    assert bodies == [b"chunk %d\n" % n for n in range(5)]
    assert not any(path.exists() for path in paths)


def test_a_long_line_index_is_read_in_ranges_and_still_merges_every_line(s3: None, tmp_path: Path) -> None:
    # Two models alternating line by line: each sidecar holds 15,000 runs (~150 KB, several GETs).
    stage(tmp_path, "staging/job/chunk-0000.results.jsonl", list(range(1, 30_001, 2)), 5)
    stage(tmp_path, "staging/job/chunk-0001.results.jsonl", list(range(2, 30_001, 2)), 5)
    keys = ["staging/job/chunk-0000.results.jsonl", "staging/job/chunk-0001.results.jsonl"]

    assert write_results(BUCKET, keys, "results/job/results.jsonl") == "merge"
    assert [json.loads(raw)["line"] for raw in results_file().splitlines()] == list(range(1, 30_001))


def test_a_chunk_staged_before_the_sidecar_existed_is_still_merged(s3: None, tmp_path: Path) -> None:
    # A job collected partly by the previous version (keyed lines, no sidecar) finalizes after an upgrade.
    stage(tmp_path, "staging/job/chunk-0000.results.jsonl", [1, 2, 3], 20)
    old = b"".join(keyed_result(line, result(line, 20), "succeeded") for line in (4, 5))
    boto3.client("s3").put_object(Bucket=BUCKET, Key="staging/job/chunk-0001.results.jsonl", Body=old)
    keys = ["staging/job/chunk-0000.results.jsonl", "staging/job/chunk-0001.results.jsonl"]

    assert write_results(BUCKET, keys, "results/job/results.jsonl") == "merge"
    assert results_file() == b"".join(result(line, 20) + b"\n" for line in range(1, 6))
