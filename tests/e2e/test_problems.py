"""When things go wrong: each problem has its page, its status, and a way to carry on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from playwright.sync_api import Page, Route, expect

from app.adapters.storage import Keys
from sandbox.stack import Service, free_port, gunicorn_service
from tests.conftest import Sandbox
from tests.e2e.conftest import (
    EFFECTIVE_TEXT,
    TRACKING,
    check_page,
    expire_baskets,
    heading,
    link,
    only_order,
    open_basket,
    press,
)

# The reCAPTCHA stand-in, scoring every visitor as a bot (the sandbox verifies `bot-…` at 0.1).
BOT_WIDGET = """
window.grecaptcha = {
  ready: function (callback) { callback(); },
  execute: function () { return Promise.resolve("bot-" + Date.now()); }
};
"""


def test_a_locked_subscription_says_what_is_pending_and_when(page: Page) -> None:
    response = page.goto(link("SUB-2002", offer="OFFER-SPORTS"))
    assert response is not None and response.status == 409
    heading(page).to_have_text("You already have a change in progress")
    expect(page.locator("main")).to_contain_text(f"Downgrade to Standard, from {EFFECTIVE_TEXT}")
    expect(page.get_by_role("button")).to_have_count(0)  # nothing to confirm
    check_page(page, "error-locked")


def test_an_unknown_subscription_is_not_found(page: Page) -> None:
    response = page.goto(link("SUB-9999"))
    assert response is not None and response.status == 404
    heading(page).to_have_text("We could not find that subscription")
    check_page(page, "error-subscription-not-found")


def test_the_page_nginx_shows_when_no_instance_answers_says_what_to_do(page: Page) -> None:
    """static/errors/bad-gateway.html, which deploy/nginx.conf serves with its 502 (here
    from the app's own static files, as nginx serves the same file)."""
    page.goto("/static/errors/bad-gateway.html")
    heading(page).to_have_text("Sorry, something went wrong on our side")
    expect(page.get_by_role("link", name="Back to your changes")).to_have_attribute(
        "href", "/basket"
    )
    welsh = page.locator("[lang=cy]")
    expect(welsh.get_by_role("link", name="Yn ôl at eich newidiadau")).to_be_visible()
    check_page(page, "error-bad-gateway")


def test_an_unknown_page_is_not_found(page: Page) -> None:
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    heading(page).to_have_text("Page not found")
    check_page(page, "error-page-not-found")


def test_the_home_page_sends_customers_to_their_link(page: Page) -> None:
    page.goto("/")
    heading(page).to_have_text("Change your subscription")
    check_page(page, "home")


def test_an_expired_basket_is_rebuilt_from_the_original_link(
    page: Page, sandbox: Sandbox, redis_client: redis.Redis, keys: Keys
) -> None:
    open_basket(page)
    press(page, "Add Kids")
    expire_baskets(redis_client, keys)

    response = page.reload()
    assert response is not None and response.status == 404
    heading(page).to_have_text("Your changes have expired")
    expect(page.get_by_text("We did not keep your changes")).to_be_visible()
    check_page(page, "error-expired")

    page.get_by_role("link", name="Start again").click()
    heading(page).to_have_text("Add Sports to your plan")  # the original link, offer and all
    press(page, "Continue to checkout")  # still signed in: straight to a new basket
    heading(page).to_have_text("Choose your changes")
    press(page, "Add Sports")
    page.get_by_role("link", name="Continue").click()
    press(page, "Confirm change")
    heading(page).to_have_text("Your change is confirmed")
    assert only_order(sandbox.orders())["tracking"] == TRACKING


def test_an_outage_while_confirming_changes_nothing_and_a_retry_succeeds(
    page: Page, sandbox: Sandbox
) -> None:
    open_basket(page)
    press(page, "Add Sports")
    page.get_by_role("link", name="Continue").click()
    sandbox.fault("error", count=1, path="/backend/v1/orders")

    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Confirm change").click()
    response = navigation.value
    assert response is not None and response.status == 502
    heading(page).to_have_text("Sorry, the service is unavailable")
    expect(page.get_by_text("nothing was changed")).to_be_visible()
    assert sandbox.orders() == []
    check_page(page, "error-unavailable")

    page.get_by_role("link", name="Try again").click()
    heading(page).to_have_text("Check your change")
    press(page, "Confirm change")
    heading(page).to_have_text("Your change is confirmed")
    only_order(sandbox.orders())


def test_a_failed_bot_check_says_so_and_changes_nothing(page: Page, sandbox: Sandbox) -> None:
    def bot_widget(route: Route) -> None:
        route.fulfill(body=BOT_WIDGET, content_type="application/javascript")

    page.route("**/recaptcha/api.js*", bot_widget)
    page.goto(link())
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Continue to checkout").click()
    assert navigation.value is not None and navigation.value.status == 400
    heading(page).to_have_text("We could not check that you are a person")
    check_page(page, "error-bot-check")

    page.unroute("**/recaptcha/api.js*")
    page.get_by_role("link", name="Go back and try again").click()
    heading(page).to_have_text("Add Sports to your plan")


def test_an_offer_that_cannot_be_chosen_is_explained_in_an_error_summary(page: Page) -> None:
    open_basket(page)
    kids = page.locator("form", has=page.get_by_role("button", name="Add Kids"))
    kids.locator("input[name=offer]").evaluate("input => { input.value = 'OFFER-GOLD'; }")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Add Kids").click()
    assert navigation.value is not None and navigation.value.status == 400
    expect(page).to_have_title(re.compile(r"^Error: Choose your changes"))
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    summary.get_by_role("link").click()
    expect(page.locator("#offers")).to_be_focused()  # the link leads to the offers
    check_page(page, "error-summary-basket")


def test_a_removal_that_cannot_be_made_is_explained_beside_the_offers_on_the_plan(
    page: Page,
) -> None:
    open_basket(page)
    hd = page.locator("form", has=page.get_by_role("button", name="Remove HD Quality"))
    hd.locator("input[name=offer]").evaluate("input => { input.value = 'OFFER-GOLD'; }")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Remove HD Quality").click()
    assert navigation.value is not None and navigation.value.status == 400
    page.get_by_role("alert").get_by_role("link").click()
    expect(page.locator("#your-offers")).to_be_focused()
    section = page.locator("#your-offers ~ .error-message")
    expect(section).to_contain_text("That offer cannot be chosen now")
    expect(page.locator("#offers ~ .error-message")).to_have_count(0)


def test_an_altered_form_is_refused(page: Page) -> None:
    page.goto(link())
    page.locator("input[name=subscription]").evaluate("input => { input.value = '../admin'; }")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Continue to checkout").click()
    assert navigation.value is not None and navigation.value.status == 400
    heading(page).to_have_text("Sorry, we could not do that")
    check_page(page, "error-problem")


def test_an_unexpected_error_shows_its_reference(
    page: Page, redis_client: redis.Redis, keys: Keys
) -> None:
    open_basket(page)
    for key in redis_client.scan_iter(match=keys.baskets()):
        redis_client.set(key, b'{"version": 1}', keepttl=True)  # a basket we cannot read

    response = page.reload()
    assert response is not None and response.status == 500
    heading(page).to_have_text("Sorry, there is a problem with the service")
    request_id = response.headers["x-request-id"]
    expect(page.locator("footer")).to_contain_text(request_id)
    assert "Traceback" not in page.content()
    check_page(page, "error-unexpected")


@pytest.fixture
def one_at_a_time_app(app_env: dict[str, str]) -> Iterator[Service]:
    """Under gunicorn, a worker that serves one request at a time and turns the rest away."""
    env = {**app_env, "CHECKOUT_MAX_IN_FLIGHT": "1", "CHECKOUT_THREADS": "4"}
    service = gunicorn_service("app", "wsgi:app", free_port(), env, "/healthz", workers=1)
    service.start(quiet=True)
    yield service
    service.stop()


def test_a_busy_moment_says_nothing_was_changed_and_to_try_again(
    page: Page, sandbox: Sandbox, one_at_a_time_app: Service
) -> None:
    url = one_at_a_time_app.url
    # Holds the worker's one place: another customer's start page, its backend read slow.
    sandbox.fault("slow", path="/backend/v1/subscriptions/SUB-3003", delaySeconds=3.0)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(requests.get, url + link("SUB-3003"), timeout=15)
        # The fault is used up when the held request's read reaches the sandbox.
        sandbox.wait_faults_taken()
        response = page.goto(url + link("SUB-1001"))
        assert response is not None and response.status == 503
        assert response.headers["retry-after"] == "2"
        heading(page).to_have_text("Sorry, we are very busy right now")
        expect(page.locator("main")).to_contain_text("so nothing was changed")
        check_page(page, "error-busy")
        assert held.result().status_code == 200  # the one in flight is served

    page.get_by_role("link", name="Try again").click()
    heading(page).to_have_text("Add Sports to your plan")
