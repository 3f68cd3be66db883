"""Campaign promotions, itemised quotes and what is due today, with the sandbox's test clock.

In process, through the sandbox app's test client, as tests/unit/sandbox/test_sandbox.py does.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sandbox.data import PROMO_REASONS, first_of_next_month
from sandbox.state import EXTENSION_KEY as STATE_EXTENSION
from sandbox.state import SandboxState
from sandbox.subscriptions import prorate
from tests.unit.sandbox.backend_calls import (
    ALICE_CHANGE,
    BACKEND,
    alice_order,
    backend_headers,
    money,
    place_order,
    quote,
)

pytestmark = pytest.mark.unit

#: a Saturday in February 2027, two days before the next bill
DAY = "2027-02-27"
NEXT_BILL = "2027-03-01"


def quoted(client: FlaskClient, body: Any, language: str | None = None) -> dict[str, Any]:
    response = quote(client, body, language=language)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


def look_up(
    client: FlaskClient, code: str, subscription_id: str = "SUB-1001", language: str | None = None
) -> Any:
    return client.get(
        f"/backend/v1/subscriptions/{subscription_id}/promotions/{code}",
        headers=backend_headers(language),
    )


def order(
    client: FlaskClient,
    issued: dict[str, Any],
    key: str = "key-1",
    language: str | None = None,
    **overrides: Any,
) -> Any:
    """Alice's order of ``ALICE_CHANGE`` under ``issued``, agreeing to its prices and code."""
    agreed = {"expectedDueToday": issued["dueToday"], "promoCode": issued["promoCode"]}
    return place_order(client, alice_order(issued, **{**agreed, **overrides}), key, language)


def set_today(client: FlaskClient, day: str) -> None:
    response = client.put("/_sandbox/today", json={"date": day})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"today": day, "fixed": True}


def expire(client: FlaskClient, code: str) -> Any:
    return client.post("/_sandbox/promotions/expire", json={"code": code})


def state(app: Flask) -> SandboxState:
    found: SandboxState = app.extensions[STATE_EXTENSION]
    return found


def amount(value: dict[str, str]) -> Decimal:
    assert value["currency"] == "GBP"
    return Decimal(value["amount"])


def line(
    kind: str,
    offer_id: str | None,
    description: str,
    value: str,
    starts_on: str,
    months: int | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "offerId": offer_id,
        "description": description,
        "amount": money(value),
        "recurring": True,
        "months": months,
        "startsOn": starts_on,
    }


# --- the codes in a quote --------------------------------------------------------------


def test_sportshalf_with_sports_added_and_hd_removed(client: FlaskClient) -> None:
    set_today(client, DAY)
    body = quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"})
    assert body["promoCode"] == "SPORTSHALF"
    assert body["lines"] == [
        line("add", "OFFER-SPORTS", "Sports", "8.00", DAY),
        line("remove", "OFFER-HD", "HD Quality", "-4.00", NEXT_BILL),
        line("discount", "OFFER-SPORTS", "Sports at half price for 3 months", "-4.00", DAY, 3),
    ]
    # Sports and its discount start today: (8.00 - 4.00) x 2 days of February's 28.
    assert body["dueToday"] == money("0.29")
    assert body["currentPrice"] == money("24.00")
    assert body["newPrice"] == money("24.00")
    assert body["effectiveDate"] == NEXT_BILL
    without = quoted(client, ALICE_CHANGE)
    assert without["promoCode"] is None
    assert [line["kind"] for line in without["lines"]] == ["add", "remove"]
    assert without["dueToday"] == money("0.57")
    assert amount(body["newPrice"]) < amount(without["newPrice"]) == Decimal("28.00")


