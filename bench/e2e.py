"""A whole job through the offline stack, timed by stage, with every AWS call counted.

The real template, state machine and handlers run on moto (``LocalGateway``); the emulator answers
at once (``polls_to_complete=1``, 1-second waits). While a handler runs, every botocore call it
makes (its own thread and the s3transfer threads it starts) is counted by service and operation;
DynamoDB write units are estimated from each written item's size, S3 requests are sorted into
PUT-class and GET-class. Lambda invocations and their in-process durations come from the offline
runtime, state transitions from the execution history. ``aws_cost.py`` prices what is counted here.

Stages come from the job and chunk rows' timestamps, as wall-clock spans:

- intake: job created -> first chunk's submit intent (includes starting the execution);
- submit, provider wait, collect: from the first chunk entering the stage to the last one leaving
  it (intent -> submitted, submitted -> last poll, last poll -> collected). The Map state runs
  chunks side by side, so these spans overlap; ``functions`` gives each function's busy time
  (handlers run one at a time in this process, so those add up to less than the wall time);
- finalize: last chunk collected -> job finished.

The time collect spends writing results-table rows into moto's DynamoDB is measured separately:
it is moto's work, not ours, and it dominates collect here.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload  # bench modules sit beside this file

S3_PUT_CLASS = {
    "PutObject",
    "CopyObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "ListObjectsV2",
    "ListObjects",
    "DeleteObjects",  # counted as PUT-class to stay on the safe side (single DELETEs are free)
}


class ApiCounter:
    """Counts botocore calls made on behalf of a running Lambda handler."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.by_function: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
        self.dynamodb_write_units = 0
        self.write_units_by_operation: Counter[str] = Counter()
        self.dynamodb_read_units = 0
        self._handler: tuple[str, int] | None = None  # (function, thread id) of the running handler
        self._lock = threading.Lock()
        self.results_write_s: dict[str, float] = defaultdict(float)

    def _attributed(self) -> str | None:
        handler = self._handler
        if handler is None:
            return None
        thread = threading.current_thread()
        if thread.ident == handler[1] or thread.name.startswith("ThreadPoolExecutor"):
            return handler[0]  # the handler itself, or the s3transfer workers it started
        return None  # the harness, polling progress from another thread

    def record(self, service: str, operation: str, params: dict[str, Any]) -> None:
        function = self._attributed()
        if function is None:
            return
        with self._lock:
            self.calls[(service, operation)] += 1
            self.by_function[function][(service, operation)] += 1
            if service == "dynamodb":
                units = _write_units(operation, params)
                self.dynamodb_write_units += units
                self.write_units_by_operation[operation] += units
                self.dynamodb_read_units += 1 if operation in ("GetItem", "Query", "Scan") else 0

    def install(self) -> None:
        import botocore.client

        from batch_gateway.storage.results import ResultsRepository
        from batch_gateway_local.stack.lambda_runtime.runtime import InProcessLambdaRuntime

        counter = self
        make_api_call = botocore.client.BaseClient._make_api_call

        def _make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            counter.record(client.meta.service_model.service_name, operation, params)
            return make_api_call(client, operation, params)

        run = InProcessLambdaRuntime._run

        def _run(runtime: Any, function: Any, record: Any, buffer: Any) -> None:
            previous = counter._handler
            counter._handler = (function.function_name, threading.get_ident())
            try:
                run(runtime, function, record, buffer)
            finally:
                counter._handler = previous

        write = ResultsRepository.write

        def timed_write(repository: Any, job_id: str, results: Any) -> None:
            started = time.perf_counter()
            try:
                write(repository, job_id, results)
            finally:
                # includes producing the rows (the generator runs inside), so it is an upper bound
                handler = counter._handler[0] if counter._handler else "-"
                counter.results_write_s[handler] += time.perf_counter() - started

        botocore.client.BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]
        InProcessLambdaRuntime._run = _run  # type: ignore[method-assign]
        ResultsRepository.write = timed_write  # type: ignore[method-assign]


def _item_size(item: dict[str, Any]) -> int:
    return len(json.dumps(item, default=str, ensure_ascii=False).encode())


