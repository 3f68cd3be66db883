"""`make bench-ablate`: what each part of a request costs under load, found by taking it away.

For `GET`, the basket page and `PUT`: the checkout as it is, and with one part at a time
taken away (`tests/bench/ablated.py`), each served as in `make bench` (gunicorn with its
default workers, no recycling here) and driven by wrk (16 connections) in rounds right
after the floor. Prints each variant's ratio to the floor, the CPU time of its gunicorn
processes per request (the drop from "as it is" is what that part costs under load; on
a noisy machine CPU per request is steadier than req/s) and the sandbox's, which stands
in for the upstreams and shares the machine. For the reads, `floor-request` is the floor
answering the scenario's own request: what its headers cost before any of our work.
"""

from __future__ import annotations

import os
import statistics
import sys

from sandbox.stack import Service, free_port, gunicorn_service
from tests.bench.processes import cpu_seconds
from tests.bench.stack import Stack, drive
from tests.bench.wrk import SECONDS, wrk

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# The floor answering the scenario's own request (its headers: a token, cookies): what
# gunicorn and Flask charge for the request itself, before any of the checkout's work.
FLOOR = "floor-request"
VARIANTS = {
    "GET basket": ["", "redis-read", "signed-cookies", "access-log", FLOOR],
    "basket page": ["", "render", "signed-cookies", "access-log", FLOOR],
    "PUT add offer": ["", "siteverify", "quote"],
}


def served(stack: Stack, ablate: str) -> Service:
    env = {**stack.env, "BENCH_ABLATE": ablate}
    name, target = ablate or "as it is", "tests.bench.ablated:build()"
    return stack._start(
        gunicorn_service(name, target, free_port(), env, "/healthz", "--max-requests", "0")
    )


def main() -> int:
    with Stack() as stack:
        alice = stack.token("alice")
        targets = {scenario: drive(stack, scenario, alice) for scenario in VARIANTS}
        floor_url = stack.floor.url + "/hello"
        sandbox_pid = stack.sandbox.pid
        print(
            f"\n{'scenario':13} {'taken away':15} {'ratio':>6} {'CPU µs/req':>11} {'saved':>6} "
            f"{'stand-in µs/req':>15}"
        )
        for scenario, ablations in VARIANTS.items():
            path, script, env = targets[scenario]
            services = {a: stack.floor if a == FLOOR else served(stack, a) for a in ablations}
            ratios: dict[str, list[float]] = {ablate: [] for ablate in ablations}
            cpu: dict[str, list[float]] = {ablate: [] for ablate in ablations}
            upstream: dict[str, list[float]] = {ablate: [] for ablate in ablations}
            for ablate, service in services.items():
                wrk(_url(service, path, ablate), script, env, 2)  # warm up
            for _ in range(ROUNDS):
                for ablate, service in services.items():
                    floor = wrk(floor_url, None, {}, SECONDS)
                    before = cpu_seconds(service.pid), cpu_seconds(sandbox_pid)
                    row = wrk(_url(service, path, ablate), script, env, SECONDS)
                    used = cpu_seconds(service.pid) - before[0]
                    used_upstream = cpu_seconds(sandbox_pid) - before[1]
                    assert row["non_2xx"] == 0, f"{scenario} without {ablate}: errors"
                    requests = row["rps"] * SECONDS
                    ratios[ablate].append(row["rps"] / floor["rps"])
                    cpu[ablate].append(used / requests * 1e6)
                    upstream[ablate].append(used_upstream / requests * 1e6)
            base = statistics.median(cpu[""])
            for ablate in ablations:
                per_request = statistics.median(cpu[ablate])
                saved = f"{base - per_request:6.0f}" if ablate else ""
                print(
                    f"{scenario:13} {ablate or '(nothing)':15} "
                    f"{statistics.median(ratios[ablate]):6.3f} {per_request:11.0f} {saved:>6} "
                    f"{statistics.median(upstream[ablate]):15.0f}"
                )
            for ablate, service in services.items():
                if ablate != FLOOR:
                    service.stop()
    return 0


def _url(service: Service, path: str, ablate: str) -> str:
    return service.url + ("/hello" if ablate == FLOOR else path)


if __name__ == "__main__":
    sys.exit(main())
