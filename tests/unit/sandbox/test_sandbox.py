"""The sandbox on its own: demo data, backend rules, OAuth, reCAPTCHA, faults and tokens.

Most tests use Flask's test client; the few that need real sockets (parallel
idempotency, dropped connections) run the sandbox in a thread on a free loopback port.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.errors import ExpiredTokenError
from joserfc.jwk import KeySet

from sandbox import Settings, create_app
from sandbox.__main__ import main as cli_main
from sandbox.data import first_of_next_month
from sandbox.keys import load_signing_key
from sandbox.state import EXTENSION_KEY as STATE_EXTENSION
from sandbox.state import SandboxState
from tests.unit.sandbox.backend_calls import (
    ALICE_CHANGE,
    BACKEND,
    backend_headers,
    get_subscription,
    money,
    place_order,
    quote,
)
from tests.unit.sandbox.oauth_flow import CALLBACK, CLIENT, Pkce, authorize_params

pytestmark = pytest.mark.unit

NEXT_MONTH = first_of_next_month().isoformat()
ALICE_LIKE = ["OFFER-SPORTS", "OFFER-KIDS", "OFFER-CINEMA"]


def offer_ids(offers: list[dict[str, Any]]) -> list[str]:
    return [offer["id"] for offer in offers]


def order_body(client: FlaskClient | None = None, **overrides: Any) -> dict[str, Any]:
    """Alice's usual order; given a client, under a real quote for its change.

    Without one it names a quote never issued: enough for a refusal that comes first.
    """
    body: dict[str, Any] = {
        "subscriptionId": "SUB-1001",
        "customerId": "alice",
        "basketId": "basket-1",
        "addOffers": ["OFFER-SPORTS"],
        "removeOffers": ["OFFER-HD"],
        "referrer": "https://partner.example/news",
        "tracking": {"utm_source": "newsletter", "utm_campaign": "autumn"},
        "quoteId": "Q-0000000000000000",
        "expectedPrice": money("28.00"),
    }
    body.update(overrides)
    if client is not None:
        change = {"addOffers": body["addOffers"], "removeOffers": body["removeOffers"]}
        issued = quote(client, change, body["subscriptionId"]).get_json()
        body.update(quoteId=issued["quoteId"], expectedPrice=issued["newPrice"])
        body.update(overrides)
    return body


# --- demo data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscription_id", "customer", "plan", "active", "eligible", "price"),
    [
        ("SUB-1001", "alice", "Standard", ["OFFER-HD"], ALICE_LIKE, "24.00"),
        ("SUB-2002", "bob", "Premium", ["OFFER-HD"], ["OFFER-SPORTS"], "34.00"),
        ("SUB-3003", "carol", "Basic", [], ["OFFER-SPORTS", "OFFER-HD"], "10.00"),
    ],
)
def test_demo_subscriptions(
    client: FlaskClient,
    subscription_id: str,
    customer: str,
    plan: str,
    active: list[str],
    eligible: list[str],
    price: str,
) -> None:
    body = get_subscription(client, subscription_id)
    assert body["customerId"] == customer
    assert body["status"] == "active"
    assert body["plan"]["name"] == plan
    assert offer_ids(body["activeOffers"]) == active
    assert offer_ids(body["eligibleOffers"]) == eligible
    assert body["recurringPrice"] == money(price)
    assert body["nextBillingDate"] == NEXT_MONTH
    assert body["pendingChange"] is None or customer == "bob"


def test_offers_carry_name_description_and_price(client: FlaskClient) -> None:
    offers = get_subscription(client, "SUB-1001")["eligibleOffers"]
    assert offers[0] == {
        "id": "OFFER-SPORTS",
        "name": "Sports",
        "description": offers[0]["description"],
        "price": money("8.00"),
    }
    assert all(o["description"].endswith(".") for o in offers)
    assert {o["id"]: o["price"]["amount"] for o in offers} == {
        "OFFER-SPORTS": "8.00",
        "OFFER-KIDS": "3.00",
        "OFFER-CINEMA": "6.50",
    }


def test_bob_has_a_pending_downgrade(client: FlaskClient) -> None:
    pending = get_subscription(client, "SUB-2002")["pendingChange"]
    assert pending["description"] == "Downgrade to Standard"
    assert pending["effectiveDate"] == NEXT_MONTH
    assert pending["newPrice"] == money("24.00")
    assert re.fullmatch(r"ORD-[0-9A-F]{8}", pending["orderId"])


def test_unknown_subscription_is_404(client: FlaskClient) -> None:
    response = client.get("/backend/v1/subscriptions/SUB-9999", headers=BACKEND)
    assert response.status_code == 404
    assert response.get_json()["error"] == "subscription_not_found"


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic sandbox-backend-token"])
def test_backend_requires_the_service_token(client: FlaskClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/backend/v1/subscriptions/SUB-1001", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_unknown_routes_answer_json(client: FlaskClient) -> None:
    response = client.get("/backend/v1/nothing-here", headers=BACKEND)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


# --- quotes ----------------------------------------------------------------------------


def test_quote_prices_the_change(client: FlaskClient) -> None:
    response = quote(client, {"addOffers": ["OFFER-CINEMA"], "removeOffers": ["OFFER-HD"]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["subscriptionId"] == "SUB-1001"
    assert body["currentPrice"] == money("24.00")
    assert body["newPrice"] == money("26.50")
    assert body["effectiveDate"] == NEXT_MONTH
    assert offer_ids(body["addOffers"]) == ["OFFER-CINEMA"]
    assert offer_ids(body["removeOffers"]) == ["OFFER-HD"]


def test_empty_quote_keeps_the_price(client: FlaskClient) -> None:
    body = quote(client, {"addOffers": [], "removeOffers": []}).get_json()
    assert body["newPrice"] == body["currentPrice"] == money("24.00")


@pytest.mark.parametrize(
    ("body", "code", "offer_id"),
    [
        ({"addOffers": ["OFFER-HD"]}, "offer_not_eligible", "OFFER-HD"),
        ({"removeOffers": ["OFFER-SPORTS"]}, "offer_not_active", "OFFER-SPORTS"),
        ({"addOffers": ["OFFER-NOPE"]}, "unknown_offer", "OFFER-NOPE"),
        ({"removeOffers": ["OFFER-NOPE"]}, "unknown_offer", "OFFER-NOPE"),
        ({"addOffers": ["OFFER-SPORTS", "OFFER-KIDS"]}, "invalid_request", "OFFER-KIDS"),
        ({"addOffers": ["OFFER-HD"], "removeOffers": ["OFFER-HD"]}, "invalid_request", "OFFER-HD"),
        ({"addOffers": "OFFER-SPORTS"}, "invalid_request", None),
        ({"removeOffers": [1]}, "invalid_request", None),
        ({"removeOffers": ["OFFER-HD", "OFFER-HD"]}, "invalid_request", None),
        (["OFFER-SPORTS"], "invalid_request", None),
    ],
)
def test_quote_refuses_invalid_changes(
    client: FlaskClient, body: Any, code: str, offer_id: str | None
) -> None:
    response = quote(client, body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["error"] == code
    assert error.get("offerId") == offer_id
    assert error["message"]


def test_quote_refuses_a_body_that_is_not_json(client: FlaskClient) -> None:
    response = client.post(
        "/backend/v1/subscriptions/SUB-1001/quotes", data="{nope", headers=BACKEND
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_quote_on_a_locked_subscription_is_409(client: FlaskClient) -> None:
    response = quote(client, {"addOffers": ["OFFER-SPORTS"]}, "SUB-2002")
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "pending_change"
    assert body["pendingChange"]["description"] == "Downgrade to Standard"


def test_quote_for_unknown_subscription_is_404(client: FlaskClient) -> None:
    assert quote(client, {"addOffers": []}, "SUB-9999").status_code == 404


# --- orders ----------------------------------------------------------------------------


def test_order_is_accepted_and_locks_the_subscription(client: FlaskClient) -> None:
    body = order_body(client)
    response = place_order(client, body)
    assert response.status_code == 201
    order = response.get_json()
    assert re.fullmatch(r"ORD-[0-9A-F]{8}", order["orderId"])
    assert order["subscriptionId"] == "SUB-1001"
    assert order["status"] == "accepted"
    assert order["effectiveDate"] == NEXT_MONTH
    assert offer_ids(order["addOffers"]) == ["OFFER-SPORTS"]
    assert offer_ids(order["removeOffers"]) == ["OFFER-HD"]
    assert order["newPrice"] == money("28.00")
    assert order["quoteId"] == body["quoteId"]
    assert order["createdAt"]

    pending = get_subscription(client, "SUB-1001")["pendingChange"]
    assert pending == {
        "orderId": order["orderId"],
        "description": "Add Sports, remove HD Quality",
        "effectiveDate": NEXT_MONTH,
        "newPrice": money("28.00"),
    }
    again = place_order(client, order_body(addOffers=["OFFER-KIDS"]), key="key-2")
    assert again.status_code == 409
    assert again.get_json()["pendingChange"]["orderId"] == order["orderId"]
    assert quote(client, {"addOffers": ["OFFER-KIDS"]}).status_code == 409


@pytest.mark.parametrize(
    ("add", "remove", "description"),
    [(["OFFER-KIDS"], [], "Add Kids"), ([], ["OFFER-HD"], "Remove HD Quality")],
)
def test_pending_change_describes_the_order(
    client: FlaskClient, add: list[str], remove: list[str], description: str
) -> None:
    place_order(client, order_body(client, addOffers=add, removeOffers=remove))
    assert get_subscription(client, "SUB-1001")["pendingChange"]["description"] == description


def test_same_key_returns_the_same_order(client: FlaskClient) -> None:
    body = order_body(client)
    first = place_order(client, body)
    second = place_order(client, body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.get_json() == first.get_json()
    records = client.get("/_sandbox/orders").get_json()["orders"]
    assert len(records) == 1
    assert records[0]["submissions"] == 2


def test_same_key_with_another_body_is_422(client: FlaskClient) -> None:
    body = order_body(client)
    place_order(client, body)
    response = place_order(client, {**body, "basketId": "basket-2"})
    assert response.status_code == 422
    assert response.get_json()["error"] == "idempotency_key_reused"


def test_order_record_keeps_what_the_checkout_sent(client: FlaskClient) -> None:
    order = place_order(client, order_body(client), key="journey-42").get_json()
    (record,) = client.get("/_sandbox/orders").get_json()["orders"]
    assert record["orderId"] == order["orderId"]
    assert record["customerId"] == "alice"
    assert record["basketId"] == "basket-1"
    assert record["referrer"] == "https://partner.example/news"
    assert record["tracking"] == {"utm_source": "newsletter", "utm_campaign": "autumn"}
    assert record["idempotencyKey"] == "journey-42"
    assert record["submissions"] == 1


@pytest.mark.parametrize(
    "headers",
    [{}, {"Idempotency-Key": ""}, {"Idempotency-Key": "x" * 256}, {"Idempotency-Key": "a\tb"}],
)
def test_order_needs_a_sane_idempotency_key(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.post("/backend/v1/orders", json=order_body(), headers={**BACKEND, **headers})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"customerId": "carol"}, 404, "subscription_not_found"),
        ({"subscriptionId": "SUB-9999"}, 404, "subscription_not_found"),
        ({"addOffers": [], "removeOffers": []}, 400, "invalid_request"),
        ({"addOffers": ["OFFER-HD"], "removeOffers": []}, 400, "offer_not_eligible"),
        ({"customerId": None}, 400, "invalid_request"),
        ({"tracking": {"utm_source": 1}}, 400, "invalid_request"),
        ({"referrer": 7}, 400, "invalid_request"),
        ({"subscriptionId": "SUB-2002", "customerId": "bob"}, 409, "pending_change"),
        ({"quoteId": ""}, 400, "invalid_request"),
        ({"quoteId": 7}, 400, "invalid_request"),
        ({"expectedPrice": None}, 400, "invalid_request"),
        ({"expectedPrice": "28.00"}, 400, "invalid_request"),
        ({"expectedPrice": {"amount": 28, "currency": "GBP"}}, 400, "invalid_request"),
        ({"expectedPrice": {"amount": "28", "currency": "GBP"}}, 400, "invalid_request"),
        ({"expectedPrice": {"amount": "28.00"}}, 400, "invalid_request"),
        ({"expectedPrice": {"amount": "28.00", "currency": "gbp"}}, 400, "invalid_request"),
        ({"expectedPrice": {**money("28.00"), "tax": "0.00"}}, 400, "invalid_request"),
    ],
)
def test_order_is_refused(
    client: FlaskClient, overrides: dict[str, Any], status: int, code: str
) -> None:
    response = place_order(client, order_body(**overrides))
    assert response.status_code == status
    assert response.get_json()["error"] == code
    assert client.get("/_sandbox/orders").get_json() == {"orders": []}


def test_parallel_submissions_with_one_key_make_one_order(
    client: FlaskClient, live_url: str
) -> None:
    body = order_body(client, subscriptionId="SUB-4004", customerId="dave")

    def submit(_: int) -> requests.Response:
        return requests.post(
            f"{live_url}/backend/v1/orders",
            json=body,
            headers={**BACKEND, "Idempotency-Key": "parallel-key"},
            timeout=10,
        )

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(submit, range(12)))

    assert sorted(r.status_code for r in responses) == [200] * 11 + [201]
    assert len({r.json()["orderId"] for r in responses}) == 1
    orders = requests.get(f"{live_url}/_sandbox/orders", timeout=5).json()["orders"]
    assert len(orders) == 1
    assert orders[0]["submissions"] == 12


# --- quotes that bind, and prices that move --------------------------------------------


def set_price(client: FlaskClient, **body: str) -> dict[str, Any]:
    response = client.post("/_sandbox/prices", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


def expire_quotes(client: FlaskClient) -> int:
    response = client.post("/_sandbox/quotes/expire")
    assert response.status_code == 200
    expired: int = response.get_json()["expired"]
    return expired


def order_under(
    client: FlaskClient, issued: dict[str, Any], key: str = "key-1", language: str | None = None
) -> Any:
    """Alice's usual order, naming ``issued`` and agreeing to its new price."""
    body = order_body(quoteId=issued["quoteId"], expectedPrice=issued["newPrice"])
    return place_order(client, body, key, language)


