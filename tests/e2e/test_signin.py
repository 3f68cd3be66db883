"""Signing in and out, and what happens when a sign-in, a form or a visitor's patience runs out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import redis
from playwright.sync_api import Page, expect

from app.adapters.storage import Keys
from sandbox.stack import Service, app_service, free_port
from tests.conftest import Sandbox, within_one_window
from tests.e2e.conftest import (
    check_page,
    heading,
    link,
    open_basket,
    press,
    rewrite_session,
    session_key,
    sign_in,
    tag,
)


def test_an_expiring_access_token_is_refreshed_without_asking(
    page: Page, redis_client: redis.Redis, keys: Keys
) -> None:
    open_basket(page)

    def expire(data: dict[str, Any]) -> None:
        data["auth"]["expires_at"] = 0

    rewrite_session(page, redis_client, keys, expire)
    page.reload()
    heading(page).to_have_text("Choose your changes")  # refreshed, still signed in
    press(page, "Add Kids")
    expect(page.get_by_role("status")).to_have_text("Kids will be added to your plan.")


def test_a_lost_sign_in_on_a_page_signs_in_again_and_comes_back(
    page: Page, redis_client: redis.Redis, keys: Keys
) -> None:
    open_basket(page)
    press(page, "Add Kids")
    page.get_by_role("link", name="Continue").click()
    heading(page).to_have_text("Check your change")

    def revoke(data: dict[str, Any]) -> None:
        data["auth"].update(expires_at=0, refresh_token="revoked")

    rewrite_session(page, redis_client, keys, revoke)
    page.reload()  # the refresh fails: off to sign in...
    sign_in(page, "alice")
    heading(page).to_have_text("Check your change")  # ...and back to the same step
    expect(page.get_by_text("Kids, £3 a month")).to_be_visible()


def test_a_lost_sign_in_on_a_form_says_so_and_keeps_the_changes(
    page: Page, redis_client: redis.Redis, keys: Keys
) -> None:
    open_basket(page)
    press(page, "Add Kids")
    rewrite_session(page, redis_client, keys, lambda data: data.pop("auth"))

    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Remove HD Quality").click()
    assert navigation.value is not None and navigation.value.status == 401
    heading(page).to_have_text("You need to sign in again")
    check_page(page, "error-signed-out")

    page.get_by_role("link", name="Sign in again").click()
    sign_in(page, "alice")
    heading(page).to_have_text("Choose your changes")
    expect(tag(page, "Adding")).to_be_visible()  # Kids, chosen before
    expect(tag(page, "Removing")).to_have_count(0)  # the lost click did nothing


def test_a_form_left_open_after_the_session_ended_changes_nothing(
    page: Page, redis_client: redis.Redis, keys: Keys
) -> None:
    open_basket(page)
    redis_client.delete(session_key(page, keys))  # the server-side session idled out

    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Add Kids").click()
    assert navigation.value is not None and navigation.value.status == 400
    heading(page).to_have_text("This page has timed out")
    check_page(page, "error-form-expired")
    page.get_by_role("link", name="Go back and try again").click()
    sign_in(page, "alice")  # the basket needs a signed-in customer again
    heading(page).to_have_text("Choose your changes")
    expect(tag(page, "Adding")).to_have_count(0)


def test_sign_out_ends_the_session_at_the_provider_too(
    page: Page, redis_client: redis.Redis, keys: Keys
) -> None:
    open_basket(page)
    signed_in_session = session_key(page, keys)
    press(page, "Sign out")
    heading(page).to_have_text("Add Sports to your plan")  # back at the link's start page
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    assert redis_client.get(signed_in_session) is None
    assert b"access_token" not in (redis_client.get(session_key(page, keys)) or b"")

    assert "landing_state" not in {c["name"] for c in page.context.cookies()}
    page.goto("/basket")  # the basket needs a sign-in again
    assert urlsplit(page.url).path == "/oauth/authorize"


@pytest.mark.parametrize(
    ("customer", "subscription", "shown"),
    [("erin", "SUB-5005", "Signed in as erin@example.com"), ("dave", "SUB-4004", "Signed in")],
)
def test_a_customer_the_provider_names_no_name_can_still_sign_out(
    page: Page, customer: str, subscription: str, shown: str
) -> None:
    """Named by `name`, else `preferred_username`, else `email`, or not at all; Sign out
    is there whichever."""
    open_basket(page, customer, subscription=subscription)
    expect(page.locator(".header__who")).to_have_text(shown)
    check_page(page, f"header-signed-in-{customer}")
    press(page, "Sign out")
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"],
)
def test_sign_in_only_returns_to_this_site(page: Page, base_url: str, target: str) -> None:
    page.goto("/signin?" + urlencode({"next": target}))
    sign_in(page, "alice")
    assert urlsplit(page.url).netloc == urlsplit(base_url).netloc
    assert urlsplit(page.url).path == "/basket"  # the default step, not the given target


@pytest.fixture(scope="module")
def impatient_app(app_env: dict[str, str]) -> Iterator[Service]:
    """The app with a limit of one checkout start a minute, in its own key space."""
    env = {
        **app_env,
        "CHECKOUT_RATE_LIMIT_CREATE": "1/60",
        "CHECKOUT_REDIS_KEY_PREFIX": app_env["CHECKOUT_REDIS_KEY_PREFIX"] + "-impatient",
    }
    service = app_service(free_port(), env).start(quiet=True)
    yield service
    service.stop()


def test_too_many_attempts_ask_to_wait_a_minute(
    page: Page, sandbox: Sandbox, impatient_app: Service
) -> None:
    start = impatient_app.url + link()
    within_one_window(60)
    page.goto(start)
    press(page, "Continue to checkout")  # the first one is fine: off to sign in
    page.goto(start)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Continue to checkout").click()
    assert navigation.value is not None and navigation.value.status == 429
    heading(page).to_have_text("Sorry, there have been too many attempts")
    expect(page.get_by_text("Wait a minute, then try again.")).to_be_visible()
    check_page(page, "error-too-many-requests")