def test_sportshalf_today_by_the_real_clock(client: FlaskClient) -> None:
    today, next_bill = date.today().isoformat(), first_of_next_month().isoformat()
    body = quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"})
    add, remove, discount = body["lines"]
    assert (add["kind"], add["startsOn"], add["amount"]) == ("add", today, money("8.00"))
    assert (remove["kind"], remove["startsOn"]) == ("remove", next_bill)
    assert (discount["kind"], discount["startsOn"]) == ("discount", today)
    assert amount(discount["amount"]) < 0
    assert amount(body["dueToday"]) > 0
    assert amount(body["newPrice"]) < amount(quoted(client, ALICE_CHANGE)["newPrice"])


def test_sportshalf_on_sports_already_active_starts_at_the_next_bill(
    client: FlaskClient, app: Flask
) -> None:
    state(app).subscriptions.subscriptions["SUB-1001"].active.append("OFFER-SPORTS")
    set_today(client, DAY)
    body = quoted(client, {"removeOffers": ["OFFER-HD"], "promoCode": "sportshalf"})
    assert body["lines"] == [
        line("remove", "OFFER-HD", "HD Quality", "-4.00", NEXT_BILL),
        line(
            "discount", "OFFER-SPORTS", "Sports at half price for 3 months", "-4.00", NEXT_BILL, 3
        ),
    ]
    assert body["dueToday"] == money("0.00")
    assert (body["currentPrice"], body["newPrice"]) == (money("32.00"), money("24.00"))


def test_welcome5_takes_five_pounds_off_the_next_bill(client: FlaskClient) -> None:
    set_today(client, DAY)
    body = quoted(client, {"addOffers": ["OFFER-KIDS"], "promoCode": "WELCOME5"})
    assert body["promoCode"] == "WELCOME5"
    assert body["lines"] == [
        line("add", "OFFER-KIDS", "Kids", "3.00", DAY),
        line("discount", None, "£5 off your monthly price for one month", "-5.00", NEXT_BILL, 1),
    ]
    # Only Kids starts today: 3.00 x 2 / 28; the fiver comes off the next bill.
    assert body["dueToday"] == money("0.21")
    assert body["newPrice"] == money("22.00")


def test_welcome5_goes_with_any_change(client: FlaskClient) -> None:
    body = quoted(client, {"removeOffers": ["OFFER-HD"], "promoCode": "WELCOME5"})
    assert body["newPrice"] == money("15.00")
    assert body["dueToday"] == money("0.00")


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        ({**ALICE_CHANGE, "promoCode": "EXPIRED"}, "expired", "This code has expired."),
        ({**ALICE_CHANGE, "promoCode": "NOSUCHCODE"}, "unknown", "We don't recognise this code."),
        ({**ALICE_CHANGE, "promoCode": "  "}, "unknown", "We don't recognise this code."),
        (
            {"addOffers": ["OFFER-KIDS"], "promoCode": "SPORTSHALF"},
            "not_applicable",
            "This code needs Sports in your subscription.",
        ),
        (
            {"removeOffers": ["OFFER-HD"], "promoCode": "SportsHalf"},
            "not_applicable",
            "This code needs Sports in your subscription.",
        ),
    ],
)
def test_refused_codes(client: FlaskClient, body: Any, reason: str, message: str) -> None:
    response = quote(client, body)
    assert response.status_code == 400
    assert response.get_json() == {"error": "promo_invalid", "message": message, "reason": reason}
    assert response.headers["Content-Language"] == "en"
    assert client.get("/_sandbox/stats").get_json()["backend"]["quote"] == 1


def test_sportshalf_without_sports_after_the_change_is_not_applicable(
    client: FlaskClient, app: Flask
) -> None:
    """Active Sports being removed leaves nothing for the code to discount."""
    state(app).subscriptions.subscriptions["SUB-1001"].active.append("OFFER-SPORTS")
    body = {"removeOffers": ["OFFER-SPORTS"], "promoCode": "SPORTSHALF"}
    assert quote(client, body).get_json()["reason"] == "not_applicable"
    assert quoted(client, {**body, "removeOffers": []})["promoCode"] == "SPORTSHALF"


