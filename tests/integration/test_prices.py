"""The price a customer confirms is the price ordered; ETag and If-Match for partners; a
stale tab changes nothing. Over HTTP, against the real sandbox and Redis."""

from __future__ import annotations

import re

import pytest
import requests

from sandbox.stack import Service
from tests.conftest import Sandbox, recaptcha_token
from tests.integration.conftest import Partner, assert_problem
from tests.journey import form_of, offer_form, signed_in_browser

pytestmark = pytest.mark.integration


def _money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "GBP"}


def _with_sports(partner) -> Partner:
    alice = partner("alice")
    assert alice.create().status_code == 201
    chosen = alice.update({"addOffers": ["OFFER-SPORTS"], "removeOffers": ["OFFER-HD"]})
    assert chosen.json()["basket"]["totals"]["new"] == _money("28.00")  # 20 + 8, not + 4
    return alice


# -- the API ------------------------------------------------------------------------------


def test_a_price_that_moved_is_shown_not_ordered_and_the_same_put_confirms_it(
    partner, sandbox: Sandbox
):
    alice = _with_sports(partner)
    quoted = alice.get().json()["basket"]["quote"]
    sandbox.set_price("9.00", offer="OFFER-SPORTS")

    refused = alice.update({"complete": True})
    body = assert_problem(refused, 409, "price_changed")
    assert body["previousTotals"]["new"] == _money("28.00")
    assert body["totals"]["new"] == _money("29.00")
    assert sandbox.orders() == []  # nothing was ordered at a price nobody saw
    now = alice.get().json()["basket"]
    assert now["status"] == "open" and now["totals"]["new"] == _money("29.00")
    assert now["quote"]["quoteId"] != quoted["quoteId"]  # the basket holds the fresh quote

    confirmed = alice.update({"complete": True})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["basket"]["order"]["newPrice"] == _money("29.00")
    (order,) = sandbox.orders()
    assert order["newPrice"] == _money("29.00")
    assert alice.update({"complete": True}).status_code == 200  # a retry finds the same order
    assert len(sandbox.orders()) == 1


def test_a_quote_that_expired_at_the_same_price_is_renewed_without_asking(
    partner, sandbox: Sandbox
):
    alice = _with_sports(partner)
    first_quote = alice.get().json()["basket"]["quote"]["quoteId"]
    sandbox.expire_quotes()
    confirmed = alice.update({"complete": True})
    assert confirmed.status_code == 200, confirmed.text
    (order,) = sandbox.orders()
    assert order["newPrice"] == _money("28.00")
    assert order["quoteId"] != first_quote


def test_a_plan_price_change_is_caught_too(partner, sandbox: Sandbox):
    alice = _with_sports(partner)
    sandbox.set_price("21.00", plan="PLAN-STANDARD")
    body = assert_problem(alice.update({"complete": True}), 409, "price_changed")
    assert body["totals"]["new"] == _money("29.00")
    assert sandbox.orders() == []


