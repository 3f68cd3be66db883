"""`make bench-compare BASE=<rev>`: this working tree against another revision, under the
same load at the same moment.

`make bench` measures each scenario in rounds against the floor; on a shared machine the
speed drifts between rounds by more than most single changes are worth (10 % from one
round to the next is common here). This tool serves both builds side by side (gunicorn
with the committed settings and default workers, one Redis and sandbox) and drives them
with two wrk processes started together, run after run: both see the same machine, so
the drift cancels and the ratio of their throughputs is paired. Prints each run and the
median ratio of throughput and of gunicorn CPU per request, this tree over BASE.

How far to trust it, measured here: identical builds gave throughput medians from
0.95 to 1.04 for GET (single runs ±7 %) and within ±1 % for PUT, which waits on the
sandbox and is steadier. CPU per request is the sharper figure: a 100 µs busy loop added
to the page read as 1.17 while its throughput read 0.94. Read a GET or page throughput
median within ±5 % as no difference; look at CPU per request first.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.stack import ROOT, Service, free_port, gunicorn_service
from tests.bench.processes import cpu_seconds
from tests.bench.stack import Stack, drive
from tests.bench.wrk import wrk

RUNS = int(os.environ.get("BENCH_RUNS", "8"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
SCENARIOS = os.environ.get("BENCH_SCENARIOS", "get,page,put").split(",")


def served(stack: Stack, tree: Path) -> Service:
    """The app of `tree` (its `app` package first on the path), as `make bench` serves it.

    Until this check, the BASE build imported this tree's `app`: every comparison was of
    this tree against itself.
    """
    env = {**stack.env, "PYTHONPATH": str(tree)}
    where = subprocess.run(
        [sys.executable, "-c", "import app; print(app.__file__)"],
        cwd=tree, env={**os.environ, **env}, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not Path(where).is_relative_to(tree):
        raise RuntimeError(f"the build of {tree} would serve {where}")
    service = gunicorn_service(
        tree.name, "wsgi:app", free_port(), env, "/healthz", "--max-requests", "0", cwd=tree
    )
    return stack._start(service)


def _drive(
    rows: list[dict[str, float]], i: int, url: str, script: str, env: dict[str, str]
) -> None:
    rows[i] = wrk(url, script, env, SECONDS, connections=8)


def compare(stack: Stack, here: Service, base: Service, scenario: str) -> None:
    alice = stack.token("alice")
    name = {"get": "GET basket", "page": "basket page", "put": "PUT add offer"}[scenario]
    path, script, env = drive(stack, name, alice, baskets=16)
    # Each build changes baskets of its own; the reads share theirs.
    base_env = drive(stack, name, alice, baskets=16)[2] if scenario == "put" else env
    envs = [env, base_env]
    services = (here, base)
    for service, env in zip(services, envs, strict=True):
        wrk(service.url + path, script, env, 2)  # warm up
    speed, cpu = [], []
    print(f"\n{scenario}: req/s and CPU µs per request, this tree | {base.name}")
    for _ in range(RUNS):
        rows: list[dict[str, float]] = [{}, {}]
        used = [cpu_seconds(s.pid) for s in services]
        drivers = [
            threading.Thread(target=_drive, args=(rows, i, services[i].url + path, script, envs[i]))
            for i in (0, 1)
        ]
        for driver in drivers:
            driver.start()
        for driver in drivers:
            driver.join()
        per_request = [
            (cpu_seconds(s.pid) - u) / (row["rps"] * SECONDS) * 1e6
            for s, u, row in zip(services, used, rows, strict=True)
        ]
        assert rows[0]["non_2xx"] == rows[1]["non_2xx"] == 0, f"{scenario}: errors"
        speed.append(rows[0]["rps"] / rows[1]["rps"])
        cpu.append(per_request[0] / per_request[1])
        print(
            f"  {rows[0]['rps']:7.0f} {per_request[0]:6.0f} | "
            f"{rows[1]['rps']:7.0f} {per_request[1]:6.0f}   ratio {speed[-1]:.3f}"
        )
    print(
        f"{scenario}: throughput this/base median {statistics.median(speed):.3f} "
        f"(runs {min(speed):.3f}-{max(speed):.3f}); "
        f"CPU per request this/base median {statistics.median(cpu):.3f}"
    )


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """`rev` checked out in a temporary git worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-base-") as scratch:
        tree = Path(scratch) / rev.replace("/", "-")
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(tree), rev], cwd=ROOT, check=True
        )
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)


def main() -> int:
    rev = os.environ.get("BASE") or "HEAD"
    with worktree(rev) as tree, Stack() as stack:
        here, base = served(stack, ROOT), served(stack, tree)
        base.name = rev
        for scenario in SCENARIOS:
            compare(stack, here, base, scenario)
    return 0


if __name__ == "__main__":
    sys.exit(main())
