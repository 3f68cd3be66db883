"""The funnel's attribution and the ops page's arithmetic, without Redis."""

from __future__ import annotations

import pytest

from app.ops.funnel import NONE, Touch
from app.ops.pages import _cell, conversion

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("tracking", "referrer", "expected"),
    [
        ({}, None, Touch(NONE, NONE, NONE)),
        (
            {"utm_campaign": "autumn", "utm_source": "newsletter", "utm_medium": "email"},
            "https://mail.example/x",
            Touch("autumn", "newsletter", "email"),
        ),
        (
            {"utm_campaign": "autumn"},
            "https://deals.example/a?b=c",
            Touch("autumn", "deals.example", "referral"),
        ),
        ({"utm_source": "app"}, "https://deals.example/", Touch(NONE, "app", NONE)),
        ({"utm_campaign": "  "}, None, Touch(NONE, NONE, NONE)),
        ({"utm_campaign": "x" * 300}, None, Touch("x" * 100, NONE, NONE)),
        ({"utm_campaign": "sport", "promo": "sportsHalf"}, None, Touch("sport", code="SPORTSHALF")),
    ],
)
def test_a_baskets_first_touch_names_its_campaign(tracking, referrer, expected):
    assert Touch.of(tracking, referrer) == expected


@pytest.mark.parametrize(
    ("tracking", "code", "expected"),
    [
        ({}, "WELCOME5", "WELCOME5"),  # entered on the basket page, or sent by a partner
        ({"promo": "SPORTSHALF"}, "WELCOME5", "SPORTSHALF"),  # the link's deal comes first
        ({"promo": "EXPIRED"}, None, "EXPIRED"),  # refused, but still what brought them
        ({}, None, NONE),
    ],
)
def test_a_deal_is_counted_by_the_links_code_else_the_baskets(tracking, code, expected):
    assert Touch.of(tracking, None, code).code == expected


def test_a_campaigns_field_holds_no_more_than_campaign_source_medium_code_and_step():
    field = Touch("a", "b", "c", "D").field("started")
    assert field.split("\t") == ["a", "b", "c", "D", "started"]


@pytest.mark.parametrize(
    ("counts", "step", "expected"),
    [
        ({"opened": 10, "started": 5}, "started", "50 %"),
        ({"opened": 10}, "opened", "–"),
        ({"started": 8, "changed": 6}, "changed", "75 %"),  # no sign-in step: the API
        ({"opened": 3, "signed_in": 0, "changed": 0}, "changed", "0 %"),
        ({}, "confirmed", "–"),
    ],
)
def test_conversion_is_of_the_nearest_step_before_that_anyone_reached(counts, step, expected):
    assert conversion(counts, step) == expected


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx"])
def test_a_cell_that_a_spreadsheet_would_run_is_defused(text):
    assert _cell(text) == "'" + text
    assert _cell("autumn-sports") == "autumn-sports"
