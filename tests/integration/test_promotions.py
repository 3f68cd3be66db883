"""Campaign codes and the itemised price: through the API and the pages, against the real
sandbox (its demo codes SPORTSHALF, WELCOME5 and EXPIRED, and its test clock) and Redis."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
import requests

from sandbox.stack import Service
from tests.conftest import Sandbox, recaptcha_token
from tests.integration.conftest import Partner, assert_problem
from tests.journey import form_of, offer_form, signed_in_browser

pytestmark = pytest.mark.integration

MONEY = re.compile(r"^-?[0-9]+\.[0-9]{2}$")
SPORTS_NOT_HD = {"addOffers": ["OFFER-SPORTS"], "removeOffers": ["OFFER-HD"]}


def _amount(money: dict[str, str]) -> Decimal:
    assert MONEY.match(money["amount"]), money  # a decimal string, never a float
    assert money["currency"] == "GBP"
    return Decimal(money["amount"])


def _lines_add_up(totals: dict[str, Any]) -> None:
    """The price now, plus every line, is the new price."""
    summed = _amount(totals["current"]) + sum(_amount(line["amount"]) for line in totals["lines"])
    assert summed == _amount(totals["new"]), totals


def _coded(partner, code: str = "SPORTSHALF") -> tuple[Partner, dict[str, Any]]:
    alice = partner("alice")
    assert alice.create(promoCode=code).status_code == 201
    changed = alice.update(SPORTS_NOT_HD)
    assert changed.status_code == 200, changed.text
    return alice, changed.json()["basket"]


# -- the API ------------------------------------------------------------------------------


def test_a_code_itemises_the_change_and_lowers_the_price(partner, sandbox: Sandbox):
    _, basket = _coded(partner)
    totals = basket["totals"]
    assert (basket["promoCode"], basket["promoApplied"]) == ("SPORTSHALF", True)
    by_kind = {line["kind"]: line for line in totals["lines"]}
    assert set(by_kind) == {"add", "remove", "discount"}
    assert by_kind["add"]["offerId"] == "OFFER-SPORTS"
    assert by_kind["add"]["startsOn"] == sandbox.today()  # added offers start today
    assert by_kind["remove"]["startsOn"] == totals["effectiveDate"]  # removals at the next bill
    assert _amount(by_kind["remove"]["amount"]) < 0
    discount = by_kind["discount"]
    assert _amount(discount["amount"]) == Decimal("-4.00")  # half of Sports' 8.00
    assert (discount["recurring"], discount["months"]) == (True, 3)
    assert discount["description"] == "Sports at half price for 3 months"
    _lines_add_up(totals)
    assert _amount(totals["dueToday"]) > 0

    plain = partner("alice")  # the same change, without the code, in another basket
    assert plain.create().status_code == 201
    without = plain.update(SPORTS_NOT_HD).json()["basket"]
    assert without["promoCode"] is None
    assert _amount(totals["new"]) < _amount(without["totals"]["new"])
    assert _amount(totals["dueToday"]) < _amount(without["totals"]["dueToday"])
    assert {line["kind"] for line in without["totals"]["lines"]} == {"add", "remove"}
    _lines_add_up(without["totals"])


def test_welcome5_takes_five_pounds_off_any_change(partner):
    alice = partner("alice")
    assert alice.create().status_code == 201
    plain = alice.update({"removeOffers": ["OFFER-HD"]}).json()["basket"]["totals"]
    coded = alice.update({"promoCode": "welcome5"}).json()["basket"]
    assert coded["promoCode"] == "WELCOME5"  # as the backend names it
    assert _amount(coded["totals"]["new"]) == _amount(plain["new"]) - 5
    _lines_add_up(coded["totals"])


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"promoCode": "EXPIRED"}, "expired"),
        ({"promoCode": "NOSUCHCODE"}, "unknown"),
        ({"addOffers": ["OFFER-KIDS"], "promoCode": "SPORTSHALF"}, "not_applicable"),
    ],
)
def test_a_refused_code_says_why_and_changes_nothing(partner, body, why):
    alice = partner("alice")
    assert alice.create().status_code == 201
    alice.update({"removeOffers": ["OFFER-HD"]})
    before = alice.get()
    refused = assert_problem(alice.update(body), 400, "promo_invalid")
    assert refused["promoReason"] == why
    assert refused["detail"]  # the backend's reason, in words
    after = alice.get()
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.json() == before.json()


def test_a_refused_code_on_create_makes_no_basket(partner):
    alice = partner("alice")
    refused = assert_problem(alice.create(promoCode="EXPIRED"), 400, "promo_invalid")
    assert refused["promoReason"] == "expired"
    assert "Set-Cookie" not in alice.http.cookies.keys()
    assert_problem(alice.get(), 404, "basket_not_found")


def test_a_code_is_removed_with_null(partner):
    alice, coded = _coded(partner)
    removed = alice.update({"promoCode": None}).json()["basket"]
    assert removed["promoCode"] is None and removed["promoApplied"] is False
    assert "discount" not in {line["kind"] for line in removed["totals"]["lines"]}
    assert _amount(removed["totals"]["new"]) == _amount(coded["totals"]["new"]) + 4
    kept = alice.update({"addOffers": ["OFFER-SPORTS"]}).json()["basket"]  # no code: none kept
    assert kept["promoCode"] is None


def test_a_links_code_waits_for_the_offer_it_is_for(partner):
    alice = partner("alice")
    assert alice.create(promoCode="SPORTSHALF").status_code == 201
    held = alice.update({"removeOffers": ["OFFER-HD"]})
    assert held.status_code == 200, held.text  # not refused: the code waits for Sports
    basket = held.json()["basket"]
    assert (basket["promoCode"], basket["promoApplied"]) == ("SPORTSHALF", False)
    assert [line["kind"] for line in basket["totals"]["lines"]] == ["remove"]
    applied = alice.update({"addOffers": ["OFFER-SPORTS"]}).json()["basket"]
    assert applied["promoApplied"] is True
    assert "discount" in {line["kind"] for line in applied["totals"]["lines"]}


def test_the_confirmed_order_carries_the_code_and_the_price_agreed(partner, sandbox: Sandbox):
    alice, basket = _coded(partner)
    done = alice.update({"complete": True})
    assert done.status_code == 200, done.text
    assert done.json()["basket"]["order"]["newPrice"] == basket["totals"]["new"]
    (order,) = sandbox.orders()
    assert order["promoCode"] == "SPORTSHALF"
    assert order["dueToday"] == basket["totals"]["dueToday"]
    assert order["newPrice"] == basket["totals"]["new"]


def test_a_code_that_expires_before_the_confirmation_is_a_price_change(partner, sandbox: Sandbox):
    alice, basket = _coded(partner)
    sandbox.expire_promotion("SPORTSHALF")

    body = assert_problem(alice.update({"complete": True}), 409, "price_changed")
    assert body["previousTotals"] == basket["totals"]
    assert "discount" not in {line["kind"] for line in body["totals"]["lines"]}
    assert _amount(body["totals"]["new"]) == _amount(basket["totals"]["new"]) + 4
    assert _amount(body["totals"]["dueToday"]) > _amount(basket["totals"]["dueToday"])
    assert sandbox.orders() == []  # nothing ordered at a price nobody saw
    now = alice.get().json()["basket"]
    assert now["promoCode"] is None and now["totals"] == body["totals"]

    confirmed = alice.update({"complete": True})  # the same PUT again confirms the new price
    assert confirmed.status_code == 200, confirmed.text
    (order,) = sandbox.orders()
    assert order["promoCode"] is None and order["newPrice"] == body["totals"]["new"]


@pytest.mark.parametrize(
    ("day", "due_with", "due_without"),
    [
        ("2027-02-28", "0.14", "0.29"),  # the last day of a short month: 1 day in 28
        ("2027-03-01", "4.00", "8.00"),  # the first day of a period: the whole month
        ("2027-03-31", "0.13", "0.26"),  # the last day of a long month: 1 day in 31
        ("2028-02-29", "0.14", "0.28"),  # a leap day, last of its month: 1 in 29
    ],
)
def test_what_is_due_today_is_prorated_to_the_next_bill(
    partner, sandbox: Sandbox, day, due_with, due_without
):
    sandbox.set_today(day)
    _, coded = _coded(partner)
    plain = partner("alice")
    assert plain.create().status_code == 201
    without = plain.update(SPORTS_NOT_HD).json()["basket"]
    assert coded["totals"]["dueToday"] == {"amount": due_with, "currency": "GBP"}
    assert without["totals"]["dueToday"] == {"amount": due_without, "currency": "GBP"}
    add = next(line for line in coded["totals"]["lines"] if line["kind"] == "add")
    assert add["startsOn"] == day
    _lines_add_up(coded["totals"])


# -- the pages ----------------------------------------------------------------------------


def _post(browser: requests.Session, url: str, form: tuple[str, dict[str, str]]):
    action, fields = form
    return browser.post(url + action, data={**fields, "recaptcha_token": recaptcha_token()})


def _promo_form(page: str, code: str | None = None) -> tuple[str, dict[str, str]]:
    at = page.index('action="/basket/promo"')
    form = form_of(page[page.rindex("<form", 0, at) :])
    assert form is not None
    action, fields = form
    if code is not None:
        fields["code"] = code
    return action, fields


def test_the_link_names_its_deal_and_the_pages_carry_it_to_the_order(
    app_server: Service, sandbox: Sandbox
):
    link = "/start?subscription=SUB-1001&offer=OFFER-SPORTS&promo=SPORTSHALF"
    start = requests.get(app_server.url + link, timeout=10)
    assert "Sports at half price for 3 months" in start.text
    browser = signed_in_browser(app_server.url, link)
    assert browser is not None, "the journey up to the basket page did not complete"
    page = browser.get(app_server.url + "/basket").text
    assert "Your code SPORTSHALF: Sports at half price for 3 months" in page
    changed = _post(browser, app_server.url, offer_form(page, "OFFER-SPORTS"))
    assert "Sports at half price for 3 months: £4 a month off for 3 months" in changed.text
    assert "Due today:" in changed.text

    review = browser.get(app_server.url + "/review").text
    assert "£4 a month off for 3 months" in review and "Due today:" in review
    at = review.index('action="/review"')
    confirm = form_of(review[review.rindex("<form", 0, at) :])
    assert confirm is not None
    confirmed = _post(browser, app_server.url, confirm)
    assert confirmed.url.endswith("/confirmation")
    assert "£4 a month off for 3 months" in confirmed.text
    (order,) = sandbox.orders()
    assert order["promoCode"] == "SPORTSHALF"


def test_a_link_with_a_code_that_cannot_be_used_says_so_and_carries_on(
    app_server: Service, sandbox: Sandbox
):
    link = "/start?subscription=SUB-1001&promo=EXPIRED"
    start = requests.get(app_server.url + link, timeout=10)
    assert start.status_code == 200
    assert "The code EXPIRED cannot be used. This code has expired." in start.text
    browser = signed_in_browser(app_server.url, link)
    assert browser is not None, "a refused code must not stop the journey"
    page = browser.get(app_server.url + "/basket").text
    assert 'id="promo-code"' in page  # no code held: the field to enter one


def test_a_code_is_entered_refused_and_removed_on_the_basket_page(
    app_server: Service, sandbox: Sandbox
):
    browser = signed_in_browser(app_server.url)
    assert browser is not None, "the journey up to the basket page did not complete"
    page = browser.get(app_server.url + "/basket").text

    refused = _post(browser, app_server.url, _promo_form(page, "EXPIRED"))
    assert refused.status_code == 400
    assert "This code has expired." in refused.text
    assert 'value="EXPIRED"' in refused.text  # what was typed stays, to correct
    bad = _post(browser, app_server.url, _promo_form(page, "no spaces!"))
    assert bad.status_code == 400 and "letters and numbers" in bad.text

    applied = _post(browser, app_server.url, _promo_form(page, "welcome5"))
    assert applied.url.endswith("/basket")
    assert "Code WELCOME5 applied" in applied.text
    removed = _post(browser, app_server.url, _promo_form(applied.text))
    assert "The code was removed." in removed.text and 'id="promo-code"' in removed.text


def test_a_day_that_moves_what_is_due_today_asks_again_before_ordering(
    app_server: Service, sandbox: Sandbox
):
    sandbox.set_today("2027-03-01")  # the first day of a period: a whole month due
    browser = signed_in_browser(app_server.url)
    assert browser is not None, "the journey up to the basket page did not complete"
    page = browser.get(app_server.url + "/basket").text
    assert _post(browser, app_server.url, offer_form(page, "OFFER-SPORTS")).ok
    review = browser.get(app_server.url + "/review").text
    assert "you agree to pay £8 today and £32 a month" in review
    sandbox.set_today("2027-03-31")  # confirmed a month later, on the last day: 1 day in 31

    at = review.index('action="/review"')
    confirm = form_of(review[review.rindex("<form", 0, at) :])
    assert confirm is not None
    refused = _post(browser, app_server.url, confirm)
    assert refused.status_code == 409
    assert "What is due today has changed: it is now £0.26. Check it and confirm again." in (
        refused.text
    )
    assert sandbox.orders() == []
    again = form_of(
        refused.text[refused.text.rindex("<form", 0, refused.text.index('action="/review"')) :]
    )
    assert again is not None
    confirmed = _post(browser, app_server.url, again)
    assert confirmed.url.endswith("/confirmation")
    (order,) = sandbox.orders()
    assert order["dueToday"] == {"amount": "0.26", "currency": "GBP"}
