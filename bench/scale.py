"""The largest jobs: intake and finalize time on Lambda, AWS cost per 1M items at the template's
chunk size, and a 10M-line job under OpenAI's enqueued-token quotas (issue 13, items 5 and 6).

Lambda has no timer here, so each projection is a measured figure on this machine times a stated
model; every assumption is a named constant below and is printed in the results:

- **Intake** (one Python thread): CPU seconds per line, measured (``time.process_time``, best of
  2 in a fresh process on 100k bench lines), times the lines in ``MaxInputBytes`` of such lines,
  divided by the function's vCPU share (Lambda: 1,769 MB = 1 vCPU, proportional below; a single
  thread never uses more than one), plus the staged bytes uploaded while the loop waits, at
  ``S3_UPLOAD_MB_S``. One Lambda vCPU (Graviton2) is taken as one core of this machine.
- **Finalize**: the copy path's S3 calls (one ``UploadPartCopy`` per part, 10 at once) at
  ``COPY_PART_S`` each; the merge path (several models, skipped lines): CPU per line measured on
  staged files of realistic results (an OpenAI answer each), divided by finalize's vCPU share,
  plus reading and writing every byte at ``S3_STREAM_MB_S``.
- **Cost**: ``aws_cost.py`` re-priced with the chunk count of the template's ``ChunkMaxItems``
  (per-chunk calls, invocations and transitions scaled, per-item ones kept) plus
  ``DISTRIBUTED_MAP_TRANSITIONS`` per chunk for its child execution, without the results rows.
- **10M lines under a quota**: chunks sized to fit ``QUOTA_FILL`` of the quota at the measured
  prompt tokens per item; as many in flight as fit, the rest parked (``WAKE_TRANSITIONS`` when the
  ledger wakes each once); provider batches of 1 h and 24 h.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload  # bench modules sit beside this file

LAMBDA_MB_PER_VCPU = 1769
S3_UPLOAD_MB_S = 80.0  # one PUT stream from Lambda (boto3 uploads a file under 8 MB in one PUT)
S3_REQUEST_S = 0.05  # latency of one S3 request from Lambda
S3_STREAM_MB_S = 80.0  # one GET or upload stream
COPY_PART_S = 1.0  # one UploadPartCopy of a part up to ~60 MB (server-side), conservatively
COPY_THREADS = 10  # as storage.s3.COPY_THREADS
SIDECAR_GET_S = 0.05
DISTRIBUTED_MAP_TRANSITIONS = 4  # per chunk: the child execution's start and end, item read, result
WAKE_TRANSITIONS = 4  # a parked chunk woken once: callback returns, choice, reserve, submit entry
QUOTA_FILL = 0.9
QUOTAS = {"tier 1": 2_000_000, "tier 2": 20_000_000, "tier 4": 1_000_000_000}
JOB_LINES = 10_000_000
FINALIZE_CHUNKS = 1000
FINALIZE_CHUNK_ITEMS = 10_000
MAX_QUEUE_WAIT_S = 7 * 86_400
SAMPLE_LINES = 100_000
GIB = 1024**3


def _memory(function: str) -> int:
    from orchestration import TEMPLATE

    from batch_gateway_local.stack.sam.template import load_template

    template = load_template(TEMPLATE)
    default = int(template["Globals"]["Function"].get("MemorySize", 128))
    return int(template["Resources"][function]["Properties"].get("MemorySize", default))


def vcpu_share(memory_mb: int) -> float:
    """The vCPU a single thread gets: proportional to memory, at most one."""
    return min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)


# ------------------------------------------------------------------ measured in a child process
def _measure_intake(source: Path) -> dict[str, Any]:
    import domain

    best: dict[str, Any] = {}
    for _ in range(2):
        with tempfile.TemporaryDirectory(prefix="scale-intake-") as root:
            cpu = time.process_time()
            chunks = domain.run_intake(source, SAMPLE_LINES, Path(root))["chunks"]
            seconds = time.process_time() - cpu
            sizes = dict.fromkeys(("requests", "index"), 0)
            for path in Path(root).rglob("chunk-*.jsonl"):
                sizes[path.name.split(".")[1]] += path.stat().st_size
        if not best or seconds < best["cpu_s"]:
            best = {"cpu_s": seconds, "chunks": chunks, "sizes": sizes}
    return {
        "cpu_us_per_line": best["cpu_s"] / SAMPLE_LINES * 1e6,
        "input_bytes_per_line": source.stat().st_size / SAMPLE_LINES,
        "chunk_items": SAMPLE_LINES / best["chunks"],
        # one requests file and one index file per chunk (their mean sizes)
        "staged_bytes_per_chunk": [size / best["chunks"] for size in best["sizes"].values()],
    }


def _result_line(n: int) -> bytes:
    """A staged result as Collect writes it: an OpenAI answer parsed into a BatchResult."""
    from batch_gateway.models import BatchResult
    from batch_gateway.providers.openai.parsing import parse_openai_line

    found = parse_openai_line(workload.openai_output_line(f"ticket-{n:07d}", n))
    result = BatchResult(custom_id=f"ticket-{n:07d}", line=n, response=found.response, raw=found.raw)
    return result.model_dump_json().encode()


def _measure_merge(root: Path, files: int = 20, per_file: int = 5000) -> dict[str, Any]:
    """CPU per line of the merge path over interleaved staged files (read from local disk)."""
    from batch_gateway.storage import results
    from batch_gateway.storage.results import StagedWriter

    keys = []
    for number in range(files):  # file k holds lines k+1, k+1+files, ...: fully interleaved
        key = f"staged-{number}"
        with (root / key).open("wb") as out:
            writer = StagedWriter(out)
            for line in range(number + 1, files * per_file + 1, files):
                writer.write(line, _result_line(line))
        (root / (key + results.LINES_SUFFIX)).write_bytes(writer.sidecar())
        keys.append(key)
    workload.use_local_storage(root)  # the staged files and their sidecars are read from local disk
    cpu = time.process_time()
    written = 0
    with (root / "results.jsonl").open("wb") as out:
        for _, payload in heapq.merge(*(results.iter_staged("bench", key) for key in keys)):
            written += out.write(payload + b"\n")
    lines = files * per_file
    return {
        "cpu_us_per_line": (time.process_time() - cpu) / lines * 1e6,
        "result_bytes_per_line": written / lines,
    }


def _child(out: Path) -> None:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "BatchGatewayBench")
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        source = Path(tmp) / "input.jsonl"
        workload.write_input(source, SAMPLE_LINES)
        figures = {"intake": _measure_intake(source), "merge": _measure_merge(Path(tmp))}
    out.write_text(json.dumps(figures))


def measure() -> dict[str, Any]:
    import subprocess

    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        out = Path(tmp) / "figures.json"
        done = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, __file__, str(out)], capture_output=True, text=True, timeout=900, check=False
        )
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"bench/scale.py failed:\n{done.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


# ------------------------------------------------------------------ projections
def _upload_seconds(size: float) -> float:
    """One file through boto3's managed upload: one PUT under 8 MiB, else up to 10 parts at once."""
    streams = min(10, max(1, math.ceil(size / (8 * 1024 * 1024))))
    return S3_REQUEST_S + size / (S3_UPLOAD_MB_S * 1e6 * streams)