def seconds_until(instant: str) -> float:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", instant)
    return (datetime.fromisoformat(instant) - datetime.now(UTC)).total_seconds()


def test_quote_has_an_id_and_expires_in_ten_minutes(client: FlaskClient) -> None:
    first = quote(client, ALICE_CHANGE).get_json()
    second = quote(client, ALICE_CHANGE).get_json()
    assert re.fullmatch(r"Q-[0-9A-F]{16}", first["quoteId"])
    assert first["quoteId"] != second["quoteId"]
    assert 595 <= seconds_until(first["expiresAt"]) <= 600


def test_quote_lifetime_is_a_setting(key_file: Path) -> None:
    app = create_app(Settings(signing_key_file=key_file, quote_ttl_seconds=60))
    assert 55 <= seconds_until(quote(app.test_client(), ALICE_CHANGE).get_json()["expiresAt"]) <= 60


def test_order_under_its_quote_is_accepted_and_names_it(client: FlaskClient) -> None:
    issued = quote(client, ALICE_CHANGE).get_json()
    response = order_under(client, issued)
    assert response.status_code == 201
    order = response.get_json()
    assert order["quoteId"] == issued["quoteId"]
    assert order["newPrice"] == issued["newPrice"] == money("28.00")
    assert client.get("/_sandbox/orders").get_json()["orders"][0]["quoteId"] == issued["quoteId"]


