"""The checkout as operators run it: deploy/nginx.conf as shipped, in front of two production
instances (gunicorn, app/gunicorn_config.py) on 127.0.0.1:8001 and :8002, with the sandbox
at its realistic latency, Redis and a deliverer of partner events.

Eight load customers loop create → add → complete through nginx, while one instance is
reloaded (SIGHUP), the other restarted as operators do it (taken out of nginx's upstreams
and nginx reloaded, SIGTERM, started again, put back), the deliverer restarted, and then
the first instance killed (SIGKILL, master and workers) mid-request.

nginx runs from a copy of deploy/nginx.conf (byte for byte the shipped file), so that the
restart can take the instance out and put it back, as an operator's edit and
`nginx -s reload` would, without touching the repository's file.

Asserted:
- every request is answered (no connection error reaches a client);
- the reload and the restart cause no 5xx;
- the crash costs at most one 502 per client in flight, and each client's retry (a fresh
  reCAPTCHA token) settles it;
- every 503 is problem+json with Retry-After;
- every completion answered 200 has exactly one order at the sandbox, and every order's
  event reaches the partner.

`make test-deploy` runs it and prints the figures (test-results/deploy.json).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from sandbox.stack import (
    ROOT,
    Service,
    app_settings,
    deliverer_service,
    free_port,
    gunicorn_service,
    sandbox_service,
    wait_for,
)
from tests.conftest import Sandbox
from tests.integration.conftest import Partner

RESULTS = ROOT / "test-results"
NGINX = "127.0.0.1:8080"
INSTANCES = (8001, 8002)  # as deploy/nginx.conf names them
CLIENTS = 8
WORKERS = 2
# The timeline, in seconds from the start of the load.
RELOAD_AT, RESTART_AT, KILL_AT, LOAD_FOR = 4.0, 9.0, 18.0, 26.0
SETTLE_WITHIN = 30.0  # after the load, for a crashed completion to be settled by retries
SERVED_AGAIN_WITHIN = 1.0  # after the crash, the other instance answers
DELIVERY = {
    "CHECKOUT_WEBHOOK_RETRY_SCHEDULE": "0.5,1,2,4,8",
    "CHECKOUT_WEBHOOK_LEASE_SECONDS": "3",
}


# -- the processes ------------------------------------------------------------------------


def _free(port: int) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            pytest.fail(
                f"127.0.0.1:{port} is taken, and deploy/nginx.conf needs it: stop what "
                f"listens there (`ss -ltnp 'sport = :{port}'` names it), then run again"
            )


class Proxy:
    """nginx with deploy/nginx.conf, from a prefix of its own: the file copied as it is,
    `static/` linked to the repository's, `deploy/run/` for its pid and logs."""

    def __init__(self, prefix: Path) -> None:
        (prefix / "deploy" / "run").mkdir(parents=True)
        (prefix / "static").symlink_to(ROOT / "static")
        self.conf = prefix / "deploy" / "nginx.conf"
        shutil.copyfile(ROOT / "deploy" / "nginx.conf", self.conf)
        self.shipped = self.conf.read_text()
        self.reloads: list[tuple[float, float]] = []  # when each `nginx -s reload` ran
        self.command = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", f"{prefix}/"]
        self.service = Service(
            "nginx", [*self.command, "-c", "deploy/nginx.conf", "-g", "daemon off;"], 8080,
            "/healthz", {}, cwd=prefix,
        )  # fmt: skip

    def start(self) -> Proxy:
        self.service.start(log_path=RESULTS / "deploy-nginx.log")
        return self

    def workers(self) -> set[int]:
        children = Path(f"/proc/{self.service.pid}/task/{self.service.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def take_out(self, port: int) -> None:
        """Mark the instance `down` in both upstreams, and reload nginx."""
        server = f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;"
        assert self.shipped.count(server) == 2, "deploy/nginx.conf's upstreams have changed"
        self._reload(self.shipped.replace(server, server[:-1] + " down;"))

    def put_back(self) -> None:
        self._reload(self.shipped)

    def _reload(self, conf: str) -> None:
        """`nginx -s reload`: new workers with the new file; the old ones finish what they
        hold, then exit."""
        started, before = time.monotonic(), self.workers()
        self.conf.write_text(conf)
        subprocess.run([*self.command, "-c", "deploy/nginx.conf", "-s", "reload"], check=True)
        wait_for(lambda: not (self.workers() & before), "nginx's old workers to finish")
        self.reloads.append((started, time.monotonic()))

    def stop(self) -> None:
        self.service.stop()


class Instance:
    """One production instance: gunicorn with two workers on its port."""

    def __init__(self, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.env = env
        self.service: Service | None = None

    def start(self) -> Instance:
        self.service = gunicorn_service(
            f"instance-{self.port}", "wsgi:app", self.port, self.env, "/healthz", workers=WORKERS
        )
        self.service.start(log_path=RESULTS / f"deploy-{self.port}.log")
        return self

    @property
    def master(self) -> int:
        assert self.service is not None
        return self.service.pid

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.master}/task/{self.master}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def reload(self) -> None:
        """SIGHUP: gunicorn starts new workers, then stops the old ones gracefully."""
        before = set(self.workers())
        os.kill(self.master, signal.SIGHUP)
        wait_for(lambda: len(set(self.workers()) - before) == WORKERS, "new workers")
        wait_for(lambda: not (set(self.workers()) & before), "the old workers to finish")

    def restart(self, proxy: Proxy) -> tuple[float, float]:
        """Out of nginx's upstreams; SIGTERM, and its requests in flight finish before it
        exits; started again; ready (/readyz); back in. When it stopped, and when it was
        back in."""
        assert self.service is not None and self.service.process is not None
        proxy.take_out(self.port)
        self.service.process.send_signal(signal.SIGTERM)
        self.service.process.wait(timeout=30)
        stopped = time.monotonic()
        self.start()
        wait_for(self._ready, f"instance {self.port} ready")
        proxy.put_back()
        return stopped, time.monotonic()

    def _ready(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).ok
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """SIGKILL the master, then its workers: a crash, with no goodbye to anyone."""
        assert self.service is not None and self.service.process is not None
        workers = self.workers()
        self.service.process.kill()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.service.process.wait()

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


@pytest.fixture
def stack(
    redis_url: str, tmp_path: Path
) -> Iterator[tuple[Sandbox, list[Instance], Proxy, Service]]:
    """The sandbox (realistic latency), two instances, nginx and a deliverer."""
    for port in (8080, *INSTANCES):
        _free(port)
    RESULTS.mkdir(exist_ok=True)
    sandbox_server = sandbox_service(free_port(), latency="realistic").start(quiet=True)
    env = {
        **app_settings(sandbox_server.url, redis_url),
        **DELIVERY,
        "CHECKOUT_REDIS_KEY_PREFIX": f"deploy-{uuid.uuid4().hex[:8]}",
        "CHECKOUT_TRUSTED_PROXIES": "1",
        "CHECKOUT_RATE_LIMIT_CREATE": "100000/60",
        "CHECKOUT_RATE_LIMIT_UPDATE": "100000/60",
        "CHECKOUT_GRACEFUL_TIMEOUT": "10",
    }
    instances: list[Instance] = []
    nginx = Proxy(tmp_path / "nginx")
    deliverer = deliverer_service(env)
    try:
        instances += [Instance(port, env).start() for port in INSTANCES]
        nginx.start()
        deliverer.start(log_path=RESULTS / "deploy-deliverer.log")
        sandbox = Sandbox(sandbox_server.url)
        sandbox.reset()
        yield sandbox, instances, nginx, deliverer
    finally:
        deliverer.stop()
        nginx.stop()
        for instance in instances:
            instance.stop()
        sandbox_server.stop()


# -- the load -------------------------------------------------------------------------------


@dataclass
class Answer:
    at: float
    client: int
    step: str
    status: int  # 0: no answer at all (the connection failed)
    code: str | None
    retry_after: str | None
    problem_json: bool


@dataclass
class Run:
    answers: list[Answer] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # baskets whose completion said 200
    unsettled: list[int] = field(default_factory=list)  # clients a crash left without an answer
    cycles: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, client: int, step: str, response: requests.Response | None) -> Answer:
        if response is None:
            answer = Answer(time.monotonic(), client, step, 0, None, None, False)
        else:
            problem = response.headers.get("Content-Type", "") == "application/problem+json"
            answer = Answer(
                time.monotonic(), client, step, response.status_code,
                response.json().get("code") if problem else None,
                response.headers.get("Retry-After"), problem,
            )  # fmt: skip
        with self.lock:
            self.answers.append(answer)
        return answer