def intake_projection(measured: dict[str, Any], max_input_bytes: int, memory_mb: int) -> dict[str, Any]:
    """Minutes to stage ``max_input_bytes`` of bench lines: CPU at the vCPU share, plus uploads
    (in the loop today; overlapped when the chunk writer queues them: ``s3.UploadQueue``)."""
    lines = max_input_bytes / measured["input_bytes_per_line"]
    cpu_s = lines * measured["cpu_us_per_line"] / 1e6 / vcpu_share(memory_mb)
    chunks = lines / measured["chunk_items"]
    upload_s = chunks * sum(_upload_seconds(size) for size in measured["staged_bytes_per_chunk"])
    return {
        "memory_mb": memory_mb,
        "vcpu": round(vcpu_share(memory_mb), 2),
        "lines": round(lines),
        "chunks": math.ceil(chunks),
        "cpu_s": round(cpu_s),
        "upload_s": round(upload_s),
        "minutes": round((cpu_s + upload_s) / 60, 1),
        "minutes_uploads_queued": round(max(cpu_s, upload_s) / 60, 1),
    }


def finalize_projection(merge: dict[str, Any], memory_mb: int) -> dict[str, Any]:
    from batch_gateway.storage.s3 import plan_parts

    lines = FINALIZE_CHUNKS * FINALIZE_CHUNK_ITEMS
    chunk_bytes = int(FINALIZE_CHUNK_ITEMS * merge["result_bytes_per_line"])
    parts = plan_parts([(f"chunk-{n}", chunk_bytes) for n in range(FINALIZE_CHUNKS)])
    copied = sum(part.copied for part in parts)
    copy_s = (FINALIZE_CHUNKS * SIDECAR_GET_S + len(parts) * COPY_PART_S) / COPY_THREADS
    total_bytes = lines * merge["result_bytes_per_line"]
    merge_s = lines * merge["cpu_us_per_line"] / 1e6 / vcpu_share(memory_mb)
    merge_s += 2 * total_bytes / (S3_STREAM_MB_S * 1e6)
    return {
        "chunks": FINALIZE_CHUNKS,
        "lines": lines,
        "gb": round(total_bytes / 1e9, 1),
        "parts": len(parts),
        "parts_copied": copied,
        "copy_minutes": round(copy_s / 60, 2),
        "merge_minutes": round(merge_s / 60, 1),
        "merge_minutes_512mb": round(
            (merge_s - lines * merge["cpu_us_per_line"] / 1e6 / vcpu_share(memory_mb)) / 60
            + lines * merge["cpu_us_per_line"] / 1e6 / vcpu_share(512) / 60,
            1,
        ),
        "memory_mb": memory_mb,
    }


