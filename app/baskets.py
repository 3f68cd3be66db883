"""The basket and its store on Redis.

A basket is one JSON value under one key, with a TTL refreshed on every write. Every
write is a compare-and-set on the basket's `version` (one Lua script, one round trip), so
two updates at once never lose one: the loser re-reads and applies its change again.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .models import Money, Offer, Order, PendingChange
from .storage import Batch, Keys

log = logging.getLogger(__name__)

OPEN, COMPLETING, COMPLETED = "open", "completing", "completed"

_CAS = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
else
  if not current then return -1 end
  if tostring(cjson.decode(current)['version']) ~= ARGV[1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""


def new_basket_id() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Basket:
    basket_id: str
    customer_id: str
    subscription_id: str
    plan: Offer
    active_offers: tuple[Offer, ...]
    eligible_offers: tuple[Offer, ...]
    current_price: Money
    new_price: Money
    effective_date: str
    snapshot_at: float
    created_at: float
    updated_at: float = 0.0
    expires_at: float = 0.0
    version: int = 0
    status: str = OPEN
    add_offers: tuple[Offer, ...] = ()
    remove_offers: tuple[Offer, ...] = ()
    suggested_offer: str | None = None
    referrer: str | None = None
    tracking: dict[str, str] = field(default_factory=dict)
    pending_change: PendingChange | None = None
    completing_since: float | None = None
    order: Order | None = None
    # The backend's quote for the pending changes: the order names it, with its price.
    quote_id: str | None = None
    quote_expires_at: float | None = None
    # A change has been saved once: the funnel counts a basket's first change only.
    changed: bool = False
    # The nonce of the completion that claimed it (COMPLETING): tells that completion its
    # own claim from another's when redis-py had to send the claim again.
    claim: str | None = None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def has_changes(self) -> bool:
        return bool(self.add_offers or self.remove_offers)

    def offer(self, offer_id: str) -> Offer | None:
        for offer in (*self.active_offers, *self.eligible_offers):
            if offer.id == offer_id:
                return offer
        return None

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"))

    def as_dict(self) -> dict[str, Any]:
        """The stored form; `api.basket_json` shows partners a view of it."""
        return {
            "version": self.version,
            "basketId": self.basket_id,
            "customerId": self.customer_id,
            "subscriptionId": self.subscription_id,
            "status": self.status,
            "plan": self.plan.to_json(),
            "activeOffers": [o.to_json() for o in self.active_offers],
            "eligibleOffers": [o.to_json() for o in self.eligible_offers],
            "addOffers": [o.to_json() for o in self.add_offers],
            "removeOffers": [o.to_json() for o in self.remove_offers],
            "currentPrice": self.current_price.to_json(),
            "newPrice": self.new_price.to_json(),
            "effectiveDate": self.effective_date,
            "snapshotAt": self.snapshot_at,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "expiresAt": self.expires_at,
            "suggestedOffer": self.suggested_offer,
            "referrer": self.referrer,
            "tracking": self.tracking,
            "pendingChange": self.pending_change.to_json() if self.pending_change else None,
            "completingSince": self.completing_since,
            "order": self.order.to_json() if self.order else None,
            "quoteId": self.quote_id,
            "quoteExpiresAt": self.quote_expires_at,
            "changed": self.changed,
            "claim": self.claim,
        }

    @classmethod
    def from_json(cls, raw: bytes | str) -> Basket:
        """A basket as `to_json` wrote it. What we stored was checked on the way in (the
        backend's answers by `models`), so it is read back without checking it again."""
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Basket:
        return cls(
            version=d["version"],
            basket_id=d["basketId"],
            customer_id=d["customerId"],
            subscription_id=d["subscriptionId"],
            status=d["status"],
            plan=_offer(d["plan"]),
            active_offers=tuple(map(_offer, d["activeOffers"])),
            eligible_offers=tuple(map(_offer, d["eligibleOffers"])),
            add_offers=tuple(map(_offer, d["addOffers"])),
            remove_offers=tuple(map(_offer, d["removeOffers"])),
            current_price=_money(d["currentPrice"]),
            new_price=_money(d["newPrice"]),
            effective_date=d["effectiveDate"],
            snapshot_at=d["snapshotAt"],
            created_at=d["createdAt"],
            updated_at=d["updatedAt"],
            expires_at=d["expiresAt"],
            suggested_offer=d["suggestedOffer"],
            referrer=d["referrer"],
            tracking=d["tracking"],
            pending_change=PendingChange.parse(d["pendingChange"]) if d["pendingChange"] else None,
            completing_since=d["completingSince"],
            order=Order.parse(d["order"]) if d["order"] else None,
            # Baskets stored before quotes had ids have none: they are quoted afresh.
            quote_id=d.get("quoteId"),
            quote_expires_at=d.get("quoteExpiresAt"),
            changed=d.get("changed", False),
            claim=d.get("claim"),
        )


def _money(d: dict[str, str]) -> Money:
    return Money(Decimal(d["amount"]), d["currency"])


def _offer(d: dict[str, Any]) -> Offer:
    return Offer(d["id"], d["name"], _money(d["price"]), d["description"])


def _stored(raw: bytes | None) -> Basket | None:
    return Basket.from_json(raw) if raw is not None else None


class BasketStore:
    def __init__(
        self,
        client: Any,
        keys: Keys,
        ttl_seconds: int,
        *,
        min_replicas: int = 0,
        replica_timeout_ms: int = 100,
        on_unreplicated: Callable[[], object] = lambda: None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.ttl = int(ttl_seconds)
        self._cas = client.register_script(_CAS)
        # A write is answered once this many replicas have it (WAIT), or after the timeout
        # without them: then the answer still says what the primary holds, and
        # `on_unreplicated` counts it.
        self.min_replicas = int(min_replicas)
        self.replica_timeout_ms = int(replica_timeout_ms)
        self.on_unreplicated = on_unreplicated

    def get(self, basket_id: str) -> Basket | None:
        return _stored(self.client.get(self.keys.basket(basket_id)))

    def queue_get(self, batch: Batch, name: str, basket_id: str) -> None:
        """Queue a read on `batch`, to share a round trip with other checks."""
        batch.get(name, self.keys.basket(basket_id))

    @staticmethod
    def read(batch: Batch, name: str) -> Basket | None:
        """The basket `queue_get` read, once the batch has run."""
        return _stored(batch.reply(name))

    def save(self, basket: Basket, along: Callable[[Any], None] | None = None) -> Basket | None:
        """Write `basket` if nobody wrote since it was read; None when somebody did.

        `along` queues other commands on the same pipeline (the funnel's counts), so they
        share the write's round trip."""
        now = time.time()
        written = replace(
            basket, version=basket.version + 1, updated_at=now, expires_at=now + self.ttl
        )
        key = self.keys.basket(basket.basket_id)
        args = [str(basket.version), written.to_json(), self.ttl]
        if along is None and not self.min_replicas:
            result = self._cas(keys=[key], args=args)
        else:
            pipe = self.client.pipeline(transaction=False)
            # EVAL with the text, not the registered script (see funnel.FunnelStore.queue).
            pipe.execute_command("EVAL", _CAS, 1, key, *args)
            if along is not None:
                along(pipe)
            if self.min_replicas:  # on the same connection: waits for the write above
                pipe.execute_command("WAIT", self.min_replicas, self.replica_timeout_ms)
            result, *others = pipe.execute(raise_on_error=False)
            if isinstance(result, Exception):
                raise result
            if self.min_replicas:
                acknowledged = others.pop()
                if result == 1 and not (
                    isinstance(acknowledged, int) and acknowledged >= self.min_replicas
                ):
                    log.warning("basket written, replicas acknowledged %r", acknowledged)
                    self.on_unreplicated()
            for failed in (reply for reply in others if isinstance(reply, Exception)):
                log.warning("a command sent along a basket save failed: %s", type(failed).__name__)
        return written if result == 1 else None
