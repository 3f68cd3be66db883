"""SubscriptionClient: the only module that speaks HTTP to the subscription backend.

One pooled `Upstream` per process with connect and read timeouts. Reads are retried
(they change nothing); quotes and orders are not, and an order carries an
`Idempotency-Key` so that a retry by the caller finds the same order again. Every answer
we did not expect becomes one `UpstreamError`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote as quote_path

from ..checkout.errors import (
    InvalidRequest,
    PromoInvalid,
    SubscriptionLocked,
    SubscriptionNotFound,
    UpstreamError,
)
from ..checkout.ports import QuoteNoLongerHolds
from ..checkout.values import Order, PendingChange, Promotion, Quote, Subscription
from . import language
from .upstream import Unreachable, Upstream

log = logging.getLogger(__name__)
T = TypeVar("T")

_OFFER_REJECTIONS = {"offer_not_eligible", "offer_not_active", "unknown_offer", "invalid_request"}


class CircuitBreaker:
    """Fail fast while the backend is down, then let one probe through after a pause.

    Per process: each worker learns on its own, which needs no coordination and costs
    at most `threshold` slow failures per worker.
    """

    def __init__(
        self,
        threshold: int,
        cooldown: float,
        on_change: Callable[[bool], object] = lambda is_open: None,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.on_change = on_change  # told True when the circuit opens, False when it closes
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    def before_call(self) -> None:
        with self._lock:
            if self._opened_at is None:
                return
            if self._probing or time.monotonic() - self._opened_at < self.cooldown:
                raise UpstreamError("the subscription service is unavailable")
            self._probing = True  # half-open: this call is the probe

    @property
    def is_open(self) -> bool:
        """Open or half-open: calls fail fast, or wait on one probe."""
        return self._opened_at is not None

    def succeeded(self) -> None:
        with self._lock:
            was_open = self._opened_at is not None
            self._failures, self._opened_at, self._probing = 0, None, False
        if was_open:
            self.on_change(False)

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            opened = False
            if self._probing or self._failures >= self.threshold:
                if self._opened_at is None or self._probing:
                    log.warning("backend circuit open after %s failures", self._failures)
                opened = self._opened_at is None
                self._opened_at, self._probing = time.monotonic(), False
        if opened:
            self.on_change(True)


class SubscriptionClient:
    """`checkout.ports.SubscriptionBackend` over HTTP."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        read_retries: int,
        breaker: CircuitBreaker | None = None,
        pool_size: int = 32,
    ) -> None:
        self.breaker = breaker or CircuitBreaker(threshold=5, cooldown=5.0)
        # A read timeout is not retried: the budget of one call stays connect + read.
        self.http = Upstream(
            base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            headers={"Authorization": f"Bearer {token}"},
            retries=read_retries,
            pool_size=pool_size,
            service="backend",
        )

    def get_subscription(self, subscription_id: str) -> Subscription:
        path = f"/subscriptions/{quote_path(subscription_id, safe='')}"
        return self._call(Subscription.parse, "GET", path)

    def promotion(self, subscription_id: str, code: str) -> Promotion:
        path = (
            f"/subscriptions/{quote_path(subscription_id, safe='')}"
            f"/promotions/{quote_path(code, safe='')}"
        )
        return self._call(Promotion.parse, "GET", path)

    def quote(
        self,
        subscription_id: str,
        add: Iterable[str],
        remove: Iterable[str],
        promo_code: str | None = None,
    ) -> Quote:
        body: dict[str, Any] = {"addOffers": list(add), "removeOffers": list(remove)}
        if promo_code:
            body["promoCode"] = promo_code
        path = f"/subscriptions/{quote_path(subscription_id, safe='')}/quotes"
        return self._call(Quote.parse, "POST", path, json=body)

    def submit_order(self, order: dict[str, Any], idempotency_key: str) -> Order:
        headers = {"Idempotency-Key": idempotency_key}
        return self._call(Order.parse, "POST", "/orders", json=order, headers=headers)

    def _call(self, parse: Callable[[Any], T], method: str, path: str, **kwargs: Any) -> T:
        self.breaker.before_call()
        try:
            data = _parse(parse, self._exchange(method, path, **kwargs))
        except UpstreamError:
            self.breaker.failed()
            raise
        except Exception:
            self.breaker.succeeded()  # the backend answered, with a refusal we understand
            raise
        self.breaker.succeeded()
        return data

    def _exchange(self, method: str, path: str, **kwargs: Any) -> Any:
        wanted = language.current()
        if wanted is not None:  # names and descriptions in the customer's language
            kwargs["headers"] = {**kwargs.get("headers", {}), "Accept-Language": wanted}
        try:
            status, data = self.http.request(method, path, **kwargs)
        except Unreachable as exc:
            log.warning("backend %s %s failed: %s", method, path, exc)
            raise UpstreamError() from exc
        if status in (200, 201) and data is not None:
            return data
        error = data.get("error") if isinstance(data, dict) else None
        if status == 404 and error == "subscription_not_found":
            raise SubscriptionNotFound()
        if status == 409 and error == "pending_change":
            raise SubscriptionLocked(_pending(data))
        if status == 409 and error == "price_changed":
            raise QuoteNoLongerHolds(_parse(Quote.parse, data.get("quote")))
        if status == 409 and error == "quote_expired":
            raise QuoteNoLongerHolds(None)
        if status == 400 and error == "promo_invalid":
            why, message = data.get("reason"), data.get("message")
            raise PromoInvalid(
                message[:200] if isinstance(message, str) else "the code cannot be used",
                why=str(why),
            )
        if status == 400 and error in _OFFER_REJECTIONS:
            offer = data.get("offerId") if isinstance(data, dict) else None
            reason = f"{error.replace('_', ' ')}: {offer}" if isinstance(offer, str) else error
            raise InvalidRequest(reason[:200])
        log.warning("backend %s %s answered %s", method, path, status)
        raise UpstreamError()


def _parse(parser: Callable[[Any], T], data: Any) -> T:
    try:
        return parser(data)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("backend answer malformed: %s", exc)
        raise UpstreamError() from exc


def _pending(data: dict[str, Any]) -> PendingChange | None:
    """What the backend says is pending, if it says so in the shape we know."""
    try:
        return PendingChange.parse(data.get("pendingChange"))
    except ValueError:
        return None
