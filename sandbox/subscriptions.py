"""The change rules of the subscription backend: quotes, orders, idempotency, the lock.

Every public method of :class:`SubscriptionStore` takes the store's lock, so concurrent
requests (the server is threaded) see each order created exactly once.

A quote binds: an order names the quote the customer saw and the price they agreed to,
and is refused if that price no longer holds (the price moved, the quote expired, or the
promotion code it applied expired since).

A quote is itemised: a line per offer added (from today) and removed (from the next
billing date), and one per discount a promotion code gives. What starts today is due
today, prorated by the days left in the billing period (a calendar month); ``newPrice`` is
the monthly price from the next billing date. Dates come from the store's test clock
(:func:`sandbox.data.today`).

Answers that name offers, plans or a pending change come in the language asked for
(``en`` or ``cy``, see :mod:`sandbox.language`); everything else in them is the same in both.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
import threading
from calendar import monthrange
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandbox.data import (
    CURRENCY,
    OFFERS,
    PROMO_REASONS,
    PROMOTIONS,
    Catalogue,
    Clock,
    Offer,
    PendingChange,
    Plan,
    Promotion,
    Subscription,
    demo_subscriptions,
    first_of_month,
    first_of_next_month,
    money,
    promo_refusal,
    today,
)
from sandbox.language import ENGLISH, LANGUAGES, WELSH, in_language

#: quotes remembered at most, so a long soak cannot grow the store without bound
MAX_QUOTES = 10_000
#: Money's amount and currency as openapi.json describes them
AMOUNT = re.compile(r"-?[0-9]+\.[0-9]{2}")
CURRENCY_CODE = re.compile(r"[A-Z]{3}")
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class BackendError(Exception):
    """A refusal the backend answers with ``{"error": code, ...}`` and an HTTP status.

    ``language`` is set when ``extra`` names things in a language (a pending change, a
    fresh quote): the answer then says so (``Content-Language``).
    """

    def __init__(
        self, status: int, code: str, message: str, *, language: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.language = language
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day if it is shorter."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def prorate(amount: Decimal, day: date) -> Decimal:
    """``amount`` a month, for the days from ``day`` to the next billing date.

    The whole month on the first day of a period, one day's worth on its last; rounded
    half up to the penny, and never below nothing.
    """
    billing = first_of_next_month(day)
    days_left = (billing - day).days
    period = (billing - first_of_month(day)).days
    share = (amount * days_left / period).quantize(CENT, rounding=ROUND_HALF_UP)
    return share if share > 0 else ZERO  # not max(): that could keep a "-0.00"


def normalise_code(code: str) -> str:
    """Codes match whatever their case and surrounding spaces: `` sportsHalf `` is SPORTSHALF."""
    return code.strip().upper()


def parse_promo_code(body: dict[str, Any]) -> str | None:
    """The body's ``promoCode``: a string, or None when absent or null."""
    code = body.get("promoCode")
    if code is not None and not isinstance(code, str):
        raise BackendError(400, "invalid_request", "promoCode must be a string or null.")
    return code


class PromoRefused(Exception):
    """A promotion code that cannot be applied, and why (one of ``PROMO_REASONS``)."""

    def __init__(self, reason: str, offer: Offer | None = None) -> None:
        assert reason in PROMO_REASONS, reason
        super().__init__(reason)
        self.reason = reason
        #: for ``not_applicable``: the offer the code needs
        self.offer = offer

    def error(self, language: str) -> BackendError:
        """The 400 ``promo_invalid`` answer, its message in ``language``."""
        return BackendError(
            400,
            "promo_invalid",
            promo_refusal(self.reason, language, self.offer),
            language=language,
            reason=self.reason,
        )


@dataclass(frozen=True)
class Line:
    """One line of a priced change: an offer added or removed, or a discount.

    ``amount`` is a month's worth, signed: positive for an offer added, negative for one
    removed and for a discount. A line is part of every bill from ``starts_on``, for
    ``months`` months (None: for as long as the subscription has it).
    """

    kind: str
    offer_id: str | None
    description: str
    welsh_description: str | None
    amount: Decimal
    starts_on: date
    months: int | None = None
    recurring: bool = True

    @classmethod
    def for_offer(cls, kind: str, offer: Offer, amount: Decimal, starts_on: date) -> Line:
        return cls(kind, offer.id, offer.name, offer.welsh_name, amount, starts_on)

    def applies_on(self, day: date) -> bool:
        """Whether the bill on ``day`` includes this line."""
        if day < self.starts_on:
            return False
        return self.months is None or day < add_months(self.starts_on, self.months)

    def to_json(self, language: str = ENGLISH) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "offerId": self.offer_id,
            "description": in_language(language, self.description, self.welsh_description),
            "amount": money(self.amount),
            "recurring": self.recurring,
            "months": self.months,
            "startsOn": self.starts_on.isoformat(),
        }


