"""Cold start: how long each function's handler module takes to import in a fresh interpreter.

Each measurement is a new ``python`` process whose ``sys.path`` is what Lambda gives the function
(its code directory, then the layer's package directory, then the installed dependencies); the
import of ``app.py`` is timed with ``perf_counter`` (interpreter start-up itself is not included),
several times, and the median is kept. The child also reports which provider SDKs got imported:
a handler may import only the SDK it talks to, and intake, finalize and mark_failed talk to none.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "batch_gateway"
SDKS = ("openai", "anthropic")
NO_SDK = ("intake", "finalize", "mark_failed")
INTAKE_GOAL_S = 0.5

_CHILD = """
import importlib.util, json, sys, time
code_dir, layer_dir, sdks = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
sys.path[:0] = [code_dir, layer_dir]
started, cpu = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("app", code_dir + "/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "sdks": [m for m in sdks if m in sys.modules],
                  "modules": len(sys.modules)}))
"""


def functions() -> list[Path]:
    return sorted(path.parent for path in (ROOT / "functions").glob("*/app.py"))


def measure(function_dir: Path, repeats: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "AWS_"))}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "bench"})
    runs = []
    for _ in range(repeats):
        done = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", _CHILD, str(function_dir), str(LAYER), ",".join(SDKS)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            cwd=function_dir,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "median_s": round(statistics.median(r["seconds"] for r in runs), 3),
        "median_cpu_s": round(statistics.median(r["cpu_seconds"] for r in runs), 3),
        "runs_s": [round(r["seconds"], 3) for r in runs],
        "sdks": runs[0]["sdks"],
        "modules": runs[0]["modules"],
    }


def run(repeats: int = 7) -> dict[str, Any]:
    figures = {path.name: measure(path, repeats) for path in functions()}
    problems = [
        f"{name} imports {', '.join(f['sdks'])}"
        for name, f in figures.items()
        if name in NO_SDK and f["sdks"]
    ]
    intake = figures.get("intake", {}).get("median_s")
    if intake is not None and intake >= INTAKE_GOAL_S:
        problems.append(f"intake imports in {intake} s (goal < {INTAKE_GOAL_S} s)")
    return {"functions": figures, "repeats": repeats, "problems": problems}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
