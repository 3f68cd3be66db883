"""Behaviour that needs other settings: short TTLs, stale snapshots, a backend that is down.

These build the app in-process with `create_app(test_config)` (`make_app`; pytest-flask's
`app` and `client` where the suite's settings do); it still talks to the real sandbox over
HTTP and to the real Redis.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from flask import Flask

from app import create_app
from sandbox.stack import free_port
from tests.conftest import Sandbox, recaptcha_token, within_one_window
from tests.integration.conftest import BASKET


@pytest.fixture
def make_app(app_env: dict[str, str], sandbox: Sandbox):
    def make(**overrides: Any) -> Flask:
        config = {k.removeprefix("CHECKOUT_"): _value(v) for k, v in app_env.items()}
        config["REDIS_KEY_PREFIX"] = f"test-{uuid.uuid4().hex[:12]}"  # counters start at zero
        config.update(overrides)
        return create_app(config)

    return make


@pytest.fixture
def app(make_app) -> Flask:
    """The suite's settings, in process, for pytest-flask's `client`."""
    return make_app()


def _value(text: str) -> Any:
    """Read a setting the way Flask's `from_prefixed_env` does."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _headers(sandbox: Sandbox, customer: str = "alice") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {sandbox.token(customer)}",
        "X-Recaptcha-Token": recaptcha_token(),
    }


def test_a_basket_expires_after_its_ttl(make_app, sandbox: Sandbox):
    client = make_app(BASKET_TTL_SECONDS=1).test_client()
    created = client.post(BASKET, json={"subscriptionId": "SUB-1001"}, headers=_headers(sandbox))
    assert created.status_code == 201
    assert client.get(BASKET, headers=_headers(sandbox)).status_code == 200
    time.sleep(2.2)
    expired = client.get(BASKET, headers=_headers(sandbox))
    assert expired.status_code == 404
    assert expired.json["code"] == "basket_not_found"


def test_every_write_refreshes_the_ttl(make_app, sandbox: Sandbox):
    from app.web.services import services

    app = make_app(BASKET_TTL_SECONDS=60)
    client = app.test_client()
    created = client.post(BASKET, json={"subscriptionId": "SUB-1001"}, headers=_headers(sandbox))
    basket_id = created.json["basket"]["basketId"]
    with app.app_context():
        redis, key = services().redis, services().keys.basket(basket_id)
        redis.expire(key, 5)
        client.put(BASKET, json={"addOffers": ["OFFER-KIDS"]}, headers=_headers(sandbox))
        assert 55 <= redis.ttl(key) <= 60
        assert key.endswith(basket_id) and "{" + services().keys.shard(basket_id) + "}" in key


def test_a_stale_snapshot_is_renewed_and_a_broken_backend_answers_502(make_app, sandbox: Sandbox):
    client = make_app(BASKET_SNAPSHOT_MAX_AGE_SECONDS=0).test_client()
    client.post(BASKET, json={"subscriptionId": "SUB-1001"}, headers=_headers(sandbox))
    before = sandbox.stats()["backend"]["getSubscription"]
    assert client.get(BASKET, headers=_headers(sandbox)).status_code == 200
    assert sandbox.stats()["backend"]["getSubscription"] == before + 1
    sandbox.fault("malformed", count=5)
    response = client.get(BASKET, headers=_headers(sandbox))
    assert response.status_code == 502
    assert response.json["code"] == "upstream_error"


def test_a_fresh_basket_is_read_without_calling_the_backend(client, sandbox: Sandbox):
    client.post(BASKET, json={"subscriptionId": "SUB-1001"}, headers=_headers(sandbox))
    before = sandbox.stats()["backend"]
    for _ in range(3):
        assert client.get(BASKET, headers=_headers(sandbox)).status_code == 200
    assert sandbox.stats()["backend"] == before


def test_a_backend_that_is_down_answers_502(make_app, sandbox: Sandbox):
    down = f"http://127.0.0.1:{free_port()}/backend/v1"
    client = make_app(SUBSCRIPTION_API_URL=down).test_client()
    response = client.post(BASKET, json={"subscriptionId": "SUB-1001"}, headers=_headers(sandbox))
    assert response.status_code == 502
    assert response.json["code"] == "upstream_error"
    assert response.headers["Retry-After"]


def test_a_slow_backend_is_cut_off_by_the_read_timeout(make_app, sandbox: Sandbox):
    client = make_app(SUBSCRIPTION_API_READ_TIMEOUT=0.3, SUBSCRIPTION_API_READ_RETRIES=0)
    sandbox.fault("slow", count=1, delaySeconds=4)
    started = time.monotonic()
    response = client.test_client().post(
        BASKET, json={"subscriptionId": "SUB-1001"}, headers=_headers(sandbox)
    )
    assert response.status_code == 502
    assert time.monotonic() - started < 3.0  # bounded by the timeout, not the backend


