"""`make bench-layers`: what each layer of a request costs, timed in process.

Whole WSGI requests against the real stack (Redis, sandbox), in one process, with one
part at a time taken away: the difference is that part's cost. Prints the minimum and
median over rounds of microseconds per request; the machine is noisy, read the minimum.

- floor: the bare Flask route of `make bench`
- app, no work: `/healthz` through our WSGI envelope, hooks and error handling
- GET basket, and GET with its Redis read served from memory (the read's cost)
- basket page, and the page with its template render replaced by the finished HTML
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.test import EnvironBuilder

from app import create_app
from tests.bench import ablated, floor
from tests.bench.stack import BASKET, Stack, as_request

REQUESTS = int(os.environ.get("BENCH_LAYER_REQUESTS", "1000"))
ROUNDS = int(os.environ.get("BENCH_LAYER_ROUNDS", "5"))


def per_request(wsgi: Any, path: str, headers: dict[str, str]) -> float:
    """Microseconds per request, the environs built beforehand."""
    environs = [
        EnvironBuilder(path=path, headers=list(headers.items())).get_environ()
        for _ in range(REQUESTS)
    ]
    started = time.perf_counter()
    for environ in environs:
        b"".join(wsgi(environ, lambda *_: None))
    return (time.perf_counter() - started) / REQUESTS * 1e6


@contextmanager
def replaced(owner: Any, name: str, stand_in: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, stand_in)
    try:
        yield
    finally:
        setattr(owner, name, original)


def main() -> int:
    with Stack() as stack:
        alice = stack.token("alice")
        _, api_headers = as_request(stack, "GET basket", alice)
        _, page = as_request(stack, "basket page", alice)
        app = create_app(stack.app_config())
        logging.getLogger("checkout.access").setLevel(logging.WARNING)
        wsgi = app.wsgi_app

        def without(part: str, path: str, headers: dict[str, str]) -> float:
            owner, attribute, stand_in = ablated.STAND_INS[part]
            with replaced(owner, attribute, stand_in()):
                return per_request(wsgi, path, headers)

        layers: dict[str, Callable[[], float]] = {
            "floor": lambda: per_request(floor.app.wsgi_app, "/hello", {}),
            "app, no work (/healthz)": lambda: per_request(wsgi, "/healthz", {}),
            "GET basket": lambda: per_request(wsgi, BASKET, api_headers),
            "GET, Redis read from memory": lambda: without("redis-read", BASKET, api_headers),
            "basket page": lambda: per_request(wsgi, "/basket", page),
            "page, render replaced": lambda: without("render", "/basket", page),
        }
        timings: dict[str, list[float]] = {name: [] for name in layers}
        for _ in range(ROUNDS):
            for name, measure in layers.items():
                timings[name].append(measure())
    print(f"\n{'layer':30} {'min µs':>8} {'median µs':>10}")
    for name, values in timings.items():
        print(f"{name:30} {min(values):8.0f} {statistics.median(values):10.0f}")
    low = {name: min(values) for name, values in timings.items()}
    print(
        f"\nRedis read in a GET ≈ {low['GET basket'] - low['GET, Redis read from memory']:.0f} µs; "
        f"page render ≈ {low['basket page'] - low['page, render replaced']:.0f} µs; "
        f"our envelope and hooks ≈ {low['app, no work (/healthz)'] - low['floor']:.0f} µs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
