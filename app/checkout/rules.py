"""The checkout's rules, shared by the JSON API and the browser pages.

- A basket belongs to the customer who created it; anyone else is told it does not exist.
- A subscription with a pending change cannot be checked out (`SubscriptionLocked`).
- A basket holds at most one offer to add; adding another replaces it.
- Completion submits the change upstream exactly once: the basket moves from `open` to
  `completing` by compare-and-set, so one request wins and the rest wait for its order;
  the order carries an idempotency key derived from the basket, its changes and the price
  agreed, so a retry after a lost answer finds the same order instead of making a second.
- The price confirmed is the price ordered: the order names the backend's quote and the
  price the customer saw. A quote that expired at an unchanged price is renewed without
  asking; a price that moved is shown to the customer (`PriceChanged`), never ordered.
- A caller may say which version of the basket its change is for (`expected_version`:
  the API's If-Match, a page's form); another version refuses the change (`BasketChanged`).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, TypeGuard

from .basket import COMPLETED, COMPLETING, OPEN, Basket, new_basket_id
from .errors import (
    BasketChanged,
    BasketCompleted,
    BasketNotFound,
    CheckoutInProgress,
    InvalidRequest,
    MultipleAddOffers,
    NothingToConfirm,
    OrderNotRecorded,
    PriceChanged,
    PromoInvalid,
    SubscriptionLocked,
    SubscriptionNotFound,
    UpstreamError,
)
from .events import BasketCreated, BasketFound, Event, FirstChange, OrderPlaced, OrderRecorded
from .ports import BasketStore, QuoteNoLongerHolds, StoreUnavailable, SubscriptionBackend
from .values import Offer, Order, PendingChange, Promotion, Quote, Subscription

# A basket holds at most this many offers to add; the API's description says so too.
MAX_ADD_OFFERS = 1
_SAVE_ATTEMPTS = 8
_WAIT_STEP = 0.05
# What the backend may refuse a change with: nothing was accepted, the basket reopens.
_REFUSALS = (UpstreamError, SubscriptionLocked, InvalidRequest, SubscriptionNotFound)


class Keep:
    """`Checkout.change(promo_code=KEEP)`: leave the basket's code as it is."""


KEEP = Keep()


def _ignore(event: Event) -> None:
    pass


def _no_deadline() -> float | None:
    return None


def refuse_if_locked(pending: PendingChange | None) -> None:
    """A subscription with a pending change cannot be checked out."""
    if pending is not None:
        raise SubscriptionLocked(pending)


