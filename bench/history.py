"""History events per execution: measured on the offline stack, and projected to 24-hour batches.

Step Functions fails a Standard execution whose history reaches 25,000 events; our goal is every
execution under 10,000 (40 %). Each chunk of a job runs as a child execution of the Distributed Map,
so two numbers matter: the job's own history (constant: it records the map, not the chunks) and the
largest child's (one chunk's path, whatever the chunk count).

- measured: jobs of 20, 200 and 1,000 one-line chunks through the offline stack (``LocalGateway``;
  moto's interpreter, each child's history recorded by ``stack.sfn_history``), under the offline
  stack's 1-second polls;
- projected: one chunk walked through the ASL at the template's default backoff (``orchestration``),
  each state entered counted with the events Step Functions records for it (:data:`EVENTS`), for
  batches of 1 m / 1 h / 24 h and for the worst retry path (every batch takes 24 h and is resubmitted
  ``FailedBatchRetries`` times, in each of ``1 + RetryRounds`` rounds). The same model applied to the
  offline parameters is checked against the measured children (``model_check``).

``python bench/history.py [--sizes 20,200,1000] [--scenario ok] [--out bench/history.json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orchestration  # bench modules sit beside this file

QUOTA = 25_000
GOAL = 10_000
EXECUTION_EVENTS = 2
"""ExecutionStarted and the execution's ending event."""
EVENTS = {"Task": 5, "Callback": 6, "Wait": 2, "Choice": 2, "Pass": 2, "Succeed": 2, "Fail": 1, "Map": 6}
"""Events per state entered. Task (lambda:invoke): Entered, Scheduled, Started, Succeeded, Exited.
Callback (waitForTaskToken, ending by its timeout): Entered, Scheduled, Started, Submitted, TimedOut,
Exited. Wait, Choice, Pass, Succeed: Entered, Exited. Map (Distributed): Entered, MapStateStarted,
MapRunStarted, MapRunSucceeded, MapStateSucceeded, Exited. Fail: Entered (its ExecutionFailed is
the ending). The same types moto records (``model_check`` compares)."""
OFFLINE = {"PollInitialWaitSeconds": "1", "PollBackoffFactor": "1", "PollMaxWaitSeconds": "1"}
OFFLINE_POLLS = {"ok": 2, "slow": 8}
"""Polls until an emulator batch ends: polls_to_complete (2), plus 6 stalled polls under ``slow``."""


def state_events(definition: dict[str, Any], name: str) -> int:
    """The events one entry of the named chunk state records."""
    state = orchestration._chunk_states(definition)["States"][name]
    kind = state["Type"]
    if kind == "Task" and str(state.get("Resource", "")).endswith(".waitForTaskToken"):
        kind = "Callback"
    return EVENTS[kind]


def chunk_history(definition: dict[str, Any], provider_seconds: float, resubmits: int = 0) -> dict[str, int]:
    """A chunk's child execution: history events and state transitions along its path."""
    walk = orchestration.simulate_chunk(definition, provider_seconds, resubmits)
    events = EXECUTION_EVENTS + sum(state_events(definition, name) for name in walk["path"])
    return {"history_events": events, "state_transitions": walk["transitions"], "polls": walk["polls"]}


def job_history(definition: dict[str, Any]) -> int:
    """The job's own execution: its top-level states on the success path (Configure, map, Finalize)."""
    events, current = EXECUTION_EVENTS, definition["StartAt"]
    while True:
        state = definition["States"][current]
        events += EVENTS["Task" if state["Type"] == "Task" else state["Type"]]
        if state.get("End") or "Next" not in state:
            return events
        current = state["Next"]


def projected() -> dict[str, Any]:
    """Per execution, at the template's defaults, for 1 m / 1 h / 24 h batches and the worst retry path."""
    defaults = orchestration.template_defaults()
    definition = orchestration.load_asl(defaults)
    retries, rounds = int(defaults["FailedBatchRetries"]), int(defaults["RetryRounds"])
    batches = (1 + retries) * (1 + rounds)
    children = {label: chunk_history(definition, s) for label, s in orchestration.DURATIONS.items()}
    worst = chunk_history(definition, orchestration.DURATIONS["24h"], resubmits=batches - 1)
    return {
        "parameters": {
            k: defaults[k]
            for k in (
                "PollInitialWaitSeconds",
                "PollBackoffFactor",
                "PollMaxWaitSeconds",
                "FailedBatchRetries",
                "RetryRounds",
            )
        },
        "job_execution": job_history(definition),
        "chunk_execution": children,
        "worst_retry_path": {**worst, "batches": batches, "each_takes": "24h"},
        "quota": QUOTA,
        "goal": GOAL,
    }