def _rescaled(run: dict[str, Any], chunk_items: int, dm_transitions_per_chunk: int) -> dict[str, Any]:
    """The counted run as if its items came in chunks of ``chunk_items`` (per-chunk figures scaled)."""
    from aws_cost import results_row_units
    from orchestration import load_asl, simulate_chunk, template_defaults

    chunks = math.ceil(run["items"] / chunk_items)
    factor = chunks / run["chunks"]
    per_chunk = simulate_chunk(load_asl(template_defaults()), 0)["transitions"]
    fixed = run["transitions"] - run["chunks"] * per_chunk  # the job's own states
    if fixed < 0:  # the count missed the chunks' child executions (it did once: costs came out negative)
        raise ValueError(
            f"{run['transitions']} transitions counted for {run['chunks']} chunks of {per_chunk} each"
        )
    functions = {
        name: (
            {
                **f,
                "count": f["count"] * factor,
                "gb_s": f["gb_s"] * factor,
                "log_bytes": f["log_bytes"] * factor,
            }
            if name in ("SubmitFunction", "AwaitProviderFunction", "PollFunction")
            else {**f, "count": f["count"] * factor if name == "CollectFunction" else f["count"]}
        )
        for name, f in run["functions"].items()
    }
    per_chunk_writes = run["dynamodb_write_units"] - results_row_units(run)
    return {
        **run,
        "chunks": chunks,
        "functions": functions,
        "transitions": fixed + chunks * (per_chunk + dm_transitions_per_chunk),
        "dynamodb_write_units": per_chunk_writes * factor,  # without the results rows
        "s3_put_class": run["s3_put_class"] * factor,
        "s3_get_class": run["s3_get_class"] * factor,
        "calls": {k: v * factor for k, v in run["calls"].items()},
    }


def cost_rows(run: dict[str, Any], chunk_items: int) -> dict[str, Any]:
    """AWS $ and transitions per 1M items at 1 m / 1 h / 24 h batches, without the results rows."""
    import aws_cost
    from orchestration import DURATIONS, load_asl, polls_for, simulate_chunk, template_defaults

    table = aws_cost.prices()
    definition = load_asl(template_defaults())
    provider = aws_cost.provider_cost_per_million(run, table)
    rescaled = _rescaled(run, chunk_items, DISTRIBUTED_MAP_TRANSITIONS)
    per_poll = 3
    rows: dict[str, Any] = {}
    for label, seconds in DURATIONS.items():
        figures = aws_cost.aws_cost_per_million(rescaled, polls_for(definition, seconds), per_poll, table)
        chunk_transitions = simulate_chunk(definition, seconds)["transitions"] + DISTRIBUTED_MAP_TRANSITIONS
        rows[label] = {
            "transitions_per_chunk": chunk_transitions,
            "transitions_per_million": round(1_000_000 / chunk_items * chunk_transitions),
            "usd_per_million": round(figures["total"], 4),
            "stepfunctions_usd": round(figures["stepfunctions"], 4),
            "share_of_provider_bill": round(figures["total"] / provider, 4),
        }
    return {"chunk_items": chunk_items, "provider_usd_per_million": round(provider, 2), "by_batch_time": rows}


