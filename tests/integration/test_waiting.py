"""Independent upstream calls at once, under the production worker model (gunicorn gthread).

The sandbox records when each call arrives and is answered (`/_sandbox/calls`); with its
`realistic` latency profile every call takes tens of milliseconds, long enough to see
whether two of them overlapped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from app.adapters.storage import Keys
from sandbox.stack import Service, free_port, gunicorn_service
from tests.conftest import Sandbox
from tests.integration.conftest import Partner, assert_problem

pytestmark = pytest.mark.integration


def _served(app_env: dict[str, str], **settings: str) -> Iterator[Service]:
    """One gunicorn worker with the production config and these settings, for a fixture."""
    env = {**app_env, **settings}
    service = gunicorn_service("app", "wsgi:app", free_port(), env, "/healthz", workers=1)
    service.start(quiet=True)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def production_app(app_env: dict[str, str]) -> Iterator[Service]:
    """The app as README's production section serves it: gunicorn, app/gunicorn_config.py."""
    yield from _served(app_env)


@pytest.fixture
def slow_upstreams(sandbox: Sandbox) -> Iterator[Sandbox]:
    sandbox.set_latency("realistic")
    try:
        yield sandbox
    finally:
        sandbox.set_latency("none")


def _call(calls: list[dict[str, Any]], endpoint: str, since: float) -> dict[str, Any]:
    """The one call to `endpoint` that arrived after `since` (the sandbox is on this
    machine: one clock)."""
    found = [c for c in calls if c["endpoint"] == endpoint and c["arrivedAt"] >= since]
    assert len(found) == 1, calls
    return found[0]


def _overlap(one: dict[str, Any], other: dict[str, Any]) -> bool:
    first, second = sorted((one, other), key=lambda call: call["arrivedAt"])
    return bool(second["arrivedAt"] < first["answeredAt"])


def test_put_verifies_and_quotes_at_once(
    production_app: Service, slow_upstreams: Sandbox, sandbox: Sandbox
) -> None:
    alice = Partner(production_app.url, sandbox.token("alice"))
    assert alice.create().status_code == 201
    since = time.time()

    response = alice.update({"addOffers": ["OFFER-SPORTS"]})

    assert response.status_code == 200, response.text
    calls = sandbox.calls()
    assert _overlap(_call(calls, "siteverify", since), _call(calls, "quote", since)), calls


def test_create_verifies_and_reads_the_subscription_at_once(
    production_app: Service, slow_upstreams: Sandbox, sandbox: Sandbox
) -> None:
    alice = Partner(production_app.url, sandbox.token("alice"))
    since = time.time()

    assert alice.create().status_code == 201

    calls = sandbox.calls()
    verify, read = _call(calls, "siteverify", since), _call(calls, "getSubscription", since)
    assert _overlap(verify, read), calls


def test_completion_verifies_before_it_orders(
    production_app: Service, slow_upstreams: Sandbox, sandbox: Sandbox
) -> None:
    alice = Partner(production_app.url, sandbox.token("alice"))
    assert alice.create().status_code == 201
    assert alice.update({"addOffers": ["OFFER-SPORTS"]}).status_code == 200
    since = time.time()

    response = alice.update({"complete": True})

    assert response.status_code == 200, response.text
    calls = sandbox.calls()
    verify, order = _call(calls, "siteverify", since), _call(calls, "order", since)
    assert verify["answeredAt"] <= order["arrivedAt"]


@pytest.mark.parametrize("kind", ["bot", "fail"])
def test_a_failed_check_throws_the_quote_away(
    production_app: Service, sandbox: Sandbox, kind: str
) -> None:
    alice = Partner(production_app.url, sandbox.token("alice"))
    assert alice.create().status_code == 201
    before = alice.get().json()["basket"]
    quotes = sandbox.stats()["backend"]["quote"]

    refused = alice.update({"addOffers": ["OFFER-SPORTS"]}, kind)

    assert_problem(refused, 400, "recaptcha_failed")
    assert sandbox.stats()["backend"]["quote"] == quotes + 1  # the quote was made, and held
    after = alice.get().json()["basket"]
    assert after == before
    assert after["addOffers"] == [] and after["quote"] is None


def test_a_failed_check_wins_over_an_offer_the_backend_refuses(
    production_app: Service, sandbox: Sandbox
) -> None:
    alice = Partner(production_app.url, sandbox.token("alice"))
    assert alice.create().status_code == 201

    refused = alice.update({"addOffers": ["OFFER-NOPE"]}, "bot")

    assert_problem(refused, 400, "recaptcha_failed")