@dataclass(frozen=True)
class Priced:
    """A change priced on ``day``, with the promotion applied, if any."""

    day: date
    current_price: Decimal
    lines: tuple[Line, ...]
    promotion: Promotion | None

    @property
    def effective_date(self) -> date:
        """The next billing date, from which the new monthly price is charged."""
        return first_of_next_month(self.day)

    @property
    def new_price(self) -> Decimal:
        """Today's price plus every line that is part of the next bill."""
        on_the_bill = (line.amount for line in self.lines if line.applies_on(self.effective_date))
        return self.current_price + sum(on_the_bill, ZERO)

    @property
    def due_today(self) -> Decimal:
        """What starts today, for the rest of the billing period."""
        starting = sum((line.amount for line in self.lines if line.starts_on == self.day), ZERO)
        return prorate(starting, self.day)

    @property
    def promo_code(self) -> str | None:
        return self.promotion.code if self.promotion is not None else None


def discount_line(
    promotion: Promotion, catalogue: Catalogue, starts_on: date, price: Decimal
) -> Line:
    """The discount ``promotion`` gives, off a monthly ``price`` it never takes below 0."""
    if promotion.offer_id is not None and promotion.share_off is not None:
        off = catalogue.offers[promotion.offer_id].price * promotion.share_off
    else:
        off = promotion.amount_off or ZERO
    off = min(off.quantize(CENT, rounding=ROUND_HALF_UP), max(price, ZERO))
    return Line(
        "discount",
        promotion.offer_id,
        promotion.description,
        promotion.welsh_description,
        ZERO - off,
        starts_on,
        months=promotion.months,
    )