def test_offer_price_change_shows_in_reads_and_quotes(client: FlaskClient) -> None:
    assert set_price(client, offerId="OFFER-SPORTS", price="9") == {
        "offerId": "OFFER-SPORTS",
        "price": money("9.00"),
    }
    subscription = get_subscription(client, "SUB-1001")
    assert subscription["eligibleOffers"][0]["price"] == money("9.00")
    carol = get_subscription(client, "SUB-3003")
    assert carol["eligibleOffers"][0] == {**carol["eligibleOffers"][0], "price": money("9.00")}
    issued = quote(client, ALICE_CHANGE).get_json()
    assert issued["newPrice"] == money("29.00")
    assert issued["addOffers"][0]["price"] == money("9.00")


@pytest.mark.parametrize("retry_key", ["key-1", "key-2"])
@pytest.mark.parametrize(
    ("change", "new_price"),
    [
        ({"offerId": "OFFER-SPORTS", "price": "9.00"}, "29.00"),
        ({"planId": "PLAN-STANDARD", "price": "21.00"}, "29.00"),
    ],
)
def test_price_change_refuses_the_old_price_with_a_fresh_quote(
    client: FlaskClient, change: dict[str, str], new_price: str, retry_key: str
) -> None:
    seen = quote(client, ALICE_CHANGE).get_json()
    set_price(client, **change)
    refused = order_under(client, seen)
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["error"] == "price_changed" and body["message"]
    fresh = body["quote"]
    assert fresh["newPrice"] == money(new_price)
    assert fresh["quoteId"] != seen["quoteId"]
    assert 595 <= seconds_until(fresh["expiresAt"]) <= 600
    assert client.get("/_sandbox/orders").get_json() == {"orders": []}

    accepted = order_under(client, fresh, key=retry_key)
    assert accepted.status_code == 201, accepted.get_data(as_text=True)
    assert accepted.get_json()["quoteId"] == fresh["quoteId"]
    assert accepted.get_json()["newPrice"] == money(new_price)
    assert len(client.get("/_sandbox/orders").get_json()["orders"]) == 1
    pending = get_subscription(client, "SUB-1001")["pendingChange"]
    assert pending["newPrice"] == money(new_price)


def test_price_change_that_leaves_the_new_price_keeps_the_quote(client: FlaskClient) -> None:
    """HD is being removed: its price moves the current price, not the one agreed to."""
    seen = quote(client, ALICE_CHANGE).get_json()
    set_price(client, offerId="OFFER-HD", price="1.00")
    assert order_under(client, seen).status_code == 201


def test_plan_price_change_shows_in_reads(client: FlaskClient) -> None:
    assert set_price(client, planId="PLAN-STANDARD", price="21.00") == {
        "planId": "PLAN-STANDARD",
        "price": money("21.00"),
    }
    subscription = get_subscription(client, "SUB-1001")
    assert subscription["plan"]["price"] == money("21.00")
    assert subscription["recurringPrice"] == money("25.00")
    assert quote(client, ALICE_CHANGE).get_json()["currentPrice"] == money("25.00")
    assert get_subscription(client, "SUB-3003")["plan"]["price"] == money("10.00")


