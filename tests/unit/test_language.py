"""English and Welsh: how the language is chosen, that every string a customer reads is
translatable, that the Welsh catalogue says all of it, and how money and dates read."""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask import Flask
from flask_babel import ngettext

from app.checkout.values import Money
from app.web.language import local_time, long_date, money, per_month

ROOT = Path(__file__).resolve().parents[2]
WELSH = ROOT / "translations" / "cy" / "LC_MESSAGES" / "messages.po"
CUSTOMER_TEMPLATES = [
    *sorted((ROOT / "templates").glob("*.html")),
    *sorted((ROOT / "templates" / "checkout").glob("*.html")),
    *sorted((ROOT / "templates" / "errors").glob("*.html")),
]
# Words that are the same in every language: the brand.
UNTRANSLATED = {"Partner TV"}


@pytest.fixture
def site() -> Flask:
    """The checkout, not pytest-flask's `app`: pytest-flask pushes one request context for
    the whole test, and its `g` would outlive each request the client makes."""
    from app import create_app

    return create_app()


@pytest.fixture
def browser(site: Flask):
    return site.test_client()


def welsh() -> Any:
    with WELSH.open("rb") as source:
        return read_po(source)


def lang_of(html: str) -> str:
    found = re.search(r'<html lang="([a-z]+)"', html)
    assert found, "no <html lang>"
    return found[1]


# -- choosing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({}, "", "en"),
        ({"Accept-Language": "cy"}, "", "cy"),
        ({"Accept-Language": "cy-GB,cy;q=0.9,en;q=0.5"}, "", "cy"),
        ({"Accept-Language": "fr"}, "", "en"),  # not offered: the default
        ({"Accept-Language": "fr, cy;q=0.2"}, "", "cy"),
        ({"Accept-Language": "cy"}, "?lang=en", "en"),  # the link wins over the browser
        ({}, "?lang=cy", "cy"),
        ({}, "?lang=fr", "en"),  # not offered: ignored
    ],
)
def test_the_link_then_the_browser_then_the_default_choose(browser, headers, query, expected):
    assert lang_of(browser.get("/" + query, headers=headers).text) == expected


def test_a_choice_on_the_link_is_remembered_for_the_visit(browser):
    browser.get("/?lang=cy")
    assert lang_of(browser.get("/", headers={"Accept-Language": "en"}).text) == "cy"
    browser.get("/?lang=en")
    assert lang_of(browser.get("/", headers={"Accept-Language": "cy"}).text) == "en"


def test_every_page_links_to_itself_in_the_other_language(site: Flask):
    for path in ("/", "/?lang=cy", "/no-such-page", "/no-such-page?x=1&lang=cy"):
        html = site.test_client().get(path).text
        link = re.search(
            r'<a class="language__link" href="([^"]+)" hreflang="(\w+)" lang="(\w+)">', html
        )
        assert link, path
        other = "en" if lang_of(html) == "cy" else "cy"
        assert (link[2], link[3]) == (other, other)
        assert link[1].split("?")[0] == path.split("?")[0] and f"lang={other}" in link[1]


def test_the_api_and_the_operators_pages_stay_english(browser):
    welsh = {"Accept-Language": "cy"}
    problem = browser.get("/api/v1/checkout/basket?lang=cy", headers=welsh)
    assert problem.status_code == 401
    assert problem.json["detail"].startswith("Unauthorized")
    assert "language__link" not in browser.get("/ops/funnel?lang=cy", headers=welsh).text


def test_an_unknown_language_is_refused_at_start():
    from app import create_app
    from app.config import ConfigError

    with pytest.raises(ConfigError, match="CHECKOUT_LANGUAGES"):
        create_app({"LANGUAGES": "en,fr"})
    with pytest.raises(ConfigError, match="CHECKOUT_DEFAULT_LANGUAGE"):
        create_app({"LANGUAGES": "en", "DEFAULT_LANGUAGE": "cy"})


# -- formatting -------------------------------------------------------------------------------


