"""The change rules of the subscription backend: quotes, orders, idempotency, the lock.

Every public method of :class:`SubscriptionStore` takes the store's lock, so concurrent
requests (the server is threaded) see each order created exactly once.

A quote binds: an order names the quote the customer saw and the price they agreed to,
and is refused if that price no longer holds (the price moved, or the quote expired).

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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox.data import (
    CURRENCY,
    OFFERS,
    Catalogue,
    Offer,
    PendingChange,
    Plan,
    Subscription,
    demo_subscriptions,
    first_of_next_month,
    money,
)
from sandbox.language import ENGLISH, LANGUAGES, WELSH

#: quotes remembered at most, so a long soak cannot grow the store without bound
MAX_QUOTES = 10_000
#: Money's amount and currency as openapi.json describes them
AMOUNT = re.compile(r"-?[0-9]+\.[0-9]{2}")
CURRENCY_CODE = re.compile(r"[A-Z]{3}")


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

    def quote(
        self, subscription: Subscription, catalogue: Catalogue, language: str = ENGLISH
    ) -> dict[str, Any]:
        return {
            "subscriptionId": subscription.id,
            "currentPrice": money(subscription.price_with(catalogue, subscription.active)),
            "newPrice": money(subscription.price_with(catalogue, self.new_offers(subscription))),
            "effectiveDate": first_of_next_month().isoformat(),
            "addOffers": [catalogue.offers[o].to_json(language) for o in self.add],
            "removeOffers": [catalogue.offers[o].to_json(language) for o in self.remove],
        }


@dataclass(frozen=True)
class IssuedQuote:
    """A quote handed out, remembered so that an order naming it can be checked."""

    quote_id: str
    subscription_id: str
    change: Change
    new_price: Decimal
    expires_at: datetime

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

    @classmethod
    def parse(cls, body: Any) -> OrderRequest:
        change = Change.parse(body)  # also ensures body is a dict
        for name in ("subscriptionId", "customerId"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise BackendError(400, "invalid_request", f"{name} is required.")
        if not isinstance(body.get("quoteId"), str) or not body["quoteId"]:
            raise BackendError(400, "invalid_request", "quoteId is required.")
        expected_price = parse_money(body.get("expectedPrice"), "expectedPrice")
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
    """Subscriptions, prices, quotes and orders, guarded by one lock."""

    subscriptions: dict[str, Subscription] = field(default_factory=demo_subscriptions)
    catalogue: Catalogue = field(default_factory=Catalogue)
    orders: list[Order] = field(default_factory=list)
    by_key: dict[str, Order] = field(default_factory=dict)
    #: in the order handed out, which is also the order they expire in
    quotes: dict[str, IssuedQuote] = field(default_factory=dict)
    quote_ttl: timedelta = timedelta(minutes=10)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.subscriptions = demo_subscriptions()
            self.catalogue = Catalogue()
            self.orders.clear()
            self.by_key.clear()
            self.quotes.clear()

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

    def _issue_quote(
        self, subscription: Subscription, change: Change, language: str
    ) -> dict[str, Any]:
        """Price the change and remember the quote, so an order can name it."""
        now = datetime.now(UTC)
        # Seconds precision, as the answer says: the quote never outlives what it shows.
        expires_at = (now + self.quote_ttl).replace(microsecond=0)
        body = change.quote(subscription, self.catalogue, language)
        issued = IssuedQuote(
            f"Q-{secrets.token_hex(8).upper()}",
            subscription.id,
            change,
            subscription.price_with(self.catalogue, change.new_offers(subscription)),
            expires_at,
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
        self, request: OrderRequest, subscription: Subscription, new_price: Decimal, language: str
    ) -> None:
        """Refuse an order whose agreed price or quote no longer holds."""
        if request.expected_price != (new_price, CURRENCY):
            raise self._price_changed(subscription, request.change, language)
        issued = self.quotes.get(request.quote_id)
        if issued is None:  # never issued, or forgotten since it expired
            raise BackendError(409, "quote_expired", "The quote has expired; ask for a new one.")
        if not issued.covers(subscription.id, request.change):
            raise BackendError(400, "invalid_request", "The quote is for another change.")
        if issued.new_price != new_price:  # agreed to today's price, but not under this quote
            raise self._price_changed(subscription, request.change, language)
        if issued.expired(datetime.now(UTC)):
            raise BackendError(409, "quote_expired", "The quote has expired; ask for a new one.")

    def _price_changed(
        self, subscription: Subscription, change: Change, language: str
    ) -> BackendError:
        return BackendError(
            409,
            "price_changed",
            "The price has changed since the quote.",
            language=language,
            quote=self._issue_quote(subscription, change, language),
        )

    def get(self, subscription_id: str, language: str = ENGLISH) -> dict[str, Any]:
        with self.lock:
            return self._find(subscription_id).to_json(self.catalogue, language)

    def quote(self, subscription_id: str, body: Any, language: str = ENGLISH) -> dict[str, Any]:
        with self.lock:
            subscription = self._find(subscription_id)
            change = Change.parse(body)
            self._ensure_unlocked(subscription, language)
            change.check_against(subscription)
            return self._issue_quote(subscription, change, language)

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
            new_price = subscription.price_with(self.catalogue, change.new_offers(subscription))
            self._ensure_price_holds(request, subscription, new_price, language)
            order_id = f"ORD-{secrets.token_hex(4).upper()}"
            created_at = datetime.now(UTC).isoformat(timespec="seconds")
            responses = {}
            for each in LANGUAGES:
                quote = change.quote(subscription, self.catalogue, each)
                responses[each] = {
                    "orderId": order_id,
                    "subscriptionId": subscription.id,
                    "status": "accepted",
                    "effectiveDate": quote["effectiveDate"],
                    "addOffers": quote["addOffers"],
                    "removeOffers": quote["removeOffers"],
                    "newPrice": money(new_price),
                    "quoteId": request.quote_id,
                    "createdAt": created_at,
                }
            if subscription.locks_on_order:
                subscription.pending_change = PendingChange(
                    order_id,
                    change.describe(),
                    first_of_next_month(),
                    new_price,
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

    def order_records(self) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(order.record()) for order in self.orders]
