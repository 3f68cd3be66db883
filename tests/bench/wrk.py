"""Running wrk with one of the bench's scripts, and reading what it printed.

Every script loads tests/bench/statuses.lua, which counts the answers by kind and prints
how long each request still unanswered at the end had waited. wrk's own percentiles are
of the requests answered: with a queue longer than the run, of the fast few. `percentile`
counts both, each request still waiting at its wait so far (so the figure is a lower
bound). `--timeout` is long so that slow answers count as latency, not as socket errors.
"""

from __future__ import annotations

import bisect
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
TIMEOUT = "10s"
SOCKET_ERRORS = ("connect", "read", "write", "timeout")
#: one run's figures
Row = dict[str, Any]


def wrk(
    url: str, script: str, env: dict[str, str], seconds: int, connections: int, threads: int = 2
) -> Row:
    """One wrk run of `script` against `url`: its figures, as `parse` reads them."""
    command = [
        "wrk", "-s", str(BENCH / script), f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
        f"--timeout={TIMEOUT}", url,
    ]  # fmt: skip
    env = {
        **os.environ,
        **env,
        "BENCH_DIR": str(BENCH),
        "BENCH_RUN": uuid.uuid4().hex[:12],
        "BENCH_THREADS": str(threads),
        "BENCH_CONNECTIONS": str(connections),
    }
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)


def parse(out: str) -> Row:
    """rps, answered requests, the run's seconds, socket errors by kind, answers by kind,
    the waits of the unanswered, and p50 and p99 (ms) over both."""
    requests = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    statuses = re.search(
        r"bench-statuses ok=(\d+) retry503=(\d+) other=(\d+) reused=(\d+) unmatched=(\d+)", out
    )
    waiting = re.search(r"^bench-unanswered ([\d.,]*)$", out, re.M)
    points = re.search(r"^bench-latency (\S+)$", out, re.M)
    if not (requests and rps and statuses and waiting and points):
        raise RuntimeError(f"unexpected output of wrk:\n{out}")
    ok, retry503, other, reused, unmatched = (int(g) for g in statuses.groups())
    value, unit = float(requests.group(2)), requests.group(3)
    row: Row = {
        "rps": float(rps.group(1)),
        "requests": int(requests.group(1)),
        "duration_s": value * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[unit],
        "socket_errors": {
            kind: int(socket.group(i + 1)) if socket else 0 for i, kind in enumerate(SOCKET_ERRORS)
        },
        "statuses": {"2xx": ok, "503_retry_after": retry503, "other": other},
        "reused_baskets": reused,
        "unmatched_answers": unmatched,
        "waiting_ms": sorted(float(v) for v in waiting.group(1).split(",") if v),
        "latency_points": [
            (float(q), int(us) / 1000)
            for q, us in (point.split(":") for point in points.group(1).split(","))
        ],
    }
    row["errors"] = sum(row["socket_errors"].values())
    row["waiting"] = len(row["waiting_ms"])
    row["p50_ms"], row["p99_ms"] = percentile(row, 50), percentile(row, 99)
    return row


def percentile(row: Row, q: float) -> float:
    """The q-th percentile (ms) over the answered requests and those still waiting when
    the run ended, each of those at how long it had waited: a lower bound."""
    waits, points, answered = row["waiting_ms"], row["latency_points"], row["requests"]
    rank = q / 100 * (answered + len(waits))
    fractions = [point[0] / 100 for point in points]
    values = [point[1] for point in points]
    for x in sorted({*values, *waits}):
        # answered requests at or under x, from the percentile points, and the waiting
        share = fractions[bisect.bisect_right(values, x) - 1] if x >= values[0] else 0.0
        if share * answered + bisect.bisect_right(waits, x) >= rank:
            return x
    return max(values[-1], waits[-1] if waits else 0.0)
