"""`make bench`: the checkout under the sandbox's realistic upstream latency, against none.

The `realistic` profile delays each partner call by a long-tailed sample around a median
(sandbox/latency.py). Each scenario runs at each connection count (BENCH_CONNECTIONS)
under `realistic` and, right after, under `none`, on the same stack: the ratio of the two
throughputs is the cost of waiting on the partner. The profile is switched at runtime, so
the demo data and the served checkout stay the same.

Every run: a warm-up (BENCH_WARMUP s) whose requests drain first, the measured run
(BENCH_SECONDS s), then a drain again, so that the CPU time of the checkout's gunicorn
processes covers every request sent, and the next run starts on an idle machine. The
targets are printed PASS or MISS; the exit status is 0 either way. Results go to
bench-results/<time>/results.json. Try another worker model with e.g.
`CHECKOUT_WORKER_CLASS=gevent make bench`.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import requests

from sandbox.stack import ROOT, Service
from tests.bench.stack import Stack, cpu_seconds, describe, wait_drained
from tests.bench.wrk import SECONDS, TIMEOUT, WARMUP, Row, wrk

SCENARIOS = ("PUT add offer", "POST create", "create-add-complete cycle", "basket page")
PROFILES = ("realistic", "none")
CONNECTIONS = [int(n) for n in os.environ.get("BENCH_CONNECTIONS", "16,64,256").split(",")]
#: the upstream calls PUT waits on, at once: it verifies the reCAPTCHA token while it asks
#: for the quote, so no answer can come sooner than the slower of the two
PUT_WAITS_ON = ("siteverify", "quote")
TARGET_AT = 64  # the throughput and latency targets, for PUT
OVERLOAD_AT = 256  # the overload targets, for every scenario


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk (Debian)", file=sys.stderr)
        return 2
    out_dir = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S")
    started = time.monotonic()
    rows: list[Row] = []
    with Stack() as stack:
        app, workers = stack.serve(ROOT, "app")
        print(f"checkout: {describe(workers)}", flush=True)
        medians = stack.set_latency("realistic")
        for name in SCENARIOS:
            for connections in CONNECTIONS:
                realistic, none = (measure(stack, app, name, connections, p) for p in PROFILES)
                realistic["ratio"] = realistic["rps"] / none["rps"] if none["rps"] else None
                rows += [realistic, none]
        events = delivery_latency(stack)
    checks = targets(rows, medians)
    out_dir.mkdir(parents=True, exist_ok=True)
    took = time.monotonic() - started
    report = {
        "git": git_state(),
        "duration_s": took,
        "workers": workers,
        "median_ms": medians,
        "seconds": SECONDS,
        "warmup_seconds": WARMUP,
        "rows": rows,
        "targets": checks,
        "events": events,
    }
    (out_dir / "results.json").write_text(json.dumps(report, indent=2))
    print_table(rows, medians, describe(workers))
    print("\nTargets")
    for line in target_lines(checks):
        print(line)
    print(
        f"\nPartner events: {events['delivered']} confirmations delivered; confirmation to "
        f"delivery p50 {events['p50_ms']} ms, p99 {events['p99_ms']} ms"
    )
    print(f"\nresults: {out_dir}/results.json; took {took / 60:.1f} min")
    return 0


def delivery_latency(stack: Stack) -> Row:
    """Each checkout.completed the cycles made: from its order's record to the receiver."""
    found = requests.get(f"{stack.sandbox.url}/_sandbox/webhooks", timeout=30).json()
    waits = [
        (datetime.fromisoformat(d["receivedAt"]) - datetime.fromisoformat(d["body"]["timestamp"]))
        / timedelta(milliseconds=1)
        for d in found["deliveries"]
        if d["status"] == 204 and d["type"] == "checkout.completed"
    ]
    cut = [round(q) for q in statistics.quantiles(waits, n=100)] if len(waits) > 1 else [None] * 99
    return {"delivered": len(waits), "p50_ms": cut[49], "p99_ms": cut[98]}


def measure(stack: Stack, app: Service, name: str, connections: int, profile: str) -> Row:
    """One scenario at one connection count under one profile. PUT's warm-up and measured
    run each get new baskets, made under `none`: a warm-up that left a basket on the offer
    the run would add first would make that PUT a cheap no-op."""
    print(f"… {name}, {connections} connections, {profile}", flush=True)
    stack.set_latency("none")
    path, script, env = stack.scenario(app, name, baskets=2 * connections)
    warm_env = stack.scenario(app, name, 2 * connections)[2] if script == "put.lua" else env
    stack.set_latency(profile)
    wrk(app.url + path, script, warm_env, WARMUP, connections)
    warmup_drain = wait_drained(app.port)
    before = cpu_seconds(app.pid)
    row = wrk(app.url + path, script, env, SECONDS, connections)
    row["drain_s"], row["warmup_drain_s"] = wait_drained(app.port), warmup_drain
    sent = row["requests"] + row["waiting"]
    row["cpu_ms_per_request"] = (cpu_seconds(app.pid) - before) / sent * 1000 if sent else None
    row.update(scenario=name, connections=connections, profile=profile)
    return row


