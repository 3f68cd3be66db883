"""The adapters: everything that reaches the outside world, and `build`, which makes them.

Redis (storage.py, baskets.py, ratelimit.py), the subscription backend (backend.py),
reCAPTCHA (recaptcha.py) and the identity provider's keys (tokens.py), every HTTP call on
one policy (upstream.py). They implement the rules' interfaces (app/checkout/ports.py)
and raise the checkout's own errors. Nothing connects at import time: `build` makes them
from the settings, once per app, and the app keeps them (app/web/services.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..checkout import Checkout
from ..signals import checkout_event, circuit_changed
from . import deadline
from .backend import CircuitBreaker, SubscriptionClient
from .baskets import RedisBasketStore
from .fanout import FanOut
from .outbox import Outbox
from .ratelimit import Limit, RateLimiter
from .recaptcha import RecaptchaVerifier
from .storage import Keys, connect
from .tokens import TokenValidator
from .webhooks import Sender


@dataclass(frozen=True, slots=True)
class Services:
    redis: Any  # redis-py's client: a single server, a Sentinel-watched master or a cluster
    keys: Keys
    store: RedisBasketStore
    backend: SubscriptionClient
    checkout: Checkout
    recaptcha: RecaptchaVerifier
    limiter: RateLimiter
    tokens: TokenValidator
    fanout: FanOut
    outbox: Outbox
    sender: Sender | None  # None: partner events are off (no CHECKOUT_WEBHOOK_URL)


def build(config: dict[str, Any]) -> Services:
    client, keys = connect(config), Keys(config["REDIS_KEY_PREFIX"])
    threads = int(config["THREADS"])  # one connection, one fan-out task per request at most
    connect_timeout = float(config["SUBSCRIPTION_API_CONNECT_TIMEOUT"])
    read_timeout = float(config["SUBSCRIPTION_API_READ_TIMEOUT"])
    # How long partner events' keys live: the basket's script and the outbox's set them alike.
    events_kept = int(float(config["WEBHOOK_RETENTION_DAYS"]) * 86400)
    backend = SubscriptionClient(
        config["SUBSCRIPTION_API_URL"],
        config["SUBSCRIPTION_API_TOKEN"],
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        read_retries=config["SUBSCRIPTION_API_READ_RETRIES"],
        breaker=CircuitBreaker(
            threshold=config["SUBSCRIPTION_API_BREAKER_THRESHOLD"],
            cooldown=config["SUBSCRIPTION_API_BREAKER_COOLDOWN"],
            on_change=lambda is_open: circuit_changed.send("backend", is_open=is_open),
        ),
        pool_size=threads,
    )
    store = RedisBasketStore(
        client,
        keys,
        config["BASKET_TTL_SECONDS"],
        min_replicas=config["REDIS_MIN_REPLICAS"],
        replica_timeout_ms=config["REDIS_MIN_REPLICAS_TIMEOUT_MS"],
        events=bool(config["WEBHOOK_URL"]),
        events_kept=events_kept,
    )
    checkout = Checkout(
        store,
        backend,
        snapshot_max_age=float(config["BASKET_SNAPSHOT_MAX_AGE_SECONDS"]),
        # How long a completion may take upstream before another may take it over.
        submit_budget=connect_timeout + read_timeout + 1.0,
        max_remove_offers=int(config["MAX_REMOVE_OFFERS"]),
        announce=checkout_event.send,
        time_left=deadline.remaining,
    )
    return Services(
        redis=client,
        keys=keys,
        store=store,
        backend=backend,
        checkout=checkout,
        recaptcha=RecaptchaVerifier(config, client, keys),
        limiter=RateLimiter(
            keys,
            {
                "create": Limit.parse(config["RATE_LIMIT_CREATE"]),
                "update": Limit.parse(config["RATE_LIMIT_UPDATE"]),
            },
        ),
        tokens=TokenValidator(
            config["OAUTH_ISSUER"],
            config["OAUTH_AUDIENCE"],
            cache_seconds=config["OAUTH_JWKS_CACHE_SECONDS"],
            leeway=config["OAUTH_LEEWAY_SECONDS"],
            timeout=float(config["OAUTH_TIMEOUT_SECONDS"]),
        ),
        fanout=FanOut(threads),
        outbox=Outbox(
            client,
            keys,
            schedule=config["WEBHOOK_RETRY_SCHEDULE"],
            lease=float(config["WEBHOOK_LEASE_SECONDS"]),
            retention=events_kept,
        ),
        sender=Sender(
            config["WEBHOOK_URL"],
            config["WEBHOOK_SECRET"],
            config["WEBHOOK_SECRET_PREVIOUS"],
            timeout=float(config["WEBHOOK_TIMEOUT_SECONDS"]),
            allow_private=config["WEBHOOK_ALLOW_PRIVATE"],
        )
        if config["WEBHOOK_URL"]
        else None,
    )