class Checkout:
    """The rules, over a store and a backend.

    `snapshot_max_age`: seconds a basket's copy of the subscription is trusted for reads.
    `max_remove_offers`: offers one change may remove.
    `submit_budget`: seconds a completion may take upstream before another request may
    take it over. `announce` is told what happened (app/checkout/events.py); `time_left`
    says how long the caller may still wait (the request's deadline), None for no limit.
    """

    def __init__(
        self,
        store: BasketStore,
        backend: SubscriptionBackend,
        *,
        snapshot_max_age: float,
        submit_budget: float,
        max_remove_offers: int = 20,
        announce: Callable[[Event], object] = _ignore,
        time_left: Callable[[], float | None] = _no_deadline,
    ) -> None:
        self.store = store
        self.backend = backend
        self.snapshot_max_age = snapshot_max_age
        self.submit_budget = submit_budget
        self.max_remove_offers = max_remove_offers
        self.announce = announce
        self.time_left = time_left

    # -- create ------------------------------------------------------------------------

    def create(
        self,
        customer_id: str,
        subscription_id: str,
        *,
        referrer: str | None = None,
        tracking: dict[str, str] | None = None,
        suggested_offer: str | None = None,
        promo_code: str | None = None,
        before_save: Callable[[], object] = lambda: None,
    ) -> Basket:
        """`promo_code`: the campaign's code the customer brought (`PromoInvalid` if the
        backend refuses it). `before_save` runs once the subscription is read and before
        anything is written (the caller's bot check, running meanwhile); if it raises,
        nothing is saved."""
        subscription = self.subscription_of(customer_id, subscription_id)
        refuse_if_locked(subscription.pending_change)
        promotion = self.backend.promotion(subscription.id, promo_code) if promo_code else None
        now = time.time()
        eligible = {offer.id for offer in subscription.eligible_offers}
        basket = Basket(
            basket_id=new_basket_id(),
            customer_id=customer_id,
            subscription_id=subscription.id,
            plan=subscription.plan,
            active_offers=subscription.active_offers,
            eligible_offers=subscription.eligible_offers,
            current_price=subscription.recurring_price,
            new_price=subscription.recurring_price,
            effective_date=subscription.next_billing_date,
            snapshot_at=now,
            created_at=now,
            suggested_offer=suggested_offer if suggested_offer in eligible else None,
            referrer=referrer,
            tracking=dict(tracking or {}),
            promotion=promotion,
        )
        before_save()
        # Nobody else can hold a fresh 256-bit id: a basket already there is this very
        # write, sent again by redis-py after a connection failed under it (a failover).
        saved = self.store.save(basket) or self.store.get(basket.basket_id)
        if saved is None or saved.customer_id != customer_id:
            raise CheckoutInProgress("the basket could not be saved; retry")
        self.announce(BasketCreated(saved))
        return saved

    def promotion(self, subscription_id: str, code: str) -> Promotion:
        """The deal a campaign's code stands for on this subscription (a marketing link's,
        before anything is chosen); `PromoInvalid` if it cannot be used."""
        return self.backend.promotion(subscription_id, code)

    def subscription_of(self, customer_id: str | None, subscription_id: str) -> Subscription:
        """The subscription, if it is this customer's (anyone's when `customer_id` is None,
        for a marketing link opened before signing in)."""
        subscription = self.backend.get_subscription(subscription_id)
        if customer_id is not None and subscription.customer_id != customer_id:
            raise SubscriptionNotFound()
        return subscription

    # -- read ----------------------------------------------------------------------------

    def load(
        self,
        customer_id: str,
        basket_id: str | None,
        *,
        refresh: bool = True,
        fresh: bool = False,
    ) -> Basket:
        """The customer's basket; its snapshot of the subscription renewed when stale, or
        now when `fresh` (the backend's names in a language the customer just chose)."""
        found = self.store.get(basket_id) if basket_id else None
        basket = self.owned(customer_id, found)
        stale = refresh and self._stale_snapshot(basket.status, basket.snapshot_at)
        if basket.status == OPEN and (stale or fresh):
            basket = self._refresh(basket)
        return basket

    def _stale_snapshot(self, status: str, snapshot_at: float) -> bool:
        """An open basket's copy of the subscription is renewed once it is this old."""
        return status == OPEN and time.time() - snapshot_at > self.snapshot_max_age

    def owned(self, customer_id: str, basket: Basket | None) -> Basket:
        """Another customer's basket is, to them, no basket at all."""
        if basket is None or basket.customer_id != customer_id:
            raise BasketNotFound()
        self.announce(BasketFound(basket))
        return basket

    def _refresh(self, basket: Basket) -> Basket:
        subscription = self.subscription_of(basket.customer_id, basket.subscription_id)
        active = {o.id for o in subscription.active_offers}
        eligible = {o.id for o in subscription.eligible_offers}
        fresh = replace(
            basket,
            plan=subscription.plan,
            active_offers=subscription.active_offers,
            eligible_offers=subscription.eligible_offers,
            add_offers=tuple(o for o in basket.add_offers if o.id in eligible),
            remove_offers=tuple(o for o in basket.remove_offers if o.id in active),
            current_price=subscription.recurring_price,
            new_price=subscription.recurring_price,
            effective_date=subscription.next_billing_date,
            pending_change=subscription.pending_change,
            snapshot_at=time.time(),
        )
        if not fresh.has_changes or fresh.pending_change is None:
            fresh = self._priced(fresh)
        return self.store.save(fresh) or fresh

    # -- change --------------------------------------------------------------------------

    def change(
        self,
        customer_id: str,
        basket_id: str | None,
        add: Sequence[str],
        remove: Sequence[str],
        *,
        promo_code: str | None | Keep = KEEP,
        current: Basket | None = None,
        expected_version: int | None = None,
        before_save: Callable[[], object] = lambda: None,
    ) -> Basket:
        """Apply the customer's choices; the backend prices them (and rejects bad ones).

        `promo_code`: a campaign's code to apply (`PromoInvalid` if the backend refuses
        it), None to take the basket's away, or `KEEP` it as it is.
        `current`: the basket as the caller just read it, saving a read on the first try.
        `expected_version`: refuse the change if the basket is at another version.
        `before_save`: runs once priced and before the write (the caller's bot check,
        running meanwhile); if it raises, the quote is thrown away and nothing is saved.
        """
        self.refuse_unacceptable(add, remove)

        def choose(basket: Basket) -> Basket:
            self._ensure_open(basket)
            chosen = _with_choices(basket, add, remove)
            given = False
            if _new_code(promo_code, basket):
                promotion = (
                    self.backend.promotion(basket.subscription_id, promo_code)
                    if promo_code
                    else None
                )
                chosen, given = replace(chosen, promotion=promotion), True
            try:
                if _same_choices(chosen, basket):
                    return chosen
                return self._priced(chosen, code_given=given)
            except SubscriptionLocked:
                # A completion of this very basket may have won the race meanwhile.
                current = self.store.get(basket.basket_id)
                if current is not None and current.status != OPEN:
                    raise BasketCompleted() from None
                raise

        return self._update(customer_id, basket_id, choose, current, expected_version, before_save)

    def refuse_unacceptable(self, add: Sequence[str], remove: Sequence[str]) -> None:
        """Choices no basket could take, refused before any work (the API asks first)."""
        if len(add) > MAX_ADD_OFFERS:
            raise MultipleAddOffers(f"addOffers holds at most {MAX_ADD_OFFERS} offer id")
        if len(remove) > self.max_remove_offers:
            raise InvalidRequest(f"one change removes at most {self.max_remove_offers} offers")
        if set(add) & set(remove):
            raise InvalidRequest("the same offer is both added and removed")

    @staticmethod
    def asks_nothing_new(
        basket: Basket,
        add: Sequence[str],
        remove: Sequence[str],
        promo_code: str | None | Keep = KEEP,
    ) -> bool:
        """Whether these choices would leave the basket's changes (and code) as they are."""
        if _new_code(promo_code, basket):
            return False
        try:
            return _same_choices(_with_choices(basket, add, remove), basket)
        except InvalidRequest:
            return False

    def _priced(self, basket: Basket, *, code_given: bool = False) -> Basket:
        """The basket at the backend's price for its choices. A code just given must apply
        (`PromoInvalid` otherwise); the basket's own code is kept as `_quote` says."""
        if not basket.has_changes:
            return replace(
                basket,
                new_price=basket.current_price,
                quote_id=None,
                quote_expires_at=None,
                lines=(),
                due_today=None,
                promo_applied=False,
            )
        if code_given:
            return _quoted(basket, self.backend_quote(basket, basket.promo_code))
        quote, promotion = self._quote(basket)
        return _quoted(replace(basket, promotion=promotion), quote)

    def backend_quote(self, basket: Basket, code: str | None) -> Quote:
        return self.backend.quote(
            basket.subscription_id, _ids(basket.add_offers), _ids(basket.remove_offers), code
        )

    def _quote(self, basket: Basket) -> tuple[Quote, Promotion | None]:
        """The quote for the basket's choices, with its code where the backend applies it,
        and the code the basket keeps: one for an offer not chosen (`not_applicable`) waits
        for it, one that has expired or gone is dropped."""
        try:
            return self.backend_quote(basket, basket.promo_code), basket.promotion
        except PromoInvalid as refused:
            if basket.promotion is None:
                raise
            kept = basket.promotion if refused.why == PromoInvalid.NOT_APPLICABLE else None
            return self.backend_quote(basket, None), kept

    @staticmethod
    def _ensure_open(basket: Basket) -> None:
        if basket.status != OPEN:
            raise BasketCompleted()
        refuse_if_locked(basket.pending_change)

    def _update(
        self,
        customer_id: str,
        basket_id: str | None,
        change: Callable[[Basket], Basket],
        current: Basket | None = None,
        expected_version: int | None = None,
        before_save: Callable[[], object] = lambda: None,
    ) -> Basket:
        for _ in range(_SAVE_ATTEMPTS):
            basket = current or self.load(customer_id, basket_id, refresh=False)
            current = None
            if expected_version is not None and basket.version != expected_version:
                raise BasketChanged(basket)
            changed = change(basket)
            before_save()
            first = not basket.changed and not _same_choices(changed, basket)
            saved = self.store.save(replace(changed, changed=True) if first else changed)
            if saved is not None:
                if first:  # the compare-and-set makes it the first, once
                    self.announce(FirstChange(saved))
                return saved
        raise CheckoutInProgress("the basket is changing too often; retry")

    # -- complete ------------------------------------------------------------------------

    def complete(
        self, customer_id: str, basket_id: str | None, *, expected_version: int | None = None
    ) -> Basket:
        """Submit the change once; every concurrent or repeated call gets the same order.

        `expected_version` guards the claim of an open basket; a basket already completed
        is answered as it is (the change asked for has succeeded, RFC 9110 13.1.1).
        """
        wait = self.submit_budget + 2.0
        left = self.time_left()  # never wait past the request's own deadline
        deadline = time.monotonic() + (wait if left is None else min(wait, left))
        while True:
            basket = self.load(customer_id, basket_id, refresh=False)
            if basket.status == COMPLETED:
                return basket
            if basket.status == COMPLETING and not self._stale(basket):
                if time.monotonic() > deadline:
                    raise CheckoutInProgress()
                time.sleep(_WAIT_STEP)
                continue
            refuse_if_locked(basket.pending_change)
            if not basket.has_changes:
                raise NothingToConfirm("the basket has no changes to confirm")
            if expected_version is not None and basket.version != expected_version:
                raise BasketChanged(basket)
            claim = secrets.token_hex(8)
            claimed = self.store.save(
                replace(basket, status=COMPLETING, completing_since=time.time(), claim=claim)
            )
            if claimed is None:  # lost the race, or won it and redis-py sent the write again
                current = self.store.get(basket.basket_id)
                if current is not None and current.status == COMPLETING and current.claim == claim:
                    claimed = current
            if claimed is not None:
                return self._submit(claimed)

    def _stale(self, basket: Basket) -> bool:
        return time.time() - (basket.completing_since or 0.0) > self.submit_budget * 2

    def _submit(self, basket: Basket) -> Basket:
        """Order the claimed basket's change at the price the customer saw, or give the
        basket back open: with the backend's new quote when the price moved."""
        renewed = False
        while True:
            try:
                if basket.quote_id is None:  # stored before quotes had ids
                    raise QuoteNoLongerHolds(None)
                order = self.backend.submit_order(_order_request(basket), idempotency_key(basket))
                self.announce(OrderPlaced(basket, order))
            except QuoteNoLongerHolds as refused:
                try:
                    if refused.fresh is not None:
                        fresh, promotion = refused.fresh, _code_kept(basket, refused.fresh)
                    else:
                        fresh, promotion = self._quote(basket)
                except _REFUSALS:
                    self._reopen(basket)
                    raise
                if _offered(fresh) != _agreed(basket):
                    reopened = self._settle(
                        basket, partial(_quoted, quote=fresh, promotion=promotion, reopen=True)
                    )
                    raise PriceChanged(before=basket, after=reopened) from None
                if renewed:  # a quote renewed just now cannot have expired already
                    self._reopen(basket)
                    raise UpstreamError("the backend refused a fresh quote") from None
                # Expired at the same price: renewed without asking. The idempotency key
                # stays the same (changes and price are), and the backend refused the old
                # quote, so no order exists under it to be made twice.
                renewed = True
                basket = self._settle(basket, partial(_quoted, quote=fresh, promotion=promotion))
                continue
            except _REFUSALS:
                # Nothing was accepted that a retry with the same changes would not find again.
                self._reopen(basket)
                raise
            try:
                return self._settle(basket, partial(_completed, order=order), OrderRecorded)
            except StoreUnavailable as exc:  # ordered, not recorded: a retry finds the same order
                raise OrderNotRecorded() from exc

    def _reopen(self, basket: Basket) -> Basket:
        return self._settle(basket, _reopened)

    def _settle(
        self,
        basket: Basket,
        change: Callable[[Basket], Basket],
        event: Callable[[Basket], Event] | None = None,
    ) -> Basket:
        for _ in range(_SAVE_ATTEMPTS):
            saved = self.store.save(change(basket))
            if saved is not None:
                if event is not None:
                    self.announce(event(saved))
                return saved
            fresh = self.store.get(basket.basket_id)
            if fresh is None:
                raise BasketNotFound()
            if fresh.status == COMPLETED:
                return fresh
            basket = fresh
        raise CheckoutInProgress()


