"""Browser fixtures: a real Chromium against the app and the sandbox running as processes.

Debian's /usr/bin/chromium when it is installed, else Playwright's own download. Every
page a test visits can be audited with axe-core and photographed at 1280 and 360 px wide
(`check_page`); the pictures land in test-results/screenshots/, printed at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, Playwright, expect

from app.adapters.storage import Keys
from sandbox.data import first_of_next_month
from sandbox.stack import Service

# Generous waits: two workers, two browsers, the app and the sandbox share two cores.
expect.set_options(timeout=15_000)
ROOT = Path(__file__).resolve().parents[2]
from tests.conftest import SCREENSHOTS  # noqa: E402

DEBIAN_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = (1280, 360)
NARROWEST = 320  # WCAG 1.4.10: no sideways scrolling down to 320 CSS px

TRACKING = {
    "utm_source": "newsletter",
    "utm_medium": "email",
    "utm_campaign": "autumn-sports",
    "utm_content": "hero-button",
    "gclid": "Cj0KCQiA",
}
REFERRER = "https://partner.example/deals?week=48"
EFFECTIVE = first_of_next_month()
EFFECTIVE_TEXT = f"{EFFECTIVE.day} {EFFECTIVE:%B %Y}"


def link(subscription: str = "SUB-1001", offer: str | None = "OFFER-SPORTS", **extra: str) -> str:
    """A marketing link, as an email would carry it."""
    params = {"subscription": subscription, **({"offer": offer} if offer else {})}
    return "/start?" + urlencode({**params, **TRACKING, **extra})


# -- the browser -----------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # once per run, before any worker starts
        shutil.rmtree(SCREENSHOTS, ignore_errors=True)


@pytest.fixture(scope="session")
def delete_output_dir() -> None:
    """pytest-playwright's would delete screenshots another worker has already written."""


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, Any], browser_name: str | None, playwright: Playwright
) -> dict[str, Any]:
    args = dict(browser_type_launch_args)
    if browser_name in (None, "chromium"):
        args["args"] = [*args.get("args", []), *CHROMIUM_ARGS]
        if os.path.exists(DEBIAN_CHROMIUM):
            args["executable_path"] = DEBIAN_CHROMIUM
        elif not os.path.exists(playwright.chromium.executable_path):
            pytest.fail(
                "No Chromium for the browser tests: `apt-get install chromium` (Debian) "
                "or `python -m playwright install chromium`",
                pytrace=False,
            )
    return args


@pytest.fixture(scope="session")
def app_env(app_env: dict[str, str]) -> dict[str, str]:
    """Every test here is the same customer at the same address, far faster than a person:
    the rate limits are raised (one test lowers them again to see the page)."""
    return {
        **app_env,
        "CHECKOUT_RATE_LIMIT_CREATE": "1000/60",
        "CHECKOUT_RATE_LIMIT_UPDATE": "1000/60",
    }


@pytest.fixture(scope="session")
def base_url(app_server: Service) -> str:
    return app_server.url


@pytest.fixture
def page(page: Page, sandbox: Any) -> Iterator[Page]:
    """A fresh browser tab, with the sandbox's demo data reset."""
    page.set_default_timeout(20_000)
    page.set_default_navigation_timeout(30_000)
    yield page


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def keys(app_env: dict[str, str]) -> Keys:
    """The keys of this worker's app (each worker has its own prefix)."""
    return Keys(app_env["CHECKOUT_REDIS_KEY_PREFIX"])


# -- looking at pages ------------------------------------------------------------------

_axe = Axe()


def check_page(page: Page, name: str) -> None:
    """No axe violations, no sideways scrolling on a phone, and a screenshot at each width."""
    results = _axe.run(
        page,
        options={"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]},
    )
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"
    page.set_viewport_size({"width": NARROWEST, "height": 800})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} scrolls sideways at {NARROWEST} px"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 800})


def page_weight(page: Page) -> int:
    """Bytes the page and its resources took over the network, the reCAPTCHA script aside."""
    return int(
        page.evaluate(
            """() => [...performance.getEntriesByType("navigation"),
                      ...performance.getEntriesByType("resource")]
                .filter((entry) => !entry.name.includes("/recaptcha/"))
                .reduce((sum, entry) => sum + entry.transferSize, 0)"""
        )
    )


def press(page: Page, name: str, *, exact: bool = False) -> None:
    """Press a button that submits after JavaScript work (the reCAPTCHA token).

    Not before the page's deferred scripts have run (they do before DOMContentLoaded): a
    press in the moment between the page showing and checkout.js adding the token sends
    the form without one, and the checkout rightly answers with its bot-check page.
    """
    page.wait_for_load_state("domcontentloaded")
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=exact).click()


def sign_in(page: Page, customer: str = "alice") -> None:
    """On the sandbox's sign-in page: pick the demo customer, press "Sign in"."""
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in")
    page.locator(f"#customer-{customer}").check()
    press(page, "Sign in")


def open_basket(page: Page, customer: str = "alice", **link_options: Any) -> None:
    """From the marketing link to the basket page, signed in."""
    page.goto(link(**link_options), referer=REFERRER)
    press(page, "Continue to checkout")
    sign_in(page, customer)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose your changes")


def heading(page: Page) -> Any:
    return expect(page.get_by_role("heading", level=1))


# -- reaching into the app's state, as an operator could ----------------------------------


def session_key(page: Page, keys: Keys) -> str:
    """The Redis key of this browser's server-side session (the cookie holds `id.signature`)."""
    cookie = next(c for c in page.context.cookies() if c["name"] == "checkout_session")
    return keys.signin(cookie["value"].rsplit(".", 1)[0])


def rewrite_session(page: Page, client: redis.Redis, keys: Keys, change: Any) -> None:
    """Apply `change(dict)` to this browser's session, as time or an operator might."""
    key = session_key(page, keys)
    data = json.loads(client.get(key) or b"{}")
    change(data)
    client.set(key, json.dumps(data), keepttl=True)


def expire_baskets(client: redis.Redis, keys: Keys) -> None:
    """Delete every basket of this worker's app, as if their TTL ran out."""
    for key in client.scan_iter(match=keys.baskets()):
        client.delete(key)


def tag(page: Page, text: str) -> Any:
    """The "Adding" / "Removing" / "Suggested" label of an offer."""
    return page.locator(".tag", has_text=text)


def only_order(orders: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(orders) == 1, orders
    return orders[0]


ORDER_REFERENCE = re.compile(r"ORD-[0-9A-F]{8}")
