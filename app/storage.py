"""The Redis connection and the one place that builds Redis keys.

Keys that belong to one basket or one sign-in session carry a `{hash tag}` so that, on
Redis Cluster, everything one request touches lives in one slot.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from flask import Flask, current_app
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError
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
        return RedisCluster.from_url(config["REDIS_URL"], **options)
    return redis.Redis.from_url(config["REDIS_URL"], health_check_interval=30, **options)


class Direct:
    """Commands sent in one round trip on a connection of our own: the hot path.

    Every page view and every `GET` reads its basket (a page its sign-in session too),
    and every change first passes its admission checks (guards.py). Through the client,
    redis-py's layers around one round trip (pool checkout with a poll of the socket,
    retry closure, metrics hooks, deprecation checks, response callbacks, pool release)
    cost an eighth of a GET's CPU in process and half the admission's; here the
    commands go straight to a redis-py `Connection` kept in a list of idle ones (taking and
    returning one is atomic under the GIL, so threads never share one). The connection
    brings the client's settings: timeouts, health checks and the `Retry` policy, used
    the way the client uses it: a dropped connection is reopened and the round trip sent
    again, as the client would send it again. So only commands whose second sending does
    no harm belong here: reads, the session's GETEX (it renews a TTL), the admission's
    counters and token claim (a count of one too many; a claim that finds its own first
    sending and asks for a new token), and the basket's compare-and-set (one that finds
    its own first write is taken for a lost race: the basket is read again).

    Replies are Redis's own, without the client's conversions: `SET` answers b"OK" or
    None. On Redis Cluster the client's own pipeline routes each command to its slot's
    node, and converts (`SET` answers True or None): callers test a reply's truth only.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pool = None if isinstance(client, RedisCluster) else client.connection_pool
        self._idle: list[Any] = []
        self._pid = os.getpid()

    def get(self, key: str) -> bytes | None:
        reply: bytes | None = self.run(("GET", key))[0]
        return reply

    def run(self, *commands: tuple[Any, ...]) -> list[Any]:
        """The replies to `commands`, in order; each must be safe to send twice."""
        if self.pool is None:
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return list(pipe.execute())
        connection = self._take()
        try:
            packed = connection.pack_commands(commands)
            replies: list[Any] = connection.retry.call_with_retry(
                lambda: self._round_trip(connection, packed, len(commands)),
                lambda _error: connection.disconnect(),
            )
        except BaseException:
            connection.disconnect()  # a reply may be left unread: never reuse it
            raise
        finally:
            self._idle.append(connection)
        return replies

    @staticmethod
    def _round_trip(connection: Any, packed: list[bytes], count: int) -> list[Any]:
        connection.send_packed_command(packed)
        return [connection.read_response() for _ in range(count)]

    def batch(self) -> Batch:
        return Batch(self)

    def script(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """Run a registered Lua script, by its SHA1 and, if the server has lost it (a
        restart, SCRIPT FLUSH), by its source, as `Script.__call__` does."""
        if self.pool is None:
            return script(keys=keys, args=args)
        try:
            return self.run(("EVALSHA", script.sha, len(keys), *keys, *args))[0]
        except NoScriptError:
            return self.run(("EVAL", script.script, len(keys), *keys, *args))[0]

    def _take(self) -> Any:
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            self._idle, self._pid = [], os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            return self.pool.make_connection()  # type: ignore[union-attr]


class Batch:
    """Commands queued for one `Direct.run`, through the few pipeline methods the
    admission checks call (ratelimit.py, recaptcha.py, baskets.py)."""

    def __init__(self, direct: Direct) -> None:
        self.direct = direct
        self.commands: list[tuple[Any, ...]] = []

    def get(self, key: str) -> None:
        self.commands.append(("GET", key))

    def incr(self, key: str) -> None:
        self.commands.append(("INCR", key))

    def expire(self, key: str, seconds: int) -> None:
        self.commands.append(("EXPIRE", key, seconds))

    def set(self, key: str, value: Any, *, nx: bool = False, ex: int | None = None) -> None:
        command: tuple[Any, ...] = ("SET", key, value)
        if nx:
            command += ("NX",)
        if ex is not None:
            command += ("EX", ex)
        self.commands.append(command)

    def execute(self) -> list[Any]:
        return self.direct.run(*self.commands) if self.commands else []


def init_app(app: Flask) -> None:
    client = app.extensions[EXTENSION] = connect(app.config)
    app.extensions["checkout.direct"] = Direct(client)
    app.extensions["checkout.keys"] = Keys(app.config["REDIS_KEY_PREFIX"])


def get_redis() -> Any:
    return current_app.extensions[EXTENSION]


def get_direct() -> Direct:
    return current_app.extensions["checkout.direct"]


def get_keys() -> Keys:
    return current_app.extensions["checkout.keys"]