def _with_choices(basket: Basket, add: Sequence[str], remove: Sequence[str]) -> Basket:
    """Apply removals then additions as changes to the basket's pending choices."""
    adds = list(basket.add_offers)
    removes = list(basket.remove_offers)
    active = {o.id: o for o in basket.active_offers}
    eligible = {o.id: o for o in basket.eligible_offers}
    for offer_id in remove:
        if any(o.id == offer_id for o in adds):
            adds = [o for o in adds if o.id != offer_id]
        elif offer_id in active:
            if all(o.id != offer_id for o in removes):
                removes.append(active[offer_id])
        else:
            raise InvalidRequest(f"{offer_id} is not an active offer of this subscription")
    for offer_id in add:
        if any(o.id == offer_id for o in removes):
            removes = [o for o in removes if o.id != offer_id]
        elif offer_id in eligible:  # the newest choice wins: MAX_ADD_OFFERS is one
            adds = [eligible[offer_id]]
        elif offer_id not in active:
            raise InvalidRequest(f"{offer_id} is not an offer this subscription can add")
    return replace(basket, add_offers=tuple(adds), remove_offers=tuple(removes))


def _ids(offers: Sequence[Offer]) -> list[str]:
    return [o.id for o in offers]


def idempotency_key(basket: Basket) -> str:
    """The same basket with the same changes at the same price always submits under the
    same key, whichever quote it names: a retry finds the order a lost answer made, and a
    confirmation at a new price (or with another code, or another amount due today) is a
    new order attempt. (Without a code or an amount due today, as quotes were before they
    had them, the key is what it was then: a completion retried across that deploy finds
    its order.)"""
    price = basket.new_price
    agreed = "|".join(
        (
            ",".join(_ids(basket.add_offers)),
            ",".join(_ids(basket.remove_offers)),
            f"{price.amount:.2f}",
            price.currency,
        )
    )
    if basket.applied_code or basket.due_today is not None:
        due = basket.due_today.amount if basket.due_today else ""
        agreed += f"|{basket.applied_code or ''}|{due}"
    return f"{basket.basket_id}.{hashlib.sha256(agreed.encode()).hexdigest()[:16]}"