def test_a_failed_check_creates_no_basket(production_app: Service, sandbox: Sandbox) -> None:
    alice = Partner(production_app.url, sandbox.token("alice"))

    assert_problem(alice.create(recaptcha="bot"), 400, "recaptcha_failed")
    assert_problem(alice.get(), 404, "basket_not_found")


@pytest.fixture(scope="module")
def short_deadline_app(app_env: dict[str, str]) -> Iterator[Service]:
    """Under gunicorn, with a request deadline (1 s) shorter than one backend read may take
    (4 s): whatever ends a slow request then is the deadline."""
    yield from _served(app_env, CHECKOUT_REQUEST_DEADLINE_SECONDS="1.0")


def test_the_deadline_ends_a_slow_change_and_nothing_changes(
    short_deadline_app: Service, app_server: Service, sandbox: Sandbox
) -> None:
    # Made on the app without the short deadline, which a loaded machine could miss.
    alice = Partner(app_server.url, sandbox.token("alice"))
    assert alice.create().status_code == 201
    before = alice.get().json()["basket"]
    alice.base_url = short_deadline_app.url  # one host: the same cookies and keys
    sandbox.fault("slow", path="/backend/v1/subscriptions/SUB-1001/quotes", delaySeconds=2.0)

    slow = alice.update({"addOffers": ["OFFER-SPORTS"]})

    assert_problem(slow, 502, "upstream_error")
    assert alice.get().json()["basket"] == before


def test_the_deadline_spent_on_verification_sends_no_order(
    short_deadline_app: Service, app_server: Service, sandbox: Sandbox
) -> None:
    # Made on the app without the short deadline, which a loaded machine could miss.
    alice = Partner(app_server.url, sandbox.token("alice"))
    assert alice.create().status_code == 201
    assert alice.update({"addOffers": ["OFFER-SPORTS"]}).status_code == 200
    alice.base_url = short_deadline_app.url  # one host: the same cookies and keys
    sandbox.fault("slow", path="/recaptcha/", delaySeconds=1.5)

    slow = alice.update({"complete": True})

    assert_problem(slow, 502, "upstream_error")
    assert sandbox.stats()["backend"]["order"] == 0
    basket = alice.get().json()["basket"]
    assert basket["status"] == "open" and basket["order"] is None


@pytest.fixture(scope="module")
def one_at_a_time_app(app_env: dict[str, str]) -> Iterator[Service]:
    """Under gunicorn, a worker that serves one request at a time and turns the rest away."""
    yield from _served(app_env, CHECKOUT_MAX_IN_FLIGHT="1", CHECKOUT_THREADS="4")


def test_past_the_bound_the_answer_is_busy_and_quick(
    one_at_a_time_app: Service, sandbox: Sandbox, app_env: dict[str, str], app_redis: Any
) -> None:
    url = one_at_a_time_app.url
    alice = Partner(url, sandbox.token("alice"))
    carol = Partner(url, sandbox.token("carol"))
    assert alice.create().status_code == 201
    # A customer with a session, its TTL marked down to tell whether a request renewed it.
    browser = requests.Session()
    landing = browser.get(url + "/start?subscription=SUB-1001&offer=OFFER-SPORTS", timeout=5)
    assert landing.status_code == 200
    sid = browser.cookies["checkout_session"].rsplit(".", 1)[0]
    key = Keys(app_env["CHECKOUT_REDIS_KEY_PREFIX"]).signin(sid)
    assert app_redis.expire(key, 60)
    # Long enough to hold the one place on a busy machine, shorter than a backend read.
    sandbox.fault("slow", path="/backend/v1/subscriptions/SUB-1001/quotes", delaySeconds=3.0)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(alice.update, {"addOffers": ["OFFER-SPORTS"]})
        sandbox.wait_faults_taken()  # the quote is held: the one place is taken

        busy = carol.create("SUB-3003")
        page = browser.get(url + "/", timeout=5)
        health = requests.get(url + "/healthz", timeout=5)
        static = requests.get(url + "/static/checkout.css", timeout=5)

        assert held.result().status_code == 200  # the one in flight is served
    body = assert_problem(busy, 503, "server_busy")
    assert "nothing was changed" in body["detail"]
    assert busy.headers["Retry-After"] == "2"
    assert page.status_code == 503 and page.headers["Retry-After"] == "2"
    assert "nothing was changed" in page.text
    # Turned away before its session was read: no round trip, and the cookie stands.
    assert 0 < app_redis.ttl(key) <= 60 and "Set-Cookie" not in page.headers
    assert browser.get(url + "/", timeout=5).status_code == 200
    assert app_redis.ttl(key) > 60  # read, and so renewed, once let in
    assert health.status_code == 200 and static.status_code == 200
    assert_problem(carol.get(), 404, "basket_not_found")
