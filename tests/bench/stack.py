"""The stack every bench tool drives, and the requests and baskets its scenarios need.

Redis (embedded unless CHECKOUT_REDIS_URL is set), the sandbox (no added latency until
`set_latency` switches it), the checkout under gunicorn with app/gunicorn_config.py and
its own defaults for the worker model and count (CHECKOUT_WORKER_CLASS, CHECKOUT_THREADS,
CHECKOUT_WORKER_CONNECTIONS, CHECKOUT_WORKERS and CHECKOUT_MAX_IN_FLIGHT pass through
from the environment), and, under the same settings, the floor (a bare Flask route) and
naive stand-ins (tests/bench/floor.py, tests/bench/standin.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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

BASKET = "/api/v1/checkout/basket"
#: the worker model's settings, passed through from the environment when set
WORKER_ENV = (
    "CHECKOUT_WORKER_CLASS",
    "CHECKOUT_WORKERS",
    "CHECKOUT_THREADS",
    "CHECKOUT_WORKER_CONNECTIONS",
    "CHECKOUT_MAX_IN_FLIGHT",
)
#: the load-test customers (load-01 … load-32), whose subscriptions never lock
LOAD_CUSTOMERS = tuple(f"load-{n:02d}" for n in range(1, 33))


class Stack:
    def __init__(self) -> None:
        self.pieces: list[Any] = []

    def __enter__(self) -> Stack:
        try:
            return self._start_all()
        except BaseException:
            self.__exit__()
            raise

    def _start_all(self) -> Stack:
        url = os.environ.get("CHECKOUT_REDIS_URL")
        if not url:
            embedded = EmbeddedRedis().start()
            self.pieces.append(embedded)
            url = embedded.url
        self.redis_url = url
        self.sandbox = self._start(sandbox_service(free_port(), latency="none"))
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.env = {
            **app_settings(self.sandbox.url, url),
            "CHECKOUT_REDIS_KEY_PREFIX": self.prefix,
            "CHECKOUT_RATE_LIMIT_CREATE": "100000000/60",
            "CHECKOUT_RATE_LIMIT_UPDATE": "100000000/60",
        }
        self.workers = worker_settings(self.env)
        count = int(self.workers["workers"])
        self.app = self._start(
            gunicorn_service("app", "wsgi:app", free_port(), self.env, "/healthz", workers=count)
        )
        self.floor = self._start(
            gunicorn_service(
                "floor", "tests.bench.floor:app", free_port(), {}, "/hello", workers=count
            )
        )
        standin_env = {"BENCH_STANDIN_REDIS": url}
        self.standin = self._start(
            gunicorn_service(
                "stand-in", "tests.bench.standin:app", free_port(), standin_env, "/page",
                workers=count,
            )
        )  # fmt: skip
        return self

    def _start(self, service: Service) -> Service:
        service.start(quiet=True)
        self.pieces.append(service)
        return service

    def __exit__(self, *_: object) -> None:
        for piece in reversed(self.pieces):
            piece.stop()
        self.pieces.clear()

    def app_config(self) -> dict[str, Any]:
        """The served checkout's settings, for building the same app in this process."""
        return {k.removeprefix("CHECKOUT_"): _setting(v) for k, v in self.env.items()}

    # -- the sandbox's controls ---------------------------------------------------------

    def token(self, customer: str) -> str:
        body = {"sub": customer, "expiresIn": 3600}
        response = requests.post(f"{self.sandbox.url}/_sandbox/token", json=body, timeout=5)
        return str(response.json()["access_token"])

    def latency(self) -> dict[str, Any] | None:
        """The sandbox's latency profile and medians, or None if it has no profiles."""
        response = requests.get(f"{self.sandbox.url}/_sandbox/latency", timeout=5)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def set_latency(self, profile: str) -> dict[str, Any] | None:
        """Switch the sandbox's latency profile at once; None if it has no profiles."""
        response = requests.put(
            f"{self.sandbox.url}/_sandbox/latency", json={"profile": profile}, timeout=5
        )
        if response.status_code in (404, 405):
            return None
        response.raise_for_status()
        return dict(response.json())

    def calls(self) -> list[dict[str, Any]] | None:
        """The sandbox's timeline of counted calls, or None if it keeps none."""
        response = requests.get(f"{self.sandbox.url}/_sandbox/calls", timeout=5)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return list(response.json()["calls"])

    # -- baskets and cookies ------------------------------------------------------------

    def basket_cookie(self, token: str, subscription: str = "SUB-1001") -> str:
        return self.basket_cookies(token, 1, subscription)[0]

    def basket_cookies(
        self, token: str, count: int, subscription: str = "SUB-1001", parallel: int = 8
    ) -> list[str]:
        """`count` new baskets of one customer, as landing cookies, made `parallel` at once."""
        shares = [count // parallel + (i < count % parallel) for i in range(parallel)]
        with ThreadPoolExecutor(parallel) as pool:
            made = pool.map(lambda n: self._create(token, subscription, n), shares)
            return [cookie for share in made for cookie in share]

    def _create(self, token: str, subscription: str, count: int) -> list[str]:
        cookies = []
        with requests.Session() as http:
            for _ in range(count):
                response = http.post(
                    self.app.url + BASKET,
                    json={"subscriptionId": subscription},
                    headers={
                        "Authorization": f"Bearer {token}",
                        "X-Recaptcha-Token": recaptcha_token(),
                    },
                    timeout=30,
                )
                response.raise_for_status()
                cookies.append(f"landing_state={response.cookies['landing_state']}")
        return cookies


def worker_settings(env: dict[str, str]) -> dict[str, Any]:
    """The worker model app/gunicorn_config.py chooses with this environment: read by
    importing it in a child process (it may patch the standard library for gevent), so
    the bench passes gunicorn the config's own default worker count, not one of its own.
    """
    names = ("workers", "worker_class", "threads", "worker_connections", "timeout")
    code = (
        "import json, app.gunicorn_config as c, app.config as a; "
        f"s = {{n: getattr(c, n, None) for n in {names!r}}}; "
        "s['max_in_flight_default'] = getattr(a.Defaults, 'MAX_IN_FLIGHT', None); "
        "print(json.dumps(s))"
    )
    child_env = {**os.environ, **env}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child_env, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    settings: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    # gunicorn's own defaults where the config leaves a setting out
    settings["threads"] = settings["threads"] or 1
    settings["worker_connections"] = settings["worker_connections"] or 1000
    settings["environment"] = {name: os.environ[name] for name in WORKER_ENV if name in os.environ}
    # the app's own bound per worker (app/overload.py), unless the environment sets one
    given = os.environ.get("CHECKOUT_MAX_IN_FLIGHT")
    settings["max_in_flight"] = int(given) if given else settings.pop("max_in_flight_default")
    settings.pop("max_in_flight_default", None)
    return settings


def describe_workers(settings: dict[str, Any]) -> str:
    """The worker model in a few words: "2 gthread workers × 32 threads"."""
    kind, workers = settings["worker_class"], settings["workers"]
    text = f"{workers} {kind} worker{'s' if workers != 1 else ''}"
    if kind == "gthread":
        text += f" × {settings['threads']} threads"
    elif kind in ("gevent", "eventlet"):
        text += f" × {settings['worker_connections']} connections"
    if settings.get("max_in_flight"):
        text += f", at most {settings['max_in_flight']} in flight each"
    return text


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
        cookies = "|".join(stack.basket_cookies(token, baskets))
        return BASKET, "put.lua", {"BENCH_TOKEN": token, "BENCH_COOKIES": cookies}
    if scenario == "POST create":
        return BASKET, "post.lua", {"BENCH_TOKEN": token, "BENCH_SUBSCRIPTION": "SUB-1001"}
    if scenario == "create-add-complete cycle":
        tokens = "|".join(stack.token(customer) for customer in LOAD_CUSTOMERS)
        return BASKET, "cycle.lua", {"BENCH_TOKENS": tokens}
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
    with http:  # closed: an idle keep-alive connection would look like a request in flight
        jar = http.cookies.get_dict(domain="127.0.0.1") or http.cookies.get_dict()
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def _setting(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