def _quoted(
    basket: Basket,
    quote: Quote,
    reopen: bool = False,
    promotion: Promotion | None | Keep = KEEP,
) -> Basket:
    """The basket at `quote`'s price; with `promotion` as its code, if given."""
    quoted = replace(
        basket,
        current_price=quote.current_price,
        new_price=quote.new_price,
        effective_date=quote.effective_date,
        quote_id=quote.quote_id,
        quote_expires_at=quote.expires_at,
        lines=quote.lines,
        due_today=quote.due_today,
        promotion=basket.promotion if isinstance(promotion, Keep) else promotion,
        promo_applied=quote.promo_code is not None,
    )
    return _reopened(quoted) if reopen else quoted


def _completed(basket: Basket, order: Order) -> Basket:
    return replace(
        basket,
        status=COMPLETED,
        completing_since=None,
        claim=None,
        order=order,
        new_price=order.new_price,
        effective_date=order.effective_date,
    )


def _reopened(basket: Basket) -> Basket:
    return replace(basket, status=OPEN, completing_since=None, claim=None)


def _code_kept(basket: Basket, fresh: Quote) -> Promotion | None:
    """The basket's code, unless the backend's fresh quote for the same changes no longer
    applies it: then it has expired or gone."""
    return basket.promotion if fresh.promo_code or not basket.promo_applied else None