def _write_units(operation: str, params: dict[str, Any]) -> int:
    """On-demand write request units: 1 per started KB of each written item (UpdateItem: 1, small rows)."""
    if operation == "PutItem":
        return math.ceil(_item_size(params.get("Item", {})) / 1024)
    if operation == "BatchWriteItem":
        units = 0
        for requests in params.get("RequestItems", {}).values():
            for request in requests:
                item = request.get("PutRequest", {}).get("Item")
                units += math.ceil(_item_size(item) / 1024) if item else 1
        return units
    if operation in ("UpdateItem", "DeleteItem"):
        return 1
    return 0


def run(count: int, workdir: Path) -> dict[str, Any]:
    import boto3

    from batch_gateway.models import JobSpec
    from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions

    source = workdir / f"e2e-{count}.jsonl"
    workload.write_input(source, count)
    counter = ApiCounter()
    counter.install()
    options = LocalOptions(polls_to_complete=1, stack_name="batch-gateway-bench")
    with LocalGateway(options) as gateway:
        spec = JobSpec(provider="openai", model=workload.MODEL, system_prompt=workload.SYSTEM_PROMPT)
        started = time.time()
        job_id = gateway.submit_file(source, spec, key=f"inbox/{source.name}")
        uploaded = time.time()
        job = gateway.wait(job_id, timeout_s=1500)
        assert job.status.value == "completed", (job.status, job.reason)
        assert job.counts.succeeded == count, job.counts
        chunks = gateway.progress(job_id).chunks
        stack = gateway.stack
        assert stack is not None
        # The job's own execution and each chunk's Distributed Map child: on AWS every one of their
        # state transitions is billed (the job's own history holds only the map's few events).
        transitions = sum(e.state_transitions for e in gateway.executions(job_id))
        memory = {
            name: int(boto3.client("lambda").get_function_configuration(FunctionName=name)["MemorySize"])
            for name in stack.functions.values()
        }
        logical = {name: logical_id for logical_id, name in stack.functions.items()}
        invocations: dict[str, dict[str, float]] = defaultdict(
            lambda: {"count": 0, "seconds": 0.0, "gb_s": 0.0, "log_bytes": 0, "memory_mb": 0}
        )
        for invocation in stack.invocations:
            figures = invocations[logical[invocation.function_name]]
            figures["count"] += 1
            figures["seconds"] += invocation.duration_ms / 1000
            figures["gb_s"] += invocation.duration_ms / 1000 * memory[invocation.function_name] / 1024
            figures["log_bytes"] += len(invocation.logs.encode())
            figures["memory_mb"] = memory[invocation.function_name]
        row = gateway.job_row(job_id)

    def span(start: str, end: str) -> float:
        return max(float(c[end]) for c in chunks) - min(float(c[start]) for c in chunks)

    intent = "batch_r0_a0_intent_at"
    stages = {
        "intake_s": min(float(c[intent]) for c in chunks) - float(row["created_at"]),
        "submit_s": span(intent, "submitted_at"),
        "provider_wait_s": span("submitted_at", "polled_at"),
        "collect_s": span("polled_at", "collected_at"),
        "finalize_s": float(row["finished_at"]) - max(float(c["collected_at"]) for c in chunks),
    }
    functions = {name: dict(figures) for name, figures in invocations.items()}
    return {
        "items": count,
        "chunks": len(chunks),
        "wall_s": float(row["finished_at"]) - started,
        "upload_and_intake_call_s": uploaded - started,
        "stages": stages,
        "functions": functions,
        "moto_results_rows_s": {logical.get(k, k): v for k, v in counter.results_write_s.items()},
        "transitions": transitions,
        "calls": {f"{service}:{operation}": n for (service, operation), n in sorted(counter.calls.items())},
        "calls_by_function": {
            logical.get(name, name): {f"{s}:{o}": n for (s, o), n in sorted(calls.items())}
            for name, calls in counter.by_function.items()
        },
        "dynamodb_write_units": counter.dynamodb_write_units,
        "dynamodb_read_units": counter.dynamodb_read_units,
        "dynamodb_write_units_by_operation": dict(counter.write_units_by_operation),
        "s3_put_class": sum(n for (s, o), n in counter.calls.items() if s == "s3" and o in S3_PUT_CLASS),
        "s3_get_class": sum(n for (s, o), n in counter.calls.items() if s == "s3" and o not in S3_PUT_CLASS),
        "usage": dict(job.usage),
    }


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000, Path(tmp)), indent=2))
