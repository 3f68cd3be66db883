"""The Redis connection and the one place that builds Redis keys.

Keys that belong to one basket or one sign-in session carry a `{hash tag}` so that, on
Redis Cluster, everything one request touches lives in one slot.
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask, current_app
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

EXTENSION = "checkout.redis"


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def basket(self, basket_id: str) -> str:
        return f"{self.prefix}:basket:{{{basket_id}}}"

    def recaptcha(self, token_digest: str) -> str:
        return f"{self.prefix}:recaptcha:{token_digest}"

    def signin(self, session_id: str) -> str:
        return f"{self.prefix}:signin:{{{session_id}}}"

    def rate_limit(self, scope: str, subject: str) -> str:
        return f"{self.prefix}:rate:{scope}:{{{subject}}}"


def connect(config: dict[str, Any]) -> Any:
    """A client for a single server (connects on first use) or a cluster."""
    options: dict[str, Any] = {
        "socket_timeout": config["REDIS_SOCKET_TIMEOUT"],
        "socket_connect_timeout": config["REDIS_SOCKET_TIMEOUT"],
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
    }
    if config["REDIS_CLUSTER"]:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(config["REDIS_URL"], **options)
    return redis.Redis.from_url(config["REDIS_URL"], health_check_interval=30, **options)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = connect(app.config)
    app.extensions["checkout.keys"] = Keys(app.config["REDIS_KEY_PREFIX"])


def get_redis() -> Any:
    return current_app.extensions[EXTENSION]


def get_keys() -> Keys:
    return current_app.extensions["checkout.keys"]