def test_offer_refusals_come_before_the_code(client: FlaskClient) -> None:
    response = quote(client, {"addOffers": ["OFFER-HD"], "promoCode": "NOSUCHCODE"})
    assert (response.status_code, response.get_json()["error"]) == (400, "offer_not_eligible")
    locked = quote(client, {"addOffers": ["OFFER-SPORTS"], "promoCode": "NOPE"}, "SUB-2002")
    assert (locked.status_code, locked.get_json()["error"]) == (409, "pending_change")


@pytest.mark.parametrize("code", ["sportshalf", " SportsHalf ", "\tSPORTSHALF\n", "sPoRtShAlF"])
def test_codes_match_whatever_their_case_and_spaces(client: FlaskClient, code: str) -> None:
    assert quoted(client, {**ALICE_CHANGE, "promoCode": code})["promoCode"] == "SPORTSHALF"
    found = look_up(client, code.strip() if "\t" in code else code.replace(" ", "%20"))
    assert found.status_code == 200
    assert found.get_json()["code"] == "SPORTSHALF"


@pytest.mark.parametrize("body", [{}, {"promoCode": None}])
def test_no_code_is_no_discount(client: FlaskClient, body: dict[str, Any]) -> None:
    answer = quoted(client, {**ALICE_CHANGE, **body})
    assert answer["promoCode"] is None
    assert [line["kind"] for line in answer["lines"]] == ["add", "remove"]
    assert answer["newPrice"] == money("28.00")


@pytest.mark.parametrize("code", [5, ["SPORTSHALF"], {"code": "SPORTSHALF"}, True])
def test_a_code_must_be_a_string(client: FlaskClient, code: Any) -> None:
    response = quote(client, {**ALICE_CHANGE, "promoCode": code})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


# --- the lines add up ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        ALICE_CHANGE,
        {**ALICE_CHANGE, "promoCode": "SPORTSHALF"},
        {**ALICE_CHANGE, "promoCode": "WELCOME5"},
        {"addOffers": ["OFFER-CINEMA"], "removeOffers": ["OFFER-HD"], "promoCode": "welcome5"},
        {"addOffers": ["OFFER-SPORTS"], "promoCode": "SPORTSHALF"},
        {"removeOffers": ["OFFER-HD"]},
        {},
    ],
)
@pytest.mark.parametrize("day", [DAY, "2027-03-01", "2027-12-31", "2028-02-29"])
def test_lines_add_up_to_the_new_price(client: FlaskClient, body: Any, day: str) -> None:
    set_today(client, day)
    answer = quoted(client, body)
    effective = answer["effectiveDate"]
    assert effective == first_of_next_month(date.fromisoformat(day)).isoformat()
    adds = [amount(line["amount"]) for line in answer["lines"] if line["kind"] == "add"]
    removes = [amount(line["amount"]) for line in answer["lines"] if line["kind"] == "remove"]
    discounts = [
        amount(line["amount"])
        for line in answer["lines"]
        if line["kind"] == "discount" and line["startsOn"] <= effective
    ]
    assert all(a > 0 for a in adds) and all(a < 0 for a in removes + discounts)
    assert amount(answer["currentPrice"]) + sum(adds) + sum(removes) + sum(discounts) == amount(
        answer["newPrice"]
    )
    starts = {"add": day, "remove": effective}
    for each in answer["lines"]:
        assert each["startsOn"] == starts.get(each["kind"], each["startsOn"]) in (day, effective)


# --- what is due today, by the test clock ------------------------------------------------


