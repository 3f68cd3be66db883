"""The journey in Welsh, in a real browser: chosen on the link, kept through the sign-in at
the provider (whose page speaks Welsh too), switched back to English from any page; and the
problem pages a customer may meet. Every page checked by axe and photographed at both
widths (test-results/screenshots/cy-*.png)."""

from __future__ import annotations

from typing import Any

from babel.dates import format_date
from playwright.sync_api import Browser, Page, expect

from tests.conftest import Sandbox
from tests.e2e.conftest import (
    EFFECTIVE,
    check_page,
    expire_baskets,
    heading,
    link,
    only_order,
    press,
    tag,
)

EFFECTIVE_CY = format_date(EFFECTIVE, "d MMMM y", locale="cy")


def lang(page: Page) -> str:
    return str(page.locator("html").get_attribute("lang"))


def sign_in_in_welsh(page: Page, customer: str = "alice") -> None:
    """The provider's page, asked for in Welsh (ui_locales)."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Mewngofnodi i Partner TV")
    assert lang(page) == "cy"
    page.locator(f"#customer-{customer}").check()
    press(page, "Mewngofnodi")


def test_alice_changes_her_plan_in_welsh_from_a_welsh_link(page: Page, sandbox: Sandbox) -> None:
    page.goto(link(lang="cy"))
    assert lang(page) == "cy"
    heading(page).to_have_text("Ychwanegu Chwaraeon at eich cynllun")
    expect(page.get_by_text("Chwaraeon: £8 y mis yn fwy.")).to_be_visible()
    english = page.get_by_role("link", name="English")
    expect(english).to_have_attribute("hreflang", "en")
    expect(english).to_have_attribute("lang", "en")
    check_page(page, "cy-01-start")

    press(page, "Parhau i'r til")
    check_page(page, "cy-02-sign-in")
    sign_in_in_welsh(page)
    heading(page).to_have_text("Dewiswch eich newidiadau")  # the choice survived the sign-in
    expect(page.get_by_text("Mae gennych 1 ychwanegiad ar eich cynllun.")).to_be_visible()
    expect(tag(page, "Wedi'i awgrymu")).to_be_visible()
    check_page(page, "cy-02-basket")

    press(page, "Tynnu HD Quality")  # HD has no Welsh name at the partner: its English one
    expect(page.get_by_role("status")).to_have_text(
        "Bydd HD Quality yn cael ei dynnu o'ch cynllun."
    )
    press(page, "Ychwanegu Chwaraeon")
    price = f"Nawr: £24 y mis. Ar ôl y newid hwn: £28 y mis, o {EFFECTIVE_CY} ymlaen."
    expect(page.get_by_text(price)).to_be_visible()
    check_page(page, "cy-03-basket-with-changes")

    page.get_by_role("link", name="Parhau").click()
    heading(page).to_have_text("Gwirio eich newid")
    check_page(page, "cy-04-review")

    press(page, "Cadarnhau'r newid")
    heading(page).to_have_text("Mae eich newid wedi'i gadarnhau")
    expect(
        page.get_by_text(f"Mae'n dechrau heddiw. O {EFFECTIVE_CY}, eich bil nesaf")
    ).to_be_visible()
    check_page(page, "cy-05-confirmation")
    assert only_order(sandbox.orders())["customerId"] == "alice"

    page.get_by_role("link", name="English").click()  # the same page, in English
    heading(page).to_have_text("Your change is confirmed")
    assert lang(page) == "en"
    expect(page.get_by_role("link", name="Cymraeg")).to_have_attribute("hreflang", "cy")


def test_a_welsh_browser_gets_welsh_and_a_french_one_english(
    browser: Browser, base_url: str
) -> None:
    for locale, expected, title in (
        ("cy-GB", "cy", "Newid eich tanysgrifiad"),
        ("fr-FR", "en", "Change your subscription"),
    ):
        context = browser.new_context(locale=locale, base_url=base_url)
        page = context.new_page()
        page.goto("/")
        assert lang(page) == expected
        heading(page).to_have_text(title)
        context.close()


def test_the_problem_pages_speak_welsh(page: Page, sandbox: Sandbox) -> None:
    response = page.goto(link("SUB-2002", lang="cy"))
    assert response is not None and response.status == 409
    heading(page).to_have_text("Mae gennych newid ar y gweill yn barod")
    expect(page.locator("main")).to_contain_text(f"o {EFFECTIVE_CY} ymlaen")
    check_page(page, "cy-error-locked")

    response = page.goto("/no-such-page?lang=cy")
    assert response is not None and response.status == 404
    heading(page).to_have_text("Heb ddod o hyd i'r dudalen")
    check_page(page, "cy-error-page-not-found")

    page.goto(link(lang="cy"))
    press(page, "Parhau i'r til")
    sign_in_in_welsh(page)
    press(page, "Ychwanegu Plant")
    page.get_by_role("link", name="Parhau").click()
    sandbox.fault("error", count=1, path="/backend/v1/orders")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Cadarnhau'r newid").click()
    assert navigation.value is not None and navigation.value.status == 502
    heading(page).to_have_text("Mae'n ddrwg gennym, nid yw'r gwasanaeth ar gael")
    expect(page.get_by_text("felly does dim byd wedi newid")).to_be_visible()
    check_page(page, "cy-error-unavailable")


def test_expired_changes_are_explained_in_welsh(page: Page, redis_client: Any, keys: Any) -> None:
    page.goto(link(lang="cy"))
    press(page, "Parhau i'r til")
    sign_in_in_welsh(page)
    press(page, "Ychwanegu Plant")
    expire_baskets(redis_client, keys)
    response = page.reload()
    assert response is not None and response.status == 404
    heading(page).to_have_text("Mae eich newidiadau wedi dod i ben")
    check_page(page, "cy-error-expired")
    page.get_by_role("link", name="Dechrau eto").click()
    heading(page).to_have_text("Ychwanegu Chwaraeon at eich cynllun")  # the link, in Welsh
