"""What both bench tools drive, all as processes over HTTP: Redis (embedded unless
CHECKOUT_REDIS_URL is set), the sandbox, and the checkout of a git tree under gunicorn with
that tree's app/gunicorn_config.py; and the requests and baskets of each scenario.

The worker model is the config's own (CHECKOUT_WORKER_CLASS, CHECKOUT_WORKERS,
CHECKOUT_THREADS, CHECKOUT_MAX_IN_FLIGHT… pass through from the environment). CPU time and
open connections are read from /proc: Linux only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from sandbox.stack import (
    EmbeddedRedis,
    Service,
    app_settings,
    deliverer_service,
    free_port,
    gunicorn_service,
    sandbox_service,
)
from tests.conftest import recaptcha_token
from tests.journey import signed_in_browser

BASKET = "/api/v1/checkout/basket"
#: the load-test customers (load-01 … load-32), whose subscriptions never lock
LOAD_CUSTOMERS = tuple(f"load-{n:02d}" for n in range(1, 33))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: the settings that change the worker model (CHECKOUT_WORKER_CLASS, _WORKERS, …)
WORKER_ENV = ("CHECKOUT_WORKER", "CHECKOUT_THREADS", "CHECKOUT_MAX_IN_FLIGHT")
#: how wrk drives a scenario: the path, the script and its environment
Drive = tuple[str, str, dict[str, str]]


class Stack:
    """Redis and the sandbox (no added latency until `set_latency`); `serve` adds apps."""

    def __enter__(self) -> Stack:
        self.pieces: list[Any] = []
        try:
            url = os.environ.get("CHECKOUT_REDIS_URL")
            if not url:
                url = self._start(EmbeddedRedis()).url
            self.sandbox = self._start(sandbox_service(free_port(), latency="none"))
            self.env = {
                **app_settings(self.sandbox.url, url),
                "CHECKOUT_REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
                "CHECKOUT_RATE_LIMIT_CREATE": "100000000/60",
                "CHECKOUT_RATE_LIMIT_UPDATE": "100000000/60",
            }
            self._start(deliverer_service(self.env))  # the partner events, as in production
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self, piece: Any) -> Any:
        self.pieces.append(piece)
        return piece.start(quiet=True) if isinstance(piece, Service) else piece.start()

    def __exit__(self, *_: object) -> None:
        for piece in reversed(self.pieces):
            piece.stop()
        self.pieces.clear()

    def serve(self, tree: Path, name: str, *options: str) -> tuple[Service, dict[str, Any]]:
        """The checkout of `tree` served as `gunicorn -c app/gunicorn_config.py wsgi:app`
        from that tree (`options` added), and its worker settings. It first checks that the
        tree imports its own `app` package: for a long time the BASE build of `make
        bench-compare` imported this tree's, and every comparison was of this tree against
        itself."""
        env = {**self.env, "PYTHONPATH": str(tree)}
        where = _output(tree, env, "-c", "import app; print(app.__file__)").strip()
        if not Path(where).is_relative_to(tree):
            raise RuntimeError(f"the checkout of {tree} would serve {where}")
        workers = worker_settings(tree, env)
        port, count = free_port(), int(workers["workers"])
        app = gunicorn_service(
            name, "wsgi:app", port, env, "/healthz", *options, workers=count, cwd=tree
        )
        return self._start(app), workers

    def token(self, customer: str) -> str:
        body = {"sub": customer, "expiresIn": 3600}
        response = requests.post(f"{self.sandbox.url}/_sandbox/token", json=body, timeout=5)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def set_latency(self, profile: str) -> dict[str, int]:
        """Switch the sandbox's latency profile at once: its medians, ms per call."""
        url, body = f"{self.sandbox.url}/_sandbox/latency", {"profile": profile}
        response = requests.put(url, json=body, timeout=5)
        response.raise_for_status()
        return dict(response.json()["medianMs"])

    def scenario(self, app: Service, name: str, baskets: int = 0) -> Drive:
        """How wrk drives a scenario against `app`: its path, script and settings. PUT gets
        `baskets` new baskets: two runs changing the same ones would make some PUTs no-ops."""
        alice = self.token("alice")
        if name == "GET basket":
            cookie = self.baskets(app, alice, 1)[0]
            return BASKET, "get.lua", {"BENCH_TOKEN": alice, "BENCH_COOKIE": cookie}
        if name == "basket page":
            return "/basket", "get.lua", {"BENCH_COOKIE": page_cookies(app)}
        if name == "PUT add offer":
            cookies = "|".join(self.baskets(app, alice, baskets))
            return BASKET, "put.lua", {"BENCH_TOKEN": alice, "BENCH_COOKIES": cookies}
        if name == "POST create":
            return BASKET, "post.lua", {"BENCH_TOKEN": alice, "BENCH_SUBSCRIPTION": "SUB-1001"}
        if name == "create-add-complete cycle":
            tokens = "|".join(self.token(customer) for customer in LOAD_CUSTOMERS)
            return BASKET, "cycle.lua", {"BENCH_TOKENS": tokens}
        raise ValueError(f"no such scenario: {name}")

    def baskets(self, app: Service, token: str, count: int, parallel: int = 8) -> list[str]:
        """`count` new baskets of SUB-1001 as landing cookies, made `parallel` at once."""

        def create(count: int) -> list[str]:
            headers = {"Authorization": f"Bearer {token}"}
            with requests.Session() as http:
                made = []
                for _ in range(count):
                    headers["X-Recaptcha-Token"] = recaptcha_token()
                    body = {"subscriptionId": "SUB-1001"}
                    answer = http.post(app.url + BASKET, json=body, headers=headers, timeout=30)
                    answer.raise_for_status()
                    made.append(f"landing_state={answer.cookies['landing_state']}")
                return made

        shares = [count // parallel + (i < count % parallel) for i in range(parallel)]
        with ThreadPoolExecutor(parallel) as pool:
            return [cookie for share in pool.map(create, shares) for cookie in share]


def page_cookies(app: Service) -> str:
    """The cookies of a customer signed in on the basket page (tests/journey.py)."""
    http = signed_in_browser(app.url)
    if http is None:
        raise RuntimeError(f"could not sign in through the journey on {app.url}")
    with http:  # closed: an idle keep-alive connection would look like a request in flight
        jar = http.cookies.get_dict(domain="127.0.0.1") or http.cookies.get_dict()
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def worker_settings(tree: Path, env: dict[str, str]) -> dict[str, Any]:
    """The worker model as gunicorn resolves the tree's config (`--print-config`), and the
    settings of the environment that change it."""
    config = ("-m", "gunicorn", "--print-config", "-c", "app/gunicorn_config.py", "wsgi:app")
    names = "workers|worker_class|threads|worker_connections"
    found = re.findall(rf"^({names})\s+= (\S+)$", _output(tree, env, *config), re.M)
    given = {k: v for k, v in os.environ.items() if k.startswith(WORKER_ENV)}
    return {**dict(found), "environment": given}


def describe(workers: dict[str, Any]) -> str:
    """The worker model in a few words: "2 gthread workers × 32 threads"."""
    kind = workers["worker_class"]
    text = f"{workers['workers']} {kind} workers"
    if kind == "gthread":
        text += f" × {workers['threads']} threads"
    elif kind in ("gevent", "eventlet"):
        text += f" × {workers['worker_connections']} connections"
    return text + "".join(f", {k}={v}" for k, v in workers["environment"].items())


def _output(tree: Path, env: dict[str, str], *args: str) -> str:
    """What `python *args` prints, run in `tree` with the checkout's environment."""
    command, full_env = [sys.executable, *args], {**os.environ, **env}
    done = subprocess.run(command, cwd=tree, env=full_env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed in {tree}:\n{done.stderr}")
    return done.stdout


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants, live or reaped (a gunicorn worker
    recycled during a run still counts), from /proc/<pid>/stat."""
    total, todo = 0, [pid]
    while todo:
        parent = todo.pop()
        try:
            fields = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return total / CLOCK_TICKS


def wait_drained(port: int, limit: float = 60.0) -> float | None:
    """Wait until the server on `port` has no connection left to answer; return how long
    that took, or None after `limit` seconds. After wrk stops, requests it sent are still
    being served: the next run must not share the machine with them."""
    started = time.monotonic()
    while left := _open_connections(port):
        if time.monotonic() - started > limit:
            print(f"!! port {port}: {left} connections still open after {limit:.0f} s", flush=True)
            return None
        time.sleep(0.05)
    return time.monotonic() - started


def _open_connections(port: int) -> int:
    """TCP connections to a local port in any state but LISTEN (0A) and TIME_WAIT (06): the
    accept queue, those being served, and those the client closed (CLOSE_WAIT)."""
    count = 0
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:] if table.exists() else []:
            local, _, state = line.split()[1:4]
            count += local.endswith(f":{port:04X}") and state not in ("0A", "06")
    return count
