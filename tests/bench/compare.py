"""`make bench-compare BASE=<rev>`: this working tree against another revision, under the
same load at the same moment.

On a shared machine the speed drifts from one minute to the next by more than most single
changes are worth. So both builds are served side by side, each from its own tree (BASE
checked out in a temporary git worktree) with its own app/gunicorn_config.py, on one
Redis and sandbox, and driven by two wrk processes started together, run after run: both
see the same machine, so the drift cancels in the ratio of their figures. Prints each run
and the median ratio, this tree over BASE, of throughput and of the gunicorn processes'
CPU time per request, for GET, the basket page and PUT (BENCH_SCENARIOS, BENCH_RUNS,
BENCH_SECONDS). How far to trust each figure: docs/performance.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sandbox.stack import ROOT, Service
from tests.bench.stack import Drive, Stack, cpu_seconds, describe, wait_drained
from tests.bench.wrk import SECONDS, Row, wrk

RUNS = int(os.environ.get("BENCH_RUNS", "8"))
NAMES = {"get": "GET basket", "page": "basket page", "put": "PUT add offer"}
SCENARIOS = os.environ.get("BENCH_SCENARIOS", "get,page,put").split(",")
CONNECTIONS = 8


def main() -> int:
    rev = os.environ.get("BASE") or "HEAD"
    medians: dict[str, tuple[float, float]] = {}
    with worktree(rev) as tree, Stack() as stack:
        show = ["git", "log", "-1", "--format=%h %s"]
        commit = subprocess.run(show, cwd=tree, capture_output=True, text=True).stdout.strip()
        # no worker recycled halfway through a comparison
        here, workers = stack.serve(ROOT, "this tree", "--max-requests", "0")
        base, _ = stack.serve(tree, rev, "--max-requests", "0")
        print(f"this tree against {rev}: {commit}\neach: {describe(workers)}", flush=True)
        for scenario in SCENARIOS:
            medians[scenario] = compare(stack, [here, base], scenario)
    print(f"\nthis tree ÷ {rev}: medians of {RUNS} runs of {SECONDS} s, {CONNECTIONS} connections")
    print(f"{'scenario':10} {'throughput':>10} {'CPU/request':>12}")
    for scenario, (throughput, cpu) in medians.items():
        print(f"{scenario:10} {throughput:10.3f} {cpu:12.3f}")
    return 0


def compare(stack: Stack, apps: list[Service], scenario: str) -> tuple[float, float]:
    """RUNS runs of both builds at once: the median ratios of throughput and CPU per
    request. Each build is driven with baskets and a sign-in of its own."""
    drives = [stack.scenario(app, NAMES[scenario], baskets=16) for app in apps]
    for app, (path, script, env) in zip(apps, drives, strict=True):
        wrk(app.url + path, script, env, 2, CONNECTIONS)  # warm up
    print(f"\n{scenario}: req/s and CPU µs per request, this tree | {apps[1].name}")
    speed, cpu = [], []
    for _ in range(RUNS):
        (rps, us), (base_rps, base_us) = side_by_side(apps, drives, scenario)
        speed.append(rps / base_rps)
        cpu.append(us / base_us)
        print(f"  {rps:7.0f} {us:6.0f} | {base_rps:7.0f} {base_us:6.0f}   ratio {speed[-1]:.3f}")
    print(
        f"{scenario}: throughput this/base median {statistics.median(speed):.3f} "
        f"(runs {min(speed):.3f}-{max(speed):.3f}); "
        f"CPU per request this/base median {statistics.median(cpu):.3f}",
        flush=True,
    )
    return statistics.median(speed), statistics.median(cpu)


def side_by_side(
    apps: list[Service], drives: list[Drive], scenario: str
) -> list[tuple[float, float]]:
    """One run of each build, started together: its req/s and CPU µs per request."""
    before = [cpu_seconds(app.pid) for app in apps]

    def run(app: Service, drive: Drive) -> Row:
        return wrk(app.url + drive[0], drive[1], drive[2], SECONDS, CONNECTIONS)

    with ThreadPoolExecutor(len(apps)) as pool:
        rows = list(pool.map(run, apps, drives))
    figures = []
    for app, used, row in zip(apps, before, rows, strict=True):
        if row["statuses"]["2xx"] != row["requests"] or row["errors"]:
            errors = row["statuses"], row["socket_errors"]
            raise RuntimeError(f"{scenario} on {app.name}: not every answer a 2xx: {errors}")
        wait_drained(app.port)  # the CPU of every request sent, answered after wrk stopped too
        sent = row["requests"] + row["waiting"]
        figures.append((row["rps"], (cpu_seconds(app.pid) - used) / sent * 1e6))
    return figures


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """`rev` checked out in a temporary git worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-base-") as scratch:
        tree = Path(scratch) / "base"
        add = ["git", "worktree", "add", "--detach", "--quiet", str(tree), rev]
        subprocess.run(add, cwd=ROOT, check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