def _ask(run: Run, client: int, step: str, call: Callable[[], requests.Response]) -> Answer:
    """One step, asked again as a client would: after a 502 or no answer (with a fresh
    reCAPTCHA token: `call` makes one each time), and after a 503 or a 409
    checkout_in_progress once its Retry-After (shortened) has passed."""
    deadline = time.monotonic() + SETTLE_WITHIN
    while True:
        try:
            response: requests.Response | None = call()
        except requests.RequestException:
            response = None
        answer = run.note(client, step, response)
        again = answer.status in (0, 502, 503) or answer.code == "checkout_in_progress"
        if not again:
            return answer
        if time.monotonic() > deadline:
            with run.lock:
                run.unsettled.append(client)
            return answer
        time.sleep(0.5 if answer.status in (409, 503) else 0.05)


def _customer(n: int, token: str, run: Run, until: float) -> None:
    while time.monotonic() < until:
        _cycle(Partner(f"http://{NGINX}", token), n, run)
        with run.lock:
            run.cycles += 1


def _cycle(partner: Partner, n: int, run: Run) -> None:
    """create → add → complete, each step settled before the next."""
    if _ask(run, n, "create", lambda: partner.create(f"SUB-L{n:02d}")).status != 201:
        return
    if _ask(run, n, "add", lambda: partner.update({"addOffers": ["OFFER-SPORTS"]})).status != 200:
        return
    if _ask(run, n, "complete", lambda: partner.update({"complete": True})).status == 200:
        basket = partner.get().json()["basket"]
        with run.lock:
            run.completed.append(basket["basketId"])


