"""``batch-gateway local chaos``: seeded jobs through the offline stack under random faults.

Prints the report (lines lost, duplicate lines, batches paid twice, orphan batches, stuck jobs, faults
by kind, wall time), optionally writes it as JSON, and exits 1 when any guarantee was broken.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_local_chaos(local: Any) -> None:
    chaos = local.add_parser(
        "chaos", help="many seeded jobs on the offline stack with faults injected at random"
    )
    chaos.add_argument("--jobs", type=int, default=100, help="how many jobs (default 100)")
    chaos.add_argument("--seed", type=int, default=1, help="the seed of the jobs and the faults (default 1)")
    chaos.add_argument(
        "--scale", type=float, default=1.0, help="multiplies every fault rate (default 1; 0 = no faults)"
    )
    chaos.add_argument("--concurrency", type=int, default=6, help="jobs in flight at once (default 6)")
    chaos.add_argument("--json", type=Path, default=None, help="also write the report to this JSON file")


def local_chaos(args: argparse.Namespace) -> int:
    from batch_gateway_local.chaos.runner import ChaosOptions, run_chaos

    report = run_chaos(
        ChaosOptions(jobs=args.jobs, seed=args.seed, scale=args.scale, concurrency=args.concurrency)
    )
    print(report.text())
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    return 0 if report.ok else 1