def test_quote_at_another_price_than_agreed_is_refused(client: FlaskClient) -> None:
    """Agreeing to today's price under a quote that showed another is no agreement."""
    seen = quote(client, ALICE_CHANGE).get_json()
    set_price(client, offerId="OFFER-SPORTS", price="9.00")
    response = order_under(client, {**seen, "newPrice": money("29.00")})
    assert response.status_code == 409
    assert response.get_json()["error"] == "price_changed"
    assert response.get_json()["quote"]["newPrice"] == money("29.00")


def test_expired_quote_is_refused_and_a_new_one_orders_under_the_same_key(
    client: FlaskClient,
) -> None:
    seen = quote(client, ALICE_CHANGE).get_json()
    assert expire_quotes(client) == 1
    assert expire_quotes(client) == 0  # nothing left that still held
    refused = order_under(client, seen)
    assert refused.status_code == 409
    assert refused.get_json() == {
        "error": "quote_expired",
        "message": refused.get_json()["message"],
    }
    assert client.get("/_sandbox/orders").get_json() == {"orders": []}
    assert order_under(client, quote(client, ALICE_CHANGE).get_json()).status_code == 201
    assert len(client.get("/_sandbox/orders").get_json()["orders"]) == 1


def test_unknown_quote_counts_as_expired(client: FlaskClient) -> None:
    before_reset = quote(client, ALICE_CHANGE).get_json()
    client.post("/_sandbox/reset")
    for quote_id in ("Q-0000000000000000", before_reset["quoteId"]):
        response = place_order(client, order_body(quoteId=quote_id))
        assert response.status_code == 409
        assert response.get_json()["error"] == "quote_expired"


@pytest.mark.parametrize(
    ("subscription_id", "change"),
    [
        ("SUB-1001", {"addOffers": ["OFFER-SPORTS"]}),
        ("SUB-1001", {"addOffers": ["OFFER-KIDS"], "removeOffers": ["OFFER-HD"]}),
        ("SUB-4004", ALICE_CHANGE),
    ],
)
def test_quote_for_another_change_is_400(
    client: FlaskClient, subscription_id: str, change: dict[str, list[str]]
) -> None:
    other = quote(client, change, subscription_id).get_json()
    response = place_order(client, order_body(quoteId=other["quoteId"]))
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid_request",
        "message": "The quote is for another change.",
    }


def test_replay_returns_the_order_whatever_became_of_its_quote(client: FlaskClient) -> None:
    body = order_body(client)
    first = place_order(client, body)
    assert first.status_code == 201
    expire_quotes(client)
    set_price(client, offerId="OFFER-SPORTS", price="12.00")
    replay = place_order(client, body)
    assert replay.status_code == 200
    assert replay.get_json() == first.get_json()
    assert client.get("/_sandbox/orders").get_json()["orders"][0]["submissions"] == 2
    assert place_order(client, {**body, "basketId": "x"}).get_json()["error"] == (
        "idempotency_key_reused"
    )