def test_money_dates_and_times_read_in_each_language(site: Flask):
    price, pence = Money(Decimal("24.00"), "GBP"), Money(Decimal("1024.50"), "GBP")
    with site.test_request_context("/?lang=en"):
        assert (money(price), money(pence), per_month(price)) == ("£24", "£1,024.50", "£24 a month")
        assert long_date("2026-12-01") == "1 December 2026"
        assert local_time(1_767_265_200) == "11:00am on 1 January 2026"
    with site.test_request_context("/?lang=cy"):
        assert (money(price), money(pence), per_month(price)) == ("£24", "£1,024.50", "£24 y mis")
        assert long_date("2026-12-01") == "1 Rhagfyr 2026"
        assert local_time(1_767_286_800) == "5:00yh ar 1 Ionawr 2026"


def test_welsh_has_six_plural_forms_in_use(site: Flask):
    singular, plural = (
        "You have %(num)d offer on your plan.",
        "You have %(num)d offers on your plan.",
    )
    with site.test_request_context("/?lang=en"):
        assert ngettext(singular, plural, 1) == "You have 1 offer on your plan."
        assert ngettext(singular, plural, 3) == "You have 3 offers on your plan."
    with site.test_request_context("/?lang=cy"):
        forms = {n: ngettext(singular, plural, n) for n in (0, 1, 2, 3, 6, 11)}
    assert forms[0] == "Does gennych ddim ychwanegiadau ar eich cynllun."
    assert forms[3] == "Mae gennych 3 ychwanegiad ar eich cynllun."  # a singular noun
    assert welsh().num_plurals == 6


# -- the catalogue ----------------------------------------------------------------------------


def test_the_welsh_catalogue_says_everything_the_pages_say_and_nothing_is_fuzzy():
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None}
    said = {
        message[2] if isinstance(message[2], str) else tuple(message[2])
        for message in extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)
    }
    catalogue = welsh()
    written = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalogue if m.id}
    assert said - set(written) == set(), (
        "said by the pages, missing in Welsh: run make translations"
    )
    for key in said:
        entry = written[key]
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(strings), f"empty in Welsh: {key}"
        assert not entry.fuzzy, f"fuzzy in Welsh: {key}"
    problems = [(m.id, errors) for m, errors in catalogue.check() if errors]
    assert problems == []  # placeholders and plural forms as the English


def _visible_text(source: str) -> list[str]:
    """What a template shows outside gettext: text between tags, and the attributes people
    read (alt, title, aria-label, placeholder). Jinja's own syntax is taken out first:
    comments, `{% trans %}` blocks (translated), then every other tag and expression."""
    source = re.sub(r"{#.*?#}", "", source, flags=re.S)
    source = re.sub(r"{%-?\s*trans\b.*?endtrans\s*-?%}", " ", source, flags=re.S)
    source = re.sub(r"{{.*?}}|{%.*?%}", "\x00", source, flags=re.S)
    found = re.findall(r'\b(?:alt|title|aria-label|placeholder)="([^"]*[A-Za-z][^"]*)"', source)
    text = re.sub(r"<[^>]*>|&[a-z]+;", " ", source)
    found += re.findall(r"[A-Za-z][^\x00<>]*", text)
    return [t.strip() for t in found if t.strip() and t.strip() not in UNTRANSLATED]


@pytest.mark.parametrize(
    "template", CUSTOMER_TEMPLATES, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_no_template_shows_words_outside_gettext(template: Path):
    assert _visible_text(template.read_text(encoding="utf-8")) == []


def test_the_views_word_nothing_outside_gettext():
    """flash() and a form's errors take translated text, never a bare string."""
    untranslated = []
    for path in (ROOT / "app" / "pages").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "flash",
                "ValidationError",
                "DataRequired",
            ):
                words = node.args[:1]
                if words and isinstance(words[0], ast.Constant | ast.JoinedStr):
                    untranslated.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "errors" for t in node.targets
            ):
                if isinstance(node.value, ast.List) and any(
                    isinstance(e, ast.Constant) for e in node.value.elts
                ):
                    untranslated.append(f"{path.name}:{node.lineno}")
    assert untranslated == []
