"""The happy path in a real browser: from a marketing link to a confirmed change."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.conftest import Sandbox
from tests.e2e.conftest import (
    EFFECTIVE_TEXT,
    ORDER_REFERENCE,
    REFERRER,
    TRACKING,
    check_page,
    heading,
    link,
    only_order,
    open_basket,
    page_weight,
    press,
    sign_in,
    tag,
)


def test_alice_changes_her_plan_from_a_marketing_link(
    page: Page, browser: Browser, base_url: str, sandbox: Sandbox
) -> None:
    console_errors: list[str] = []  # a CSP violation, a 404 favicon, a script error

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and message.location["url"].startswith(base_url):
            console_errors.append(f"{message.location['url']}: {message.text}")

    page.on("console", on_console)  # (the sandbox's sign-in page has no favicon: not ours)
    response = page.goto(link(), referer=REFERRER)
    assert response is not None and response.status == 200
    heading(page).to_have_text("Add Sports to your plan")
    expect(page.get_by_text("Sports: £8 a month more.")).to_be_visible()
    check_page(page, "01-start")

    press(page, "Continue to checkout")
    sign_in(page, "alice")
    heading(page).to_have_text("Choose your changes")
    expect(page.get_by_text("Now: £24 a month.")).to_be_visible()
    # The suggested offer comes first among the offers to add.
    first_offer = page.locator("#offers ~ ul .offer").first
    expect(first_offer).to_contain_text("Sports")
    expect(first_offer).to_contain_text("Suggested")
    check_page(page, "02-basket")
    assert first_load_of_basket(browser, page, base_url) < 100_000

    press(page, "Remove HD Quality")
    expect(page.get_by_role("status")).to_have_text("HD Quality will be removed from your plan.")
    expect(tag(page, "Removing")).to_be_visible()
    press(page, "Add Sports")
    price = f"Now: £24 a month. After this change: £28 a month, from {EFFECTIVE_TEXT}."
    expect(page.get_by_text(price)).to_be_visible()
    check_page(page, "03-basket-with-changes")

    page.get_by_role("link", name="Continue").click()
    heading(page).to_have_text("Check your change")
    expect(page.get_by_text("Nothing changes until you confirm.")).to_be_visible()
    check_page(page, "04-review")

    press(page, "Confirm change")
    heading(page).to_have_text("Your change is confirmed")
    reference = ORDER_REFERENCE.search(page.locator(".panel").inner_text())
    assert reference is not None
    expect(
        page.get_by_text(
            f"It starts today. From {EFFECTIVE_TEXT}, your next bill, you will pay £28 a month."
        )
    ).to_be_visible()
    check_page(page, "05-confirmation")

    order = only_order(sandbox.orders())
    assert order["orderId"] == reference.group(0)
    assert order["customerId"] == "alice"
    assert [o["id"] for o in order["addOffers"]] == ["OFFER-SPORTS"]
    assert [o["id"] for o in order["removeOffers"]] == ["OFFER-HD"]
    assert order["tracking"] == TRACKING  # exactly what the link carried
    assert order["referrer"] == REFERRER

    page.reload()  # the confirmation is rendered from the stored order
    heading(page).to_have_text("Your change is confirmed")
    expect(page.locator(".panel")).to_contain_text(reference.group(0))
    assert console_errors == []


def first_load_of_basket(browser: Browser, page: Page, base_url: str) -> int:
    """The basket page in a cold cache (same cookies), in bytes over the network."""
    cold = browser.new_context(storage_state=page.context.storage_state(), base_url=base_url)
    try:
        cold_page = cold.new_page()
        cold_page.goto("/basket")
        cold_page.wait_for_load_state("load")
        weight = page_weight(cold_page)
        print(f"first load of the basket page: {weight} bytes")
        return weight
    finally:
        cold.close()


def _review_with_sports(page: Page) -> None:
    open_basket(page)
    press(page, "Add Sports")
    page.get_by_role("link", name="Continue").click()
    heading(page).to_have_text("Check your change")


def test_a_double_click_on_confirm_places_one_order(page: Page, sandbox: Sandbox) -> None:
    _review_with_sports(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm change").dblclick()
    heading(page).to_have_text("Your change is confirmed")
    order = only_order(sandbox.orders())
    assert order["submissions"] == 1


def test_back_after_confirmation_does_not_submit_again(page: Page, sandbox: Sandbox) -> None:
    _review_with_sports(page)
    press(page, "Confirm change")
    heading(page).to_have_text("Your change is confirmed")

    page.go_back()  # to the review page, which now sends a completed basket onwards
    heading(page).to_have_text("Your change is confirmed")
    assert page.url.endswith("/confirmation")
    page.go_back()
    heading(page).to_have_text("Your change is confirmed")
    order = only_order(sandbox.orders())
    assert order["submissions"] == 1


def test_a_price_that_moved_before_confirming_is_shown_and_confirmed_at_the_new_price(
    page: Page, sandbox: Sandbox
) -> None:
    _review_with_sports(page)
    expect(
        page.get_by_text(re.compile(r"you agree to pay £[0-9.]+ today and £32 a month"))
    ).to_be_visible()
    sandbox.set_price("9.00", offer="OFFER-SPORTS")  # the partner's price rises meanwhile

    press(page, "Confirm change")
    heading(page).to_have_text("Check your change")
    summary = page.locator("[data-error-summary]")
    expect(summary).to_contain_text(
        "The price has changed: it is now £33 a month, not £32. Check it and confirm again."
    )
    expect(summary).to_be_focused()
    expect(
        page.get_by_text(re.compile(r"you agree to pay £[0-9.]+ today and £33 a month"))
    ).to_be_visible()
    check_page(page, "04-review-price-changed")
    assert sandbox.orders() == []

    press(page, "Confirm change")
    heading(page).to_have_text("Your change is confirmed")
    expect(page.get_by_text("your next bill, you will pay £33 a month.")).to_be_visible()
    assert only_order(sandbox.orders())["newPrice"] == {"amount": "33.00", "currency": "GBP"}


def test_a_form_in_an_older_tab_shows_the_basket_as_it_is_now(page: Page, sandbox: Sandbox) -> None:
    open_basket(page)
    newer = page.context.new_page()  # the same customer, in a second tab
    newer.goto("/basket")
    press(newer, "Add Kids")
    expect(tag(newer, "Adding")).to_have_count(1)

    press(page, "Add Sports")  # from the first tab, which still shows the basket before
    expect(page.get_by_role("status")).to_have_text(
        "Your basket was changed in another window. Here it is now."
    )
    expect(page.locator(".offer", has=tag(page, "Adding"))).to_contain_text("Kids")
    check_page(page, "03-basket-changed-elsewhere")
    newer.close()
