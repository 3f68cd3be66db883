"""Fixtures shared by every suite: a real Redis, the real sandbox, the app as a process.

Each pytest-xdist worker gets its own sandbox and app on free ports (the sandbox's demo
data is reset before each test that uses it) and its own Redis key prefix, so workers
never see each other's baskets. Redis is the server named by CHECKOUT_REDIS_URL, or an
embedded one started here; with CHECKOUT_TEST_REDIS_CLUSTER=1 it is a three-master
cluster started here, and the app runs with CHECKOUT_REDIS_CLUSTER=true.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from itsdangerous import TimestampSigner

from sandbox.data import CUSTOMERS
from sandbox.stack import (
    EmbeddedCluster,
    EmbeddedRedis,
    Service,
    app_service,
    app_settings,
    free_port,
    sandbox_service,
    wait_for,
)

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-results" / "screenshots"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say where the browser tests left their screenshots of every page."""
    if SCREENSHOTS.is_dir():
        count = len(list(SCREENSHOTS.glob("*.png")))
        terminalreporter.write_sep("-", "screenshots")
        terminalreporter.write_line(f"{count} screenshots of the journey in {SCREENSHOTS}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each suite is marked by its folder: tests/unit, tests/integration, tests/e2e,
    tests/failover, tests/deploy."""
    suites = ("unit", "integration", "e2e", "failover", "deploy")
    for item in items:
        suite = next((part for part in item.path.parts if part in suites), None)
        if suite is not None:
            item.add_marker(suite)


CLUSTER = os.environ.get("CHECKOUT_TEST_REDIS_CLUSTER") == "1"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if CLUSTER:  # a three-master Redis Cluster of our own, for `make test-cluster`
        cluster = EmbeddedCluster().start()
        yield cluster.url
        cluster.stop()
        return
    given = os.environ.get("CHECKOUT_REDIS_URL")
    if given:
        yield given
        return
    embedded = EmbeddedRedis().start()
    yield embedded.url
    embedded.stop()


@pytest.fixture(scope="session")
def key_prefix(worker_id: str) -> str:
    return f"test-{worker_id}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Service]:
    service = sandbox_service(free_port()).start(quiet=True)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def app_env(sandbox_server: Service, redis_url: str, key_prefix: str) -> dict[str, str]:
    return {
        **app_settings(sandbox_server.url, redis_url),
        "CHECKOUT_REDIS_KEY_PREFIX": key_prefix,
        # Tests share one client IP and a few customers, and inject faults on purpose:
        # the limits and the circuit breaker have their own tests with their own settings.
        "CHECKOUT_RATE_LIMIT_CREATE": "100000/60",
        "CHECKOUT_RATE_LIMIT_UPDATE": "100000/60",
        "CHECKOUT_SUBSCRIPTION_API_BREAKER_THRESHOLD": "100000",
        "CHECKOUT_REDIS_CLUSTER": "true" if CLUSTER else "false",
    }


@pytest.fixture(scope="session")
def app_server(app_env: dict[str, str]) -> Iterator[Service]:
    service = app_service(free_port(), app_env).start(quiet=True)
    yield service
    service.stop()


class Sandbox:
    """The sandbox's test controls, over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url

    def reset(self) -> None:
        requests.post(f"{self.url}/_sandbox/reset", timeout=5).raise_for_status()

    def token(self, customer: str, expires_in: int = 600, **claims: Any) -> str:
        body = {"sub": customer, "expiresIn": expires_in, **claims}
        response = requests.post(f"{self.url}/_sandbox/token", json=body, timeout=5)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def orders(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/_sandbox/orders", timeout=5)
        response.raise_for_status()
        return list(response.json()["orders"])

    def unlock(self, subscription_id: str) -> None:
        body = {"subscriptionId": subscription_id}
        requests.post(f"{self.url}/_sandbox/unlock", json=body, timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.url}/_sandbox/stats", timeout=5).json())

    def fault(self, mode: str, count: int = 1, **options: Any) -> None:
        body = {"mode": mode, "count": count, **options}
        requests.post(f"{self.url}/_sandbox/faults", json=body, timeout=5).raise_for_status()

    def set_price(self, price: str, *, offer: str | None = None, plan: str | None = None) -> None:
        """Change an offer's or a plan's monthly price from now on (reset restores it)."""
        body = {"offerId": offer} if offer else {"planId": plan}
        response = requests.post(
            f"{self.url}/_sandbox/prices", json={**body, "price": price}, timeout=5
        )
        response.raise_for_status()

    def expire_quotes(self) -> None:
        """Make every quote handed out so far expired, as ten minutes would."""
        requests.post(f"{self.url}/_sandbox/quotes/expire", timeout=5).raise_for_status()

    def completed_events(self, baskets: list[str], within: float = 30.0) -> dict[str, Any]:
        """Wait up to `within` s for each basket's verified `checkout.completed` at the
        partner's receiver; what arrived, what is missing, and events delivered twice."""
        wanted, deadline = set(baskets), time.monotonic() + within
        while True:
            found = requests.get(f"{self.url}/_sandbox/webhooks", timeout=10).json()["deliveries"]
            delivered = [
                d for d in found
                if d["type"] == "checkout.completed" and d["verified"] and d["status"] == 204
            ]  # fmt: skip
            arrived = {d["body"]["data"]["basketId"] for d in delivered}
            if wanted <= arrived or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        per_id = Counter(d["webhookId"] for d in delivered)
        return {
            "delivered": len(wanted & arrived),
            "missing": sorted(wanted - arrived),
            "delivered_twice": sum(1 for n in per_id.values() if n > 1),
            "attempts_refused": sum(1 for d in found if d["status"] != 204),
        }

    def expire_promotion(self, code: str) -> None:
        """Refuse `code` as expired from now on (until the next reset): a campaign ended."""
        response = requests.post(
            f"{self.url}/_sandbox/promotions/expire", json={"code": code}, timeout=5
        )
        response.raise_for_status()

    def today(self) -> str:
        """The backend's today ("2027-02-27"), fixed or the real one."""
        response = requests.get(f"{self.url}/_sandbox/today", timeout=5)
        response.raise_for_status()
        return str(response.json()["today"])

    def set_today(self, day: str | None) -> None:
        """The backend's today ("2027-02-27"), until the next reset; None: the real one."""
        url = f"{self.url}/_sandbox/today"
        if day is None:
            requests.delete(url, timeout=5).raise_for_status()
        else:
            requests.put(url, json={"date": day}, timeout=5).raise_for_status()

    def faults(self) -> list[dict[str, Any]]:
        """The faults still pending: each is used up as its call arrives."""
        response = requests.get(f"{self.url}/_sandbox/faults", timeout=5)
        response.raise_for_status()
        return list(response.json()["faults"])

    def wait_faults_taken(self, within: float = 15.0) -> None:
        """Wait until every counted fault has met its call: a `slow` one's call is then
        in flight, held by the sandbox."""
        wait_for(lambda: not self.faults(), "the faults to be taken", within=within, every=0.02)

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/_sandbox/faults", timeout=5).raise_for_status()

    def calls(self) -> list[dict[str, Any]]:
        """Counted calls since the last reset, in arrival order, with their times."""
        response = requests.get(f"{self.url}/_sandbox/calls", timeout=5)
        response.raise_for_status()
        return list(response.json()["calls"])

    def set_latency(self, profile: str) -> None:
        """Switch the added latency (none, realistic, slow); a reset does not undo it."""
        response = requests.put(
            f"{self.url}/_sandbox/latency", json={"profile": profile}, timeout=5
        )
        response.raise_for_status()


@pytest.fixture
def sandbox(sandbox_server: Service) -> Sandbox:
    """The sandbox with fresh demo data."""
    control = Sandbox(sandbox_server.url)
    control.reset()
    return control


class SignedAt(TimestampSigner):
    """itsdangerous's timed signer with its clock set to `when`: landing cookies of any
    age, signed the way the checkout signs its own (app/landing.py)."""

    def __init__(self, secret: str, salt: str, when: float) -> None:
        super().__init__(secret, salt=salt)
        self.when = when

    def get_timestamp(self) -> int:
        return int(self.when)


def within_one_window(seconds: int, needed: float = 10.0) -> None:
    """Wait, if need be, until the current fixed rate-limit window of `seconds` has
    `needed` seconds left. A test that counts requests against a limit must not
    straddle two windows: the second starts counting afresh (a run that crossed a
    minute boundary saw a second sign-in start let through)."""
    left = seconds - time.time() % seconds
    if left < needed:
        time.sleep(left + 0.05)


def subscription_of(customer: str) -> str:
    """A demo customer's subscription, as the sandbox defines it (sandbox/data.py)."""
    subscription = CUSTOMERS[customer].subscription_id
    assert subscription is not None, f"{customer} has no subscription"
    return subscription


def recaptcha_token(kind: str = "pass") -> str:
    """A fresh token the sandbox verifies once: `pass` scores 0.9, `bot` 0.1."""
    return f"{kind}-{uuid.uuid4().hex}"