def _agreed(basket: Basket) -> tuple[object, ...]:
    """What the customer agreed to pay: the new price, what is due today and the code."""
    return (basket.new_price, basket.due_today, basket.applied_code)


def _offered(quote: Quote) -> tuple[object, ...]:
    """The same of a quote, to compare with `_agreed`."""
    return (quote.new_price, quote.due_today, quote.promo_code)


def _new_code(promo_code: str | None | Keep, basket: Basket) -> TypeGuard[str | None]:
    """Whether a change names another code than the basket has (or takes its code away)."""
    return not isinstance(promo_code, Keep) and promo_code != basket.promo_code


def _same_choices(one: Basket, other: Basket) -> bool:
    return (one.add_offers, one.remove_offers, one.promo_code) == (
        other.add_offers,
        other.remove_offers,
        other.promo_code,
    )


def _order_request(basket: Basket) -> dict[str, Any]:
    return {
        "subscriptionId": basket.subscription_id,
        "customerId": basket.customer_id,
        "basketId": basket.basket_id,
        "addOffers": _ids(basket.add_offers),
        "removeOffers": _ids(basket.remove_offers),
        "quoteId": basket.quote_id,
        "expectedPrice": basket.new_price.to_json(),
        "expectedDueToday": basket.due_today.to_json() if basket.due_today else None,
        "promoCode": basket.applied_code,
        "referrer": basket.referrer,
        "tracking": basket.tracking,
    }