# -- the test -------------------------------------------------------------------------------


def test_a_reload_a_rolling_restart_and_a_crash_lose_and_double_no_completion(stack):
    sandbox, (first, second), proxy, deliverer = stack
    # A host nginx does not serve never reaches an instance, nor comes back in an answer.
    evil = requests.get(f"http://{NGINX}/signin", headers={"Host": "evil.example"}, timeout=5)
    assert evil.status_code == 400 and "Location" not in evil.headers
    assert "evil.example" not in evil.text
    served = requests.get(f"http://{NGINX}/signin", allow_redirects=False, timeout=5)
    assert served.headers["Location"].startswith(sandbox.url)  # its own name, to the provider
    assert f"redirect_uri=http%3A%2F%2F{NGINX.replace(':', '%3A')}" in served.headers["Location"]
    run, start = Run(), time.monotonic()
    until = start + LOAD_FOR
    customers = [
        threading.Thread(target=_customer, args=(n, sandbox.token(f"load-{n:02d}"), run, until))
        for n in range(1, CLIENTS + 1)
    ]
    for customer in customers:
        customer.start()

    time.sleep(RELOAD_AT)
    reload_at = time.monotonic()
    first.reload()
    reloaded_at = time.monotonic()

    time.sleep(max(0.0, start + RESTART_AT - time.monotonic()))
    restart_at = time.monotonic()
    stopped_at, restarted_at = second.restart(proxy)
    deliverer.stop()  # SIGTERM: it finishes its attempts in hand; nothing is lost
    deliverer.start(log_path=RESULTS / "deploy-deliverer.log")

    time.sleep(max(0.0, start + KILL_AT - time.monotonic()))
    killed_at = time.monotonic()
    first.kill()

    for customer in customers:
        customer.join(timeout=LOAD_FOR + SETTLE_WITHIN + 30)
    answers = sorted(run.answers, key=lambda answer: answer.at)
    statuses = Counter(answer.status for answer in answers)

    # Every request nginx was sent is answered. A client that writes a request into a
    # kept-alive connection as an old nginx worker closes it (nginx -s reload closes its
    # idle ones) gets no answer: the request never reached nginx, and the client asks
    # again on a new connection (RFC 9112, 9.3.1; browsers do it themselves). That may
    # only happen while nginx reloads.
    unanswered = [a for a in answers if a.status == 0]
    reloading = [(start - 0.5, end + 0.5) for start, end in proxy.reloads]
    outside = [a for a in unanswered if not any(s <= a.at <= e for s, e in reloading)]
    assert outside == [], outside[:5]
    # The reload and the rolling restart: no 5xx at all.
    before_crash = [a for a in answers if a.at < killed_at and a.status >= 500]
    assert before_crash == [], before_crash[:5]
    # The crash: a 502 for at most the one request each client had in flight, settled.
    crashed = Counter(a.client for a in answers if a.status == 502)
    assert all(n <= 1 for n in crashed.values()), crashed
    assert run.unsettled == [], run.unsettled
    served_again = next(a.at for a in answers if a.at > killed_at and a.status < 300)
    assert served_again - killed_at <= SERVED_AGAIN_WITHIN
    # Every 503 is a problem to retry, and so is nginx's own 502.
    busy = [a for a in answers if a.status in (502, 503)]
    assert all(a.problem_json and a.retry_after for a in busy), busy[:5]
    # Every completion answered 200 ordered exactly once.
    orders = sandbox.orders()
    per_basket = Counter(order["basketId"] for order in orders)
    assert run.completed and all(per_basket[b] == 1 for b in run.completed), per_basket
    assert len({order["idempotencyKey"] for order in orders}) == len(orders)
    events = sandbox.completed_events(run.completed)
    assert events["missing"] == [], events

    figures = {
        "cycles": run.cycles,
        "requests": len(answers),
        "completions_200": len(run.completed),
        "orders": len(orders),
        "answers": {str(status): n for status, n in sorted(statuses.items())},
        "reload_s": round(reloaded_at - reload_at, 2),
        "restart_down_s": round(restarted_at - stopped_at, 2),
        "restart_s": round(restarted_at - restart_at, 2),
        "5xx_during_reload_and_restart": len(before_crash),
        "closed_by_nginx_reload_asked_again": len(unanswered),
        "502_after_crash": sum(crashed.values()),
        "clients_with_a_502": len(crashed),
        "served_again_after_crash_s": round(served_again - killed_at, 3),
        "retries_after_crash": sum(
            1
            for a in answers
            if a.at > killed_at and (a.status == 502 or a.code == "checkout_in_progress")
        ),
        "events_delivered": events["delivered"],
        "events_missing": len(events["missing"]),
        "events_delivered_twice": events["delivered_twice"],
    }
    (RESULTS / "deploy.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))
