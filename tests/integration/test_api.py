"""Every status row of CONTRACT §3, over HTTP, against the app and sandbox as processes."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import Sandbox
from tests.integration.conftest import assert_problem

TRACKING = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "autumn"}


# -- POST ------------------------------------------------------------------------------


def test_create_returns_the_basket_and_sets_the_landing_cookie(partner):
    response = partner("alice").create(referrer="https://partner.example/deals", tracking=TRACKING)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"] == "Checkout basket created successfully"
    basket = body["basket"]
    assert basket["subscriptionId"] == "SUB-1001"
    assert basket["status"] == "open" and basket["checkoutCompleted"] is False
    assert basket["currentPlan"]["id"]
    assert [o["id"] for o in basket["activeOffers"]] == ["OFFER-HD"]
    assert {o["id"] for o in basket["availableOffers"]} == {
        "OFFER-SPORTS",
        "OFFER-KIDS",
        "OFFER-CINEMA",
    }
    assert basket["totals"]["current"] == {"amount": "24.00", "currency": "GBP"}
    assert basket["totals"]["new"] == basket["totals"]["current"]
    assert basket["tracking"] == {"referrer": "https://partner.example/deals", "params": TRACKING}
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("landing_state=") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    # The id, the time and a signature: readable, but any change to it is no basket.
    value = cookie.split(";")[0].removeprefix("landing_state=")
    assert value.startswith(basket["basketId"] + ".") and value.count(".") == 2
    assert len(basket["basketId"]) >= 22  # at least 128 random bits


def test_create_takes_the_referer_header_when_the_body_has_none(partner):
    alice = partner("alice")
    response = alice.http.post(
        alice.base_url + "/api/v1/checkout/basket",
        json={"subscriptionId": "SUB-1001"},
        headers=alice.headers(Referer="https://mail.example/campaign"),
    )
    assert response.status_code == 201
    assert response.json()["basket"]["tracking"]["referrer"] == "https://mail.example/campaign"


def test_tracking_is_bounded(partner):
    noisy = {f"utm_k{i}": "v" * 1000 for i in range(15)}
    noisy.update({"evil": "<script>", "gclid": "abc\r\nSet-Cookie: x=1", "ref": "mail"})
    response = partner("alice").create(tracking=noisy)
    assert response.status_code == 201, response.text
    params = response.json()["basket"]["tracking"]["params"]
    assert len(params) <= 20
    assert "evil" not in params
    assert params["gclid"] == "abcSet-Cookie: x=1"
    assert all(len(v) <= 256 for v in params.values())


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"subscriptionId": ""},
        {"subscriptionId": 1001},
        {"subscriptionId": "SUB-1001", "tracking": ["utm_source"]},
        {"subscriptionId": "SUB-1001", "tracking": {"utm_source": 5}},
        {"subscriptionId": "SUB-1001", "referrer": "javascript:alert(1)"},
        {"subscriptionId": "../admin"},
    ],
)
def test_create_rejects_an_invalid_body(partner, body):
    alice = partner("alice")
    response = alice.http.post(
        alice.base_url + "/api/v1/checkout/basket", json=body, headers=alice.headers()
    )
    problem = assert_problem(response, 400, "invalid_request")
    assert problem["detail"] == "Invalid request body or missing required fields"
    assert "Set-Cookie" not in response.headers


def test_create_rejects_a_body_that_is_not_json(partner):
    alice = partner("alice")
    response = alice.http.post(
        alice.base_url + "/api/v1/checkout/basket",
        data="subscriptionId=SUB-1001",
        headers={**alice.headers(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "kind", [None, "bot", "fail", "pass-action-login", "pass-host-evil.example"]
)
def test_create_refuses_a_failed_bot_check(partner, kind):
    response = partner("alice").create(recaptcha=kind)
    assert_problem(response, 400, "recaptcha_failed")


def test_a_recaptcha_token_is_single_use(partner):
    alice = partner("alice")
    headers = alice.headers()
    url = alice.base_url + "/api/v1/checkout/basket"
    first = alice.http.post(url, json={"subscriptionId": "SUB-1001"}, headers=headers)
    assert first.status_code == 201
    replay = alice.http.post(url, json={"subscriptionId": "SUB-1001"}, headers=headers)
    assert_problem(replay, 400, "recaptcha_failed")


def test_create_refuses_an_unknown_or_foreign_subscription(partner):
    assert_problem(partner("alice").create("SUB-9999"), 404, "subscription_not_found")
    foreign = partner("alice").create("SUB-3003")  # carol's
    problem = assert_problem(foreign, 404, "subscription_not_found")
    assert problem["detail"] == "Subscription not found"


def test_create_refuses_a_subscription_with_a_pending_change(partner):
    problem = assert_problem(partner("bob").create("SUB-2002"), 409, "subscription_locked")
    assert problem["detail"] == "Subscription has pending change, checkout locked"
    assert problem["pendingChange"]["effectiveDate"]


def test_a_body_over_the_limit_is_refused(partner):
    response = partner("alice").create(tracking={"utm_source": "x" * 40_000})
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "The request body is too large"  # as described


# -- 401 on every operation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "token_options",
    [
        {"expires_in": -120},
        {"issuer": "https://impostor.example"},
        {"audience": "someone-else"},
    ],
    ids=["expired", "wrong-issuer", "wrong-audience"],
)
def test_bad_tokens_are_refused_on_every_operation(partner, token_options):
    client = partner("alice", **token_options)
    for response in (client.get(), client.create(), client.update({})):
        problem = assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert problem["detail"].startswith("Unauthorized")


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not.a.jwt", "Basic YWxpY2U6eA=="])
def test_missing_or_malformed_authorization_is_refused(partner, header):
    client = partner(None)
    extra = {"Authorization": header} if header else {}
    response = client.http.get(client.base_url + "/api/v1/checkout/basket", headers=extra)
    assert_problem(response, 401, "unauthorized")


# -- GET ---------------------------------------------------------------------------------


def test_get_returns_the_basket_from_the_landing_cookie(partner):
    alice = partner("alice")
    created = alice.create().json()["basket"]
    response = alice.get()
    assert response.status_code == 200
    assert response.json()["message"] == "Basket retrieved successfully"
    assert response.json()["basket"]["basketId"] == created["basketId"]
    assert response.json()["basket"]["checkoutCompleted"] is False


def test_get_without_a_basket_is_404(partner):
    problem = assert_problem(partner("alice").get(), 404, "basket_not_found")
    assert problem["detail"] == "No basket found in landing state"


def test_a_tampered_or_foreign_cookie_means_no_basket(partner):
    alice = partner("alice")
    alice.create()
    good = alice.http.cookies["landing_state"]
    for bad in (good[:-2] + "xx", "garbage", good + "." + good, "a" * 3000):
        alice.http.cookies.clear()
        alice.http.cookies.set("landing_state", bad)
        assert_problem(alice.get(), 404, "basket_not_found")
    # Signed with another secret: well formed, but not ours.
    from itsdangerous import TimestampSigner

    forged = TimestampSigner("another-secret", salt="checkout.landing-state")
    alice.http.cookies.clear()
    basket_id = alice.create().json()["basket"]["basketId"]
    alice.http.cookies.clear()
    alice.http.cookies.set("landing_state", forged.sign(basket_id).decode())
    assert_problem(alice.get(), 404, "basket_not_found")


def test_another_customers_token_with_the_cookie_sees_no_basket(partner):
    alice = partner("alice")
    alice.create()
    mallory = partner("carol")
    mallory.http.cookies.update(alice.http.cookies)
    assert_problem(mallory.get(), 404, "basket_not_found")
    assert_problem(mallory.update({"addOffers": ["OFFER-KIDS"]}), 404, "basket_not_found")


# -- PUT ---------------------------------------------------------------------------------


def test_update_adds_and_removes_offers_with_the_backends_prices(partner):
    alice = partner("alice")
    alice.create()
    response = alice.update({"removeOffers": ["OFFER-HD"], "addOffers": ["OFFER-SPORTS"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Basket updated successfully"
    basket = body["basket"]
    assert [o["id"] for o in basket["addOffers"]] == ["OFFER-SPORTS"]
    assert [o["id"] for o in basket["removeOffers"]] == ["OFFER-HD"]
    assert basket["totals"]["current"]["amount"] == "24.00"
    assert basket["totals"]["new"]["amount"] == "28.00"
    assert basket["checkoutCompleted"] is False


def test_adding_a_second_offer_replaces_the_first(partner):
    alice = partner("alice")
    alice.create()
    alice.update({"addOffers": ["OFFER-SPORTS"]})
    basket = alice.update({"addOffers": ["OFFER-KIDS"]}).json()["basket"]
    assert [o["id"] for o in basket["addOffers"]] == ["OFFER-KIDS"]
    assert basket["totals"]["new"]["amount"] == "27.00"


def test_update_refuses_more_than_one_offer_to_add(partner):
    alice = partner("alice")
    alice.create()
    response = alice.update({"addOffers": ["OFFER-SPORTS", "OFFER-KIDS"]})
    problem = assert_problem(response, 400, "multiple_add_offers")
    assert problem["detail"] == "Invalid request or multiple add offers provided"


@pytest.mark.parametrize(
    "body",
    [
        {"addOffers": ["OFFER-NOPE"]},
        {"removeOffers": ["OFFER-SPORTS"]},
        {"addOffers": "OFFER-SPORTS"},
        {"complete": "yes"},
        {"addOffers": ["OFFER-KIDS"], "removeOffers": ["OFFER-KIDS"]},
        ["addOffers"],
    ],
)
def test_update_refuses_invalid_changes_and_changes_nothing(partner, body):
    alice = partner("alice")
    before = alice.create().json()["basket"]
    problem = assert_problem(alice.update(body), 400, "invalid_request")
    assert problem["detail"] == "Invalid request or multiple add offers provided"
    after = alice.get().json()["basket"]
    assert (after["addOffers"], after["removeOffers"]) == (before["addOffers"], [])


def test_update_refuses_a_failed_bot_check(partner):
    alice = partner("alice")
    alice.create()
    assert_problem(alice.update({"addOffers": ["OFFER-KIDS"]}, "bot"), 400, "recaptcha_failed")
    assert alice.get().json()["basket"]["addOffers"] == []


def test_update_without_a_basket_is_404(partner):
    problem = assert_problem(partner("alice").update({}), 404, "basket_not_found")
    assert problem["detail"] == "Basket not found in landing state"


def test_complete_submits_one_order_with_the_tracking(partner, sandbox: Sandbox):
    alice = partner("alice")
    alice.create(referrer="https://partner.example/deals", tracking=TRACKING)
    alice.update({"removeOffers": ["OFFER-HD"], "addOffers": ["OFFER-SPORTS"]})
    response = alice.update({"complete": True})
    assert response.status_code == 200, response.text
    basket = response.json()["basket"]
    assert basket["checkoutCompleted"] is True and basket["status"] == "completed"
    assert basket["order"]["orderId"].startswith("ORD-")
    assert basket["order"]["effectiveDate"]
    (order,) = sandbox.orders()
    assert order["orderId"] == basket["order"]["orderId"]
    assert order["tracking"] == TRACKING
    assert order["referrer"] == "https://partner.example/deals"
    assert [offer["id"] for offer in order["addOffers"]] == ["OFFER-SPORTS"]
    # A retry of the completion answers the same order and submits nothing more.
    again = alice.update({"complete": True})
    assert again.json()["basket"]["order"] == basket["order"]
    assert len(sandbox.orders()) == 1
    assert alice.get().json()["basket"]["checkoutCompleted"] is True


def test_a_completed_basket_refuses_changes(partner):
    alice = partner("alice")
    alice.create()
    alice.update({"addOffers": ["OFFER-KIDS"], "complete": True})
    problem = assert_problem(alice.update({"addOffers": ["OFFER-SPORTS"]}), 409, "basket_completed")
    assert problem["status"] == 409


def test_completing_an_empty_basket_is_refused(partner, sandbox: Sandbox):
    alice = partner("alice")
    alice.create()
    assert_problem(alice.update({"complete": True}), 400, "invalid_request")
    assert sandbox.orders() == []


def test_a_pending_change_since_creation_locks_the_basket(partner):
    first, second = partner("alice"), partner("alice")
    first.create()
    second.create()
    assert second.update({"addOffers": ["OFFER-KIDS"], "complete": True}).status_code == 200
    response = first.update({"addOffers": ["OFFER-SPORTS"]})
    assert_problem(response, 409, "subscription_locked")


def test_twelve_parallel_completions_give_one_order(partner, sandbox: Sandbox):
    alice = partner("alice")
    alice.create()
    alice.update({"addOffers": ["OFFER-CINEMA"]})
    results: list[dict] = []

    def complete() -> None:
        response = alice.update({"complete": True})
        results.append({"status": response.status_code, "body": response.json()})

    threads = [threading.Thread(target=complete) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["status"] for r in results] == [200] * 12, results
    order_ids = {r["body"]["basket"]["order"]["orderId"] for r in results}
    assert len(order_ids) == 1
    (order,) = sandbox.orders()
    assert order["submissions"] == 1


def test_parallel_updates_lose_no_change(partner):
    alice = partner("alice")
    alice.create()
    bodies = [{"addOffers": ["OFFER-SPORTS"]}, {"removeOffers": ["OFFER-HD"]}]
    threads = [threading.Thread(target=alice.update, args=(b,)) for b in bodies * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    basket = alice.get().json()["basket"]
    assert [o["id"] for o in basket["addOffers"]] == ["OFFER-SPORTS"]
    assert [o["id"] for o in basket["removeOffers"]] == ["OFFER-HD"]


# -- 502: the backend answers unexpectedly ---------------------------------------------------


@pytest.mark.parametrize("mode", ["error", "malformed", "wrong_type", "drop"])
def test_create_maps_a_broken_backend_to_502(partner, sandbox: Sandbox, mode):
    sandbox.fault(mode, count=5)
    response = partner("alice").create()
    problem = assert_problem(response, 502, "upstream_error")
    assert problem["detail"].startswith("Bad Gateway")
    assert response.headers["Retry-After"]


@pytest.mark.parametrize("mode", ["error", "malformed", "drop"])
def test_update_maps_a_broken_backend_to_502_and_changes_nothing(partner, sandbox: Sandbox, mode):
    alice = partner("alice")
    alice.create()
    sandbox.fault(mode, count=1, path="/backend/v1/subscriptions/SUB-1001/quotes")
    assert_problem(alice.update({"addOffers": ["OFFER-KIDS"]}), 502, "upstream_error")
    assert alice.get().json()["basket"]["addOffers"] == []


def test_a_lost_order_answer_is_found_again_on_retry(partner, sandbox: Sandbox):
    alice = partner("alice")
    alice.create()
    alice.update({"addOffers": ["OFFER-KIDS"]})
    sandbox.fault("lose_answer", count=1, path="/backend/v1/orders")
    assert_problem(alice.update({"complete": True}), 502, "upstream_error")
    retry = alice.update({"complete": True})
    assert retry.status_code == 200, retry.text
    (order,) = sandbox.orders()
    assert retry.json()["basket"]["order"]["orderId"] == order["orderId"]


# -- cross-cutting ---------------------------------------------------------------------------


def test_request_ids_are_echoed_when_sane_and_made_otherwise(partner):
    alice = partner("alice")
    echoed = alice.get(**{"X-Request-ID": "partner-req-12345"})
    assert echoed.headers["X-Request-ID"] == "partner-req-12345"
    made = alice.get(**{"X-Request-ID": "bad id\twith <markup>"})
    assert made.headers["X-Request-ID"] != "bad id\twith <markup>"
    assert len(made.headers["X-Request-ID"]) == 32


def test_the_openapi_description_is_served(app_server):
    import requests

    document = requests.get(app_server.url + "/api/v1/openapi.json", timeout=5).json()
    assert document["openapi"].startswith("3.1")
    operations = document["paths"]["/api/v1/checkout/basket"]
    assert set(operations) == {"get", "post", "put"}
