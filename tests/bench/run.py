"""`make bench`: the checkout under load on loopback, against the floor in the same run.

Starts Redis (embedded unless CHECKOUT_REDIS_URL is set), the sandbox, the checkout under
gunicorn with app/gunicorn_config.py (2 sync workers) and the floor (a bare Flask route,
same settings) and naive stand-ins (a 6 KB page, and that page after one Redis GET and
SET: tests/bench/standin.py), which show what a ratio means on this machine; warms up;
drives each scenario with wrk (16 connections) in rounds, each round right after a run
of the floor, and reports the median round; counts Redis and backend round trips per
request in a separate in-process pass; measures Redis memory per open basket. Prints one
table and writes JSON and a PNG chart under bench-results/.

Loopback figures are information, not targets: upstreams answer here in about a
millisecond, where in production they take tens to hundreds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import requests

from sandbox.stack import (
    ROOT,
    EmbeddedRedis,
    Service,
    app_settings,
    free_port,
    gunicorn_service,
    sandbox_service,
)
from tests.conftest import recaptcha_token
from tests.journey import signed_in_browser

BENCH = Path(__file__).resolve().parent
SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
# Each scenario runs in rounds, each right after a run of the floor: the machine's speed
# drifts over a minute by more than the differences we measure, so every ratio is taken
# against the floor of its own round, and the median round is reported.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 16
BASKET = "/api/v1/checkout/basket"
SCENARIOS = ("basket page", "GET basket", "PUT add offer")


def wrk(
    url: str,
    script: str | None,
    env: dict[str, str],
    seconds: int,
    threads: int = 2,
    connections: int = CONNECTIONS,
) -> dict[str, float]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        command[1:1] = ["-s", str(BENCH / script)]
    env = {**os.environ, **env, "BENCH_RUN": uuid.uuid4().hex[:12], "BENCH_THREADS": str(threads)}
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "non_2xx": float(m.group(1)) if (m := re.search(r"Non-2xx.*?:\s+(\d+)", out)) else 0.0,
        "errors": float(m.group(1)) if (m := re.search(r"Socket errors:.*?(\d+)", out)) else 0.0,
    }


def _median_round(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds (ratios included: each against its own floor)."""
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def _latency(out: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)\b", out)
    assert match, out
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


class Stack:
    def __init__(self) -> None:
        self.pieces: list[Any] = []

    def __enter__(self) -> Stack:
        url = os.environ.get("CHECKOUT_REDIS_URL")
        if not url:
            embedded = EmbeddedRedis().start()
            self.pieces.append(embedded)
            url = embedded.url
        self.redis_url = url
        self.sandbox = self._start(sandbox_service(free_port()))
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.env = {
            **app_settings(self.sandbox.url, url),
            "CHECKOUT_REDIS_KEY_PREFIX": self.prefix,
            "CHECKOUT_RATE_LIMIT_CREATE": "100000000/60",
            "CHECKOUT_RATE_LIMIT_UPDATE": "100000000/60",
        }
        self.app = self._start(
            gunicorn_service("app", "wsgi:app", free_port(), self.env, "/healthz")
        )
        self.floor = self._start(
            gunicorn_service("floor", "tests.bench.floor:app", free_port(), {}, "/hello")
        )
        standin_env = {"BENCH_STANDIN_REDIS": url}
        self.standin = self._start(
            gunicorn_service(
                "stand-in", "tests.bench.standin:app", free_port(), standin_env, "/page"
            )
        )
        return self

    def _start(self, service: Service) -> Service:
        service.start(quiet=True)
        self.pieces.append(service)
        return service

    def __exit__(self, *_: object) -> None:
        for piece in reversed(self.pieces):
            piece.stop()

    def app_config(self) -> dict[str, Any]:
        """The served checkout's settings, for building the same app in this process."""
        return {k.removeprefix("CHECKOUT_"): _setting(v) for k, v in self.env.items()}

    def token(self, customer: str) -> str:
        body = {"sub": customer, "expiresIn": 3600}
        response = requests.post(f"{self.sandbox.url}/_sandbox/token", json=body, timeout=5)
        return str(response.json()["access_token"])

    def basket_cookie(self, token: str, subscription: str = "SUB-1001") -> str:
        response = requests.post(
            self.app.url + BASKET,
            json={"subscriptionId": subscription},
            headers={"Authorization": f"Bearer {token}", "X-Recaptcha-Token": recaptcha_token()},
            timeout=10,
        )
        response.raise_for_status()
        return f"landing_state={response.cookies['landing_state']}"


