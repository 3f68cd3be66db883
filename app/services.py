"""The app's long-lived collaborators, built once per app and reached through accessors.

Nothing here connects at import time; `init_app` builds the objects from configuration
and keeps them in `app.extensions`.
"""

from __future__ import annotations

from flask import Flask, current_app

from . import metrics, storage
from .backend import CircuitBreaker, SubscriptionClient
from .baskets import BasketStore
from .checkout import Checkout
from .ratelimit import Limit, RateLimiter
from .recaptcha import RecaptchaVerifier
from .tokens import TokenValidator


def init_app(app: Flask) -> None:
    storage.init_app(app)
    config = app.config
    client, keys = app.extensions[storage.EXTENSION], app.extensions[storage.KEYS]
    backend = SubscriptionClient(
        config["SUBSCRIPTION_API_URL"],
        config["SUBSCRIPTION_API_TOKEN"],
        connect_timeout=config["SUBSCRIPTION_API_CONNECT_TIMEOUT"],
        read_timeout=config["SUBSCRIPTION_API_READ_TIMEOUT"],
        read_retries=config["SUBSCRIPTION_API_READ_RETRIES"],
        breaker=CircuitBreaker(
            threshold=config["SUBSCRIPTION_API_BREAKER_THRESHOLD"],
            cooldown=config["SUBSCRIPTION_API_BREAKER_COOLDOWN"],
            on_change=app.extensions[metrics.EXTENSION].circuit_open.labels("backend").set,
        ),
        pool_size=int(config["THREADS"]),  # one connection per request at most
    )
    store = BasketStore(
        client,
        keys,
        config["BASKET_TTL_SECONDS"],
        min_replicas=config["REDIS_MIN_REPLICAS"],
        replica_timeout_ms=config["REDIS_MIN_REPLICAS_TIMEOUT_MS"],
        on_unreplicated=app.extensions[metrics.EXTENSION].unreplicated.inc,
    )
    app.extensions["checkout.checkout"] = Checkout(store, backend, config)
    app.extensions["checkout.recaptcha"] = RecaptchaVerifier(config, client, keys)
    app.extensions["checkout.limiter"] = RateLimiter(
        keys,
        {
            "create": Limit.parse(config["RATE_LIMIT_CREATE"]),
            "update": Limit.parse(config["RATE_LIMIT_UPDATE"]),
        },
    )
    app.extensions["checkout.tokens"] = TokenValidator(
        config["OAUTH_ISSUER"],
        config["OAUTH_AUDIENCE"],
        cache_seconds=config["OAUTH_JWKS_CACHE_SECONDS"],
        leeway=config["OAUTH_LEEWAY_SECONDS"],
    )


def checkout() -> Checkout:
    return current_app.extensions["checkout.checkout"]


def recaptcha() -> RecaptchaVerifier:
    return current_app.extensions["checkout.recaptcha"]


def limiter() -> RateLimiter:
    return current_app.extensions["checkout.limiter"]


def tokens() -> TokenValidator:
    return current_app.extensions["checkout.tokens"]