@dataclass(frozen=True)
class Change:
    """A validated change request: at most one offer added, any active ones removed.

    Offer ids and names come from the demo ``OFFERS``; only prices move, and those are
    read from the store's :class:`Catalogue`.
    """

    add: tuple[str, ...]
    remove: tuple[str, ...]

    @classmethod
    def parse(cls, body: Any) -> Change:
        if not isinstance(body, dict):
            raise BackendError(400, "invalid_request", "The body must be a JSON object.")
        lists = []
        for name in ("addOffers", "removeOffers"):
            ids = body.get(name, [])
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise BackendError(400, "invalid_request", f"{name} must be a list of ids.")
            if len(set(ids)) != len(ids):
                raise BackendError(400, "invalid_request", f"{name} repeats an offer id.")
            lists.append(tuple(ids))
        add, remove = lists
        if len(add) > 1:
            raise BackendError(
                400, "invalid_request", "At most one offer can be added.", offerId=add[1]
            )
        if both := sorted(set(add) & set(remove)):
            raise BackendError(
                400, "invalid_request", "An offer cannot be added and removed.", offerId=both[0]
            )
        return cls(add, remove)

    def check_against(self, subscription: Subscription) -> None:
        """Refuse offers that are unknown, not eligible to add or not active to remove."""
        for offer_id in self.add + self.remove:
            if offer_id not in OFFERS:
                raise BackendError(400, "unknown_offer", "No such offer.", offerId=offer_id)
        for offer_id in self.add:
            if offer_id not in subscription.eligible():
                raise BackendError(
                    400, "offer_not_eligible", "The offer cannot be added.", offerId=offer_id
                )
        for offer_id in self.remove:
            if offer_id not in subscription.active:
                raise BackendError(
                    400, "offer_not_active", "The offer is not active.", offerId=offer_id
                )

    def new_offers(self, subscription: Subscription) -> list[str]:
        kept = [o for o in subscription.active if o not in self.remove]
        return kept + list(self.add)

    def describe(self, language: str = ENGLISH) -> str:
        """``Add Sports, remove HD Quality``; in Welsh ``Ychwanegu Chwaraeon, tynnu HD Quality``."""
        add, remove = ("ychwanegu", "tynnu") if language == WELSH else ("add", "remove")
        parts = [f"{add} {OFFERS[o].name_in(language)}" for o in self.add]
        parts += [f"{remove} {OFFERS[o].name_in(language)}" for o in self.remove]
        text = ", ".join(parts)
        return text[:1].upper() + text[1:]

    def same_as(self, other: Change) -> bool:
        """The same offers added and removed, whatever order the lists came in."""
        return set(self.add) == set(other.add) and set(self.remove) == set(other.remove)

    def price(
        self,
        subscription: Subscription,
        catalogue: Catalogue,
        day: date,
        promotion: Promotion | None = None,
    ) -> Priced:
        """Itemise the change on ``day``: offers added start today, removed ones at the
        next bill; a promotion's discount starts with the offer it is for if that is
        being added, otherwise at the next bill too."""
        billing = first_of_next_month(day)
        offers = catalogue.offers
        lines = [Line.for_offer("add", offers[o], offers[o].price, day) for o in self.add]
        lines += [
            Line.for_offer("remove", offers[o], ZERO - offers[o].price, billing)
            for o in self.remove
        ]
        current = subscription.price_with(catalogue, subscription.active)
        if promotion is not None:
            starts_on = day if promotion.offer_id in self.add else billing
            before = current + sum((line.amount for line in lines), ZERO)
            lines.append(discount_line(promotion, catalogue, starts_on, before))
        return Priced(day, current, tuple(lines), promotion)

    def quote(
        self,
        subscription: Subscription,
        catalogue: Catalogue,
        priced: Priced,
        language: str = ENGLISH,
    ) -> dict[str, Any]:
        return {
            "subscriptionId": subscription.id,
            "currentPrice": money(priced.current_price),
            "newPrice": money(priced.new_price),
            "effectiveDate": priced.effective_date.isoformat(),
            "addOffers": [catalogue.offers[o].to_json(language) for o in self.add],
            "removeOffers": [catalogue.offers[o].to_json(language) for o in self.remove],
            "promoCode": priced.promo_code,
            "lines": [line.to_json(language) for line in priced.lines],
            "dueToday": money(priced.due_today),
        }


@dataclass(frozen=True)
class IssuedQuote:
    """A quote handed out, remembered so that an order naming it can be checked."""

    quote_id: str
    subscription_id: str
    change: Change
    new_price: Decimal
    expires_at: datetime
    promo_code: str | None = None
    due_today: Decimal = ZERO

    def covers(self, subscription_id: str, change: Change) -> bool:
        return self.subscription_id == subscription_id and self.change.same_as(change)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def parse_money(value: Any, name: str) -> tuple[Decimal, str]:
    """``{"amount": "28.00", "currency": "GBP"}`` as (amount, currency), or a 400."""
    if (
        not isinstance(value, dict)
        or set(value) != {"amount", "currency"}
        or not isinstance(value["amount"], str)
        or not isinstance(value["currency"], str)
        or not AMOUNT.fullmatch(value["amount"])
        or not CURRENCY_CODE.fullmatch(value["currency"])
    ):
        raise BackendError(
            400,
            "invalid_request",
            f'{name} must be money, e.g. {{"amount": "28.00", "currency": "{CURRENCY}"}}.',
        )
    return Decimal(value["amount"]), value["currency"]