def drive(
    stack: Stack, scenario: str, token: str, baskets: int = 32
) -> tuple[str, str, dict[str, str]]:
    """How wrk drives one of the checkout's scenarios: its path, script and settings.

    Each call for PUT makes baskets of its own: two drivers changing the same baskets
    would make some PUTs no-ops, and the scenario cheaper than it is.
    """
    if scenario == "GET basket":
        return BASKET, "get.lua", {"BENCH_TOKEN": token, "BENCH_COOKIE": stack.basket_cookie(token)}
    if scenario == "basket page":
        cookies = signed_in_page_cookies(stack)
        if cookies is None:
            raise RuntimeError("could not sign in through the journey for the basket page")
        return "/basket", "page.lua", {"BENCH_COOKIE": cookies}
    if scenario == "PUT add offer":
        cookies = "|".join(stack.basket_cookie(token) for _ in range(baskets))
        return BASKET, "put.lua", {"BENCH_TOKEN": token, "BENCH_COOKIES": cookies}
    raise ValueError(f"no such scenario: {scenario}")


def as_request(stack: Stack, scenario: str, token: str) -> tuple[str, dict[str, str]]:
    """A read scenario of `drive` as one HTTP request (path, headers), for the tools that
    serve it in process."""
    path, _, env = drive(stack, scenario, token)
    headers = {"Cookie": env["BENCH_COOKIE"]}
    if "BENCH_TOKEN" in env:
        headers["Authorization"] = f"Bearer {env['BENCH_TOKEN']}"
    return path, headers


def signed_in_page_cookies(stack: Stack) -> str | None:
    """The cookies of a customer signed in on the basket page."""
    http = signed_in_browser(stack.app.url)
    if http is None:
        return None
    jar = http.cookies.get_dict(domain="127.0.0.1") or http.cookies.get_dict()
    return "; ".join(f"{k}={v}" for k, v in jar.items())


# -- round trips, counted in-process on the real code path ---------------------------------


class RoundTrips:
    """Counts Redis round trips (one per packed send: a pipeline is one) and backend calls."""

    def __init__(self, stack: Stack) -> None:
        from app import create_app

        self.app = create_app(stack.app_config())
        logging.getLogger("checkout.access").setLevel(logging.WARNING)
        self.sandbox = stack.sandbox.url
        self.sends = 0
        counter = self

        pool = self.app.extensions["checkout.redis"].connection_pool
        base = pool.connection_class

        class Counting(base):  # type: ignore[misc, valid-type]
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                counter.sends += 1
                super().send_packed_command(command, check_health)

        pool.connection_class = Counting

    def _backend(self) -> int:
        stats = requests.get(f"{self.sandbox}/_sandbox/stats", timeout=5).json()
        return int(sum(stats["backend"].values()) + stats["siteverify"])

    def measure(
        self, cookies: str, request: Callable[[Any], Any], repeat: int = 20
    ) -> dict[str, float]:
        client = self.app.test_client()
        for pair in cookies.split("; "):
            name, _, value = pair.partition("=")
            client.set_cookie(name, value)
        request(client)  # warm: loads the Lua script, fetches the JWKS
        sends, backend = self.sends, self._backend()
        for _ in range(repeat):
            response = request(client)
            assert response.status_code == 200, response.get_data(as_text=True)
        return {
            "redis_round_trips": (self.sends - sends) / repeat,
            "backend_calls": (self._backend() - backend) / repeat,
        }