@pytest.mark.parametrize(
    ("day", "body", "due"),
    [
        # The first day of a period: the whole month.
        ("2027-03-01", {"addOffers": ["OFFER-SPORTS"]}, "8.00"),
        ("2027-03-01", {"addOffers": ["OFFER-SPORTS"], "promoCode": "SPORTSHALF"}, "4.00"),
        ("2027-02-01", {"addOffers": ["OFFER-SPORTS"]}, "8.00"),
        # The last day: one day's worth, 8.00 / 31.
        ("2027-03-31", {"addOffers": ["OFFER-SPORTS"]}, "0.26"),
        ("2027-12-31", {"addOffers": ["OFFER-SPORTS"]}, "0.26"),
        # February of 28 days: 8.00 x 3 / 28 = 0.857...; of 29 days: 8.00 x 3 / 29 = 0.827...
        ("2027-02-26", {"addOffers": ["OFFER-SPORTS"]}, "0.86"),
        ("2028-02-27", {"addOffers": ["OFFER-SPORTS"]}, "0.83"),
        ("2027-02-28", {"addOffers": ["OFFER-SPORTS"]}, "0.29"),
        ("2028-02-29", {"addOffers": ["OFFER-SPORTS"]}, "0.28"),
        ("2028-02-28", {"addOffers": ["OFFER-SPORTS"]}, "0.55"),
        # Half up: 6.50 x 7 / 28 = 1.625 exactly.
        ("2027-02-22", {"addOffers": ["OFFER-CINEMA"]}, "1.63"),
        # A 30-day month: 3.00 x 10 / 30.
        ("2027-04-21", {"addOffers": ["OFFER-KIDS"]}, "1.00"),
        # Nothing starts today.
        ("2027-02-22", {"removeOffers": ["OFFER-HD"], "promoCode": "WELCOME5"}, "0.00"),
    ],
)
def test_due_today_is_prorated(client: FlaskClient, day: str, body: Any, due: str) -> None:
    set_today(client, day)
    answer = quoted(client, body)
    assert answer["dueToday"] == money(due)
    assert {line["startsOn"] for line in answer["lines"] if line["kind"] == "add"} <= {day}


def test_prorating_never_goes_below_nothing() -> None:
    assert prorate(Decimal("-4.00"), date(2027, 2, 27)) == Decimal("0.00")
    assert str(prorate(Decimal("-0.01"), date(2027, 3, 31))) == "0.00"  # not "-0.00"
    assert prorate(Decimal("8.00"), date(2027, 2, 1)) == Decimal("8.00")
    assert prorate(Decimal("6.50"), date(2027, 2, 22)) == Decimal("1.63")
    assert str(prorate(Decimal("0.00"), date(2027, 2, 22))) == "0.00"


def test_the_clock_sets_the_dates(client: FlaskClient) -> None:
    real = {"today": date.today().isoformat(), "fixed": False}
    assert client.get("/_sandbox/today").get_json() == real
    set_today(client, "2027-12-31")
    assert client.get("/_sandbox/today").get_json() == {"today": "2027-12-31", "fixed": True}
    read = client.get("/backend/v1/subscriptions/SUB-1001", headers=BACKEND).get_json()
    assert read["nextBillingDate"] == "2028-01-01"
    assert quoted(client, ALICE_CHANGE)["effectiveDate"] == "2028-01-01"
    assert client.delete("/_sandbox/today").get_json() == real
    read = client.get("/backend/v1/subscriptions/SUB-1001", headers=BACKEND).get_json()
    assert read["nextBillingDate"] == first_of_next_month().isoformat()
    set_today(client, DAY)
    assert client.post("/_sandbox/reset").status_code == 204
    assert client.get("/_sandbox/today").get_json() == real


