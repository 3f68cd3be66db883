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
    ],
)
def test_a_baskets_first_touch_names_its_campaign(tracking, referrer, expected):
    assert Touch.of(tracking, referrer) == expected


def test_a_campaigns_field_holds_no_more_than_campaign_source_medium_and_step():
    assert Touch("a", "b", "c").field("started").split("\t") == ["a", "b", "c", "started"]


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
