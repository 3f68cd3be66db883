"""Partner events as Standard Webhooks (standardwebhooks.com): what they say, and sending
one signed attempt.

Two events, each a JSON body `{"type", "timestamp", "data"}`:
- `checkout.completed`, written with the completion that records the order;
- `checkout.abandoned`, prepared with every save of an open basket with changes, and
  sent by the deliverer if that basket expires unconfirmed (app/adapters/outbox.py).

An event's id is derived from what it is about (the basket and its order, or the basket and
when it expired), so an event written twice, as after a Redis failover, is one `webhook-id`
that a partner can deduplicate. The body is made once and signed as made on every attempt:
`webhook-signature` is `v1,` + HMAC-SHA256 of `id.timestamp.body` by the `standardwebhooks`
library, with the previous secret's signature beside it during a rotation.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from ..checkout import COMPLETED, OPEN, Basket
from .upstream import Unreachable, Upstream

COMPLETED_TYPE = "checkout.completed"
ABANDONED_TYPE = "checkout.abandoned"
# How much of an answer's body is kept with a delivery's record: enough to see what went
# wrong, never a page of someone else's HTML.
EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class Event:
    """One event as stored: its id, type, when it happened and its body, signed as is."""

    id: str
    type: str
    created_at: float
    body: str

    def to_json(self) -> str:
        return json.dumps(
            {"id": self.id, "type": self.type, "createdAt": self.created_at, "body": self.body},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        data = json.loads(raw)
        return cls(data["id"], data["type"], float(data["createdAt"]), data["body"])


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


def _id(*parts: str) -> str:
    return "msg_" + hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def _event(event_id: str, kind: str, at: float, data: dict[str, Any]) -> Event:
    body = {"type": kind, "timestamp": _iso(at), "data": data}
    return Event(event_id, kind, at, json.dumps(body, separators=(",", ":")))


def _changes(basket: Basket) -> dict[str, Any]:
    return {
        "basketId": basket.basket_id,
        "subscriptionId": basket.subscription_id,
        "customer": basket.customer_id,
        "addOffers": [offer.to_json() for offer in basket.add_offers],
        "removeOffers": [offer.to_json() for offer in basket.remove_offers],
        "totals": {
            "current": basket.current_price.to_json(),
            "new": basket.new_price.to_json(),
            "effectiveDate": basket.effective_date,
        },
        "referrer": basket.referrer,
        "tracking": basket.tracking,
    }


def completed(basket: Basket) -> Event | None:
    """The event a completed basket's order is, or None for any other basket."""
    if basket.status != COMPLETED or basket.order is None:
        return None
    order = basket.order
    data = {**_changes(basket), "order": order.to_json()}
    return _event(
        _id(COMPLETED_TYPE, basket.basket_id, order.order_id),
        COMPLETED_TYPE,
        basket.updated_at,
        data,
    )


def abandoned(basket: Basket) -> Event | None:
    """The event this basket would be if it expired as it is now: None unless it is open
    with a change chosen."""
    if basket.status != OPEN or not basket.has_changes:
        return None
    at = basket.expires_at
    data = {**_changes(basket), "expiredAt": _iso(at)}
    return _event(_id(ABANDONED_TYPE, basket.basket_id, f"{at:.3f}"), ABANDONED_TYPE, at, data)


class RefusedEndpoint(Exception):
    """The endpoint may not be called: not https in production, or a private address."""


def refuse_private(url: str) -> None:
    """Refuse an endpoint whose host is, or resolves to, a loopback, private, link-local or
    otherwise non-public address: events must not be a way into our own network."""
    host = urlsplit(url).hostname or ""
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        raise RefusedEndpoint(f"cannot resolve the endpoint's host: {type(exc).__name__}") from exc
    for address in found:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise RefusedEndpoint("the endpoint's host is not a public address")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's outcome: delivered on a 2xx; anything else is tried again later."""

    delivered: bool
    status: int | None
    excerpt: str


class Sender:
    """Sends one attempt of an event: signed, with a short timeout, no redirect followed,
    the answer read only as far as its excerpt. The secrets are never logged."""

    def __init__(
        self,
        url: str,
        secret: str,
        previous_secret: str = "",
        *,
        timeout: float,
        allow_private: bool,
    ) -> None:
        self.url = url
        self.signers = [Webhook(s) for s in (secret, previous_secret) if s]
        self.allow_private = allow_private
        self.http = Upstream(url, connect_timeout=timeout, read_timeout=timeout, service="partner")

    def signature(self, event_id: str, at: datetime, body: str) -> str:
        """One `v1,` signature per secret, space-separated as the specification allows."""
        return " ".join(signer.sign(event_id, at, body) for signer in self.signers)

    def send(self, event: Event) -> Attempt:
        if not self.allow_private:
            try:
                refuse_private(self.url)
            except RefusedEndpoint as exc:
                return Attempt(False, None, str(exc))
        now = datetime.now(UTC)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signature(event.id, now, event.body),
        }
        try:
            status, answer = self.http.send("POST", "", event.body.encode(), headers)
        except Unreachable as exc:
            return Attempt(False, None, str(exc)[:EXCERPT_CHARS])
        excerpt = answer[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
        return Attempt(200 <= status < 300, status, excerpt)
