"""Intake and collect as the domain code runs them, with S3 and DynamoDB replaced by local sinks.

Run as a child process (one fresh interpreter per measurement: peak RSS is per process):

    python bench/domain.py throughput INPUT COUNT REPEATS   # intake vs the naive baseline, items/s
    python bench/domain.py intake INPUT COUNT ROOT          # peak RSS of one intake; stages into ROOT
    python bench/domain.py collect ROOT COUNT               # peak RSS of collecting every staged chunk

The naive baseline does per line what a first version would: ``json.loads``, ``BatchItem(**d)``,
the project's own ``build_openai_request``, ``json.dumps`` of it, written to one file. Intake does
everything it does on Lambda: validation with explanations, duplicate detection, provider-id
mapping, per-model grouping, chunk splitting by count and bytes, index files, "upload" (a copy).

Collect runs ``collection.collect_chunk`` for each chunk in turn, in one process, as one warm
Lambda container would if it got every chunk of the job: each invocation handles one chunk of the
default size (10,000 items), so the 1M-line job is 100 invocations of 10,000 items each.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload  # bench modules sit beside this file

JOB = "bench"
MARK = "BENCH_RESULT "


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _settings() -> Any:
    from batch_gateway.settings import Settings

    return Settings.model_validate({"DATA_BUCKET": "bench", "JOBS_TABLE": "jobs", "RESULTS_TABLE": "results"})


def _spec() -> Any:
    from batch_gateway.models import JobSpec

    return JobSpec(provider="openai", model=workload.MODEL, system_prompt=workload.SYSTEM_PROMPT)


def run_intake(source: Path, count: int, root: Path) -> dict[str, Any]:
    from batch_gateway.intake.split import split_into_chunks

    workload.use_local_storage(root)
    started = time.perf_counter()
    with source.open("rb") as stream, tempfile.TemporaryDirectory(prefix="intake-") as work:
        report = split_into_chunks(stream, job_id=JOB, spec=_spec(), settings=_settings(), workdir=Path(work))
    seconds = time.perf_counter() - started
    assert report.accepted, report.reason
    assert report.request_count == count, (report.request_count, count)
    return {"seconds": seconds, "chunks": len(report.chunks)}


def run_baseline(source: Path, count: int, target: Path) -> dict[str, Any]:
    from batch_gateway.models import BatchItem
    from batch_gateway.providers.requests import build_openai_request

    spec = _spec()
    started = time.perf_counter()
    written = 0
    with source.open("rb") as lines, target.open("w", encoding="utf-8") as out:
        for raw in lines:
            item = BatchItem(**json.loads(raw))
            out.write(json.dumps(build_openai_request(item.custom_id, item, spec)) + "\n")
            written += 1
    seconds = time.perf_counter() - started
    assert written == count
    return {"seconds": seconds}


def throughput(source: Path, count: int, repeats: int) -> dict[str, Any]:
    """Best of ``repeats`` for each, alternating, so both see the same machine."""
    ours, baseline = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-sink-") as sink:
            ours.append(run_intake(source, count, Path(sink))["seconds"])
        with tempfile.TemporaryDirectory(prefix="bench-baseline-") as sink:
            baseline.append(run_baseline(source, count, Path(sink) / "out.jsonl")["seconds"])
    return {
        "items_per_s": count / min(ours),
        "baseline_items_per_s": count / min(baseline),
        "seconds": ours,
        "baseline_seconds": baseline,
    }


def _silence_metrics() -> None:
    try:
        from batch_gateway.observability import metrics
    except ImportError:  # pragma: no cover - older layer
        return
    metrics.clear_metrics()


def run_collect(root: Path, count: int) -> dict[str, Any]:
    from batch_gateway.models import BatchStatus
    from batch_gateway.storage import jobs
    from batch_gateway.storage.keys import chunk_results_key, staging_prefix
    from batch_gateway.workflow import collect as collection
    from batch_gateway.workflow.payloads import Backoff, ChunkState, RetryPolicy

    workload.use_local_storage(root)
    settings = _settings()
    chunks = sorted((root / staging_prefix(JOB)).glob("chunk-*.requests.jsonl"))
    assert chunks, f"nothing staged under {root}"
    current: dict[str, Path] = {}
    collection.provider_for = lambda name, settings: workload.LocalOutputProvider(current["requests"])  # type: ignore[assignment]
    rss_before = _rss_mb()
    started = time.perf_counter()
    items = 0
    for path in chunks:
        number = int(path.name.split("-")[1].split(".")[0])
        current["requests"] = path
        state = ChunkState(
            job_id=JOB,
            bucket="bench",
            chunk=number,
            provider="openai",
            model=workload.MODEL,
            provider_batch_id=f"batch_{number}",
            status=BatchStatus.COMPLETED,
            wait_seconds=600,
            terminal=True,
        )
        done = collection.collect_chunk(
            state, RetryPolicy(), Backoff(initial_seconds=30, factor=2, max_seconds=600), settings
        )
        assert done.next_step == "done", done
        row = jobs.JobsRepository("jobs").get_chunk(JOB, number)
        items += int(row["counts"]["succeeded"])
        _silence_metrics()
        (root / chunk_results_key(JOB, number)).unlink()  # as if uploaded: keep the disk small
    assert items == count, (items, count)
    return {"seconds": time.perf_counter() - started, "chunks": len(chunks), "rss_before_mb": rss_before}


def _child(argv: list[str]) -> None:
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "BatchGatewayBench")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    kind = argv[0]
    if kind == "throughput":
        figures = throughput(Path(argv[1]), int(argv[2]), int(argv[3]))
    elif kind == "intake":
        figures = run_intake(Path(argv[1]), int(argv[2]), Path(argv[3]))
    elif kind == "collect":
        figures = run_collect(Path(argv[1]), int(argv[2]))
    else:
        raise SystemExit(f"unknown measurement {kind!r}")
    figures["peak_rss_mb"] = _rss_mb()
    print(MARK + json.dumps(figures), flush=True)


def measure(*args: str, timeout: float = 900) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its figures."""
    import subprocess

    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench/domain.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARK):
            figures: dict[str, Any] = json.loads(line.removeprefix(MARK))
            return figures
    raise RuntimeError(f"bench/domain.py {' '.join(args)} printed no result:\n{done.stdout[-2000:]}")


def clean(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    _child(sys.argv[1:])
