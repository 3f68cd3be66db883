"""Running wrk and reading what it printed.

Every checkout script loads tests/bench/statuses.lua, which counts the answers by kind,
and at the end prints their sums, how long each request still unanswered had waited, and
wrk's latency percentiles; wrk's own output gives throughput, the latency distribution
(`--latency`) and the socket errors. `--timeout` is long (10 s) so that slow answers are
counted in the latency figures rather than dropped as timeouts.

wrk's percentiles are of the requests answered during the run. When the checkout queues
for longer than the run lasts, most of its requests are still waiting at the end and the
answered ones are the fast few; `with_waiting` gives percentiles over both, counting each
request still waiting at the time it had waited so far (so they are lower bounds).
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
CONNECTIONS = 16
SOCKET_ERRORS = ("connect", "read", "write", "timeout")


def wrk(
    url: str,
    script: str | None,
    env: dict[str, str],
    seconds: int,
    threads: int = 2,
    connections: int = CONNECTIONS,
    timeout: str = TIMEOUT,
) -> dict[str, Any]:
    """One wrk run: its figures as `parse` reads them."""
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout}",
        "--latency", url,
    ]  # fmt: skip
    if script:
        command[1:1] = ["-s", str(BENCH / script)]
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


def parse(out: str) -> dict[str, Any]:
    """wrk's output as figures: rps, requests, p50/p75/p90/p99 in ms, the socket errors
    by kind (0 when wrk printed none) and their sum, wrk's own non-2xx-or-3xx count, and
    the statuses line of statuses.lua (absent for a run without a script)."""
    requests = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    assert requests, out
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = {
        kind: int(socket.group(i + 1)) if socket else 0 for i, kind in enumerate(SOCKET_ERRORS)
    }
    row: dict[str, Any] = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(requests.group(1)),
        "duration_s": _ms(float(requests.group(2)), requests.group(3)) / 1000,
        **{f"p{p}_ms": _latency(out, f"{p}%") for p in (50, 75, 90, 99)},
        "socket_errors": errors,
        "errors": float(sum(errors.values())),
        "non_2xx": float(m.group(1)) if (m := re.search(r"Non-2xx.*?:\s+(\d+)", out)) else 0.0,
    }
    statuses = re.search(
        r"bench-statuses ok=(\d+) retry503=(\d+) other=(\d+) reused=(\d+) unmatched=(\d+)", out
    )
    if statuses:
        ok, retry503, other, reused, unmatched = (int(g) for g in statuses.groups())
        row["statuses"] = {"2xx": ok, "503_retry_after": retry503, "other": other}
        row["reused_baskets"] = reused
        row["unmatched_answers"] = unmatched
    waiting = re.search(r"^bench-unanswered ([\d.,]*)$", out, re.M)
    points = re.search(r"^bench-latency (\S+)$", out, re.M)
    if waiting and points:
        row["waiting_ms"] = sorted(float(v) for v in waiting.group(1).split(",") if v)
        row["latency_points"] = [
            (float(q), int(us) / 1000)
            for q, us in (point.split(":") for point in points.group(1).split(","))
        ]
    return row


def with_waiting(row: dict[str, Any], q: float) -> float:
    """The q-th percentile (ms) over the answered requests and those still waiting when
    the run ended, each of those at how long it had waited: a lower bound."""
    if "latency_points" not in row:
        return float(row[f"p{q:g}_ms"])
    waits, points = row["waiting_ms"], row["latency_points"]
    answered = row["requests"]
    rank = q / 100 * (answered + len(waits))
    if rank == 0:
        return 0.0
    fractions = [point[0] / 100 for point in points]
    values = [point[1] for point in points]
    for x in sorted({*values, *waits}):
        # answered requests at or under x, from the percentile points
        share = fractions[bisect.bisect_right(values, x) - 1] if x >= values[0] else 0.0
        if share * answered + bisect.bisect_right(waits, x) >= rank:
            return x
    return max(values[-1], waits[-1] if waits else 0.0)


def _latency(out: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s|m)\b", out, re.M)
    assert match, out
    return _ms(float(match.group(1)), match.group(2))


def _ms(value: float, unit: str) -> float:
    return {"us": value / 1000, "ms": value, "s": value * 1000, "m": value * 60_000}[unit]
