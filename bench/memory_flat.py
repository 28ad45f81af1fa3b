"""Peak memory of intake and collect at growing file sizes: it must stay flat.

Each measurement runs in a fresh interpreter (peak RSS is per process). The domain code runs for
real (line streaming, validation, request building, chunk spooling; provider-result spooling,
re-ordering, result serialisation); S3 and DynamoDB are replaced by local-disk sinks, because moto
keeps every object in memory and would measure itself, not us. On Lambda the same code streams to S3.

    .venv/bin/python bench/memory_flat.py [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MESSAGE = (
    "Classify this support ticket as billing, bug, how-to or account. Ticket: {n} — I was charged twice."
)


def _write_input(path: Path, count: int) -> None:
    with path.open("w") as out:
        for n in range(1, count + 1):
            out.write(
                json.dumps({"custom_id": f"ticket-{n:07d}", "user_message": MESSAGE.format(n=n)}) + "\n"
            )


def _local_storage(root: Path) -> None:
    """Point the storage module's S3 calls at a local directory (bench only)."""
    from batch_gateway import storage

    def upload_file(path: Path, bucket: str, key: str, content_type: str = "") -> None:
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def open_object(bucket: str, key: str, version_id: str | None = None) -> Any:
        return (root / key).open("rb")

    storage.upload_file = upload_file  # type: ignore[assignment]
    storage.open_object = open_object  # type: ignore[assignment]


def _run_intake(count: int, root: Path) -> dict[str, float]:
    from batch_gateway.intake import split_into_chunks
    from batch_gateway.models import JobSpec
    from batch_gateway.settings import Settings

    source = root / "input.jsonl"
    _write_input(source, count)
    _local_storage(root)
    settings = Settings.model_validate({"DATA_BUCKET": "bench"})
    started = time.perf_counter()
    with source.open("rb") as stream, tempfile.TemporaryDirectory() as work:
        report = split_into_chunks(
            stream,
            job_id="bench",
            spec=JobSpec(provider="openai", model="m"),
            settings=settings,
            workdir=Path(work),
        )
    assert report.accepted, report
    assert report.request_count == count, report
    return {"seconds": time.perf_counter() - started}


def _provider_results(count: int) -> Iterator[Any]:
    from batch_gateway.models import LLMResponse
    from batch_gateway.providers.base import ProviderResult

    # Provider order is not input order: emit odd lines, then even lines.
    for start in (1, 2):
        for n in range(start, count + 1, 2):
            yield ProviderResult(
                provider_custom_id=f"ticket-{n:07d}",
                outcome="succeeded",
                response=LLMResponse(
                    content=f"billing — ticket {n} " + "x" * 200, usage={"total_tokens": 60}
                ),
                raw={"id": f"batch_req_{n}", "custom_id": f"ticket-{n:07d}"},
            )


def _run_collect(count: int, root: Path) -> dict[str, float]:
    from batch_gateway import collection, storage
    from batch_gateway.chunks import ChunkState
    from batch_gateway.models import BatchStatus

    index = root / storage.chunk_index_key("bench", 1)
    index.parent.mkdir(parents=True)
    with index.open("w") as out:
        for n in range(1, count + 1):
            out.write(
                json.dumps(
                    {"line": n, "custom_id": f"ticket-{n:07d}", "provider_custom_id": f"ticket-{n:07d}"}
                )
            )
            out.write("\n")
    _local_storage(root)
    state = ChunkState(
        job_id="bench",
        bucket="b",
        chunk=1,
        provider="openai",
        provider_batch_id="batch_1",
        status=BatchStatus.COMPLETED,
        wait_seconds=1,
    )
    spool = collection._Spool(root / "spool.bin")
    started = time.perf_counter()
    spool.fill(_provider_results(count))
    written = 0
    with (root / "results.jsonl").open("wb") as out:
        counts = collection.ResultCounts()
        for _ in collection._write_lines(collection._ordered_results(state, spool, None, counts, {}), out):
            written += 1
    assert written == count == counts.succeeded
    return {"seconds": time.perf_counter() - started}


def _child(stage: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        figures = (_run_intake if stage == "intake" else _run_collect)(count, Path(tmp))
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def _measure(stage: str, count: int) -> dict[str, float]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, __file__, "--child", stage, str(count)], check=True, capture_output=True, text=True
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'stage':<8} {'lines':>9} {'peak RSS MB':>12} {'seconds':>8} {'lines/s':>9}")
    report: dict[str, dict[str, float]] = {}
    for stage in ("intake", "collect"):
        for size in sizes:
            figures = _measure(stage, size)
            report[f"{stage}.{size}"] = figures
            print(
                f"{stage:<8} {size:>9} {figures['peak_rss_mb']:>12.1f} {figures['seconds']:>8.2f} "
                f"{size / figures['seconds']:>9.0f}"
            )
        low, high = report[f"{stage}.{sizes[0]}"], report[f"{stage}.{sizes[-1]}"]
        print(
            f"{stage}: peak RSS x{high['peak_rss_mb'] / low['peak_rss_mb']:.2f} for x{sizes[-1] / sizes[0]:.0f} lines"
        )


if __name__ == "__main__":
    main()
