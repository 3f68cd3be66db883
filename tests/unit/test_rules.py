"""The checkout's rules and the small pieces they rest on, with no network."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from app.adapters.baskets import decode, encode
from app.checkout import Basket
from app.checkout.errors import InvalidRequest
from app.checkout.rules import _with_choices, idempotency_key
from app.checkout.tracking import capture, clean_referrer, clean_text
from app.checkout.values import Money, Offer, Order, Subscription, is_id

GBP = "GBP"


def offer(offer_id: str, amount: str = "4.00") -> Offer:
    return Offer(offer_id, offer_id.title(), Money(Decimal(amount), GBP))


def basket(**changes: object) -> Basket:
    now = time.time()
    fields: dict[str, object] = dict(
        basket_id="b" * 43,
        customer_id="alice",
        subscription_id="SUB-1001",
        plan=offer("PLAN-STANDARD", "20.00"),
        active_offers=(offer("OFFER-HD"),),
        eligible_offers=(offer("OFFER-SPORTS", "8.00"), offer("OFFER-KIDS", "3.00")),
        current_price=Money(Decimal("24.00"), GBP),
        new_price=Money(Decimal("24.00"), GBP),
        effective_date="2026-12-01",
        snapshot_at=now,
        created_at=now,
    )
    fields.update(changes)
    return Basket(**fields)  # type: ignore[arg-type]


def ids(offers: tuple[Offer, ...]) -> list[str]:
    return [o.id for o in offers]


def test_one_offer_to_add_the_newest_choice_wins():
    chosen = _with_choices(basket(), ["OFFER-SPORTS"], [])
    chosen = _with_choices(chosen, ["OFFER-KIDS"], [])
    assert ids(chosen.add_offers) == ["OFFER-KIDS"]


def test_removing_a_chosen_offer_unchooses_it_and_adding_back_keeps_an_active_one():
    chosen = _with_choices(basket(), ["OFFER-SPORTS"], ["OFFER-HD"])
    assert (ids(chosen.add_offers), ids(chosen.remove_offers)) == (["OFFER-SPORTS"], ["OFFER-HD"])
    undone = _with_choices(chosen, ["OFFER-HD"], ["OFFER-SPORTS"])
    assert (undone.add_offers, undone.remove_offers) == ((), ())


def test_removing_twice_is_harmless_and_adding_an_active_offer_changes_nothing():
    chosen = _with_choices(_with_choices(basket(), [], ["OFFER-HD"]), [], ["OFFER-HD"])
    assert ids(chosen.remove_offers) == ["OFFER-HD"]
    assert _with_choices(basket(), ["OFFER-HD"], []).add_offers == ()


@pytest.mark.parametrize(
    ("add", "remove"), [(["OFFER-NOPE"], []), ([], ["OFFER-SPORTS"]), ([], ["OFFER-NOPE"])]
)
def test_offers_the_subscription_cannot_take_are_refused(add, remove):
    with pytest.raises(InvalidRequest):
        _with_choices(basket(), add, remove)


def test_the_idempotency_key_follows_the_basket_and_its_changes():
    one = _with_choices(basket(), ["OFFER-SPORTS"], [])
    other = _with_choices(basket(), ["OFFER-KIDS"], [])
    assert idempotency_key(one) == idempotency_key(_with_choices(basket(), ["OFFER-SPORTS"], []))
    assert idempotency_key(one) != idempotency_key(other)
    assert idempotency_key(one).startswith(one.basket_id)


def test_the_idempotency_key_covers_the_price_agreed_but_not_the_quote_naming_it():
    """A renewed quote at the same price must find an order a lost answer made; a
    confirmation at a new price is another order attempt."""
    from dataclasses import replace

    one = replace(_with_choices(basket(), ["OFFER-SPORTS"], []), quote_id="Q-1")
    renewed = replace(one, quote_id="Q-2", quote_expires_at=time.time() + 600)
    dearer = replace(renewed, new_price=Money(Decimal("29.00"), GBP))
    assert idempotency_key(renewed) == idempotency_key(one)
    assert idempotency_key(dearer) != idempotency_key(one)


def round_trip(original: Basket) -> Basket:
    """The basket as the store writes it and reads it back."""
    read = decode(encode(original))
    assert read is not None
    return read


def test_a_basket_survives_its_storage_round_trip():
    from dataclasses import replace

    original = _with_choices(
        basket(tracking={"utm_source": "mail"}, referrer="https://a.example/"),
        ["OFFER-SPORTS"],
        ["OFFER-HD"],
    )
    assert round_trip(original) == original
    done = replace(original, order=Order("ORD-1", "2026-12-01", Money(Decimal("28.00"), GBP)))
    assert round_trip(done) == done


def test_a_basket_stored_by_the_release_before_still_reads():
    """A deploy must not lose the baskets customers are filling: the stored form is the
    one earlier releases wrote (camelCase), and fields it lacked take their defaults."""
    import json

    earlier = {
        "version": 3, "basketId": "b1", "customerId": "alice", "subscriptionId": "SUB-1001",
        "status": "open", "effectiveDate": "2026-12-01", "snapshotAt": 1.0, "createdAt": 1.0,
        "updatedAt": 2.0, "expiresAt": 3.0, "suggestedOffer": None, "referrer": None,
        "tracking": {"utm_source": "mail"}, "pendingChange": None, "completingSince": None,
        "order": None, "activeOffers": [], "eligibleOffers": [], "addOffers": [],
        "removeOffers": [],
        "plan": {"id": "PLAN-STANDARD", "name": "Standard", "description": "",
                 "price": {"amount": "20.00", "currency": "GBP"}},
        "currentPrice": {"amount": "24.00", "currency": "GBP"},
        "newPrice": {"amount": "24.00", "currency": "GBP"},
    }  # fmt: skip
    read = decode(json.dumps(earlier))
    assert read is not None
    assert (read.version, read.tracking, read.quote_id, read.changed) == (
        3,
        {"utm_source": "mail"},
        None,
        False,
    )
    assert json.loads(encode(read)).keys() >= earlier.keys()  # and written the same way


def test_partners_see_the_same_basket_before_and_after_it_is_stored():
    """Money stays a decimal string with its currency through the stored JSON."""
    from dataclasses import replace

    from app.api.schemas import BasketAnswer, answer

    chosen = _with_choices(basket(referrer="https://a.example/"), ["OFFER-SPORTS"], ["OFFER-HD"])
    done = replace(chosen, order=Order("ORD-1", "2026-12-01", Money(Decimal("28.5"), GBP)))
    for each in (chosen, done):
        as_data = answer(round_trip(each), "stored")["basket"]
        assert as_data == answer(each, "stored")["basket"]
        BasketAnswer.model_validate({"message": "stored", "basket": as_data})  # as described
        assert as_data["totals"]["new"]["amount"].count(".") == 1
        assert as_data["checkoutCompleted"] is (each.status == "completed")


def test_money_is_strict_and_formats_as_a_decimal_string():
    assert Money.parse({"amount": "8", "currency": "GBP"}).to_json() == {
        "amount": "8.00",
        "currency": "GBP",
    }
    bad: object
    for bad in (
        {"amount": 8.0, "currency": "GBP"},
        {"amount": "NaN", "currency": "GBP"},
        {"amount": "-1", "currency": "GBP"},
        {"amount": "1", "currency": "pounds"},
        [],
    ):
        with pytest.raises(ValueError):
            Money.parse(bad)


def test_a_subscription_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError):
        Subscription.parse({"id": 42, "plan": "x"})
    with pytest.raises(ValueError):
        Subscription.parse(["not", "an", "object"])


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("SUB-1001", True),
        ("OFFER-HD", True),
        ("", False),
        ("../x", False),
        ("a b", False),
        ("<script>", False),
        ("x" * 65, False),
        (5, False),
    ],
)
def test_ids_are_short_and_inert(value, ok):
    assert is_id(value) is ok


def test_tracking_keeps_utm_and_click_ids_bounded():
    pairs = [
        ("utm_source", "mail"),
        ("UTM_MEDIUM", "email"),
        ("gclid", "x\x00y\r\nz"),
        ("session", "secret"),
        ("utm_source", "second"),
    ]
    pairs += [(f"utm_extra{i}", "v" * 400) for i in range(30)]
    kept = capture(pairs)
    assert kept["utm_source"] == "mail" and kept["utm_medium"] == "email"
    assert kept["gclid"] == "xyz"
    assert "session" not in kept
    assert len(kept) == 20 and all(len(v) <= 256 for v in kept.values())


def test_referrers_must_be_http_urls():
    assert clean_referrer("https://partner.example/a?b=c") == "https://partner.example/a?b=c"
    for bad in ("javascript:alert(1)", "data:text/html,x", "/relative", "", None, "http://"):
        assert clean_referrer(bad) is None
    assert clean_text("a\u202eb\tc", 10) == "abc"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/basket\r\nSet-Cookie: x=1",
        "basket",
        "",
        None,
        "/" + "a" * 5000,
    ],
)
def test_sign_in_never_returns_to_another_site(target):
    from app.pages.signin import safe_next

    assert safe_next(target, "/basket") == "/basket"


def test_sign_in_returns_to_a_same_origin_path():
    from app.pages.signin import safe_next

    assert safe_next("/review?x=1", "/basket") == "/review?x=1"