def measure(chunks: int, scenario: str, tmp: Path) -> dict[str, Any]:
    """One job of ``chunks`` one-line chunks on the offline stack: its executions' history sizes."""
    from batch_gateway.models import JobSpec
    from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions

    source = tmp / f"history-{chunks}.jsonl"
    with source.open("w") as lines:
        for n in range(1, chunks + 1):
            lines.write(json.dumps({"custom_id": f"h{n}", "user_message": f"Question {n}"}) + "\n")
    with LocalGateway(LocalOptions(chunk_max_items=1, scenario=scenario)) as gateway:
        started = time.monotonic()
        job_id = gateway.submit_file(source, JobSpec(provider="openai", model="gpt-4o-mini"))
        job = gateway.wait(job_id, timeout_s=7200)
        seconds = time.monotonic() - started
        executions = gateway.executions(job_id)
    own = [e for e in executions if e.parent is None]
    children = [e for e in executions if e.parent is not None]
    return {
        "chunks": chunks,
        "scenario": scenario,
        "status": job.status.value,
        "lines_ok": job.counts.succeeded,
        "wall_s": round(seconds, 1),
        "executions": len(executions),
        "job_execution_events": max(e.history_events for e in own),
        "largest_child_events": max((e.history_events for e in children), default=0),
        "smallest_child_events": min((e.history_events for e in children), default=0),
        "largest_child_transitions": max((e.state_transitions for e in children), default=0),
        # No quota binds here: how many provider batches the map kept in flight at once.
        "max_batches_in_flight": job.provider_batches.max_in_flight,
    }


def model_check(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """The projection model at the offline parameters, beside what the offline stack measured."""
    definition = orchestration.load_asl({**orchestration.template_defaults(), **OFFLINE})
    out: dict[str, Any] = {"job_execution": job_history(definition)}
    for scenario in sorted({m["scenario"] for m in measured}):
        out[f"chunk_execution_{scenario}"] = chunk_history(definition, OFFLINE_POLLS[scenario])[
            "history_events"
        ]
    return out


def run(sizes: list[int], scenario: str) -> dict[str, Any]:
    measured: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="batch-gateway-history-") as tmp:
        for size in sizes:
            measured.append(measure(size, scenario, Path(tmp)))
            # Each measurement is kept as soon as it is made: a 200-chunk job takes most of an hour.
            print(json.dumps(measured[-1]), file=sys.stderr, flush=True)
    projection = projected()
    worst = max(
        [projection["job_execution"], projection["worst_retry_path"]["history_events"]]
        + [c["history_events"] for c in projection["chunk_execution"].values()]
    )
    return {
        "measured": measured,
        "model_check": model_check(measured),
        "projected": projection,
        "largest_projected_execution": worst,
        "goal_met": worst < GOAL,
    }


def markdown(results: dict[str, Any]) -> str:
    """The history rows of docs/performance.md."""
    m, p = results["measured"], results["projected"]
    rows = [
        "| offline job, one-line chunks | " + " | ".join(f"{r['chunks']:,}" for r in m) + " |",
        "|---|" + "---:|" * len(m),
        "| executions (job + one per chunk) | " + " | ".join(f"{r['executions']:,}" for r in m) + " |",
        "| job's own history, events | " + " | ".join(str(r["job_execution_events"]) for r in m) + " |",
        "| largest chunk history, events | " + " | ".join(str(r["largest_child_events"]) for r in m) + " |",
        "| provider batches in flight at once, at most | "
        + " | ".join(str(r.get("max_batches_in_flight", "-")) for r in m)
        + " |",
        "| wall time, s | " + " | ".join(str(r["wall_s"]) for r in m) + " |",
        "",
        "| projected at template defaults, batch takes | "
        + " | ".join(p["chunk_execution"])
        + " | worst retry path | goal |",
        "|---|" + "---:|" * (len(p["chunk_execution"]) + 1) + "---|",
        "| chunk's child execution, events | "
        + " | ".join(str(c["history_events"]) for c in p["chunk_execution"].values())
        + f" | {p['worst_retry_path']['history_events']:,} | < {GOAL:,} |",
        "| job's own execution, events (any chunk count) | "
        + " | ".join(str(p["job_execution"]) for _ in p["chunk_execution"])
        + f" | {p['job_execution']} | < {GOAL:,} |",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,200,1000")
    parser.add_argument("--scenario", default="ok", choices=sorted(OFFLINE_POLLS))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "history.json")
    parser.add_argument("--markdown", type=Path, help="print the table of this history.json and stop")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    results = run([int(s) for s in args.sizes.split(",") if s], args.scenario)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    print(
        f"\nlargest projected execution: {results['largest_projected_execution']:,} events "
        f"(goal < {GOAL:,}: {'met' if results['goal_met'] else 'NOT met'}); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