def _setting(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def memory_per_basket(stack: Stack, token: str, count: int = 300) -> dict[str, float]:
    client = redis.Redis.from_url(stack.redis_url)
    before = int(client.info("memory")["used_memory"])
    cookie = ""
    for _ in range(count):
        cookie = stack.basket_cookie(token)
    after = int(client.info("memory")["used_memory"])
    keys = list(client.scan_iter(match=f"{stack.prefix}:basket:*", count=1000))
    sample = client.memory_usage(keys[0]) if keys else 0
    every_key = client.scan_iter(match=f"{stack.prefix}:*")
    without_ttl = sum(1 for key in every_key if client.ttl(key) == -1)  # -2: gone since
    client.close()
    del cookie
    return {
        "bytes_per_basket": (after - before) / count,
        "memory_usage_one_basket": float(sample or 0),
        "keys_without_ttl": float(without_ttl),
    }


# -- the run --------------------------------------------------------------------------------


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk (Debian)", file=sys.stderr)
        return 2
    out_dir = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, float]] = {}
    with Stack() as stack:
        alice = stack.token("alice")
        load_tokens = "|".join(stack.token(f"load-{n:02d}") for n in range(1, CONNECTIONS + 1))
        driven = {name: drive(stack, name, alice) for name in SCENARIOS}
        floor_url = stack.floor.url + "/hello"
        scenarios: list[tuple[str, str, str | None, dict[str, str], dict[str, int]]] = [
            ("stand-in: 6 KB page", stack.standin.url + "/page", None, {}, {}),
            ("stand-in: page + Redis GET+SET", stack.standin.url + "/page-redis", None, {}, {}),
            *((name, stack.app.url + path, script, env, {})
              for name, (path, script, env) in driven.items()),
            ("create-add-complete cycle", stack.app.url + BASKET, "cycle.lua",
             {"BENCH_TOKENS": load_tokens}, {"threads": CONNECTIONS}),
        ]  # fmt: skip
        wrk(floor_url, None, {}, WARMUP)
        # Every run of a scenario sits between two runs of the floor and is measured
        # against their mean: the machine's drift from one run to the next cancels.
        floors = [wrk(floor_url, None, {}, SECONDS)]
        for name, url, script, env, options in scenarios:
            print(f"… {name}", flush=True)
            wrk(url, script, env, WARMUP, **options)
            rounds = []
            for _ in range(ROUNDS):
                row = wrk(url, script, env, SECONDS, **options)
                floors.append(wrk(floor_url, None, {}, SECONDS))
                around = floors[-2:]
                row["ratio"] = row["rps"] / statistics.mean(f["rps"] for f in around)
                rounds.append(row)
            ratios = [r["ratio"] for r in rounds]
            spread = {"ratio_low": min(ratios), "ratio_high": max(ratios)}
            rows[name] = _median_round(rounds) | spread
        rows = {"floor": _median_round(floors) | {"ratio": 1.0}, **rows}
        # Tails against the floor's median p99 over all its runs, not the two beside a
        # round: one floor run with a stall sits beside two rounds, and once made the
        # page's p99 (11 ms) read as 0.41 of the floor's (4.9 ms in its other runs).
        for row in rows.values():
            row["p99_vs_floor"] = row["p99_ms"] / rows["floor"]["p99_ms"]

        counts = RoundTrips(stack)
        auth = {"Authorization": f"Bearer {alice}"}
        offers = iter(["OFFER-SPORTS", "OFFER-KIDS"] * 100)
        get_cookie = driven["GET basket"][2]["BENCH_COOKIE"]
        trips = {
            "GET basket": counts.measure(get_cookie, lambda c: c.get(BASKET, headers=auth)),
            "PUT add offer": counts.measure(
                get_cookie,
                lambda c: c.put(
                    BASKET,
                    json={"addOffers": [next(offers)]},
                    headers={**auth, "X-Recaptcha-Token": recaptcha_token()},
                ),
            ),
            "basket page": counts.measure(
                driven["basket page"][2]["BENCH_COOKIE"], lambda c: c.get("/basket")
            ),
        }
        memory = memory_per_basket(stack, alice)

    for name, row in rows.items():
        row.update(trips.get(name, {}))
    report = {
        "seconds": SECONDS,
        "rounds": ROUNDS,
        "connections": CONNECTIONS,
        "workers": 2,
        "scenarios": rows,
        "memory": memory,
    }
    (out_dir / "results.json").write_text(json.dumps(report, indent=2))
    print_table(rows, memory)
    chart(rows, out_dir / "results.png")
    print(f"\nresults: {out_dir}/results.json and results.png")
    return 0


def print_table(rows: dict[str, dict[str, float]], memory: dict[str, float]) -> None:
    header = (
        f"{'scenario':31} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'rounds':>11} "
        f"{'p99/floor':>9} {'redis RT':>8} {'backend':>7} {'non-2xx':>7}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for name, row in rows.items():
        rt = f"{row['redis_round_trips']:.1f}" if "redis_round_trips" in row else "-"
        be = f"{row['backend_calls']:.1f}" if "backend_calls" in row else "-"
        spread = f"{row['ratio_low']:.3f}-{row['ratio_high']:.3f}" if "ratio_low" in row else ""
        print(
            f"{name:31} {row['rps']:9.0f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} "
            f"{row['ratio']:6.3f} {spread:>11} {row['p99_vs_floor']:9.2f} {rt:>8} "
            f"{be:>7} {row['non_2xx']:7.0f}"
        )
    print(
        f"\nRedis memory per open basket: {memory['bytes_per_basket']:.0f} bytes "
        f"(MEMORY USAGE of one: {memory['memory_usage_one_basket']:.0f}); "
        f"keys without a TTL: {memory['keys_without_ttl']:.0f}"
    )


def chart(rows: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].barh(names, [rows[n]["ratio"] for n in names], color="#1d70b8")
    axes[0].set_xlabel("throughput as a ratio of the floor")
    axes[0].invert_yaxis()
    axes[1].barh(names, [rows[n]["p99_ms"] for n in names], color="#505a5f")
    axes[1].set_xlabel("p99 latency, ms")
    axes[1].invert_yaxis()
    axes[1].set_yticks([])
    fig.suptitle(
        f"make bench: 2 sync workers, {CONNECTIONS} connections, "
        f"median of {ROUNDS} rounds of {SECONDS}s, each after the floor"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