@pytest.mark.parametrize(
    "body",
    [
        {"date": "2027-02-30"},
        {"date": "27/02/2027"},
        {"date": "2027-W08-6"},
        {"date": "20270227"},
        {"date": None},
        {"date": 20270227},
        {},
        ["2027-02-27"],
    ],
)
def test_bad_days_are_refused(client: FlaskClient, body: Any) -> None:
    response = client.put("/_sandbox/today", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert client.get("/_sandbox/today").get_json()["fixed"] is False


def test_the_documented_reasons_are_the_sandboxs(client: FlaskClient) -> None:
    document = client.get("/backend/v1/openapi.json").get_json()
    reason = document["components"]["schemas"]["PromoInvalidError"]["properties"]["reason"]
    assert tuple(reason["enum"]) == PROMO_REASONS


# --- looking a code up -----------------------------------------------------------------


def test_look_up_a_code(client: FlaskClient) -> None:
    found = look_up(client, "SPORTSHALF")
    assert found.status_code == 200
    assert found.headers["Content-Language"] == "en"
    assert found.get_json() == {
        "code": "SPORTSHALF",
        "description": "Sports at half price for 3 months",
        "offerId": "OFFER-SPORTS",
    }
    assert look_up(client, "welcome5", "SUB-3003").get_json() == {
        "code": "WELCOME5",
        "description": "£5 off your monthly price for one month",
        "offerId": None,
    }
    # Looking up is a read: a locked subscription can still be asked.
    assert look_up(client, "SPORTSHALF", "SUB-2002").status_code == 200


@pytest.mark.parametrize(
    ("code", "reason"),
    [("EXPIRED", "expired"), ("expired", "expired"), ("NOSUCHCODE", "unknown")],
)
def test_look_up_refusals(client: FlaskClient, code: str, reason: str) -> None:
    response = look_up(client, code)
    assert response.status_code == 400
    body = response.get_json()
    assert (body["error"], body["reason"]) == ("promo_invalid", reason)
    assert body["message"]


def test_look_up_an_offer_code_the_subscription_cannot_take(
    client: FlaskClient, app: Flask
) -> None:
    subscription = state(app).subscriptions.subscriptions["SUB-3003"]
    subscription.available.remove("OFFER-SPORTS")
    response = look_up(client, "SPORTSHALF", "SUB-3003")
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "promo_invalid",
        "message": "This code needs Sports in your subscription.",
        "reason": "not_applicable",
    }
    assert look_up(client, "WELCOME5", "SUB-3003").status_code == 200
    # Active counts as much as eligible.
    subscription.active.append("OFFER-SPORTS")
    assert look_up(client, "SPORTSHALF", "SUB-3003").status_code == 200


def test_look_up_on_an_unknown_subscription_is_404(client: FlaskClient) -> None:
    response = look_up(client, "SPORTSHALF", "SUB-9999")
    assert response.status_code == 404
    assert response.get_json()["error"] == "subscription_not_found"


def test_look_up_needs_the_service_token(client: FlaskClient) -> None:
    response = client.get("/backend/v1/subscriptions/SUB-1001/promotions/SPORTSHALF")
    assert response.status_code == 401


# --- expiring a code -------------------------------------------------------------------


def test_a_code_expires_until_reset(client: FlaskClient) -> None:
    assert quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"})["promoCode"]
    answer = expire(client, " sportshalf ")
    assert (answer.status_code, answer.get_json()) == (
        200,
        {"code": "SPORTSHALF", "expired": True},
    )
    assert quote(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"}).get_json()["reason"] == (
        "expired"
    )
    assert look_up(client, "SPORTSHALF").get_json()["reason"] == "expired"
    assert look_up(client, "WELCOME5").status_code == 200
    listed = {p["code"]: p for p in client.get("/_sandbox/promotions").get_json()["promotions"]}
    assert {code: p["expired"] for code, p in listed.items()} == {
        "SPORTSHALF": True,
        "WELCOME5": False,
        "EXPIRED": True,
    }
    assert listed["SPORTSHALF"] == {
        "code": "SPORTSHALF",
        "description": "Sports at half price for 3 months",
        "offerId": "OFFER-SPORTS",
        "months": 3,
        "expired": True,
    }
    assert client.post("/_sandbox/reset").status_code == 204
    assert look_up(client, "SPORTSHALF").status_code == 200


