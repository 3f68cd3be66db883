"""What the header calls a signed-in customer: whatever the provider sends, best first."""

from __future__ import annotations

import pytest

from app.pages.signin import display_name

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("claims", "shown"),
    [
        (
            {"name": "Alice Example", "preferred_username": "alice", "email": "a@x.example"},
            "Alice Example",
        ),
        ({"preferred_username": "alice", "email": "a@x.example"}, "alice"),
        ({"email": "a@x.example"}, "a@x.example"),
        ({"name": "  ", "email": "a@x.example"}, "a@x.example"),
        ({"name": 42, "preferred_username": ["alice"]}, None),
        ({}, None),
    ],
)
def test_the_customer_is_named_by_name_then_username_then_email(claims, shown):
    assert display_name(claims) == shown


def test_a_long_name_is_cut_short():
    assert display_name({"name": "A" * 500}) == "A" * 100
