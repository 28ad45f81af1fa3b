"""Batch Gateway benchmark: ``make bench`` (or ``.venv/bin/python bench/run.py``).

Measures, on this machine and in this run (every comparison is made within the run):

1. intake throughput (validate, group, split, write provider-ready chunks) at 10k, 100k and 1M
   realistic lines, against a naive baseline (``domain.py``);
2. peak RSS of intake and of collect at those sizes, one fresh process per measurement
   (collect: every 10,000-item chunk of the job in turn, as a warm Lambda container would);
3. cold start: import time of each function's handler module (``cold_start.py``);
4. orchestration cost per chunk for 1-minute, 1-hour and 24-hour provider batches, against fixed
   60-second polling (``orchestration.py``);
5. AWS cost per million items beside the provider's batch bill (``aws_cost.py``, prices in
   ``aws_prices.json``), from the calls counted in 6.;
6. a 100k-line job end to end through the offline stack, by stage (``e2e.py``);
7. the Python client's peak RSS reading a 25,000-line job's results, ``iter_results`` against
   ``get_results``, and its import time (``client_stream.py``);
8. the largest jobs (``scale.py``): intake of MaxInputBytes and finalize of 1,000 chunks projected
   to Lambda, AWS cost per 1M items at the template's chunk size, a 10M-line job under quotas.

Prints a table and writes ``bench/results.json``. Options: ``--sizes 10000,100000`` (fewer lines),
``--e2e-items N``, ``--client-lines N``, ``--skip e2e,cold,client,scale`` (parts to leave out), ``--out PATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aws_cost  # bench modules sit beside this file
import client_stream
import cold_start
import domain
import estimator
import orchestration
import scale
import scale_report
import workload

BENCH = Path(__file__).resolve().parent

GOALS = {
    "throughput_ratio": 3.0,
    "rss_growth": 1.5,
    "rss_cap_mb": 256,
    "intake_import_s": 0.5,
    "transitions_ratio_24h": 25,
    "aws_share": 0.02,
}


def label(count: int) -> str:
    return f"{count // 1_000_000}m" if count >= 1_000_000 else f"{count // 1000}k"


def _repeats(count: int) -> int:
    return 5 if count <= 10_000 else 3 if count <= 100_000 else 1


def measure_domain(sizes: list[int], tmp: Path) -> dict[str, Any]:
    biggest = tmp / f"input-{sizes[-1]}.jsonl"
    started = time.perf_counter()
    workload.write_input(biggest, sizes[-1])
    print(
        f"  generated {sizes[-1]:,} lines ({biggest.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s"
    )
    inputs = {}
    for count in sizes:
        path = biggest if count == sizes[-1] else tmp / f"input-{count}.jsonl"
        if count != sizes[-1]:
            workload.head_lines(biggest, path, count)
        inputs[count] = path
    figures: dict[str, Any] = {"throughput": {}, "intake_rss": {}, "collect_rss": {}}
    for count in sizes:
        figures["throughput"][count] = domain.measure(
            "throughput", str(inputs[count]), str(count), str(_repeats(count))
        )
        t = figures["throughput"][count]
        print(
            f"  throughput {label(count)}: {t['items_per_s']:,.0f} items/s vs baseline {t['baseline_items_per_s']:,.0f}"
        )
    for count in sizes:
        root = tmp / f"staged-{count}"
        root.mkdir()
        figures["intake_rss"][count] = domain.measure("intake", str(inputs[count]), str(count), str(root))
        figures["collect_rss"][count] = domain.measure("collect", str(root), str(count))
        domain.clean(root)
        print(
            f"  memory {label(count)}: intake {figures['intake_rss'][count]['peak_rss_mb']:.0f} MB, "
            f"collect {figures['collect_rss'][count]['peak_rss_mb']:.0f} MB "
            f"({figures['collect_rss'][count]['chunks']} chunks, {figures['collect_rss'][count]['seconds']:.0f} s)"
        )
    for path in inputs.values():
        path.unlink(missing_ok=True)
    return figures


def measure_e2e(items: int, tmp: Path) -> dict[str, Any]:
    """The e2e job runs in its own process: moto keeps 100k rows and objects in memory."""
    out = tmp / "e2e.json"
    code = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import e2e; "
        "Path(sys.argv[3]).write_text(json.dumps(e2e.run(int(sys.argv[2]), Path(sys.argv[4]))))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code, str(BENCH), str(items), str(out), str(tmp)],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"the e2e run failed:\n{done.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def build_results(
    sizes: list[int],
    dom: dict[str, Any] | None,
    cold: dict[str, Any] | None,
    orch: dict[str, Any],
    e2e: dict[str, Any] | None,
    cost: dict[str, Any] | None,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if dom:
        results["intake"] = {
            "items_per_s": {label(c): round(dom["throughput"][c]["items_per_s"]) for c in sizes},
            "baseline_items_per_s": {
                label(c): round(dom["throughput"][c]["baseline_items_per_s"]) for c in sizes
            },
            "speedup": {
                label(c): round(
                    dom["throughput"][c]["items_per_s"] / dom["throughput"][c]["baseline_items_per_s"], 2
                )
                for c in sizes
            },
            "peak_rss_mb": {label(c): round(dom["intake_rss"][c]["peak_rss_mb"], 1) for c in sizes},
        }
        results["collect"] = {
            "peak_rss_mb": {label(c): round(dom["collect_rss"][c]["peak_rss_mb"], 1) for c in sizes},
            "chunks": {label(c): dom["collect_rss"][c]["chunks"] for c in sizes},
            "seconds_per_chunk": {
                label(c): round(dom["collect_rss"][c]["seconds"] / dom["collect_rss"][c]["chunks"], 2)
                for c in sizes
            },
            "note": "every 10,000-item chunk of the job collected in turn in one process (one warm container)",
        }
    if cold:
        results["cold_start_s"] = {name: f["median_s"] for name, f in cold["functions"].items()}
        results["cold_start_cpu_s"] = {name: f["median_cpu_s"] for name, f in cold["functions"].items()}
        results["cold_start_sdks"] = {name: f["sdks"] for name, f in cold["functions"].items()}
    for key in ("transitions", "transitions_fixed_60s", "max_detection_delay_s"):
        results[key] = orch[key]
    results["orchestration"] = {
        k: orch[k]
        for k in (
            "parameters",
            "transitions_per_poll",
            "lambda_invocations",
            "lambda_invocations_fixed_60s",
            "polls",
            "ratio",
            "proposal",
        )
    }
    if cost:
        results["aws_cost_per_million_usd"] = cost["by_provider_time"]["1h"]["total"]
        results["provider_cost_per_million_usd"] = cost["provider_cost_per_million_usd"]
        results["aws_cost"] = cost
    if e2e:
        key = f"{label(e2e['items'])}_s"
        results["e2e"] = {
            key: round(e2e["wall_s"], 1),
            **{name: round(value, 1) for name, value in e2e["stages"].items()},
            "function_seconds": {name: round(f["seconds"], 1) for name, f in e2e["functions"].items()},
            "moto_results_rows_s": {k: round(v, 1) for k, v in e2e["moto_results_rows_s"].items()},
            "transitions": e2e["transitions"],
            "calls": e2e["calls"],
            # what aws_cost.py prices, kept so a price change can be re-priced without a new run
            "counted": {
                k: e2e[k]
                for k in (
                    "items",
                    "chunks",
                    "functions",
                    "calls_by_function",
                    "dynamodb_write_units",
                    "dynamodb_read_units",
                    "dynamodb_write_units_by_operation",
                    "s3_put_class",
                    "s3_get_class",
                    "usage",
                )
                if k in e2e
            },
        }
    return results


def goals(results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    checks: list[tuple[str, bool, str]] = []
    if "intake" in results:
        worst = min(results["intake"]["speedup"].values())
        checks.append(
            ("intake >= 3x the naive baseline", worst >= GOALS["throughput_ratio"], f"worst {worst}x")
        )
        for stage in ("intake", "collect"):
            rss = results[stage]["peak_rss_mb"]
            low, high = next(iter(rss.values())), list(rss.values())[-1]
            ok = high <= GOALS["rss_growth"] * low and high < GOALS["rss_cap_mb"]
            checks.append(
                (
                    f"{stage} RSS flat (largest <= 1.5x smallest, < 256 MB)",
                    ok,
                    f"{low} -> {high} MB (x{high / low:.2f})",
                )
            )
    if "cold_start_s" in results:
        intake = results["cold_start_s"].get("intake", 0)
        sdk_free = all(not results["cold_start_sdks"].get(n) for n in cold_start.NO_SDK)
        checks.append(("intake imports in < 0.5 s", intake < GOALS["intake_import_s"], f"{intake} s median"))
        checks.append(("intake/finalize/mark_failed import no provider SDK", sdk_free, ""))
    ratio = results["orchestration"]["ratio"]["24h"]
    checks.append(
        (
            "24 h: >= 25x fewer transitions than 60 s polling",
            ratio >= GOALS["transitions_ratio_24h"],
            f"{ratio}x",
        )
    )
    cap = float(results["orchestration"]["parameters"]["PollMaxWaitSeconds"])
    worst_delay = max(results["max_detection_delay_s"].values())
    checks.append(
        (
            "detection delay never above the cap",
            worst_delay <= cap,
            f"max {worst_delay:.0f} s, cap {cap:.0f} s",
        )
    )
    if "aws_cost" in results:
        for when, figures in results["aws_cost"]["by_provider_time"].items():
            share = figures["share_of_provider_bill"]
            checks.append(
                (
                    f"AWS < 2% of the provider bill ({when} batches)",
                    share < GOALS["aws_share"],
                    f"{share:.1%}",
                )
            )
    return checks


def print_table(results: dict[str, Any], checks: list[tuple[str, bool, str]]) -> None:
    print()
    if "intake" in results:
        i, c = results["intake"], results["collect"]
        sizes = list(i["items_per_s"])
        print(f"{'lines':<34}" + "".join(f"{s:>12}" for s in sizes))
        print(f"{'intake items/s':<34}" + "".join(f"{i['items_per_s'][s]:>12,}" for s in sizes))
        print(
            f"{'naive baseline items/s':<34}" + "".join(f"{i['baseline_items_per_s'][s]:>12,}" for s in sizes)
        )
        print(f"{'speed-up':<34}" + "".join(f"{i['speedup'][s]:>11}x" for s in sizes))
        print(f"{'intake peak RSS MB':<34}" + "".join(f"{i['peak_rss_mb'][s]:>12}" for s in sizes))
        print(
            f"{'collect peak RSS MB (10k chunks)':<34}" + "".join(f"{c['peak_rss_mb'][s]:>12}" for s in sizes)
        )
    print(f"\n{'provider batch takes':<34}" + "".join(f"{s:>12}" for s in results["transitions"]))
    for key, name in (
        ("transitions", "transitions / chunk (defaults)"),
        ("transitions_fixed_60s", "transitions / chunk (60 s polls)"),
        ("max_detection_delay_s", "max detection delay s"),
    ):
        print(f"{name:<34}" + "".join(f"{results[key][s]:>12}" for s in results[key]))
    invocations = results["orchestration"]["lambda_invocations"]
    print(f"{'Lambda invocations / chunk':<34}" + "".join(f"{invocations[s]:>12}" for s in invocations))
    if "aws_cost" in results:
        by_time = results["aws_cost"]["by_provider_time"]
        print(f"{'AWS $ per 1M items':<34}" + "".join(f"{by_time[s]['total']:>12.3f}" for s in by_time))
        print(f"{'  of which DynamoDB':<34}" + "".join(f"{by_time[s]['dynamodb']:>12.3f}" for s in by_time))
        print(
            f"{'  of which Step Functions':<34}"
            + "".join(f"{by_time[s]['stepfunctions']:>12.3f}" for s in by_time)
        )
        print(
            f"{'share of provider bill':<34}"
            + "".join(f"{by_time[s]['share_of_provider_bill']:>12.1%}" for s in by_time)
        )
        print(
            f"provider bill per 1M items: ${results['provider_cost_per_million_usd']:.2f} (gpt-4o-mini batch)"
        )
    if "cold_start_s" in results:
        print(
            "\ncold start (import s, median): "
            + ", ".join(f"{n} {s}" for n, s in results["cold_start_s"].items())
        )
    if "e2e" in results:
        e = results["e2e"]
        print("e2e: " + ", ".join(f"{k} {v}" for k, v in e.items() if isinstance(v, int | float)))
    if "client_stream" in results:
        c = results["client_stream"]
        print(
            f"client, {c['lines']:,} results: iter_results +{c['iter_results_growth_mb']} MB over its import "
            f"(+{c['iter_results_growth_mb_at_2500']} MB after 2,500), get_results +{c['get_results_growth_mb']} MB; "
            f"import {c['import_s']} s"
        )
    print("\ngoals:")
    for name, ok, detail in checks:
        print(f"  [{'met' if ok else 'NOT met'}] {name}" + (f": {detail}" if detail else ""))


def markdown(results: dict[str, Any]) -> str:
    """The Performance table of docs/performance.md, from a results.json."""
    i, c, t = results["intake"], results["collect"], results
    sizes = list(i["items_per_s"])
    times = list(t["transitions"])
    cost = t["aws_cost"]["by_provider_time"]
    e2e = t["e2e"]
    e2e_key = next(k for k in e2e if k[0].isdigit())
    row = scale_report.table_row
    rows = [
        *scale_report.table_head("measure", sizes),
        row("intake, items/s", (f"{i['items_per_s'][s]:,}" for s in sizes)),
        row("naive baseline, items/s", (f"{i['baseline_items_per_s'][s]:,}" for s in sizes)),
        row("speed-up", (f"{i['speedup'][s]}x" for s in sizes), ">= 3x"),
        row("intake peak RSS, MB", (f"{i['peak_rss_mb'][s]}" for s in sizes), "flat: <= 1.5x, < 256"),
        row(
            "collect peak RSS, MB (10k-item chunks)",
            (f"{c['peak_rss_mb'][s]}" for s in sizes),
            "flat: <= 1.5x, < 256",
        ),
        "",
        *scale_report.table_head("per chunk, provider batch takes", times),
        row("state transitions (template defaults)", (str(t["transitions"][x]) for x in times)),
        row("state transitions (fixed 60 s polling)", (str(t["transitions_fixed_60s"][x]) for x in times)),
        row("ratio", (f"{t['orchestration']['ratio'][x]}x" for x in times), ">= 25x at 24 h"),
        row("Lambda invocations", (str(t["orchestration"]["lambda_invocations"][x]) for x in times)),
        row("max detection delay, s", (f"{t['max_detection_delay_s'][x]:.0f}" for x in times), "<= cap"),
        row("AWS $ per 1M items", (f"{cost[x]['total']:.3f}" for x in times)),
        row(
            "share of the provider bill", (f"{cost[x]['share_of_provider_bill']:.1%}" for x in times), "< 2%"
        ),
        "",
        f"Provider bill (gpt-4o-mini batch prices): ${t['provider_cost_per_million_usd']:.2f} per 1M items "
        f"({t['aws_cost']['tokens_per_item']['prompt']} prompt + {t['aws_cost']['tokens_per_item']['completion']} "
        "completion tokens per item).",
        "Cold start, handler import (median s): "
        + ", ".join(f"{name} {seconds}" for name, seconds in t["cold_start_s"].items())
        + "; provider SDKs imported: "
        + (
            ", ".join(f"{n}: {'+'.join(v)}" for n, v in t["cold_start_sdks"].items() if v)
            or "none, by any handler"
        )
        + ".",
        f"End to end, {e2e_key.removesuffix('_s')} lines on the offline stack: {e2e[e2e_key]} s "
        f"(stage spans: intake {e2e['intake_s']}, submit {e2e['submit_s']}, provider wait {e2e['provider_wait_s']}, "
        f"collect {e2e['collect_s']}, finalize {e2e['finalize_s']} s; collect busy "
        f"{e2e['function_seconds'].get('CollectFunction')} s, of which moto's DynamoDB took "
        f"{e2e['moto_results_rows_s'].get('CollectFunction')} s).",
    ]
    if "scale" in results:
        rows += ["", scale_report.markdown(results["scale"])]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--e2e-items", type=int, default=100_000)
    parser.add_argument("--client-lines", type=int, default=25_000)
    parser.add_argument(
        "--skip", default="", help="comma-separated: domain, cold, e2e, client, scale, estimator"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument(
        "--markdown", type=Path, help="print the docs/performance.md table of this results.json and stop"
    )
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    skip = set(filter(None, args.skip.split(",")))
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="batch-gateway-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print("orchestration (ASL + template defaults) ...")
        orch = orchestration.run()
        dom = cold = e2e = cost = None
        if "domain" not in skip:
            print("intake and collect with local sinks ...")
            dom = measure_domain(sizes, tmp)
        if "cold" not in skip:
            print("cold start ...")
            cold = cold_start.run()
        if "e2e" not in skip:
            print(f"end to end, {args.e2e_items:,} lines through the offline stack ...")
            e2e = measure_e2e(args.e2e_items, tmp)
            cost = aws_cost.run(e2e, orch)
        client = None
        if "client" not in skip:
            print(f"the Python client reading a {args.client_lines:,}-line job's results ...")
            client = client_stream.run(args.client_lines, tmp)
    results = build_results(sizes, dom, cold, orch, e2e, cost)
    if client:
        results["client_stream"] = client
    if "scale" not in skip:
        print("the largest jobs: intake, finalize, cost at the template's chunk size, quotas ...")
        results["scale"] = scale.run(e2e)
    if "estimator" not in skip:
        print("the input-token estimator against the provider's count ...")
        results["estimator"] = estimator.run()
    checks = goals(results) + (scale_report.goals(results["scale"]) if "scale" in results else [])
    for provider, row in results.get("estimator", {}).items():
        detail = f"provider's count {row['ratio']}x the estimate (lines {row['line_ratio_min']}-{row['line_ratio_max']})"
        checks.append((f"estimator within -15 %/+10 % ({provider})", row["goal_met"], detail))
    results["goals"] = {name: {"met": ok, "detail": detail} for name, ok, detail in checks}
    results["run"] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "seconds": round(time.time() - started),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "commit": _commit(),
        "workload": workload.__doc__.split("\n\n")[1].replace("\n", " ") if workload.__doc__ else "",
    }
    args.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    print_table(results, checks)
    if "scale" in results:
        print("\n" + scale_report.markdown(results["scale"]))
    print(f"\nwrote {args.out} in {results['run']['seconds']} s")


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, read-only
            capture_output=True,
            text=True,
            cwd=BENCH,
            check=False,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
