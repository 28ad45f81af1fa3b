"""The Python client's memory while it reads a large job's results: ``iter_results`` vs ``get_results``.

One real job of N lines (default 25,000) runs through the offline stack (``LocalGateway``, the
emulator answering at once), and ``local up``'s API front serves it on a free port. Then a fresh
interpreter per measurement, so each peak RSS is the client's alone: it imports the client,
notes its RSS, and reads the job's results through the API (the presigned results.jsonl) either
with ``iter_results`` (one result at a time, counted and dropped) or ``get_results`` (the list
the reference library returns), and reports its peak RSS. Flat means: ``iter_results``' peak over
the import baseline is the same after 2,500 results as after all N. The client's import time
(median of 5 fresh interpreters) is reported beside it.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MARK = "CLIENT_RESULT "


def _rss_mb() -> float:
    """Peak RSS of this process: VmHWM (reset by exec; ru_maxrss would carry the parent's peak over
    from the fork, and the parent here holds the whole offline stack)."""
    try:
        status = Path("/proc/self/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, endpoint: str, job_id: str) -> None:
    """In a fresh interpreter that imports nothing but the client: read every result, note peak RSS."""
    from batch_gateway_client import GatewayBatchProcessor

    baseline = _rss_mb()
    processor = GatewayBatchProcessor(provider="openai", model="gpt-4o-mini", endpoint=endpoint)
    count, at_tenth = 0, 0.0
    if mode == "iter":
        for count, _result in enumerate(processor.iter_results(job_id), start=1):
            if count == 2_500:
                at_tenth = _rss_mb()
    else:
        count = len(processor.get_results(job_id))
    figures = {"count": count, "baseline_mb": baseline, "peak_mb": _rss_mb(), "at_2500_mb": at_tenth}
    print(MARK + json.dumps(figures))


def _measure(mode: str, endpoint: str, job_id: str) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, __file__, mode, endpoint, job_id],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    line = next((line for line in done.stdout.splitlines() if line.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"the client measurement failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(line.removeprefix(MARK))
    return figures


def run(lines: int, tmp: Path) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import workload  # bench modules sit beside this file

    from batch_gateway.models import JobSpec
    from batch_gateway_local.api_front.server import api_server_for
    from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions

    source = tmp / f"client-{lines}.jsonl"
    workload.write_input(source, lines)
    options = LocalOptions(polls_to_complete=1, stack_name="batch-gateway-bench-client")
    with LocalGateway(options) as gateway, api_server_for(gateway, port=0) as front:
        spec = JobSpec(provider="openai", model=workload.MODEL, system_prompt=workload.SYSTEM_PROMPT)
        job_id = gateway.submit_file(source, spec, key=f"inbox/{source.name}")
        started = time.time()
        job = gateway.wait(job_id, timeout_s=1500)
        job_s = time.time() - started
        if job.counts.succeeded + job.counts.errored != lines:
            raise RuntimeError(f"the bench job did not answer every line: {job.counts}")
        full = _measure("iter", front.url, job_id)
        listed = _measure("list", front.url, job_id)
    if full["count"] != lines or listed["count"] != lines:
        raise RuntimeError(f"the client read {full['count']} / {listed['count']} of {lines} results")
    return {
        "lines": lines,
        "job_s": round(job_s, 1),
        "iter_results_peak_mb": round(full["peak_mb"], 1),
        "iter_results_growth_mb": round(full["peak_mb"] - full["baseline_mb"], 1),
        "iter_results_growth_mb_at_2500": round(full["at_2500_mb"] - full["baseline_mb"], 1),
        "get_results_peak_mb": round(listed["peak_mb"], 1),
        "get_results_growth_mb": round(listed["peak_mb"] - listed["baseline_mb"], 1),
        "import_baseline_mb": round(full["baseline_mb"], 1),
        "import_s": round(statistics.median(_import_times(5)), 3),
    }


def _import_times(repeats: int) -> list[float]:
    code = "import time; t = time.perf_counter(); import batch_gateway_client; print(time.perf_counter() - t)"
    return [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)  # noqa: S603
        for _ in range(repeats)
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4:
        _child(sys.argv[1], sys.argv[2], sys.argv[3])
    else:  # a run of its own: python bench/client_stream.py [LINES]
        import tempfile

        with tempfile.TemporaryDirectory(prefix="batch-gateway-client-bench-") as name:
            print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 25_000, Path(name)), indent=2))
