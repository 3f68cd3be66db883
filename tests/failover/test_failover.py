"""Losing a Redis node loses nothing: the primary (Sentinel) or a master (Cluster) is killed
with SIGKILL while customers run create → add → complete cycles, and the checkout, under its
production worker model, carries on.

What is asserted, for each topology:
- no 500s; every answer that is not a success is 503 problem+json with Retry-After, or a
  change the failover lost (its customer then sees the basket as it was: 404 for a
  basket whose creation was lost, "no changes to confirm" for a lost change);
- the checkout serves again within 15 s of the promotion, without a restart;
- every cycle whose completion answered 200 has exactly one order at the sandbox, and no
  idempotency key was ordered twice;
- every key on the new primary has a TTL;
- every completion answered 200 reaches the partner as a signed `checkout.completed`: the
  deliverer runs through the failover too, and no event is lost.

Each run writes its figures (failover window, cycles, orders, 503s, lost changes) to
test-results/failover-<topology>.json; `make test-failover` prints them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from sandbox.stack import (
    EmbeddedCluster,
    Service,
    app_settings,
    deliverer_service,
    free_port,
    gunicorn_service,
)
from tests.conftest import Sandbox
from tests.failover.nodes import SentinelSet, kill
from tests.integration.conftest import Partner

RESULTS = Path(__file__).resolve().parents[2] / "test-results"
CLIENTS = 8
LOAD_SECONDS = 20.0
KILL_AFTER = 6.0
SERVED_AGAIN_WITHIN = 15.0
PREFIX = "failover"
EVENTS_WITHIN = 30.0  # after the load, for the last events to arrive
# Attempts close together, and a short lease: the failover's own window decides.
DELIVERY = {
    "CHECKOUT_WEBHOOK_RETRY_SCHEDULE": "0.5,1,2,4,8",
    "CHECKOUT_WEBHOOK_LEASE_SECONDS": "3",
}


@dataclass
class Answer:
    at: float
    step: str
    status: int
    code: str | None
    retry_after: str | None
    problem_json: bool


@dataclass
class Run:
    answers: list[Answer] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # basket ids whose completion said 200
    cycles: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, step: str, response: requests.Response) -> None:
        problem = response.headers.get("Content-Type", "") == "application/problem+json"
        code = response.json().get("code") if problem else None
        answer = Answer(
            time.monotonic(), step, response.status_code, code,
            response.headers.get("Retry-After"), problem,
        )  # fmt: skip
        with self.lock:
            self.answers.append(answer)


def _cycles(url: str, token: str, subscription: str, run: Run, until: float) -> None:
    """One customer's device: create → add → complete, again and again, waiting a moment
    after a 503 as its Retry-After asks (shortened: the test has 20 s)."""
    while time.monotonic() < until:
        partner = Partner(url, token)
        try:
            created = partner.create(subscription)
            run.note("create", created)
            if created.status_code == 201:
                added = partner.update({"addOffers": ["OFFER-SPORTS"]})
                run.note("add", added)
                if added.status_code == 200:
                    done = partner.update({"complete": True})
                    run.note("complete", done)
                    if done.status_code == 200:
                        with run.lock:
                            run.completed.append(done.json()["basket"]["basketId"])
        except requests.RequestException:
            with run.lock:
                run.answers.append(Answer(time.monotonic(), "transport", 0, None, None, False))
        with run.lock:
            run.cycles += 1
        if run.answers and run.answers[-1].status == 503:
            time.sleep(0.2)


def _under_load(
    url: str, sandbox: Sandbox, kill_node: Any, promoted: Any
) -> tuple[Run, float, float | None]:
    """Run the load, kill at KILL_AFTER, and note when the topology promoted a replica."""
    run = Run()
    until = time.monotonic() + LOAD_SECONDS
    threads = [
        threading.Thread(
            target=_cycles,
            args=(url, sandbox.token(f"load-{n:02d}"), f"SUB-L{n:02d}", run, until),
        )
        for n in range(1, CLIENTS + 1)
    ]
    for thread in threads:
        thread.start()
    time.sleep(KILL_AFTER)
    killed_at = time.monotonic()
    kill_node()
    promoted_at = None
    while time.monotonic() < until and promoted_at is None:
        if promoted():
            promoted_at = time.monotonic()
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=LOAD_SECONDS + 30)
    return run, killed_at, promoted_at


@contextmanager
def _served(app_env: dict[str, str]) -> Iterator[Service]:
    """The checkout as in production: gunicorn, app/gunicorn_config.py, two workers; and
    a deliverer of its partner events beside it."""
    app_env = {**app_env, **DELIVERY}
    service = gunicorn_service("app", "wsgi:app", free_port(), app_env, "/healthz", workers=2)
    deliverer = deliverer_service(app_env)
    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / "failover-app.log"  # gunicorn's own lines: a failed start says why here
    log.unlink(missing_ok=True)
    service.start(log_path=log)
    (RESULTS / "failover-deliverer.log").unlink(missing_ok=True)
    deliverer.start(log_path=RESULTS / "failover-deliverer.log")
    try:
        yield service
    finally:
        deliverer.stop()
        service.stop()


def _check(
    topology: str,
    run: Run,
    killed_at: float,
    promoted_at: float | None,
    sandbox: Sandbox,
    new_primary: Any,
) -> None:
    assert promoted_at is not None, "no replica was promoted"
    answers = sorted(run.answers, key=lambda answer: answer.at)
    statuses = Counter(answer.status for answer in answers)
    assert statuses[500] == 0 and statuses[0] == 0, statuses

    lost = [
        a for a in answers
        if (a.status, a.code) in ((404, "basket_not_found"), (400, "invalid_request"))
        and a.at >= killed_at
    ]  # fmt: skip
    refused = [
        a for a in answers
        if a.status >= 300 and a not in lost
        and not (a.status == 503 and a.problem_json and a.retry_after)
    ]  # fmt: skip
    assert refused == [], refused[:5]

    served_again = next(
        (a.at for a in answers if a.at > promoted_at and 200 <= a.status < 300), None
    )
    assert served_again is not None, "nothing succeeded after the promotion"
    assert served_again - promoted_at <= SERVED_AGAIN_WITHIN

    orders = sandbox.orders()
    per_basket = Counter(order["basketId"] for order in orders)
    assert all(per_basket[basket] == 1 for basket in run.completed), per_basket
    assert len({order["idempotencyKey"] for order in orders}) == len(orders)

    without_ttl = [key for key, ttl in new_primary() if ttl == -1]
    assert without_ttl == []

    events = sandbox.completed_events(run.completed, within=EVENTS_WITHIN)
    assert events["missing"] == [], events
    last_503 = max((a.at for a in answers if a.status == 503), default=killed_at)
    figures = {
        "topology": topology,
        "promoted_after_kill_s": round(promoted_at - killed_at, 2),
        "served_again_after_promotion_s": round(max(0.0, served_again - promoted_at), 2),
        "window_s": round(max(served_again, last_503) - killed_at, 2),
        "cycles": run.cycles,
        "completions_200": len(run.completed),
        "orders": len(orders),
        "answers": dict(sorted(statuses.items())),
        "answers_503": statuses[503],
        "503_codes": dict(Counter(a.code for a in answers if a.status == 503)),
        "lost_changes": len(lost),
        "events_delivered": events["delivered"],
        "events_missing": len(events["missing"]),
        "events_delivered_twice": events["delivered_twice"],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"failover-{topology}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))


@pytest.fixture
def sentinels() -> Iterator[SentinelSet]:
    nodes = SentinelSet().start()
    yield nodes
    nodes.stop()


def test_killing_the_primary_behind_sentinel_loses_nothing(
    sentinels: SentinelSet, sandbox_server: Service, sandbox: Sandbox
):
    env = {
        **app_settings(sandbox_server.url, "redis://unused.invalid:1/0"),
        "CHECKOUT_REDIS_SENTINELS": sentinels.addresses,
        "CHECKOUT_REDIS_MIN_REPLICAS": "1",
        "CHECKOUT_REDIS_KEY_PREFIX": PREFIX,
        "CHECKOUT_RATE_LIMIT_CREATE": "100000/60",
        "CHECKOUT_RATE_LIMIT_UPDATE": "100000/60",
    }
    first = sentinels.primary.port

    def keys_on_new_primary() -> list[tuple[bytes, int]]:
        client = redis.Redis(port=sentinels.replica.port)
        found = [(key, client.ttl(key)) for key in client.scan_iter(match=f"{PREFIX}:*")]
        client.close()
        return found

    with _served(env) as app:
        run, killed_at, promoted_at = _under_load(
            app.url,
            sandbox,
            lambda: kill(sentinels.primary),
            lambda: sentinels.master_port() not in (None, first),
        )
        # While the deliverer still runs: the last completions' events are still to send.
        _check("sentinel", run, killed_at, promoted_at, sandbox, keys_on_new_primary)


@pytest.fixture
def cluster() -> Iterator[EmbeddedCluster]:
    nodes = EmbeddedCluster(masters=3, replicas=1).start()
    yield nodes
    nodes.stop()


def test_killing_a_cluster_master_loses_nothing(
    cluster: EmbeddedCluster, sandbox_server: Service, sandbox: Sandbox
):
    env = {
        **app_settings(sandbox_server.url, cluster.url),
        "CHECKOUT_REDIS_CLUSTER": "true",
        "CHECKOUT_REDIS_MIN_REPLICAS": "1",
        "CHECKOUT_REDIS_KEY_PREFIX": PREFIX,
        "CHECKOUT_RATE_LIMIT_CREATE": "100000/60",
        "CHECKOUT_RATE_LIMIT_UPDATE": "100000/60",
    }
    victim = cluster.nodes[1]  # not the one the app's URL names
    replica = cluster.replicas[1]  # replicas[i] follows nodes[i]

    def promoted() -> bool:
        try:
            client = redis.Redis(port=replica.port, socket_timeout=0.5, decode_responses=True)
            role = client.info("replication")["role"]
            client.close()
            return bool(role == "master")
        except redis.RedisError:
            return False

    def keys_everywhere() -> list[tuple[bytes, int]]:
        found = []
        for node in (*cluster.nodes, *cluster.replicas):
            if node is victim:
                continue
            client = redis.Redis(port=node.port)
            if client.info("replication")["role"] == "master":
                found += [(key, client.ttl(key)) for key in client.scan_iter(match=f"{PREFIX}:*")]
            client.close()
        return found

    with _served(env) as app:
        run, killed_at, promoted_at = _under_load(app.url, sandbox, lambda: kill(victim), promoted)
        # While the deliverer still runs: the last completions' events are still to send.
        _check("cluster", run, killed_at, promoted_at, sandbox, keys_everywhere)
