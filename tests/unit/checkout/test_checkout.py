"""The rules (`Checkout`) in-process, on an in-memory store and a stub backend: no Redis,
no sandbox, no Flask. The same rules over the real ones: tests/integration/test_api.py."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from app.checkout import Checkout
from app.checkout.errors import (
    BasketChanged,
    BasketCompleted,
    BasketNotFound,
    InvalidRequest,
    MultipleAddOffers,
    NothingToConfirm,
    PriceChanged,
    PromoInvalid,
    SubscriptionLocked,
    SubscriptionNotFound,
    UpstreamError,
)
from app.checkout.events import (
    BasketCreated,
    BasketFound,
    Event,
    FirstChange,
    OrderPlaced,
    OrderRecorded,
)
from app.checkout.values import PendingChange
from tests.unit.checkout.fakes import MemoryStore, StubBackend, subscription


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def backend() -> StubBackend:
    stub = StubBackend()
    stub.add(subscription("SUB-1", "alice"))
    stub.add(subscription("SUB-2", "bob", pending=PendingChange("Downgrade", "2027-01-01")))
    return stub


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def checkout(store: MemoryStore, backend: StubBackend, events: list[Event]) -> Checkout:
    return Checkout(store, backend, snapshot_max_age=300, submit_budget=1.0, announce=events.append)


def kinds(events: list[Event]) -> list[str]:
    return [type(event).__name__ for event in events if not isinstance(event, BasketFound)]


# -- the pending-change lock ------------------------------------------------------------------


def test_a_subscription_with_a_pending_change_cannot_be_checked_out(checkout: Checkout):
    with pytest.raises(SubscriptionLocked) as locked:
        checkout.create("bob", "SUB-2")
    assert locked.value.extra["pendingChange"] == {
        "description": "Downgrade",
        "effectiveDate": "2027-01-01",
    }


def test_a_pending_change_that_appears_later_locks_the_basket(
    checkout: Checkout, backend: StubBackend
):
    basket = checkout.create("alice", "SUB-1")
    backend.subscriptions["SUB-1"] = subscription(
        "SUB-1", "alice", pending=PendingChange("Upgrade", "2027-01-01")
    )
    with pytest.raises(SubscriptionLocked):  # the backend refuses to quote it
        checkout.change("alice", basket.basket_id, ["OFFER-SPORTS"], [])
    checkout.snapshot_max_age = 0  # a read now asks the backend again, and keeps its word
    assert checkout.load("alice", basket.basket_id).pending_change is not None


# -- one offer to add -----------------------------------------------------------------------


def test_one_offer_to_add_and_the_newest_choice_wins(checkout: Checkout):
    basket = checkout.create("alice", "SUB-1")
    with pytest.raises(MultipleAddOffers):
        checkout.change("alice", basket.basket_id, ["OFFER-SPORTS", "OFFER-KIDS"], [])
    checkout.change("alice", basket.basket_id, ["OFFER-SPORTS"], [])
    changed = checkout.change("alice", basket.basket_id, ["OFFER-KIDS"], [])
    assert [o.id for o in changed.add_offers] == ["OFFER-KIDS"]
    assert changed.new_price.amount == Decimal("27.00")  # 24 + Kids 3, priced by the backend


def test_one_change_removes_at_most_the_offers_the_setting_allows(
    store: MemoryStore, backend: StubBackend
):
    capped = Checkout(store, backend, snapshot_max_age=300, submit_budget=1, max_remove_offers=0)
    basket = capped.create("alice", "SUB-1")
    with pytest.raises(InvalidRequest, match="at most 0"):
        capped.change("alice", basket.basket_id, [], ["OFFER-HD"])
    assert store.get(basket.basket_id) == basket  # nothing changed


def test_an_offer_the_subscription_cannot_take_is_refused(checkout: Checkout):
    basket = checkout.create("alice", "SUB-1")
    with pytest.raises(InvalidRequest):
        checkout.change("alice", basket.basket_id, ["OFFER-NOPE"], [])


# -- ownership --------------------------------------------------------------------------------


def test_a_basket_is_only_its_customers(checkout: Checkout):
    basket = checkout.create("alice", "SUB-1")
    with pytest.raises(BasketNotFound):
        checkout.load("mallory", basket.basket_id)
    with pytest.raises(BasketNotFound):
        checkout.change("mallory", basket.basket_id, ["OFFER-SPORTS"], [])
    with pytest.raises(BasketNotFound):
        checkout.complete("mallory", basket.basket_id)
    with pytest.raises(SubscriptionNotFound):
        checkout.create("mallory", "SUB-1")  # another customer's subscription


# -- completion, once ---------------------------------------------------------------------------


def test_completion_submits_once_whatever_the_retries(
    checkout: Checkout, backend: StubBackend, events: list[Event]
):
    basket = checkout.create("alice", "SUB-1")
    checkout.change("alice", basket.basket_id, ["OFFER-SPORTS"], ["OFFER-HD"])
    done = checkout.complete("alice", basket.basket_id)
    again = checkout.complete("alice", basket.basket_id)
    assert done.completed and again.order == done.order
    assert len(backend.orders) == 1 and backend.submissions == 1
    assert kinds(events) == ["BasketCreated", "FirstChange", "OrderPlaced", "OrderRecorded"]
    with pytest.raises(BasketCompleted):
        checkout.change("alice", basket.basket_id, ["OFFER-KIDS"], [])


def test_an_order_whose_answer_was_lost_is_found_again_not_made_twice(
    checkout: Checkout, backend: StubBackend
):
    basket = checkout.create("alice", "SUB-1")
    checkout.change("alice", basket.basket_id, ["OFFER-SPORTS"], [])
    backend.lose_next_answer = True
    with pytest.raises(UpstreamError):
        checkout.complete("alice", basket.basket_id)
    assert checkout.load("alice", basket.basket_id).status == "open"  # given back, to retry
    done = checkout.complete("alice", basket.basket_id)
    assert len(backend.orders) == 1 and backend.submissions == 2
    assert done.order == next(iter(backend.orders.values()))


def test_parallel_completions_get_one_order(checkout: Checkout, backend: StubBackend):
    basket = checkout.create("alice", "SUB-1")
    checkout.change("alice", basket.basket_id, ["OFFER-KIDS"], [])
    answers = []

    def confirm() -> None:
        answers.append(checkout.complete("alice", basket.basket_id).order)

    tabs = [threading.Thread(target=confirm) for _ in range(8)]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join()
    assert len(answers) == 8 and len(set(answers)) == 1
    assert len(backend.orders) == 1 and backend.submissions == 1


def test_a_basket_without_changes_has_nothing_to_confirm(checkout: Checkout):
    basket = checkout.create("alice", "SUB-1")
    with pytest.raises(NothingToConfirm):
        checkout.complete("alice", basket.basket_id)


# -- the price confirmed is the price ordered -------------------------------------------------


def test_a_price_that_moved_is_shown_not_ordered_then_confirmed_at_the_new_price(
    checkout: Checkout, backend: StubBackend, events: list[Event]
):
    basket = checkout.create("alice", "SUB-1")
    checkout.change("alice", basket.basket_id, ["OFFER-SPORTS"], [])
    backend.prices["OFFER-SPORTS"] = Decimal("9.00")
    with pytest.raises(PriceChanged) as changed:
        checkout.complete("alice", basket.basket_id)
    assert changed.value.extra["previousTotals"]["new"]["amount"] == "32.00"
    assert changed.value.extra["totals"]["new"]["amount"] == "33.00"
    assert backend.orders == {}
    reopened = checkout.load("alice", basket.basket_id)
    assert (reopened.status, reopened.new_price.amount) == ("open", Decimal("33.00"))
    done = checkout.complete("alice", basket.basket_id)
    assert done.order is not None and done.order.new_price.amount == Decimal("33.00")
    assert [type(e) for e in events].count(OrderRecorded) == 1


# -- versions ---------------------------------------------------------------------------------


def test_a_change_or_confirmation_for_another_version_changes_nothing(
    checkout: Checkout, store: MemoryStore
):
    basket = checkout.create("alice", "SUB-1")
    seen = checkout.change("alice", basket.basket_id, ["OFFER-SPORTS"], [])
    checkout.change("alice", basket.basket_id, [], ["OFFER-HD"])  # another tab
    writes = store.writes
    with pytest.raises(BasketChanged) as refused:
        checkout.change(
            "alice", basket.basket_id, ["OFFER-KIDS"], [], expected_version=seen.version
        )
    assert refused.value.current.version == seen.version + 1
    with pytest.raises(BasketChanged):
        checkout.complete("alice", basket.basket_id, expected_version=seen.version)
    assert store.writes == writes


def test_the_first_change_is_announced_once(checkout: Checkout, events: list[Event]):
    basket = checkout.create("alice", "SUB-1")
    for add in ("OFFER-SPORTS", "OFFER-KIDS", "OFFER-SPORTS"):
        checkout.change("alice", basket.basket_id, [add], [])
    assert [type(e) for e in events].count(FirstChange) == 1
    assert [type(e) for e in events].count(BasketCreated) == 1
    assert OrderPlaced not in {type(e) for e in events}


# -- promotion codes --------------------------------------------------------------------------


def test_a_code_is_applied_priced_and_ordered_and_a_refused_one_changes_nothing(
    checkout: Checkout, backend: StubBackend, store: MemoryStore
):
    basket = checkout.create("alice", "SUB-1")
    with pytest.raises(PromoInvalid) as refused:  # the code needs Kids among the changes
        checkout.change("alice", basket.basket_id, ["OFFER-SPORTS"], [], promo_code="halfkids")
    assert refused.value.why == "not_applicable"
    assert store.get(basket.basket_id) == basket
    with pytest.raises(PromoInvalid) as refused:
        checkout.change("alice", basket.basket_id, [], [], promo_code="NOPE")
    assert refused.value.why == "unknown" and store.get(basket.basket_id) == basket
    chosen = checkout.change("alice", basket.basket_id, ["OFFER-KIDS"], [], promo_code="halfkids")
    assert chosen.new_price.amount == Decimal("25.50")  # 24 + Kids 3 at half price
    assert (chosen.promo_code, chosen.applied_code) == ("HALFKIDS", "HALFKIDS")
    done = checkout.complete("alice", basket.basket_id)
    assert done.order is not None and done.order.new_price.amount == Decimal("25.50")


def test_the_links_code_waits_for_the_offer_it_is_for(checkout: Checkout):
    """A code brought for Kids is kept while the customer chooses something else, and is in
    the price (and the order) only once Kids is chosen."""
    basket = checkout.create("alice", "SUB-1", promo_code="halfkids")
    other = checkout.change("alice", basket.basket_id, ["OFFER-SPORTS"], [])
    assert (other.promo_code, other.applied_code) == ("HALFKIDS", None)
    assert other.new_price.amount == Decimal("32.00")
    kids = checkout.change("alice", basket.basket_id, ["OFFER-KIDS"], [])
    assert kids.applied_code == "HALFKIDS" and kids.new_price.amount == Decimal("25.50")


def test_a_code_is_taken_away_with_none_and_left_alone_by_default(checkout: Checkout):
    basket = checkout.create("alice", "SUB-1")
    coded = checkout.change("alice", basket.basket_id, ["OFFER-KIDS"], [], promo_code="HALFKIDS")
    kept = checkout.change("alice", basket.basket_id, [], ["OFFER-HD"])
    assert (coded.promo_code, kept.promo_code) == ("HALFKIDS", "HALFKIDS")
    removed = checkout.change("alice", basket.basket_id, [], [], promo_code=None)
    assert removed.promo_code is None and removed.new_price.amount == Decimal("23.00")


def test_a_code_that_expires_before_the_confirmation_is_a_price_change(
    checkout: Checkout, backend: StubBackend
):
    basket = checkout.create("alice", "SUB-1")
    checkout.change("alice", basket.basket_id, ["OFFER-KIDS"], [], promo_code="HALFKIDS")
    backend.code_expired = True
    with pytest.raises(PriceChanged) as moved:
        checkout.complete("alice", basket.basket_id)
    after = moved.value.after
    assert after.promo_code is None and after.new_price.amount == Decimal("27.00")
    done = checkout.complete("alice", basket.basket_id)  # confirmed again, at the new price
    assert done.order is not None and done.order.new_price.amount == Decimal("27.00")


def test_an_expired_code_leaves_the_basket_at_its_next_change(
    checkout: Checkout, backend: StubBackend
):
    basket = checkout.create("alice", "SUB-1", promo_code="HALFKIDS")
    backend.code_expired = True
    changed = checkout.change("alice", basket.basket_id, ["OFFER-KIDS"], [])
    assert changed.promo_code is None and changed.new_price.amount == Decimal("27.00")


def test_a_second_press_of_the_same_code_asks_nothing_new(checkout: Checkout):
    basket = checkout.create("alice", "SUB-1", promo_code="HALFKIDS")
    assert checkout.asks_nothing_new(basket, [], [], "HALFKIDS")
    assert checkout.asks_nothing_new(basket, [], [])  # the code left as it is
    assert not checkout.asks_nothing_new(basket, [], [], None)  # taken away: something new
    assert not checkout.asks_nothing_new(basket, ["OFFER-KIDS"], [], "HALFKIDS")