def test_basket_creation_is_rate_limited_per_customer(make_app, sandbox: Sandbox):
    client = make_app(RATE_LIMIT_CREATE="2/60").test_client()
    body = {"subscriptionId": "SUB-1001"}
    within_one_window(60)
    for _ in range(2):
        assert client.post(BASKET, json=body, headers=_headers(sandbox)).status_code == 201
    limited = client.post(BASKET, json=body, headers=_headers(sandbox))
    assert limited.status_code == 429
    assert limited.json["code"] == "too_many_requests"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_the_circuit_opens_fails_fast_and_closes_after_a_probe(make_app, sandbox: Sandbox):
    client = make_app(
        SUBSCRIPTION_API_BREAKER_THRESHOLD=2,
        SUBSCRIPTION_API_BREAKER_COOLDOWN=0.5,
        SUBSCRIPTION_API_READ_RETRIES=0,
    ).test_client()
    body = {"subscriptionId": "SUB-1001"}
    sandbox.fault("error", count=0)
    for _ in range(2):
        assert client.post(BASKET, json=body, headers=_headers(sandbox)).status_code == 502
    calls = sandbox.stats()["backend"]["getSubscription"]
    fast = client.post(BASKET, json=body, headers=_headers(sandbox))
    assert fast.status_code == 502 and fast.headers["Retry-After"]
    assert sandbox.stats()["backend"]["getSubscription"] == calls  # failed fast
    sandbox.clear_faults()
    time.sleep(0.6)
    assert client.post(BASKET, json=body, headers=_headers(sandbox)).status_code == 201


def test_redis_down_answers_503_and_recovers_by_itself(make_app, sandbox: Sandbox):
    from sandbox.stack import EmbeddedRedis

    redis = EmbeddedRedis().start()
    try:
        client = make_app(REDIS_URL=redis.url).test_client()
        body = {"subscriptionId": "SUB-1001"}
        assert client.post(BASKET, json=body, headers=_headers(sandbox)).status_code == 201
        redis.stop()
        for request in (
            lambda: client.post(BASKET, json=body, headers=_headers(sandbox)),
            lambda: client.get(BASKET, headers=_headers(sandbox)),
        ):
            down = request()
            assert down.status_code == 503
            assert down.json["code"] == "service_unavailable"
            assert down.headers["Retry-After"]
        redis = EmbeddedRedis(port=redis.port).start()
        assert client.post(BASKET, json=body, headers=_headers(sandbox)).status_code == 201
    finally:
        redis.stop()


def test_pages_answer_503_while_redis_is_down_and_recover(make_app, sandbox: Sandbox):
    from sandbox.stack import EmbeddedRedis

    redis = EmbeddedRedis().start()
    try:
        client = make_app(REDIS_URL=redis.url).test_client()
        link = "/start?subscription=SUB-1001&offer=OFFER-SPORTS&utm_source=mail"
        assert client.get(link).status_code == 200
        redis.stop()
        down = client.get(link)
        assert down.status_code == 503
        assert down.mimetype == "text/html"
        assert down.headers["Retry-After"]
        assert "Content-Security-Policy" in down.headers
        assert "Traceback" not in down.get_data(as_text=True)
        redis = EmbeddedRedis(port=redis.port).start()
        assert client.get(link).status_code == 200
    finally:
        redis.stop()


def test_a_session_written_before_it_is_read_keeps_what_was_stored(app: Flask, client):
    """Outside a request (Flask's `session_transaction`) no hook reads the session: what is
    written goes over what Redis holds, and the rest is kept."""
    from app.web.sessions import FIRST_TOUCH

    assert client.get("/start?subscription=SUB-1001&offer=OFFER-SPORTS").status_code == 200
    with client.session_transaction() as opened:
        assert not opened.loaded and dict(opened) == {}
        opened["language"] = "cy"
    with client.session_transaction() as opened:
        opened.load(app)
        assert opened["language"] == "cy"
        assert opened[FIRST_TOUCH]["subscription"] == "SUB-1001"


def test_a_completion_abandoned_midway_is_taken_over_and_submitted_once(make_app, sandbox: Sandbox):
    """A worker died after claiming the basket: a retry finishes the job, once."""
    from dataclasses import replace

    from app.checkout import COMPLETING
    from app.web.services import services

    app = make_app(SUBSCRIPTION_API_READ_TIMEOUT=0.5, SUBSCRIPTION_API_CONNECT_TIMEOUT=0.5)
    client = app.test_client()
    created = client.post(BASKET, json={"subscriptionId": "SUB-1001"}, headers=_headers(sandbox))
    client.put(BASKET, json={"addOffers": ["OFFER-KIDS"]}, headers=_headers(sandbox))
    basket_id = created.json["basket"]["basketId"]
    with app.app_context():
        store = services().store
        basket = store.get(basket_id)
        assert basket is not None
        assert store.save(replace(basket, status=COMPLETING, completing_since=time.time()))

    # The retry waits for the claim while it is fresh, then takes it over once it is stale
    # (twice the submit budget) and submits under the same idempotency key.
    done = client.put(BASKET, json={"complete": True}, headers=_headers(sandbox))
    assert done.status_code == 200, done.json
    (order,) = sandbox.orders()
    assert done.json["basket"]["order"]["orderId"] == order["orderId"]
    assert order["submissions"] == 1


def test_a_token_verified_without_an_admission_is_claimed_by_the_verifier(app, sandbox):
    """`verify` on its own claims the token first, in the same batch an admission uses."""
    from app.checkout.errors import RecaptchaFailed
    from app.web.services import services

    token = recaptcha_token()
    services().recaptcha.verify(token, None)  # pytest-flask runs each test in a request context
    with pytest.raises(RecaptchaFailed, match="already used"):
        services().recaptcha.verify(token, None)
