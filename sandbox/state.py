"""All of the sandbox's in-memory state in one object, so one call resets it for a test."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, cast

from flask import current_app

from sandbox.data import CUSTOMERS, Customer
from sandbox.faults import FaultQueue
from sandbox.subscriptions import SubscriptionStore

EXTENSION_KEY = "sandbox.state"

#: request counters by endpoint group, so tests can see calls (and retries) that arrived
STAT_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"^/backend/v1/subscriptions/[^/]+$"), "getSubscription"),
    ("POST", re.compile(r"^/backend/v1/subscriptions/[^/]+/quotes$"), "quote"),
    ("POST", re.compile(r"^/backend/v1/orders$"), "order"),
    ("POST", re.compile(r"^/recaptcha/api/siteverify$"), "siteverify"),
)


def stat_route(method: str, path: str) -> str | None:
    """The ``STAT_ROUTES`` name of a request, or None if it is not counted."""
    for route_method, pattern, name in STAT_ROUTES:
        if method == route_method and pattern.match(path):
            return name
    return None


class Stats:
    """Thread-safe request counters."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, method: str, path: str) -> None:
        name = stat_route(method, path)
        if name is not None:
            with self._lock:
                self._counts[name] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
        return {
            "backend": {
                name: counts.get(name, 0) for name in ("getSubscription", "quote", "order")
            },
            "siteverify": counts.get("siteverify", 0),
        }


class CallTimeline:
    """When each counted call arrived and was answered, so a test can see calls overlap.

    Counters say how many calls came; only times say whether the checkout made them one
    after another or side by side. Each call also keeps the ``traceparent`` it carried, so a
    test can see which of the checkout's requests it belongs to. Bounded: a soak test must
    not grow it for ever.
    """

    def __init__(self, maxlen: int = 2000) -> None:
        self._calls: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def record(
        self,
        method: str,
        path: str,
        arrived_at: float,
        answered_at: float,
        traceparent: str | None = None,
    ) -> None:
        """Keep a call to a ``STAT_ROUTES`` endpoint; times are ``time.time()`` seconds, and
        ``traceparent`` the W3C trace context header the call carried, if any."""
        name = stat_route(method, path)
        if name is None:
            return
        call = {
            "endpoint": name,
            "method": method,
            "path": path,
            "arrivedAt": arrived_at,
            "answeredAt": answered_at,
            "traceparent": traceparent,
        }
        with self._lock:
            self._calls.append(call)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def to_json(self) -> list[dict[str, Any]]:
        """The calls in arrival order (they are recorded as they are answered)."""
        with self._lock:
            calls = [dict(call) for call in self._calls]
        return sorted(calls, key=lambda call: call["arrivedAt"])


class DeliveryLog:
    """Every attempt at the partner's webhook receiver, refused and faulted ones too.

    A test reads it to see what the checkout sent and how often. Bounded like the call
    timeline: the oldest records go first once ``maxlen`` is reached.
    """

    # A benchmark's or failover test's few thousand confirmations, each with its attempts.
    KEPT = 20_000

    def __init__(self, maxlen: int = KEPT) -> None:
        # (arrival number, record): recorded once answered, listed in arrival order.
        self._records: deque[tuple[int, dict[str, Any]]] = deque(maxlen=maxlen)
        self._arrivals = itertools.count()
        self._lock = threading.Lock()

    def arrival(self) -> int:
        """A number for an attempt that just arrived; later arrivals get larger ones."""
        with self._lock:
            return next(self._arrivals)

    def record(self, arrival: int, record: dict[str, Any]) -> None:
        """Keep an answered attempt, ``arrival`` being what ``arrival()`` gave it."""
        with self._lock:
            self._records.append((arrival, record))

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    def to_json(self) -> list[dict[str, Any]]:
        """The records in arrival order (an attempt is kept when it has been answered)."""
        with self._lock:
            records = sorted(self._records, key=lambda item: item[0])
        return [dict(record) for _, record in records]


class SingleUseLedger:
    """Remembers spent reCAPTCHA tokens: each verifies once only."""

    def __init__(self) -> None:
        self._spent: set[str] = set()
        self._lock = threading.Lock()

    def spend(self, token: str) -> bool:
        """True the first time ``token`` is seen, False ever after."""
        with self._lock:
            if token in self._spent:
                return False
            self._spent.add(token)
            return True

    def reset(self) -> None:
        with self._lock:
            self._spent.clear()


@dataclass
class AuthorizationCode:
    """An issued code; the ``get_*`` methods are what Authlib's grants ask of it."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    customer_id: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))
    expires_at: float = field(default_factory=lambda: time.time() + 600)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class RefreshToken:
    """An issued refresh token; rotated (revoked) when used."""

    token: str
    client_id: str
    customer_id: str
    scope: str
    expires_at: float = field(default_factory=lambda: time.time() + 86400)
    revoked: bool = False

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked

    @property
    def customer(self) -> Customer | None:
        return CUSTOMERS.get(self.customer_id)


class GrantStore:
    """Authorization codes and refresh tokens issued by the OAuth provider."""

    def __init__(self) -> None:
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.lock = threading.Lock()

    def save_code(self, code: AuthorizationCode) -> None:
        with self.lock:
            self.codes[code.code] = code

    def find_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        with self.lock:
            found = self.codes.get(code)
        if found and found.client_id == client_id and found.expires_at > time.time():
            return found
        return None

    def delete_code(self, code: str) -> None:
        with self.lock:
            self.codes.pop(code, None)

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        with self.lock:
            return any(c.client_id == client_id and c.nonce == nonce for c in self.codes.values())

    def save_refresh_token(self, token: RefreshToken) -> None:
        with self.lock:
            self.refresh_tokens[token.token] = token

    def find_refresh_token(self, token: str) -> RefreshToken | None:
        with self.lock:
            found = self.refresh_tokens.get(token)
        if found and not found.is_revoked() and not found.is_expired():
            return found
        return None

    def revoke_refresh_token(self, token: str) -> None:
        with self.lock:
            if token in self.refresh_tokens:
                self.refresh_tokens[token].revoked = True


@dataclass
class SandboxState:
    subscriptions: SubscriptionStore = field(default_factory=SubscriptionStore)
    recaptcha_tokens: SingleUseLedger = field(default_factory=SingleUseLedger)
    grants: GrantStore = field(default_factory=GrantStore)
    faults: FaultQueue = field(default_factory=FaultQueue)
    stats: Stats = field(default_factory=Stats)
    calls: CallTimeline = field(default_factory=CallTimeline)
    webhooks: DeliveryLog = field(default_factory=DeliveryLog)

    def reset(self) -> None:
        """Back to the demo data: no orders, spent tokens, faults, counts, call times or
        webhook deliveries.

        OAuth grants survive, so a sign-in in flight in a parallel test is not broken.
        The latency profile is configuration, not state, and lives elsewhere.
        """
        self.subscriptions.reset()
        self.recaptcha_tokens.reset()
        self.faults.clear()
        self.stats.reset()
        self.calls.reset()
        self.webhooks.reset()


def get_state() -> SandboxState:
    """The state of the sandbox app handling the current request."""
    return cast(SandboxState, current_app.extensions[EXTENSION_KEY])