def test_quotes_are_forgotten_when_expired_or_too_many(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state: SandboxState = app.extensions[STATE_EXTENSION]
    for _ in range(3):
        quote(client, ALICE_CHANGE)
    expire_quotes(client)
    quote(client, ALICE_CHANGE)
    assert len(state.subscriptions.quotes) == 1
    monkeypatch.setattr("sandbox.subscriptions.MAX_QUOTES", 2)
    oldest, *_ = (quote(client, ALICE_CHANGE).get_json() for _ in range(3))
    assert len(state.subscriptions.quotes) == 2
    assert order_under(client, oldest).get_json()["error"] == "quote_expired"


def test_reset_restores_the_prices(client: FlaskClient) -> None:
    set_price(client, offerId="OFFER-SPORTS", price="9.00")
    set_price(client, planId="PLAN-STANDARD", price="0")
    client.post("/_sandbox/reset")
    subscription = get_subscription(client, "SUB-1001")
    assert subscription["plan"]["price"] == money("20.00")
    assert subscription["eligibleOffers"][0]["price"] == money("8.00")
    assert quote(client, ALICE_CHANGE).get_json()["newPrice"] == money("28.00")


def test_price_changes_stay_in_their_own_sandbox(client: FlaskClient, key_file: Path) -> None:
    set_price(client, offerId="OFFER-SPORTS", price="9.00")
    other = create_app(Settings(signing_key_file=key_file)).test_client()
    assert get_subscription(other, "SUB-1001")["eligibleOffers"][0]["price"] == money("8.00")


@pytest.mark.parametrize(
    "body",
    [
        {"offerId": "OFFER-NOPE", "price": "9.00"},
        {"planId": "PLAN-NOPE", "price": "9.00"},
        {"offerId": "OFFER-SPORTS", "planId": "PLAN-STANDARD", "price": "9.00"},
        {"price": "9.00"},
        {"offerId": 7, "price": "9.00"},
        {"offerId": "OFFER-SPORTS"},
        {"offerId": "OFFER-SPORTS", "price": 9},
        {"offerId": "OFFER-SPORTS", "price": "-1.00"},
        {"offerId": "OFFER-SPORTS", "price": "9.001"},
        {"offerId": "OFFER-SPORTS", "price": "9,00"},
        {"offerId": "OFFER-SPORTS", "price": "1e3"},
        {"offerId": "OFFER-SPORTS", "price": ""},
        ["OFFER-SPORTS", "9.00"],
        None,
    ],
)
def test_bad_price_changes_are_refused(client: FlaskClient, body: Any) -> None:
    response = client.post("/_sandbox/prices", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert response.get_json()["message"]
    assert get_subscription(client, "SUB-1001")["recurringPrice"] == money("24.00")
    assert get_subscription(client, "SUB-1001")["eligibleOffers"][0]["price"] == money("8.00")


@pytest.mark.parametrize("name", ["quoteId", "expectedPrice"])
def test_order_needs_its_quote_and_agreed_price(client: FlaskClient, name: str) -> None:
    body = order_body(client)
    del body[name]
    response = place_order(client, body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("language", [None, "cy"])
def test_answers_match_the_openapi_document(client: FlaskClient, language: str | None) -> None:
    """In English and in Welsh: bodies as the schemas say, language headers as documented."""
    from jsonschema import Draft202012Validator

    document = client.get("/backend/v1/openapi.json").get_json()

    def check(answer: Any, pointer: str) -> None:
        schema = {"$ref": pointer, "components": document["components"]}
        Draft202012Validator(schema).validate(answer)

    def lookup(pointer: str) -> Any:
        node: Any = document
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def check_headers(response: Any, path: str, method: str) -> Any:
        """An answer that names things says in what language, as its documented response does."""
        documented = document["paths"][path][method]["responses"][str(response.status_code)]
        if "$ref" in documented:
            documented = lookup(documented["$ref"])
        declared = {
            name: lookup(header["$ref"]) if "$ref" in header else header
            for name, header in documented.get("headers", {}).items()
        }
        names_things = response.status_code < 300 or response.get_json()["error"] in (
            "pending_change",
            "price_changed",
            "promo_invalid",  # its message is for the customer
        )
        assert ("Content-Language" in response.headers) == names_things
        if names_things:
            assert {"Content-Language", "Vary"} <= set(declared)
            Draft202012Validator(declared["Content-Language"]["schema"]).validate(
                response.headers["Content-Language"]
            )
            assert response.headers["Content-Language"] == (language or "en")
            assert "Accept-Language" in response.headers["Vary"]
        return response.get_json()

    accept = lookup("#/components/parameters/AcceptLanguage")
    assert accept["in"] == "header" and not accept["required"]
    if language is not None:
        Draft202012Validator(accept["schema"]).validate(language)

    schemas = "#/components/schemas"
    conflict = "#/components/responses/OrderConflict/content/application~1json/schema"
    subscription_path = "/subscriptions/{subscriptionId}"
    quotes_path = "/subscriptions/{subscriptionId}/quotes"
    for subscription_id in ("SUB-1001", "SUB-2002"):
        read = client.get(
            f"/backend/v1/subscriptions/{subscription_id}", headers=backend_headers(language)
        )
        check(check_headers(read, subscription_path, "get"), f"{schemas}/Subscription")
    locked = quote(client, ALICE_CHANGE, "SUB-2002", language)
    check(check_headers(locked, quotes_path, "post"), f"{schemas}/PendingChangeError")
    issued = quote(client, ALICE_CHANGE, language=language)
    seen = check_headers(issued, quotes_path, "post")
    check(seen, f"{schemas}/Quote")
    check(order_body(quoteId=seen["quoteId"]), f"{schemas}/OrderRequest")
    # Itemised, with a promotion; a refused code; the code looked up, and refused.
    promoted = check_headers(
        quote(client, {**ALICE_CHANGE, "promoCode": "sportshalf"}, language=language),
        quotes_path,
        "post",
    )
    check(promoted, f"{schemas}/Quote")
    assert [line["kind"] for line in promoted["lines"]] == ["add", "remove", "discount"]
    check(
        order_body(
            quoteId=promoted["quoteId"],
            promoCode="SPORTSHALF",
            expectedDueToday=promoted["dueToday"],
        ),
        f"{schemas}/OrderRequest",
    )
    refused = check_headers(
        quote(client, {"addOffers": ["OFFER-KIDS"], "promoCode": "SPORTSHALF"}, language=language),
        quotes_path,
        "post",
    )
    assert refused["reason"] == "not_applicable"
    quote_refusal = "#/paths/~1subscriptions~1{subscriptionId}~1quotes/post/responses/400"
    check(refused, f"{lookup(quote_refusal)['$ref']}/content/application~1json/schema")
    check(refused, f"{schemas}/PromoInvalidError")
    offer_refusal = check_headers(quote(client, {"addOffers": ["OFFER-HD"]}), quotes_path, "post")
    check(offer_refusal, f"{lookup(quote_refusal)['$ref']}/content/application~1json/schema")
    promotion_path = "/subscriptions/{subscriptionId}/promotions/{code}"
    for code, schema in (("welcome5", "Promotion"), ("EXPIRED", "PromoInvalidError")):
        looked_up = client.get(
            f"/backend/v1/subscriptions/SUB-1001/promotions/{code}",
            headers=backend_headers(language),
        )
        check(check_headers(looked_up, promotion_path, "get"), f"{schemas}/{schema}")
    expire_quotes(client)
    check(check_headers(order_under(client, seen, language=language), "/orders", "post"), conflict)
    set_price(client, offerId="OFFER-SPORTS", price="9.00")
    price_changed = check_headers(order_under(client, seen, language=language), "/orders", "post")
    check(price_changed, conflict)
    check(price_changed, f"{schemas}/PriceChangedError")
    accepted = order_under(client, price_changed["quote"], language=language)
    check(check_headers(accepted, "/orders", "post"), f"{schemas}/Order")
    repeat = order_under(client, price_changed["quote"], language=language)
    check(check_headers(repeat, "/orders", "post"), f"{schemas}/Order")
    again = order_under(client, price_changed["quote"], key="key-2", language=language)
    check(check_headers(again, "/orders", "post"), conflict)


def test_reset_restores_the_demo_data(client: FlaskClient) -> None:
    place_order(client, order_body(client))
    assert client.post("/_sandbox/reset").status_code == 204
    assert get_subscription(client, "SUB-1001")["pendingChange"] is None
    assert client.get("/_sandbox/orders").get_json() == {"orders": []}
    assert client.get("/_sandbox/stats").get_json()["backend"]["getSubscription"] == 1


def test_stats_count_requests_per_endpoint(client: FlaskClient) -> None:
    get_subscription(client, "SUB-1001")
    client.get("/backend/v1/subscriptions/SUB-9999", headers=BACKEND)
    quote(client, {"addOffers": []})
    place_order(client, order_body(client))  # quotes, then orders
    client.post("/recaptcha/api/siteverify", data={"secret": "x", "response": "pass-1"})
    assert client.get("/_sandbox/stats").get_json() == {
        "backend": {"getSubscription": 2, "quote": 2, "order": 1},
        "siteverify": 1,
    }


def test_openapi_document_is_served(client: FlaskClient) -> None:
    response = client.get("/backend/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    assert {"/subscriptions/{subscriptionId}", "/subscriptions/{subscriptionId}/quotes"} <= set(
        document["paths"]
    )
    assert "/orders" in document["paths"]


def test_openapi_document_is_valid(client: FlaskClient) -> None:
    from openapi_spec_validator import validate

    validate(client.get("/backend/v1/openapi.json").get_json())


# --- reCAPTCHA -------------------------------------------------------------------------


def siteverify(
    client: FlaskClient, token: str | None, secret: str = "sandbox-recaptcha-secret"
) -> Any:
    form = {"secret": secret, "remoteip": "203.0.113.9"}
    if token is not None:
        form["response"] = token
    response = client.post("/recaptcha/api/siteverify", data=form)
    assert response.status_code == 200
    return response.get_json()


@pytest.mark.parametrize(("prefix", "score"), [("pass", 0.9), ("bot", 0.1)])
def test_siteverify_scores_by_token_prefix(client: FlaskClient, prefix: str, score: float) -> None:
    result = siteverify(client, f"{prefix}-{secrets.token_hex(8)}")
    assert result["success"] is True
    assert result["score"] == score
    assert result["action"] == "checkout"
    assert result["hostname"] == "localhost"
    assert result["error-codes"] == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result["challenge_ts"])


@pytest.mark.parametrize(
    ("token", "secret", "error"),
    [
        ("garbage-token", "sandbox-recaptcha-secret", "invalid-input-response"),
        (None, "sandbox-recaptcha-secret", "missing-input-response"),
        ("pass-wrong-secret", "not-the-secret", "invalid-input-secret"),
    ],
)
def test_siteverify_failures(
    client: FlaskClient, token: str | None, secret: str, error: str
) -> None:
    assert siteverify(client, token, secret) == {"success": False, "error-codes": [error]}


def test_siteverify_token_verifies_once(client: FlaskClient) -> None:
    token = f"pass-{secrets.token_hex(8)}"
    assert siteverify(client, token)["success"] is True
    assert siteverify(client, token) == {"success": False, "error-codes": ["timeout-or-duplicate"]}
    client.post("/_sandbox/reset")
    assert siteverify(client, token)["success"] is True


def test_siteverify_token_can_name_action_and_hostname(client: FlaskClient) -> None:
    assert siteverify(client, "pass-action-login-abc")["action"] == "login"
    assert siteverify(client, "pass-host-evil-site.example-abc")["hostname"] == "evil-site.example"


def test_widget_script_hands_out_pass_tokens(client: FlaskClient) -> None:
    response = client.get("/recaptcha/api.js?render=site-key")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    script = response.get_data(as_text=True)
    assert "window.grecaptcha" in script
    assert '"pass-"' in script
    assert "ready" in script and "execute" in script
    assert "eval(" not in script


# --- keys and tokens -------------------------------------------------------------------


def decode(client: FlaskClient, token: str) -> Any:
    keys = KeySet.import_key_set(client.get("/oauth/jwks").get_json())
    return jwt.decode(token, keys, algorithms=["RS256"])


def test_jwks_publishes_only_the_public_key(client: FlaskClient, key_file: Path) -> None:
    (key,) = client.get("/oauth/jwks").get_json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] == load_signing_key(key_file).thumbprint()
    assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()


def test_helper_endpoint_mints_verifiable_access_tokens(client: FlaskClient) -> None:
    response = client.post("/_sandbox/token", json={"sub": "alice", "expiresIn": 3600})
    token = decode(client, response.get_json()["access_token"])
    claims = token.claims
    assert token.header["kid"] == client.get("/oauth/jwks").get_json()["keys"][0]["kid"]
    assert claims["iss"] == "http://127.0.0.1:5001"
    assert claims["aud"] == "checkout-api"
    assert claims["sub"] == "alice"
    assert claims["client_id"] == "checkout-dev"
    assert claims["scope"] == "openid profile"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"]
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": "http://127.0.0.1:5001"},
        aud={"essential": True, "value": "checkout-api"},
    ).validate(claims)