def targets(rows: list[Row], medians: dict[str, int]) -> list[Row]:
    """Each target with its figure and whether it was met (None: not measured)."""
    found = {(r["scenario"], r["connections"], r["profile"]): r for r in rows}
    checks: list[Row] = []

    def check(what: str, value: float | None, op: str, limit: float, unit: str = "") -> None:
        met = None if value is None else value >= limit if op == "≥" else value <= limit
        checks.append(
            {"target": what, "value": value, "op": op, "limit": limit, "unit": unit, "met": met}
        )

    put = found.get(("PUT add offer", TARGET_AT, "realistic"), {})
    where = f"PUT add offer at {TARGET_AT} connections, realistic"
    slowest = max(medians[call] for call in PUT_WAITS_ON)
    check(f"{where}: throughput ÷ its own under none", put.get("ratio"), "≥", 0.85)
    p50 = f"{where}: p50 (its slowest upstream, {slowest} ms, + 30)"
    check(p50, put.get("p50_ms"), "≤", slowest + 30, " ms")
    check(f"{where}: p99", put.get("p99_ms"), "≤", 500, " ms")
    for scenario in SCENARIOS:
        row = found.get((scenario, OVERLOAD_AT, "realistic"), {})
        where = f"{scenario} at {OVERLOAD_AT} connections, realistic"
        check(f"{where}: socket errors", row.get("errors"), "≤", 0)
        other = row.get("statuses", {}).get("other")
        check(f"{where}: answers neither 2xx nor 503 with Retry-After", other, "≤", 0)
        check(f"{where}: p99", row.get("p99_ms"), "≤", 2000, " ms")
    return checks


def target_lines(checks: list[Row]) -> Iterator[str]:
    for c in checks:
        label = "SKIP" if c["met"] is None else "PASS" if c["met"] else "MISS"
        value, unit = c["value"], c["unit"]
        shown = "not measured" if value is None else f"{value:.4g}{unit}"
        yield f"  {label}  {c['target']}: {shown} ({c['op']} {c['limit']:g}{unit})"


def print_table(rows: list[Row], medians: dict[str, int], workers: str) -> None:
    median_text = ", ".join(f"{k} {v}" for k, v in medians.items())
    print(
        f"\nSandbox latency realistic (medians, ms: {median_text}) against none, same run:\n"
        f"{workers}; wrk 2 threads, --timeout {TIMEOUT}, {SECONDS} s after a {WARMUP} s warm-up\n"
    )
    header = (
        f"{'scenario':26} {'conns':>5} {'profile':9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'2xx':>7} {'503+RA':>6} {'other':>6} {'waiting':>7} {'sock c/r/w/t':>13} "
        f"{'CPU ms/req':>10} {'ratio':>6}"
    )
    print(header + "\n" + "-" * len(header))
    for row in rows:
        first = row["profile"] == PROFILES[0]
        statuses, cpu, ratio = row["statuses"], row["cpu_ms_per_request"], row.get("ratio")
        sock = "/".join(str(n) for n in row["socket_errors"].values())
        print(
            f"{row['scenario'] if first else '':26} {row['connections'] if first else '':>5} "
            f"{row['profile']:9} {row['rps']:7.0f} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} "
            f"{statuses['2xx']:>7} {statuses['503_retry_after']:>6} {statuses['other']:>6} "
            f"{row['waiting']:>7} {sock:>13} {'-' if cpu is None else f'{cpu:.2f}':>10} "
            f"{'' if ratio is None else f'{ratio:.3f}':>6}"
        )
    undrained = sum(row["drain_s"] is None or row["warmup_drain_s"] is None for row in rows)
    for count, what in (
        (undrained, "runs had requests in flight 60 s after wrk stopped"),
        (sum(row["reused_baskets"] for row in rows), "PUTs reused a basket never answered"),
        (sum(row["unmatched_answers"] for row in rows), "answers had no X-Request-ID of ours"),
    ):
        if count:
            print(f"!! {count} {what}")
    print("\nHow to read each column: docs/performance.md.")


def git_state() -> dict[str, Any]:
    """The revision measured, and what the working tree changed of it."""
    git = partial(subprocess.run, cwd=ROOT, capture_output=True, text=True)
    changed = git(["git", "status", "--porcelain"]).stdout.splitlines()
    return {"revision": git(["git", "rev-parse", "HEAD"]).stdout.strip(), "changed": changed}


if __name__ == "__main__":
    sys.exit(main())