@pytest.mark.parametrize("body", [{"code": "NOSUCHCODE"}, {"code": 5}, {}, None])
def test_expiring_needs_a_known_code(client: FlaskClient, body: Any) -> None:
    response = client.post("/_sandbox/promotions/expire", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


# --- orders ----------------------------------------------------------------------------


def test_order_with_a_code_is_recorded_with_it(client: FlaskClient) -> None:
    set_today(client, DAY)
    issued = quoted(client, {**ALICE_CHANGE, "promoCode": "sportshalf"})
    placed = order(client, issued, promoCode="sportshalf")
    assert placed.status_code == 201, placed.get_data(as_text=True)
    body = placed.get_json()
    assert body["promoCode"] == "SPORTSHALF"
    assert body["lines"] == issued["lines"]
    assert body["dueToday"] == money("0.29")
    assert body["newPrice"] == money("24.00")
    (record,) = client.get("/_sandbox/orders").get_json()["orders"]
    assert record["orderId"] == body["orderId"]
    assert record["promoCode"] == "SPORTSHALF"
    assert record["lines"] == issued["lines"]
    assert record["dueToday"] == money("0.29")
    pending = client.get("/backend/v1/subscriptions/SUB-1001", headers=BACKEND).get_json()
    assert pending["pendingChange"]["newPrice"] == money("24.00")
    assert pending["pendingChange"]["effectiveDate"] == NEXT_BILL


def test_order_without_a_code_records_none(client: FlaskClient) -> None:
    issued = quoted(client, ALICE_CHANGE)
    placed = place_order(client, alice_order(issued), "k")
    assert placed.status_code == 201
    assert (placed.get_json()["promoCode"], placed.get_json()["dueToday"]) == (
        None,
        issued["dueToday"],
    )
    (record,) = client.get("/_sandbox/orders").get_json()["orders"]
    assert record["promoCode"] is None
    assert [line["kind"] for line in record["lines"]] == ["add", "remove"]


def test_code_expired_between_quote_and_order(client: FlaskClient) -> None:
    issued = quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"})
    expire(client, "SPORTSHALF")
    refused = order(client, issued)
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["error"] == "price_changed"
    fresh = body["quote"]
    assert fresh["promoCode"] is None
    assert fresh["newPrice"] == money("28.00")
    assert [line["kind"] for line in fresh["lines"]] == ["add", "remove"]
    assert fresh["quoteId"] != issued["quoteId"]
    assert client.get("/_sandbox/orders").get_json() == {"orders": []}
    # The customer agrees to the price without it: the same key orders under the fresh quote.
    assert order(client, fresh).status_code == 201


def test_order_on_another_day_than_its_quote(client: FlaskClient) -> None:
    """What is due today moves with the day; an order that says what it expects is refused."""
    set_today(client, DAY)
    issued = quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"})
    set_today(client, "2027-02-28")
    refused = order(client, issued)
    assert refused.status_code == 409
    fresh = refused.get_json()["quote"]
    assert fresh["promoCode"] == "SPORTSHALF"
    assert fresh["dueToday"] == money("0.14")  # (8.00 - 4.00) x 1 / 28
    assert fresh["newPrice"] == issued["newPrice"]
    # Without expectedDueToday, as before promotions, only the new price is held to.
    accepted = order(client, issued, expectedDueToday=None)
    assert accepted.status_code == 201
    assert accepted.get_json()["dueToday"] == money("0.14")


def test_order_expecting_another_due_today_is_refused(client: FlaskClient) -> None:
    issued = quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"})
    refused = order(client, issued, expectedDueToday=money("99.99"))
    assert refused.status_code == 409
    assert refused.get_json()["error"] == "price_changed"
    assert refused.get_json()["quote"]["promoCode"] == "SPORTSHALF"


@pytest.mark.parametrize(
    "overrides",
    [
        {"promoCode": 5},
        {"expectedDueToday": "0.29"},
        {"expectedDueToday": {"amount": "0.29"}},
    ],
)
def test_order_fields_are_checked(client: FlaskClient, overrides: dict[str, Any]) -> None:
    issued = quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"})
    response = order(client, issued, **overrides)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_order_dropping_its_quotes_code_is_priced_without_it(client: FlaskClient) -> None:
    issued = quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"})
    refused = order(client, issued, promoCode=None)
    assert refused.status_code == 409
    assert refused.get_json()["quote"]["promoCode"] is None


def test_order_adding_a_code_its_quote_did_not_have(client: FlaskClient) -> None:
    issued = quoted(client, ALICE_CHANGE)
    refused = order(client, issued, promoCode="WELCOME5")
    assert refused.status_code == 409
    fresh = refused.get_json()["quote"]
    assert (fresh["promoCode"], fresh["newPrice"]) == ("WELCOME5", money("23.00"))
    assert order(client, fresh).status_code == 201


def test_repeat_returns_the_order_whatever_became_of_its_code(client: FlaskClient) -> None:
    issued = quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"})
    first = order(client, issued)
    expire(client, "SPORTSHALF")
    second = order(client, issued)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.get_json() == first.get_json()
    reused = order(client, issued, promoCode="WELCOME5")
    assert reused.status_code == 422


# --- in Welsh --------------------------------------------------------------------------


def test_lines_and_codes_in_welsh(client: FlaskClient) -> None:
    set_today(client, DAY)
    welsh = quote(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"}, language="cy")
    assert welsh.headers["Content-Language"] == "cy"
    body = welsh.get_json()
    assert [line["description"] for line in body["lines"]] == [
        "Chwaraeon",
        "HD Quality",  # no Welsh form, on purpose
        "Chwaraeon am hanner pris am 3 mis",
    ]
    english = quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"})
    for each in (body, english):
        each.pop("quoteId"), each.pop("expiresAt")  # made a moment apart: a second may turn
        for offer in each["addOffers"] + each["removeOffers"]:
            offer.pop("name"), offer.pop("description")
        for item in each["lines"]:
            item.pop("description")
    assert body == english

    fiver = quote(client, {"addOffers": ["OFFER-KIDS"], "promoCode": "WELCOME5"}, language="cy")
    assert [line["description"] for line in fiver.get_json()["lines"]] == [
        "Plant",
        "£5 oddi ar eich pris misol am un mis",
    ]
    found = look_up(client, "sportshalf", language="cy")
    assert found.headers["Content-Language"] == "cy"
    assert found.get_json()["description"] == "Chwaraeon am hanner pris am 3 mis"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**ALICE_CHANGE, "promoCode": "EXPIRED"}, "Mae'r cod hwn wedi dod i ben."),
        ({**ALICE_CHANGE, "promoCode": "NOSUCHCODE"}, "Nid ydym yn adnabod y cod hwn."),
        (
            {"addOffers": ["OFFER-KIDS"], "promoCode": "SPORTSHALF"},
            "Mae angen Chwaraeon yn eich tanysgrifiad i ddefnyddio'r cod hwn.",
        ),
    ],
)
def test_refusals_in_welsh(client: FlaskClient, body: Any, message: str) -> None:
    response = quote(client, body, language="cy")
    assert response.status_code == 400
    assert response.headers["Content-Language"] == "cy"
    assert "Accept-Language" in response.headers["Vary"]
    assert response.get_json()["message"] == message
    english = quote(client, body).get_json()
    assert english["reason"] == response.get_json()["reason"]
    assert english["message"] != message
    code = body["promoCode"]
    if code != "SPORTSHALF":
        assert look_up(client, code, language="cy").get_json()["message"] == message


def test_order_in_welsh_keeps_its_english_record(client: FlaskClient) -> None:
    issued = quoted(client, {**ALICE_CHANGE, "promoCode": "SPORTSHALF"}, language="cy")
    placed = order(client, issued, language="cy")
    assert placed.status_code == 201
    assert placed.get_json()["lines"][2]["description"] == "Chwaraeon am hanner pris am 3 mis"
    (record,) = client.get("/_sandbox/orders").get_json()["orders"]
    assert record["lines"][2]["description"] == "Sports at half price for 3 months"
