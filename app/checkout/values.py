"""Typed values the checkout passes around: money, offers, the backend's answers.

Each `parse` is strict: anything not of the expected shape raises `ValueError`, which the
backend client turns into one `UpstreamError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Subscription, offer and order ids: short, printable, no markup or separators. The API's
# description and its validation use this same pattern (app/api/schemas.py).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_ID = re.compile(ID_PATTERN)
T = TypeVar("T")


def is_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


def _require(data: object, key: str, kind: type) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"expected an object holding {key!r}")
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"{key!r} is not a {kind.__name__}")
    return value


def _id(data: object, key: str) -> str:
    value = _require(data, key, str)
    if not is_id(value):
        raise ValueError(f"{key!r} is not an id")
    return str(value)


def _date(data: object, key: str) -> str:
    value = _require(data, key, str)
    date.fromisoformat(value)
    return str(value)


def _optional(data: object, key: str, read: Callable[[object, str], T]) -> T | None:
    """What `read` makes of `data[key]`; None when the key is absent or null."""
    return read(data, key) if isinstance(data, dict) and data.get(key) is not None else None


def _count(data: object, key: str) -> int:
    return int(_require(data, key, int))


def _list(data: object, key: str) -> list[Any]:
    return list(_require(data, key, list))


def _instant(data: object, key: str) -> float:
    """An ISO 8601 time with its offset (`Z` or `+00:00`), as seconds since the epoch."""
    moment = datetime.fromisoformat(_require(data, key, str))
    if moment.tzinfo is None:
        raise ValueError(f"{key!r} has no time zone")
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def to_json(self) -> dict[str, str]:
        return {"amount": f"{self.amount:.2f}", "currency": self.currency}

    @classmethod
    def parse(cls, data: object, *, signed: bool = False) -> Money:
        """A price (never negative), or with `signed` a price's change (a discount, a
        removal: negative)."""
        currency = _require(data, "currency", str)
        if not _CURRENCY.match(currency):
            raise ValueError("currency is not ISO 4217")
        try:
            amount = Decimal(_require(data, "amount", str))
        except InvalidOperation as exc:
            raise ValueError("amount is not a decimal") from exc
        if not amount.is_finite() or (amount < 0 and not signed):
            raise ValueError("amount is out of range")
        return cls(amount, currency)


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    name: str
    price: Money
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "price": self.price.to_json(),
        }

    @classmethod
    def parse(cls, data: object) -> Offer:
        description = data.get("description", "") if isinstance(data, dict) else ""
        return cls(
            id=_id(data, "id"),
            name=_require(data, "name", str),
            price=Money.parse(_require(data, "price", dict)),
            description=description if isinstance(description, str) else "",
        )


def _offers(data: object, key: str) -> tuple[Offer, ...]:
    return tuple(Offer.parse(item) for item in _require(data, key, list))


@dataclass(frozen=True, slots=True)
class PendingChange:
    description: str
    effective_date: str

    def to_json(self) -> dict[str, str]:
        return {"description": self.description, "effectiveDate": self.effective_date}

    @classmethod
    def parse(cls, data: object) -> PendingChange:
        return cls(_require(data, "description", str), _date(data, "effectiveDate"))


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    customer_id: str
    plan: Offer
    active_offers: tuple[Offer, ...]
    eligible_offers: tuple[Offer, ...]
    recurring_price: Money
    next_billing_date: str
    pending_change: PendingChange | None

    @classmethod
    def parse(cls, data: object) -> Subscription:
        pending = data.get("pendingChange") if isinstance(data, dict) else None
        return cls(
            id=_id(data, "id"),
            customer_id=_require(data, "customerId", str),
            plan=Offer.parse(_require(data, "plan", dict)),
            active_offers=_offers(data, "activeOffers"),
            eligible_offers=_offers(data, "eligibleOffers"),
            recurring_price=Money.parse(_require(data, "recurringPrice", dict)),
            next_billing_date=_date(data, "nextBillingDate"),
            pending_change=PendingChange.parse(pending) if pending is not None else None,
        )


# Promotion codes: short, letters, digits and dashes (the backend answers in upper case).
PROMO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
_PROMO = re.compile(PROMO_PATTERN)
LINE_KINDS = ("add", "remove", "discount")


def is_promo_code(value: object) -> bool:
    return isinstance(value, str) and bool(_PROMO.match(value))


def _promo(data: object, key: str) -> str:
    code = _require(data, key, str)
    if not is_promo_code(code):
        raise ValueError(f"{key!r} is not a promotion code")
    return str(code)


@dataclass(frozen=True, slots=True)
class Promotion:
    """A campaign's deal, as the backend names it: "Sports at half price for 3 months"."""

    code: str
    description: str
    offer_id: str | None = None

    @classmethod
    def parse(cls, data: object) -> Promotion:
        offer = data.get("offerId") if isinstance(data, dict) else None
        return cls(
            _promo(data, "code"),
            _require(data, "description", str),
            _id(data, "offerId") if offer else None,
        )


@dataclass(frozen=True, slots=True)
class QuoteLine:
    """One line of a quote: an offer added or removed, or a discount; its amount a month
    (negative for removals and discounts), whether it recurs and for how many months
    (None: for as long as the plan has it), and the day it starts."""

    kind: str
    offer_id: str | None
    description: str
    amount: Money
    recurring: bool
    months: int | None
    starts_on: str

    @classmethod
    def parse(cls, data: object) -> QuoteLine:
        kind = _require(data, "kind", str)
        if kind not in LINE_KINDS:
            raise ValueError(f"{kind!r} is not a kind of line")
        return cls(
            kind=kind,
            offer_id=_optional(data, "offerId", _id),
            description=_require(data, "description", str),
            amount=Money.parse(_require(data, "amount", dict), signed=True),
            recurring=_require(data, "recurring", bool),
            months=_optional(data, "months", _count),
            starts_on=_date(data, "startsOn"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "offerId": self.offer_id,
            "description": self.description,
            "amount": self.amount.to_json(),
            "recurring": self.recurring,
            "months": self.months,
            "startsOn": self.starts_on,
        }


@dataclass(frozen=True, slots=True)
class Quote:
    """The backend's price for a change; an order names it, and the price it agreed to:
    its lines, what is due today for what starts now, and the monthly price from the next
    bill (`new_price`), with the promotion it applied."""

    quote_id: str
    expires_at: float
    current_price: Money
    new_price: Money
    effective_date: str
    lines: tuple[QuoteLine, ...] = ()
    due_today: Money | None = None
    promo_code: str | None = None

    @classmethod
    def parse(cls, data: object) -> Quote:
        due = data.get("dueToday") if isinstance(data, dict) else None
        return cls(
            quote_id=_id(data, "quoteId"),
            expires_at=_instant(data, "expiresAt"),
            current_price=Money.parse(_require(data, "currentPrice", dict)),
            new_price=Money.parse(_require(data, "newPrice", dict)),
            effective_date=_date(data, "effectiveDate"),
            lines=tuple(map(QuoteLine.parse, _optional(data, "lines", _list) or ())),
            due_today=Money.parse(due) if due is not None else None,
            promo_code=_optional(data, "promoCode", _promo),
        )


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    effective_date: str
    new_price: Money

    def to_json(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id,
            "effectiveDate": self.effective_date,
            "newPrice": self.new_price.to_json(),
        }

    @classmethod
    def parse(cls, data: object) -> Order:
        return cls(
            order_id=_id(data, "orderId"),
            effective_date=_date(data, "effectiveDate"),
            new_price=Money.parse(_require(data, "newPrice", dict)),
        )