def test_every_basket_answer_carries_an_etag_and_if_none_match_answers_304(partner, sandbox):
    alice = partner("alice")
    created = alice.create()
    tag = created.headers["ETag"]
    assert alice.get().headers["ETag"] == tag
    unchanged = alice.get(**{"If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    changed = alice.update({"addOffers": ["OFFER-KIDS"]})
    assert changed.headers["ETag"] != tag
    assert alice.get(**{"If-None-Match": tag}).status_code == 200


def test_a_stale_if_match_answers_412_and_changes_nothing(partner, sandbox: Sandbox):
    alice = partner("alice")
    seen = alice.create().headers["ETag"]
    current = alice.update({"addOffers": ["OFFER-KIDS"]}).headers["ETag"]  # another system

    stale = alice.update({"addOffers": ["OFFER-SPORTS"]}, **{"If-Match": seen})
    assert_problem(stale, 412, "basket_changed")
    assert stale.headers["ETag"] == current
    basket = alice.get().json()["basket"]
    assert [o["id"] for o in basket["addOffers"]] == ["OFFER-KIDS"]
    assert_problem(alice.update({"complete": True}, **{"If-Match": seen}), 412, "basket_changed")
    assert sandbox.orders() == []

    applied = alice.update({"addOffers": ["OFFER-SPORTS"]}, **{"If-Match": current})
    assert applied.status_code == 200
    done = alice.update({"complete": True}, **{"If-Match": applied.headers["ETag"]})
    assert done.status_code == 200 and len(sandbox.orders()) == 1
    # The completion asked for has succeeded: a retry with the old tag is told so, not 412.
    again = alice.update({"complete": True}, **{"If-Match": applied.headers["ETag"]})
    assert again.status_code == 200 and len(sandbox.orders()) == 1


def test_if_match_star_and_no_if_match_apply_to_the_basket_as_it_is(partner, sandbox):
    alice = partner("alice")
    alice.create()
    assert alice.update({"addOffers": ["OFFER-KIDS"]}, **{"If-Match": "*"}).status_code == 200
    assert alice.update({"addOffers": ["OFFER-SPORTS"]}).status_code == 200


# -- the pages ----------------------------------------------------------------------------


def _main_form(page: str) -> tuple[str, dict[str, str]]:
    """The first form of the page's main content (the header's Sign out comes before)."""
    form = form_of(page[page.index("<main") :])
    assert form is not None
    return form


def _post(browser: requests.Session, url: str, form: tuple[str, dict[str, str]]):
    action, fields = form
    return browser.post(url + action, data={**fields, "recaptcha_token": recaptcha_token()})


def test_a_page_confirming_a_price_that_moved_shows_the_new_one_and_orders_it_when_confirmed(
    app_server: Service, sandbox: Sandbox
):
    browser = signed_in_browser(app_server.url)
    assert browser is not None, "the journey up to the basket page did not complete"
    basket = browser.get(app_server.url + "/basket").text
    assert _post(browser, app_server.url, offer_form(basket, "OFFER-SPORTS")).ok
    review = browser.get(app_server.url + "/review")
    assert re.search(r"you agree to pay £[0-9.]+ today and £32 a month", review.text)  # 20+4+8
    sandbox.set_price("9.00", offer="OFFER-SPORTS")

    refused = _post(browser, app_server.url, _main_form(review.text))
    assert refused.status_code == 409
    assert "The price has changed: it is now £33 a month, not £32. Check it and confirm again." in (
        refused.text
    )
    assert re.search(r"you agree to pay £[0-9.]+ today and £33 a month", refused.text)
    assert sandbox.orders() == []

    confirmed = _post(browser, app_server.url, _main_form(refused.text))
    assert confirmed.status_code == 200 and confirmed.url.endswith("/confirmation")
    assert "your next bill, you will pay £33 a month" in confirmed.text
    (order,) = sandbox.orders()
    assert order["newPrice"] == _money("33.00")


def test_a_form_from_a_page_another_window_overtook_changes_nothing(
    app_server: Service, sandbox: Sandbox
):
    browser = signed_in_browser(app_server.url)
    assert browser is not None, "the journey up to the basket page did not complete"
    old_tab = browser.get(app_server.url + "/basket").text
    changed = _post(browser, app_server.url, offer_form(old_tab, "OFFER-SPORTS"))  # new tab
    assert "Sports will be added to your plan." in changed.text

    stale = _post(browser, app_server.url, offer_form(old_tab, "OFFER-KIDS"))
    assert stale.status_code == 200 and stale.url.endswith("/basket")
    assert "Your basket was changed in another window. Here it is now." in stale.text
    assert "Kids will be added" not in stale.text
    assert re.search(r"Add Sports: £8 a month more", stale.text)

    # The same button pressed twice is no news: the basket, without the warning.
    again = _post(browser, app_server.url, offer_form(old_tab, "OFFER-SPORTS"))
    assert again.url.endswith("/basket") and "another window" not in again.text


def test_confirming_from_a_review_page_another_window_overtook_orders_nothing(
    app_server: Service, sandbox: Sandbox
):
    browser = signed_in_browser(app_server.url)
    assert browser is not None, "the journey up to the basket page did not complete"
    basket = browser.get(app_server.url + "/basket").text
    _post(browser, app_server.url, offer_form(basket, "OFFER-SPORTS"))
    old_review = browser.get(app_server.url + "/review").text
    now = browser.get(app_server.url + "/basket").text
    _post(browser, app_server.url, offer_form(now, "OFFER-KIDS"))  # another window

    stale = _post(browser, app_server.url, _main_form(old_review))
    assert stale.url.endswith("/basket")
    assert "Your basket was changed in another window. Here it is now." in stale.text
    assert sandbox.orders() == []
