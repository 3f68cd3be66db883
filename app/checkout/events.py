"""What the checkout announces as it happens, for whoever observes it.

The rules call the `announce` they were given with one of these, after the write that
made it true: the funnel and the metrics (app/ops/) listen, the rules know neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from .basket import Basket
from .values import Order


@dataclass(frozen=True, slots=True)
class BasketFound:
    """A customer's own basket was read for this request."""

    basket: Basket


@dataclass(frozen=True, slots=True)
class BasketCreated:
    basket: Basket


@dataclass(frozen=True, slots=True)
class FirstChange:
    """The basket's first change was saved; once per basket."""

    basket: Basket


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    """The backend accepted the order (its record in the basket follows)."""

    basket: Basket
    order: Order


@dataclass(frozen=True, slots=True)
class OrderRecorded:
    """The basket is completed with its order; once per basket."""

    basket: Basket


Event = BasketFound | BasketCreated | FirstChange | OrderPlaced | OrderRecorded