def test_helper_endpoint_mints_expired_and_foreign_tokens(client: FlaskClient) -> None:
    body = {"sub": "bob", "expiresIn": -60, "audience": "other", "issuer": "https://evil"}
    token = decode(client, client.post("/_sandbox/token", json=body).get_json()["access_token"])
    assert (token.claims["aud"], token.claims["iss"]) == ("other", "https://evil")
    with pytest.raises(ExpiredTokenError):
        jwt.JWTClaimsRegistry().validate(token.claims)


@pytest.mark.parametrize("body", [{"sub": "mallory"}, {"sub": "alice", "expiresIn": "soon"}, []])
def test_helper_endpoint_refuses_bad_requests(client: FlaskClient, body: Any) -> None:
    assert client.post("/_sandbox/token", json=body).status_code == 400


def test_cli_token_uses_the_server_key(
    client: FlaskClient,
    key_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SANDBOX_SIGNING_KEY_FILE", str(key_file))
    monkeypatch.delenv("SANDBOX_ISSUER", raising=False)
    monkeypatch.delenv("SANDBOX_AUDIENCE", raising=False)
    assert cli_main(["token", "carol", "--expires-in", "120", "--audience", "aud-x"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    claims = decode(client, out.strip()).claims
    assert (claims["sub"], claims["aud"], claims["iss"]) == (
        "carol",
        "aud-x",
        "http://127.0.0.1:5001",
    )
    assert claims["exp"] - claims["iat"] == 120


def test_cli_token_refuses_unknown_customers(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["token", "mallory"]) == 2
    assert "unknown customer" in capsys.readouterr().err


def test_signing_key_file_is_private_stable_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "instance" / "key.json"
    with ThreadPoolExecutor(max_workers=4) as pool:
        keys = list(pool.map(lambda _: load_signing_key(path), range(4)))
    assert len({key.kid for key in keys}) == 1
    assert keys[0].kid == keys[0].thumbprint()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_signing_key(path).kid == keys[0].kid
    assert [p.name for p in path.parent.iterdir()] == ["key.json"]


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "SANDBOX_AUDIENCE": "aud",
        "SANDBOX_ACCESS_TOKEN_TTL": "60",
        "SANDBOX_QUOTE_TTL_SECONDS": "90",
        "SANDBOX_REDIRECT_URIS": "https://a.example/cb https://b.example/cb",
        "SANDBOX_SIGNING_KEY_FILE": str(tmp_path / "k.json"),
    }
    settings = Settings.from_env(env, port=5999)
    assert settings.issuer == "http://127.0.0.1:5999"
    assert settings.audience == "aud"
    assert settings.access_token_ttl == 60
    assert settings.quote_ttl_seconds == 90
    assert settings.redirect_uris == ("https://a.example/cb", "https://b.example/cb")
    assert settings.signing_key_file == tmp_path / "k.json"
    assert Settings.from_env({"SANDBOX_ISSUER": "http://x/"}).issuer == "http://x"
    assert Settings.from_env({"SANDBOX_ISSUER": "http://x"}, issuer="http://y").issuer == "http://y"


# --- OAuth / OpenID --------------------------------------------------------------------


def test_discovery_document(client: FlaskClient) -> None:
    config = client.get("/.well-known/openid-configuration").get_json()
    issuer = "http://127.0.0.1:5001"
    assert config["issuer"] == issuer
    assert config["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert config["token_endpoint"] == f"{issuer}/oauth/token"
    assert config["jwks_uri"] == f"{issuer}/oauth/jwks"
    assert config["userinfo_endpoint"] == f"{issuer}/oauth/userinfo"
    assert config["end_session_endpoint"] == f"{issuer}/oauth/logout"
    assert config["response_types_supported"] == ["code"]
    assert config["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert config["scopes_supported"] == ["openid", "profile", "email"]
    assert config["ui_locales_supported"] == ["en", "cy"]
    assert config["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]


def sign_in(client: FlaskClient, params: dict[str, str], customer: str = "alice") -> Any:
    return client.post("/oauth/authorize", data={**params, "customer": customer})


def exchange(client: FlaskClient, code: str, verifier: str, redirect_uri: str = CALLBACK) -> Any:
    basic = base64.b64encode(":".join(CLIENT).encode()).decode()
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        headers={"Authorization": f"Basic {basic}"},
    )


def code_from(response: Any) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["state"] == ["state-123"]
    return query["code"][0]


def test_sign_in_page_is_accessible_markup(client: FlaskClient) -> None:
    params = authorize_params(Pkce())
    response = client.get("/oauth/authorize", query_string=params)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page
    assert re.search(r"<title>[^<]+</title>", page)
    assert "<main" in page and "<h1>Sign in to Partner TV</h1>" in page
    assert "<legend>Choose a demo customer</legend>" in page
    radios = re.findall(r'<input type="radio" id="([^"]+)"', page)
    assert radios == [
        "customer-alice",
        "customer-bob",
        "customer-carol",
        "customer-dave",
        "customer-erin",
        "customer-olivia",
    ]
    for radio in radios:
        assert f'<label for="{radio}">' in page
    assert re.search(r'id="customer-alice"\s+name="customer"\s+value="alice" checked', page)
    assert page.count("checked") == 1
    assert re.findall(r"<button[^>]*>([^<]*)</button>", page) == ["Sign in"]
    assert "<script" not in page and "style=" not in page
    for name, value in params.items():
        assert f'<input type="hidden" name="{name}" value="{value}">' in page


def test_authorization_code_flow_with_pkce(client: FlaskClient) -> None:
    pkce = Pkce()
    params = authorize_params(pkce)
    code = code_from(sign_in(client, params, "carol"))
    response = exchange(client, code, pkce.verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    tokens = response.get_json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    assert tokens["refresh_token"]

    access = decode(client, tokens["access_token"])
    assert access.header["kid"]
    assert access.claims["sub"] == "carol"
    assert access.claims["aud"] == "checkout-api"
    assert access.claims["exp"] - access.claims["iat"] == 900
    identity = decode(client, tokens["id_token"]).claims
    assert identity["iss"] == "http://127.0.0.1:5001"
    assert identity["aud"] == CLIENT[0]
    assert identity["sub"] == "carol"
    assert identity["name"] == "Carol Example"
    assert identity["nonce"] == params["nonce"]

    userinfo = client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.get_json() == {"sub": "carol", "name": "Carol Example"}
    # A code works once only.
    assert exchange(client, code, pkce.verifier).get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("customer", "profile"),
    [("erin", {"email": "erin@example.com"}), ("dave", {})],
)
def test_some_accounts_carry_no_name_claim(
    client: FlaskClient, customer: str, profile: dict[str, str]
) -> None:
    """Providers differ: erin's account sends only an email address, dave's nothing."""
    pkce = Pkce()
    params = authorize_params(pkce, scope="openid profile email")
    tokens = exchange(
        client, code_from(sign_in(client, params, customer)), pkce.verifier
    ).get_json()
    identity = decode(client, tokens["id_token"]).claims
    assert "name" not in identity
    assert {k: identity[k] for k in ("email",) if k in identity} == profile
    userinfo = client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.get_json() == {"sub": customer, **profile}


def test_refresh_token_grant_rotates(client: FlaskClient) -> None:
    pkce = Pkce()
    tokens = exchange(client, code_from(sign_in(client, authorize_params(pkce))), pkce.verifier)
    refresh = tokens.get_json()["refresh_token"]
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "client_id": CLIENT[0],
        "client_secret": CLIENT[1],
    }
    renewed = client.post("/oauth/token", data=form)
    assert renewed.status_code == 200, renewed.get_data(as_text=True)
    body = renewed.get_json()
    assert decode(client, body["access_token"]).claims["sub"] == "alice"
    assert body["refresh_token"] != refresh
    assert client.post("/oauth/token", data=form).get_json()["error"] == "invalid_grant"


def test_token_endpoint_checks_the_verifier_and_the_secret(client: FlaskClient) -> None:
    pkce = Pkce()
    code = code_from(sign_in(client, authorize_params(pkce)))
    assert exchange(client, code, Pkce().verifier).get_json()["error"] == "invalid_grant"
    wrong_secret = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
              "code_verifier": pkce.verifier, "client_id": CLIENT[0], "client_secret": "nope"},
    )  # fmt: skip
    assert wrong_secret.status_code == 401


@pytest.mark.parametrize(
    "overrides",
    [{"code_challenge": ""}, {"code_challenge_method": "plain"}, {"code_challenge_method": ""}],
)
def test_pkce_s256_is_required(client: FlaskClient, overrides: dict[str, str]) -> None:
    params = authorize_params(Pkce(), **overrides)
    response = client.get("/oauth/authorize", query_string=params)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    assert parse_qs(location.query)["error"] == ["invalid_request"]


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://localhost:8123/auth/callback",
        "http://127.0.0.1/auth/callback",
    ],
)
def test_any_local_port_is_a_valid_callback(client: FlaskClient, redirect_uri: str) -> None:
    pkce = Pkce()
    response = sign_in(client, authorize_params(pkce, redirect_uri=redirect_uri))
    assert response.headers["Location"].startswith(redirect_uri + "?")
    assert exchange(client, code_from(response), pkce.verifier, redirect_uri).status_code == 200


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "https://evil.example/auth/callback"},
        {"redirect_uri": "http://127.0.0.1:5000/other"},
        {"redirect_uri": "http://127.0.0.1:5000/auth/callback?x=1"},
        {"redirect_uri": ""},
        {"client_id": "someone-else"},
    ],
)
def test_bad_client_or_redirect_shows_an_error_page(
    client: FlaskClient, overrides: dict[str, str]
) -> None:
    params = authorize_params(Pkce(), **overrides)
    for response in (
        client.get("/oauth/authorize", query_string=params),
        sign_in(client, params),
    ):
        assert response.status_code == 400
        assert "Location" not in response.headers
        assert "Sign-in request rejected" in response.get_data(as_text=True)