def quota_job(prompt_tokens_per_item: float, max_chunk_items: int) -> dict[str, Any]:
    """A 10M-line gpt-4o-mini job under each OpenAI tier's enqueued-token quota (a model)."""
    from orchestration import load_asl, simulate_chunk, template_defaults

    definition = load_asl(template_defaults())
    out: dict[str, Any] = {}
    for tier, quota in QUOTAS.items():
        chunk_items = min(max_chunk_items, int(quota * QUOTA_FILL / prompt_tokens_per_item))
        chunks = math.ceil(JOB_LINES / chunk_items)
        in_flight = min(chunks, max(1, int(quota // (chunk_items * prompt_tokens_per_item))))
        waves = math.ceil(chunks / in_flight)
        by_time = {}
        for label, seconds in (("1h", 3600), ("24h", 86_400)):
            per_chunk = simulate_chunk(definition, seconds)["transitions"] + DISTRIBUTED_MAP_TRANSITIONS
            parked = chunks - in_flight  # every chunk past the first wave waits, woken once
            longest_wait = (waves - 1) * seconds
            by_time[label] = {
                "days": round(waves * seconds / 86_400, 2),
                "transitions": chunks * per_chunk + parked * WAKE_TRANSITIONS,
                "transitions_while_waiting": parked * WAKE_TRANSITIONS,
                "chunks_over_max_wait": max(0, chunks - in_flight * (MAX_QUEUE_WAIT_S // seconds + 1)),
                "longest_wait_days": round(longest_wait / 86_400, 1),
            }
        out[tier] = {
            "quota_tokens": quota,
            "chunk_items": chunk_items,
            "chunks": chunks,
            "in_flight": in_flight,
            "waves": waves,
            **by_time,
        }
    return out


def run(e2e_counted: dict[str, Any] | None = None) -> dict[str, Any]:
    from orchestration import template_defaults

    defaults = template_defaults()
    measured = measure()
    chunk_items = int(defaults["ChunkMaxItems"])
    max_input = int(defaults["MaxInputBytes"])
    result: dict[str, Any] = {
        "measured": measured,
        "intake": {
            "before_1024mb": intake_projection(measured["intake"], max_input, 1024),
            "template": intake_projection(measured["intake"], max_input, _memory("IntakeFunction")),
            "max_input_gib": round(max_input / GIB, 2),
        },
        "finalize": finalize_projection(measured["merge"], _memory("FinalizeFunction")),
        "assumptions": {
            "lambda_mb_per_vcpu": LAMBDA_MB_PER_VCPU,
            "s3_upload_mb_s": S3_UPLOAD_MB_S,
            "s3_stream_mb_s": S3_STREAM_MB_S,
            "copy_part_s": COPY_PART_S,
            "copy_threads": COPY_THREADS,
            "distributed_map_transitions_per_chunk": DISTRIBUTED_MAP_TRANSITIONS,
            "wake_transitions": WAKE_TRANSITIONS,
            "quota_fill": QUOTA_FILL,
        },
    }
    counted = e2e_counted or _previous_counted()
    if counted:
        transitions = counted.get("transitions")
        if transitions is None:
            raise ValueError("the counted e2e run has no transitions")
        result["cost"] = cost_rows(counted, chunk_items)
        prompt = counted["usage"]["prompt_tokens"] / counted["items"]
        result["quota_10m"] = quota_job(prompt, chunk_items)
    return result


def _previous_counted() -> dict[str, Any] | None:
    """The counted e2e figures of the last full bench run (bench/results.json), for a quick run."""
    path = Path(__file__).resolve().parent / "results.json"
    if not path.exists():
        return None
    e2e = json.loads(path.read_text()).get("e2e")
    if not e2e or "counted" not in e2e:
        return None
    return {**e2e["counted"], "transitions": e2e["transitions"], "calls": e2e["calls"]}


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] != "--print":
        _child(Path(sys.argv[1]))
    else:
        print(json.dumps(run(), indent=2))
