"""A campaign's deal in a real browser: named on the start page from the link's code, the
price line by line on the basket, review and confirmation pages, a code typed in, refused
and removed. Every page checked by axe and photographed at both widths (promo-*.png)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from tests.conftest import Sandbox
from tests.e2e.conftest import (
    EFFECTIVE_TEXT,
    check_page,
    heading,
    link,
    only_order,
    open_basket,
    press,
    sign_in,
)

DEAL = "Your code SPORTSHALF: Sports at half price for 3 months"


def _today_text() -> str:
    today = datetime.now(UTC).date()  # the sandbox's clock, unless a test set it
    return f"{today.day} {today:%B %Y}"


def test_a_deal_from_the_link_is_named_priced_line_by_line_and_ordered(
    page: Page, sandbox: Sandbox
) -> None:
    page.goto(link(promo="SPORTSHALF"))
    heading(page).to_have_text("Add Sports to your plan")
    expect(page.get_by_text(DEAL)).to_be_visible()
    check_page(page, "promo-01-start")

    press(page, "Continue to checkout")
    sign_in(page, "alice")
    expect(page.get_by_text(DEAL)).to_be_visible()
    press(page, "Remove HD Quality")
    # The code is for Sports: kept, and not in the price until Sports is chosen.
    expect(page.get_by_text("The price does not include it yet: it is for Sports.")).to_be_visible()
    press(page, "Add Sports")
    today = _today_text()
    lines = page.locator(".changes .lines")
    expect(lines).to_contain_text(f"Add Sports: £8 a month more, from {today}")
    expect(lines).to_contain_text(f"Remove HD Quality: £4 a month less, from {EFFECTIVE_TEXT}")
    expect(lines).to_contain_text(
        f"Sports at half price for 3 months: £4 a month off for 3 months, from {today}"
    )
    expect(page.locator(".changes .lines__due")).to_contain_text("Due today: £")
    check_page(page, "promo-02-basket-with-deal")

    page.get_by_role("link", name="Continue").click()
    heading(page).to_have_text("Check your change")
    expect(page.locator(".lines")).to_contain_text("£4 a month off for 3 months")
    expect(page.locator(".lines__due")).to_be_visible()
    check_page(page, "promo-03-review")

    press(page, "Confirm change")
    heading(page).to_have_text("Your change is confirmed")
    expect(page.locator(".lines")).to_contain_text("£4 a month off for 3 months")
    check_page(page, "promo-04-confirmation")
    order = only_order(sandbox.orders())
    assert order["promoCode"] == "SPORTSHALF"
    assert order["tracking"]["promo"] == "SPORTSHALF"  # what the link carried, as it was


def test_a_link_whose_code_cannot_be_used_says_so_and_carries_on(page: Page) -> None:
    page.goto(link(promo="EXPIRED"))
    expect(
        page.get_by_text("The code EXPIRED cannot be used. This code has expired.")
    ).to_be_visible()
    check_page(page, "promo-05-start-code-refused")
    press(page, "Continue to checkout")
    sign_in(page, "alice")
    heading(page).to_have_text("Choose your changes")
    expect(page.get_by_label("Enter a promotion code")).to_have_value("")


def test_a_code_is_typed_refused_applied_and_removed_on_the_basket_page(page: Page) -> None:
    open_basket(page)
    field = page.get_by_label("Enter a promotion code")
    field.fill("EXPIRED")
    press(page, "Apply code")
    heading(page).to_have_text("Choose your changes")
    expect(page).to_have_title(re.compile(r"^Error: "))  # named first, for screen readers
    expect(page.locator("#promo-code-error")).to_contain_text("This code has expired.")
    expect(field).to_have_value("EXPIRED")  # kept, to correct
    expect(field).to_have_attribute("aria-describedby", "promo-code-hint promo-code-error")
    check_page(page, "promo-06-code-refused")

    field.fill("welcome5")
    press(page, "Apply code")
    expect(page.get_by_role("status")).to_contain_text("Code WELCOME5 applied")
    press(page, "Remove HD Quality")
    expect(page.locator(".changes .lines")).to_contain_text("£5 a month off")
    check_page(page, "promo-07-code-applied")

    press(page, "Remove code")
    expect(page.get_by_role("status")).to_have_text("The code was removed.")
    expect(page.locator(".changes .lines")).not_to_contain_text("off")


def test_the_deal_in_welsh(page: Page) -> None:
    page.goto(link(promo="SPORTSHALF", lang="cy"))
    expect(page.get_by_text("Eich cod SPORTSHALF:")).to_be_visible()
    check_page(page, "cy-promo-01-start")