def test_configured_redirect_uris_are_allowed(key_file: Path) -> None:
    app = create_app(
        Settings(signing_key_file=key_file, redirect_uris=("https://checkout.example/cb",))
    )
    response = sign_in(
        app.test_client(), authorize_params(Pkce(), redirect_uri="https://checkout.example/cb")
    )
    assert response.headers["Location"].startswith("https://checkout.example/cb?code=")


def test_sign_in_needs_a_demo_customer(client: FlaskClient) -> None:
    response = sign_in(client, authorize_params(Pkce()), customer="mallory")
    assert response.status_code == 400


def test_userinfo_requires_a_valid_token(client: FlaskClient) -> None:
    expired = client.post("/_sandbox/token", json={"sub": "alice", "expiresIn": -5})
    for header in ("", "Bearer junk", f"Bearer {expired.get_json()['access_token']}"):
        response = client.get("/oauth/userinfo", headers={"Authorization": header})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_logout_redirects_only_to_local_origins(client: FlaskClient) -> None:
    target = "http://localhost:5000/signed-out"
    response = client.get(
        "/oauth/logout", query_string={"post_logout_redirect_uri": target, "state": "s1"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{target}?state=s1"
    foreign = client.get(
        "/oauth/logout", query_string={"post_logout_redirect_uri": "https://evil.example/"}
    )
    assert foreign.status_code == 200
    assert "You are signed out" in foreign.get_data(as_text=True)


# --- faults ----------------------------------------------------------------------------


def add_fault(client: FlaskClient, **body: Any) -> None:
    assert client.post("/_sandbox/faults", json=body).status_code == 201


def test_error_fault_answers_500_once(client: FlaskClient) -> None:
    add_fault(client, mode="error")
    response = client.get("/backend/v1/subscriptions/SUB-1001", headers=BACKEND)
    assert response.status_code == 500
    assert response.is_json
    assert get_subscription(client, "SUB-1001")["id"] == "SUB-1001"


def test_faults_are_consumed_in_order(client: FlaskClient) -> None:
    add_fault(client, mode="malformed")
    add_fault(client, mode="wrong_type")
    add_fault(client, mode="wrong_type")
    garbage = client.get("/backend/v1/subscriptions/SUB-1001", headers=BACKEND)
    assert (garbage.status_code, garbage.mimetype) == (200, "text/html")
    with pytest.raises(ValueError):
        json.loads(garbage.get_data())
    wrong = client.get("/backend/v1/subscriptions/SUB-1001", headers=BACKEND)
    assert wrong.status_code == 200 and wrong.get_json() == {"id": 42, "plan": "x"}
    wrong_post = quote(client, {"addOffers": []})
    assert wrong_post.status_code == 200 and isinstance(wrong_post.get_json(), list)
    assert client.get("/_sandbox/faults").get_json() == {"faults": []}
    assert client.get("/_sandbox/stats").get_json()["backend"] == {
        "getSubscription": 2,
        "quote": 1,
        "order": 0,
    }


def test_fault_applies_only_to_its_path(client: FlaskClient) -> None:
    add_fault(client, mode="error", path="/backend/v1/orders")
    assert get_subscription(client, "SUB-1001")
    body = order_body(client)
    assert place_order(client, body).status_code == 500
    assert place_order(client, body).status_code == 201


def test_count_zero_lasts_until_cleared(client: FlaskClient) -> None:
    add_fault(client, mode="error", count=0, path="/")
    for _ in range(3):
        assert client.get("/oauth/jwks").status_code == 500
    # Control endpoints are never faulted, so the test can always clean up.
    assert client.delete("/_sandbox/faults").status_code == 204
    assert client.get("/oauth/jwks").status_code == 200


def test_slow_fault_delays_then_answers(client: FlaskClient) -> None:
    add_fault(client, mode="slow", delaySeconds=0.3)
    started = time.monotonic()
    assert get_subscription(client, "SUB-1001")
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "explode"},
        {"mode": "error", "count": -1},
        {"mode": "slow", "delaySeconds": "3"},
        {"mode": "error", "path": "backend"},
        None,
    ],
)
def test_invalid_faults_are_refused(client: FlaskClient, body: Any) -> None:
    assert client.post("/_sandbox/faults", json=body).status_code == 400


def test_drop_fault_closes_the_connection(client: FlaskClient, live_url: str) -> None:
    add_fault(client, mode="drop")
    url = f"{live_url}/backend/v1/subscriptions/SUB-1001"
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, headers=BACKEND, timeout=5)
    assert requests.get(url, headers=BACKEND, timeout=5).status_code == 200


def test_lose_answer_records_the_order_but_drops_the_reply(
    client: FlaskClient, live_url: str
) -> None:
    add_fault(client, mode="lose_answer", path="/backend/v1/orders")
    headers = {**BACKEND, "Idempotency-Key": "lost-1"}
    body = order_body(client)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{live_url}/backend/v1/orders", json=body, headers=headers, timeout=5)
    (record,) = client.get("/_sandbox/orders").get_json()["orders"]
    retry = requests.post(f"{live_url}/backend/v1/orders", json=body, headers=headers, timeout=5)
    assert retry.status_code == 200
    assert retry.json()["orderId"] == record["orderId"]
    assert client.get("/_sandbox/orders").get_json()["orders"][0]["submissions"] == 2
