"""`make bench`: the checkout under realistic upstream latency, then on loopback.

Starts the stack (tests/bench/stack.py: Redis, the sandbox, the checkout under gunicorn
with app/gunicorn_config.py and its defaults, the floor and the stand-ins), then:

1. the primary table (tests/bench/latency.py): PUT add-offer, POST create, the
   create → add → complete cycle and the basket page at 16, 64 and 256 connections
   (BENCH_CONNECTIONS), under the sandbox's `realistic` latency and, right after, under
   `none`; the targets, each printed PASS or MISS (the exit status is 0 either way);
2. the cost of a sign-in under each profile;
3. the secondary table (tests/bench/loopback.py): loopback against a bare Flask route,
   information only, no targets.

Writes everything to bench-results/<timestamp>/results.json, with charts beside it.
Try another worker model with e.g. `CHECKOUT_WORKER_CLASS=gevent make bench`; durations
with BENCH_SECONDS (5) and BENCH_WARMUP (2), loopback rounds with BENCH_ROUNDS (2).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

from sandbox.stack import ROOT
from tests.bench import latency, loopback
from tests.bench.stack import Stack, describe_workers


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk (Debian)", file=sys.stderr)
        return 2
    out_dir = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with Stack() as stack:
        workers = describe_workers(stack.workers)
        print(f"checkout: {workers}", flush=True)
        alice = stack.token("alice")
        primary = latency.measure(stack, alice)
        sign_in = latency.sign_in_cost(stack)
        secondary = loopback.measure(stack, alice)
    took = time.monotonic() - started
    report = {
        "git": _git(),
        "started": out_dir.name,
        "duration_s": took,
        "workers": stack.workers,
        "primary": primary,
        "sign_in": sign_in,
        "loopback": secondary,
    }
    (out_dir / "results.json").write_text(json.dumps(report, indent=2))
    latency.print_table(primary, workers)
    latency.print_sign_in(sign_in)
    loopback.print_table(secondary, workers)
    latency.chart(primary, workers, out_dir / "results.png")
    loopback.chart(secondary, workers, out_dir / "loopback.png")
    print(f"\nresults: {out_dir}/results.json, results.png and loopback.png")
    print(f"took {took / 60:.1f} min")
    return 0


def _git() -> dict[str, object]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    status = git("status", "--porcelain")
    return {
        "revision": git("rev-parse", "HEAD"),
        "dirty": bool(status),
        "changed": status.splitlines(),
    }


if __name__ == "__main__":
    sys.exit(main())
