"""Hostile input, races, logs and a bounded soak: nothing lost, nothing leaked, no 500."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
import redis
import requests

from sandbox.stack import app_service, free_port
from tests.conftest import Sandbox, recaptcha_token, subscription_of, within_one_window
from tests.integration.conftest import BASKET, Partner

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}{% raw %}",
    "javascript:alert(1)",
    "\r\nSet-Cookie: evil=1",
    "../../etc/passwd",
    "\x00\x1b[31m",
    "\u202egnp.exe",
    "A" * 5000,
]


@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_in_every_part_of_a_request_come_back_inert(partner, payload):
    alice: Partner = partner("alice")
    alice.create()
    # Header values go out as raw bytes; http.client itself refuses CR, LF and NUL.
    raw = payload.replace("\r", "").replace("\n", "").replace("\x00", "")
    safe_header = raw.encode("utf-8").decode("latin-1")
    attempts = [
        alice.create(payload),
        alice.create(referrer=payload, tracking={"utm_source": payload, payload[:30]: "x"}),
        alice.update({"addOffers": [payload]}),
        alice.update({"removeOffers": [payload], "complete": payload}),
        alice.http.get(
            alice.base_url + BASKET,
            headers={
                **alice.headers(None),
                "X-Request-ID": safe_header,
                "X-Client-IP": safe_header,
                "Referer": safe_header,
            },
        ),
        alice.http.put(
            alice.base_url + BASKET,
            json={},
            headers={**alice.headers(None), "X-Recaptcha-Token": safe_header},
        ),
        alice.http.get(
            alice.base_url + BASKET,
            headers={"Authorization": f"Bearer {safe_header}"},
            cookies={"landing_state": safe_header},
        ),
    ]
    for response in attempts:
        assert response.status_code < 500, response.text
        assert "evil" not in response.headers.get("Set-Cookie", "")
        assert "<script>" not in response.text and "<img" not in response.text
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        if response.status_code >= 400:
            assert response.headers["Content-Type"] == "application/problem+json"


def test_an_update_racing_a_completion_lands_before_it_or_gets_409(partner, sandbox: Sandbox):
    for _ in range(8):
        sandbox.reset()
        alice: Partner = partner("alice")
        alice.create()
        alice.update({"addOffers": ["OFFER-KIDS"]})
        answers: dict[str, requests.Response] = {}

        racers = [
            threading.Thread(target=_send, args=(alice, answers, "complete", {"complete": True})),
            threading.Thread(
                target=_send, args=(alice, answers, "update", {"removeOffers": ["OFFER-HD"]})
            ),
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        assert answers["complete"].status_code == 200, answers["complete"].text
        (order,) = sandbox.orders()
        if answers["update"].status_code == 200:
            removed = [offer["id"] for offer in order["removeOffers"]]
            assert removed == ["OFFER-HD"], "an update that landed is in the order"
        else:
            assert answers["update"].status_code == 409
            assert answers["update"].json()["code"] == "basket_completed"
            assert order["removeOffers"] == []


def _send(client: Partner, answers: dict, name: str, body: dict) -> None:
    answers[name] = client.update(body)


def test_trusted_proxies_bound_what_x_forwarded_for_can_claim(app_env, sandbox: Sandbox):
    env = {
        **app_env,
        "CHECKOUT_TRUSTED_PROXIES": "1",
        "CHECKOUT_RATE_LIMIT_CREATE": "1/60",
        "CHECKOUT_REDIS_KEY_PREFIX": f"{app_env['CHECKOUT_REDIS_KEY_PREFIX']}-xff",
    }
    app = app_service(free_port(), env).start(quiet=True)
    try:

        def create(customer: str, forwarded_for: str) -> int:
            response = requests.post(
                app.url + BASKET,
                json={"subscriptionId": subscription_of(customer)},
                headers={
                    "Authorization": f"Bearer {sandbox.token(customer)}",
                    "X-Recaptcha-Token": recaptcha_token(),
                    "X-Forwarded-For": forwarded_for,
                },
                timeout=10,
            )
            return response.status_code

        within_one_window(60)
        assert create("alice", "203.0.113.9, 198.51.100.1") == 201
        # A forged first hop does not make a new client: the proxy saw 198.51.100.1 again.
        assert create("dave", "203.0.113.77, 198.51.100.1") == 429
        assert create("erin", "198.51.100.2") == 201
    finally:
        app.stop()


def test_logs_carry_no_secret_the_requests_did(app_env, sandbox: Sandbox, tmp_path: Path):
    log = tmp_path / "app.log"
    secrets_used = {
        "CHECKOUT_SECRET_KEY": "soak-secret-key-that-must-never-be-logged-0123456789",
        "CHECKOUT_OAUTH_CLIENT_SECRET": "checkout-dev-secret",
    }
    env = {**app_env, "CHECKOUT_SECRET_KEY": secrets_used["CHECKOUT_SECRET_KEY"]}
    app = app_service(free_port(), env).start(log_path=log)
    try:
        client = Partner(app.url, sandbox.token("alice"))
        recaptchas = [recaptcha_token() for _ in range(4)]
        client.http.post(
            app.url + BASKET,
            json={"subscriptionId": "SUB-1001"},
            headers={**client.headers(None), "X-Recaptcha-Token": recaptchas[0]},
        )
        client.http.put(
            app.url + BASKET,
            json={"addOffers": ["OFFER-KIDS"]},
            headers={**client.headers(None), "X-Recaptcha-Token": recaptchas[1]},
        )
        client.http.put(
            app.url + BASKET,
            json={"addOffers": ["OFFER-KIDS"]},
            headers={**client.headers(None), "X-Recaptcha-Token": recaptchas[1]},
        )
        sandbox.fault("error", count=1)
        client.http.put(
            app.url + BASKET,
            json={"complete": True},
            headers={**client.headers(None), "X-Recaptcha-Token": recaptchas[2]},
        )
        sandbox.fault("drop", count=1)  # the upstream client's own error text is logged
        dropped = client.http.put(
            app.url + BASKET,
            json={"addOffers": ["OFFER-SPORTS"]},
            headers={**client.headers(None), "X-Recaptcha-Token": recaptchas[3]},
        )
        assert dropped.status_code == 502
        client.http.get(app.url + BASKET, headers={"Authorization": "Bearer forged.token.x"})
        cookie = client.http.cookies["landing_state"]
        code = "oauth-code-that-must-not-be-logged"
        requests.get(f"{app.url}/auth/callback?code={code}&state=s", timeout=10)
    finally:
        app.stop()
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith('{"event"')]
    assert len(lines) >= 5 and all({"requestId", "status", "durationMs"} <= set(x) for x in lines)
    assert "backend POST /subscriptions/SUB-1001/quotes failed: ConnectionError" in text
    for secret in [
        client.token,
        cookie,
        *recaptchas,
        "forged.token.x",
        code,
        *secrets_used.values(),
        "sandbox-recaptcha-secret",
        "sandbox-backend-token",
    ]:
        assert secret and secret not in text


def test_a_bounded_soak_submits_every_order_once_and_leaves_only_expiring_keys(
    partner, sandbox: Sandbox, redis_url: str, key_prefix: str
):
    cycles_per_customer = 700
    subscriptions = {customer: subscription_of(customer) for customer in ("alice", "dave", "erin")}
    completed: Counter[str] = Counter()
    failures: list[str] = []

    def shop(customer: str) -> None:
        client: Partner = partner(customer)
        for _ in range(cycles_per_customer):
            client.http.cookies.clear()
            steps = [
                client.create(subscriptions[customer]),
                client.update({"addOffers": ["OFFER-KIDS"]}),
                client.update({"complete": True}),
            ]
            if [s.status_code for s in steps] != [201, 200, 200]:
                failures.append(f"{customer}: {[s.text[:200] for s in steps]}")
                return
            completed[steps[-1].json()["basket"]["order"]["orderId"]] += 1
            sandbox.unlock(subscriptions[customer])

    shoppers = [threading.Thread(target=shop, args=(c,)) for c in subscriptions]
    for shopper in shoppers:
        shopper.start()
    for shopper in shoppers:
        shopper.join()
    assert failures == []
    orders = sandbox.orders()
    assert len(orders) == len(completed) == cycles_per_customer * len(subscriptions)
    assert all(order["submissions"] == 1 for order in orders)
    assert set(completed.values()) == {1}

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{key_prefix}:*", count=1000))
    assert keys
    assert [k for k in keys if client.ttl(k) == -1] == []  # -2: expired since the scan
    client.close()
