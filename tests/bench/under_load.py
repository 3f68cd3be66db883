"""`make bench-ablate`: what each part of a request costs under load, found by taking it away.

For `GET` and the basket page: the checkout as it is, and with one part at a time taken
away (`tests/bench/ablated.py`), each served as in `make bench` (gunicorn, 2 sync workers,
no worker recycling here) and driven by wrk (16 connections) in rounds right after the
floor. Prints each variant's ratio to the floor and the CPU time of its gunicorn
processes per request: the drop from "as it is" is what that part costs under load. On a
noisy machine CPU per request is steadier than req/s.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from sandbox.stack import Service, free_port, gunicorn_service
from tests.bench.run import BASKET, SECONDS, Stack, signed_in_page_cookies, wrk

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
VARIANTS = {
    "GET basket": ["", "redis-read", "signed-cookies", "access-log"],
    "basket page": ["", "render", "signed-cookies", "access-log"],
}


def served(stack: Stack, ablate: str) -> Service:
    env = {**stack.env, "BENCH_ABLATE": ablate}
    name, target = ablate or "as it is", "tests.bench.ablated:build()"
    return stack._start(
        gunicorn_service(name, target, free_port(), env, "/healthz", "--max-requests", "0")
    )


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its live children, and of children it has reaped."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> int:
    with Stack() as stack:
        alice = stack.token("alice")
        page_cookie = signed_in_page_cookies(stack) or ""
        targets = {
            "GET basket": (BASKET, "get.lua",
                           {"BENCH_TOKEN": alice, "BENCH_COOKIE": stack.basket_cookie(alice)}),
            "basket page": ("/basket", "page.lua", {"BENCH_COOKIE": page_cookie}),
        }  # fmt: skip
        floor_url = stack.floor.url + "/hello"
        print(f"\n{'scenario':12} {'taken away':15} {'ratio':>6} {'CPU µs/req':>11} {'saved':>6}")
        for scenario, ablations in VARIANTS.items():
            path, script, env = targets[scenario]
            services = {ablate: served(stack, ablate) for ablate in ablations}
            ratios: dict[str, list[float]] = {ablate: [] for ablate in ablations}
            cpu: dict[str, list[float]] = {ablate: [] for ablate in ablations}
            for service in services.values():
                wrk(service.url + path, script, env, 2)  # warm up
            for _ in range(ROUNDS):
                for ablate, service in services.items():
                    floor = wrk(floor_url, None, {}, SECONDS)
                    assert service.process is not None
                    before = cpu_seconds(service.process.pid)
                    row = wrk(service.url + path, script, env, SECONDS)
                    used = cpu_seconds(service.process.pid) - before
                    assert row["non_2xx"] == 0, f"{scenario} without {ablate}: errors"
                    ratios[ablate].append(row["rps"] / floor["rps"])
                    cpu[ablate].append(used / (row["rps"] * SECONDS) * 1e6)
            base = statistics.median(cpu[""])
            for ablate in ablations:
                per_request = statistics.median(cpu[ablate])
                saved = f"{base - per_request:6.0f}" if ablate else ""
                print(
                    f"{scenario:12} {ablate or '(nothing)':15} "
                    f"{statistics.median(ratios[ablate]):6.3f} {per_request:11.0f} {saved:>6}"
                )
            for service in services.values():
                service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