@dataclass(frozen=True)
class OrderRequest:
    """The body of ``POST /orders`` after shape checks."""

    subscription_id: str
    customer_id: str
    basket_id: str | None
    change: Change
    referrer: str | None
    tracking: dict[str, str]
    quote_id: str
    #: the new recurring price the customer agreed to, and its currency
    expected_price: tuple[Decimal, str]
    #: the promotion code the quote applied, as the checkout sent it
    promo_code: str | None = None
    #: what the customer agreed to pay today, if the checkout says
    expected_due_today: tuple[Decimal, str] | None = None

    @classmethod
    def parse(cls, body: Any) -> OrderRequest:
        change = Change.parse(body)  # also ensures body is a dict
        for name in ("subscriptionId", "customerId"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise BackendError(400, "invalid_request", f"{name} is required.")
        if not isinstance(body.get("quoteId"), str) or not body["quoteId"]:
            raise BackendError(400, "invalid_request", "quoteId is required.")
        expected_price = parse_money(body.get("expectedPrice"), "expectedPrice")
        promo_code = parse_promo_code(body)
        expected_due_today = (
            parse_money(body["expectedDueToday"], "expectedDueToday")
            if body.get("expectedDueToday") is not None
            else None
        )
        for name in ("basketId", "referrer"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise BackendError(400, "invalid_request", f"{name} must be a string or null.")
        tracking = body.get("tracking") or {}
        if not isinstance(tracking, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tracking.items()
        ):
            raise BackendError(400, "invalid_request", "tracking must map strings to strings.")
        return cls(
            body["subscriptionId"],
            body["customerId"],
            body.get("basketId"),
            change,
            body.get("referrer"),
            dict(tracking),
            body["quoteId"],
            expected_price,
            promo_code,
            expected_due_today,
        )


def fingerprint(body: Any) -> str:
    """A digest of a request body, to tell a retry from a reuse of an idempotency key."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Order:
    order_id: str
    request: OrderRequest
    idempotency_key: str
    body_fingerprint: str
    #: the answer in each language, made when the order was: a repeat, in whichever
    #: language, answers with the prices the order was placed at
    responses: dict[str, dict[str, Any]]
    submissions: int = 1

    @property
    def response(self) -> dict[str, Any]:
        return self.responses[ENGLISH]

    def record(self) -> dict[str, Any]:
        """The full record, as ``/_sandbox/orders`` shows it to tests."""
        return {
            **self.response,
            "customerId": self.request.customer_id,
            "basketId": self.request.basket_id,
            "referrer": self.request.referrer,
            "tracking": self.request.tracking,
            "idempotencyKey": self.idempotency_key,
            "submissions": self.submissions,
        }


@dataclass
class SubscriptionStore:
    """Subscriptions, prices, promotions, quotes, orders and the test clock, under one lock."""

    subscriptions: dict[str, Subscription] = field(default_factory=demo_subscriptions)
    catalogue: Catalogue = field(default_factory=Catalogue)
    orders: list[Order] = field(default_factory=list)
    by_key: dict[str, Order] = field(default_factory=dict)
    #: in the order handed out, which is also the order they expire in
    quotes: dict[str, IssuedQuote] = field(default_factory=dict)
    quote_ttl: timedelta = timedelta(minutes=10)
    #: codes a test expired (``/_sandbox/promotions/expire``), beside those always expired
    expired_codes: set[str] = field(default_factory=set)
    clock: Clock = field(default_factory=Clock)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.clock.fixed = None
            self.subscriptions = demo_subscriptions()
            self.catalogue = Catalogue()
            self.orders.clear()
            self.by_key.clear()
            self.quotes.clear()
            self.expired_codes.clear()

    def _find(self, subscription_id: str) -> Subscription:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            raise BackendError(404, "subscription_not_found", "Subscription not found.")
        return subscription

    @staticmethod
    def _ensure_unlocked(subscription: Subscription, language: str) -> None:
        if subscription.pending_change is not None:
            raise BackendError(
                409,
                "pending_change",
                "Subscription has pending change.",
                language=language,
                pendingChange=subscription.pending_change.to_json(language),
            )

    def _promotion(self, code: str, offers: Collection[str]) -> Promotion:
        """The promotion ``code`` names, if it can apply to a subscription with ``offers``
        after the change; raises PromoRefused otherwise."""
        promotion = PROMOTIONS.get(normalise_code(code))
        if promotion is None:
            raise PromoRefused("unknown")
        if promotion.expired or promotion.code in self.expired_codes:
            raise PromoRefused("expired")
        if promotion.offer_id is not None and promotion.offer_id not in offers:
            raise PromoRefused("not_applicable", self.catalogue.offers[promotion.offer_id])
        return promotion

    def _issue_quote(
        self,
        subscription: Subscription,
        change: Change,
        language: str,
        promotion: Promotion | None = None,
    ) -> dict[str, Any]:
        """Price the change and remember the quote, so an order can name it."""
        now = datetime.now(UTC)
        # Seconds precision, as the answer says: the quote never outlives what it shows.
        expires_at = (now + self.quote_ttl).replace(microsecond=0)
        priced = change.price(subscription, self.catalogue, today(self.clock), promotion)
        body = change.quote(subscription, self.catalogue, priced, language)
        issued = IssuedQuote(
            f"Q-{secrets.token_hex(8).upper()}",
            subscription.id,
            change,
            priced.new_price,
            expires_at,
            priced.promo_code,
            priced.due_today,
        )
        # Quotes expire in the order they were made: forget from the oldest end.
        while self.quotes:
            oldest = next(iter(self.quotes.values()))
            if not oldest.expired(now) and len(self.quotes) < MAX_QUOTES:
                break
            del self.quotes[oldest.quote_id]
        self.quotes[issued.quote_id] = issued
        return {
            "quoteId": issued.quote_id,
            **body,
            "expiresAt": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _ensure_price_holds(
        self, request: OrderRequest, subscription: Subscription, priced: Priced, language: str
    ) -> None:
        """Refuse an order whose agreed prices or quote no longer hold.

        What is due today is checked only when the order says what it expects.
        """
        due_today = request.expected_due_today
        if request.expected_price != (priced.new_price, CURRENCY) or (
            due_today is not None and due_today != (priced.due_today, CURRENCY)
        ):
            raise self._price_changed(subscription, request.change, language, priced.promotion)
        issued = self.quotes.get(request.quote_id)
        if issued is None:  # never issued, or forgotten since it expired
            raise BackendError(409, "quote_expired", "The quote has expired; ask for a new one.")
        if not issued.covers(subscription.id, request.change):
            raise BackendError(400, "invalid_request", "The quote is for another change.")
        # Agreed to today's prices, but not under this quote.
        if (
            issued.new_price != priced.new_price
            or issued.promo_code != priced.promo_code
            or (due_today is not None and issued.due_today != priced.due_today)
        ):
            raise self._price_changed(subscription, request.change, language, priced.promotion)
        if issued.expired(datetime.now(UTC)):
            raise BackendError(409, "quote_expired", "The quote has expired; ask for a new one.")

    def _price_changed(
        self,
        subscription: Subscription,
        change: Change,
        language: str,
        promotion: Promotion | None = None,
    ) -> BackendError:
        return BackendError(
            409,
            "price_changed",
            "The price has changed since the quote.",
            language=language,
            quote=self._issue_quote(subscription, change, language, promotion),
        )

    def get(self, subscription_id: str, language: str = ENGLISH) -> dict[str, Any]:
        with self.lock:
            subscription = self._find(subscription_id)
            return subscription.to_json(self.catalogue, language, today(self.clock))

    def promotion(self, subscription_id: str, code: str, language: str = ENGLISH) -> dict[str, Any]:
        """A campaign code checked for a subscription, before any offer is chosen.

        An offer's code holds if the subscription has that offer or could add it.
        """
        with self.lock:
            subscription = self._find(subscription_id)
            try:
                promotion = self._promotion(code, [*subscription.active, *subscription.eligible()])
            except PromoRefused as refused:
                raise refused.error(language) from None
            return {
                "code": promotion.code,
                "description": promotion.description_in(language),
                "offerId": promotion.offer_id,
            }

    def quote(self, subscription_id: str, body: Any, language: str = ENGLISH) -> dict[str, Any]:
        with self.lock:
            subscription = self._find(subscription_id)
            change = Change.parse(body)
            code = parse_promo_code(body)
            self._ensure_unlocked(subscription, language)
            change.check_against(subscription)
            promotion = None
            if code is not None:
                try:
                    promotion = self._promotion(code, change.new_offers(subscription))
                except PromoRefused as refused:
                    raise refused.error(language) from None
            return self._issue_quote(subscription, change, language, promotion)

    def place_order(
        self, idempotency_key: str, body: Any, language: str = ENGLISH
    ) -> tuple[dict[str, Any], bool]:
        """Create the order once per idempotency key; returns (order, created).

        Only an accepted order is kept under its key: after a refusal (say, a quote that
        expired) the same key may carry another body, with a fresh quote. A repeat answers
        in its own language.
        """
        digest = fingerprint(body)
        with self.lock:
            previous = self.by_key.get(idempotency_key)
            if previous is not None:
                if previous.body_fingerprint != digest:
                    raise BackendError(
                        422,
                        "idempotency_key_reused",
                        "This Idempotency-Key was used with a different body.",
                    )
                previous.submissions += 1
                return copy.deepcopy(previous.responses[language]), False
            request = OrderRequest.parse(body)
            subscription = self._find(request.subscription_id)
            if subscription.customer_id != request.customer_id:
                raise BackendError(404, "subscription_not_found", "Subscription not found.")
            self._ensure_unlocked(subscription, language)
            change = request.change
            change.check_against(subscription)
            if not change.add and not change.remove:
                raise BackendError(400, "invalid_request", "Add or remove at least one offer.")
            promotion = None
            if request.promo_code is not None:
                try:
                    promotion = self._promotion(request.promo_code, change.new_offers(subscription))
                except PromoRefused:
                    # Gone since the quote (or never was): the price without it.
                    raise self._price_changed(subscription, change, language) from None
            priced = change.price(subscription, self.catalogue, today(self.clock), promotion)
            self._ensure_price_holds(request, subscription, priced, language)
            order_id = f"ORD-{secrets.token_hex(4).upper()}"
            created_at = datetime.now(UTC).isoformat(timespec="seconds")
            responses = {}
            for each in LANGUAGES:
                quote = change.quote(subscription, self.catalogue, priced, each)
                responses[each] = {
                    "orderId": order_id,
                    "subscriptionId": subscription.id,
                    "status": "accepted",
                    "effectiveDate": quote["effectiveDate"],
                    "addOffers": quote["addOffers"],
                    "removeOffers": quote["removeOffers"],
                    "newPrice": quote["newPrice"],
                    "quoteId": request.quote_id,
                    "createdAt": created_at,
                    "promoCode": quote["promoCode"],
                    "lines": quote["lines"],
                    "dueToday": quote["dueToday"],
                }
            if subscription.locks_on_order:
                subscription.pending_change = PendingChange(
                    order_id,
                    change.describe(),
                    priced.effective_date,
                    priced.new_price,
                    welsh_description=change.describe(WELSH),
                )
            order = Order(order_id, request, idempotency_key, digest, responses)
            self.orders.append(order)
            self.by_key[idempotency_key] = order
            return copy.deepcopy(responses[language]), True

    def unlock(self, subscription_id: str) -> None:
        """Drop a pending change but keep its order, as if a billing cycle had passed."""
        with self.lock:
            self._find(subscription_id).pending_change = None

    def set_offer_price(self, offer_id: str, price: Decimal) -> Offer:
        """From now on, in reads, quotes and orders; raises ValueError for an unknown id."""
        with self.lock:
            return self.catalogue.set_offer_price(offer_id, price)

    def set_plan_price(self, plan_id: str, price: Decimal) -> Plan:
        with self.lock:
            return self.catalogue.set_plan_price(plan_id, price)

    def expire_quotes(self) -> int:
        """Make every quote handed out so far expired now; returns how many still held."""
        with self.lock:
            now = datetime.now(UTC)
            live = [q for q in self.quotes.values() if not q.expired(now)]
            for issued in live:
                self.quotes[issued.quote_id] = replace(issued, expires_at=now)
            return len(live)

    def expire_promotion(self, code: str) -> Promotion:
        """Refuse ``code`` as expired from now on, until a reset; ValueError if unknown."""
        with self.lock:
            promotion = PROMOTIONS.get(normalise_code(code))
            if promotion is None:
                raise ValueError(f"no such promotion code: {code}")
            self.expired_codes.add(promotion.code)
            return promotion

    def promotions(self) -> list[dict[str, Any]]:
        """The demo codes, and whether each is expired now."""
        with self.lock:
            return [
                {
                    "code": promotion.code,
                    "description": promotion.description,
                    "offerId": promotion.offer_id,
                    "months": promotion.months,
                    "expired": promotion.expired or promotion.code in self.expired_codes,
                }
                for promotion in PROMOTIONS.values()
            ]

    def clock_state(self) -> tuple[date, bool]:
        """The sandbox's today, and whether a test set it (rather than the real date)."""
        with self.lock:
            return today(self.clock), self.clock.fixed is not None

    def set_today(self, day: date | None) -> date:
        """Make ``day`` the sandbox's today (None: the real date again); returns today."""
        with self.lock:
            self.clock.fixed = day
            return today(self.clock)

    def order_records(self) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(order.record()) for order in self.orders]
