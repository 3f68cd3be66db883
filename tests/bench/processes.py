"""What the served processes use, read from /proc: CPU time, open connections, the machine.

Linux only, like the rest of the bench.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# /proc/net/tcp states that hold no request: LISTEN (0A) and TIME_WAIT (06).
_IDLE_STATES = {"0A", "06"}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, and of descendants
    it has reaped (cutime + cstime: a gunicorn worker recycled during a run still counts).
    """
    return sum(_own_and_reaped(p) for p in [pid, *descendants(pid)]) / CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`, from /proc/<pid>/task/*/children."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                children = [int(child) for child in task.read_text().split()]
            except OSError:
                continue  # gone meanwhile
            found.extend(children)
            todo.extend(children)
    return found


def _own_and_reaped(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0  # gone meanwhile
    return sum(int(value) for value in fields[11:15])  # utime stime cutime cstime


def machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (all cores, all users)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # up to steal; guest time is already in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def open_connections(port: int) -> int:
    """TCP connections to a local port that a server still has to answer or close: the
    accept queue, those being served, and those the client closed (CLOSE_WAIT)."""
    suffix = f":{port:04X}"
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, _, state = line.split()[1:4]
            if local.endswith(suffix) and state not in _IDLE_STATES:
                count += 1
    return count


def wait_drained(port: int, limit: float = 60.0) -> float | None:
    """Wait until the server on `port` has no connection left to serve; return how long
    it took, or None if some were left after `limit` seconds (then go on regardless).

    After wrk stops, its requests in flight are still being served (a sync worker also
    serves those still queued): the next run must not share the machine with them."""
    started = time.monotonic()
    while left := open_connections(port):
        if time.monotonic() - started > limit:
            print(f"!! port {port}: {left} connections still open after {limit:.0f} s", flush=True)
            return None
        time.sleep(0.05)
    return time.monotonic() - started
