"""The Redis client, the one place that builds Redis keys, and batches of commands.

Keys that belong to one basket or one sign-in session carry a `{hash tag}` so that, on
Redis Cluster, everything one request touches lives in one slot. Everything goes through
redis-py's own client: the same calls, replies and retries on a single server and on a
cluster.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from ..config import ConfigError

# Baskets are spread over this many shards. A basket shares its shard's slot (a cluster's
# hash tag) with the shard's partner events, so one script writes a basket and its event.
SHARDS = 16


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.shards = [f"{prefix}-s{n:02d}" for n in range(SHARDS)]

    def shard(self, basket_id: str) -> str:
        return self.shards[zlib.crc32(basket_id.encode()) % SHARDS]

    def basket(self, basket_id: str) -> str:
        return f"{self.prefix}:basket:{{{self.shard(basket_id)}}}:{basket_id}"

    def baskets(self) -> str:
        """A pattern that matches every basket's key (SCAN, for tests and operators)."""
        return f"{self.prefix}:basket:*"

    def legacy_basket(self, basket_id: str) -> str:
        """Where releases before the shards kept a basket: read once more, then moved."""
        return f"{self.prefix}:basket:{{{basket_id}}}"

    def outbox(self, shard: str) -> str:
        """The shard's partner events as the checkout writes them: a stream."""
        return f"{self.prefix}:events:{{{shard}}}"

    def expiring(self, shard: str) -> str:
        """The shard's open baskets with changes, by when they expire: a sorted set."""
        return f"{self.prefix}:expiring:{{{shard}}}"

    def abandonable(self, shard: str) -> str:
        """What each of those would tell the partner if it expired: a hash."""
        return f"{self.prefix}:abandonable:{{{shard}}}"

    def deliveries(self, shard: str) -> str:
        """The shard's events being delivered, by when each is next due: a sorted set."""
        return f"{self.prefix}:deliveries:{{{shard}}}"

    def undelivered(self, shard: str) -> str:
        """The same events by when they were made, for the oldest's age: a sorted set."""
        return f"{self.prefix}:undelivered:{{{shard}}}"

    def failed(self, shard: str) -> str:
        """The shard's events that used up every attempt, by when: a sorted set."""
        return f"{self.prefix}:failed:{{{shard}}}"

    def event(self, shard: str, event_id: str) -> str:
        """One event and its delivery's record, kept for a while after it ends."""
        return f"{self.prefix}:event:{{{shard}}}:{event_id}"

    def recent_deliveries(self) -> str:
        """The last deliveries' outcomes, newest first, for the ops page: a capped list."""
        return f"{self.prefix}:deliveries:recent"

    def delivery_counts(self) -> str:
        """Deliveries by type and outcome, and attempts, for /metrics: a hash."""
        return f"{self.prefix}:deliveries:counts"

    def recaptcha(self, token_digest: str) -> str:
        return f"{self.prefix}:recaptcha:{token_digest}"

    def signin(self, session_id: str) -> str:
        return f"{self.prefix}:signin:{{{session_id}}}"

    def rate_limit(self, scope: str, subject: str) -> str:
        return f"{self.prefix}:rate:{scope}:{{{subject}}}"

    def readiness(self, process: str) -> str:
        """/readyz's probe write, one per process."""
        return f"{self.prefix}:readyz:{process}"

    def funnel(self, day: str) -> str:
        """One day's funnel counts (app/ops/funnel.py), every campaign in one hash."""
        return f"{self.prefix}:funnel:{day}"


def connect(config: dict[str, Any]) -> Any:
    """A client for a single server, a Sentinel-watched master or a cluster; it connects on
    first use.

    Its pool is bounded and waits: a thread that finds every connection in use waits for
    one (up to the socket timeout) instead of opening another or failing. The bound fits
    the worker's concurrency: each request in flight and its fan-out task (app/adapters/fanout.py)
    hold at most one connection each, and a request beyond MAX_IN_FLIGHT is answered
    before it touches Redis (app/web/overload.py). On a cluster the bound is per node. Through
    Sentinel the pool is redis-py's `SentinelConnectionPool`, which has no waiting form:
    it opens what the in-flight bound lets through.
    """
    timeout = config["REDIS_SOCKET_TIMEOUT"]
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
    }
    if config.get("REDIS_PASSWORD"):
        options["password"] = config["REDIS_PASSWORD"]
    sentinels = config.get("REDIS_SENTINELS") or []
    if sentinels:
        # master_for: every new connection asks the sentinels where the master is now, so
        # a promoted replica is found without a restart; all commands go to the master.
        watched = Sentinel(
            [_host_port(address) for address in sentinels],
            sentinel_kwargs={
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
                "password": config.get("REDIS_SENTINEL_PASSWORD") or None,
            },
            **options,
        )
        return watched.master_for(
            config.get("REDIS_SENTINEL_SERVICE") or "checkout", health_check_interval=30
        )
    options["max_connections"] = pool_size(config)
    # The pool's `timeout` is the longest a thread waits for a free connection.
    if config["REDIS_CLUSTER"]:
        # Bound to the class: RedisCluster before redis-py 6 drops a `timeout` it is given.
        waiting = functools.partial(redis.BlockingConnectionPool, timeout=timeout)
        return RedisCluster.from_url(config["REDIS_URL"], connection_pool_class=waiting, **options)
    pool = redis.BlockingConnectionPool.from_url(
        config["REDIS_URL"], timeout=timeout, health_check_interval=30, **options
    )
    return redis.Redis(connection_pool=pool)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"CHECKOUT_REDIS_SENTINELS: a sentinel is host:port, not {address!r}")
    return host.strip("[]"), int(port)


# What a failover or an outage looks like from here: answered 503, "retry shortly". A
# demoted primary refuses writes (READONLY); a cluster with a slot's master gone answers
# CLUSTERDOWN or TRYAGAIN, or redis-py cannot find a node for the slot.
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.RedisClusterException,
)
# Every failure of a Redis command, the cluster client's own included.
FAILURES: tuple[type[Exception], ...] = (
    redis.exceptions.RedisError,
    redis.exceptions.RedisClusterException,
)


def pool_size(config: dict[str, Any]) -> int:
    """REDIS_MAX_CONNECTIONS, or by default two per request the worker lets in at once."""
    return int(config.get("REDIS_MAX_CONNECTIONS") or 2 * int(config.get("MAX_IN_FLIGHT", 64)))


class Batch:
    """Commands sent together in one round trip (a pipeline without MULTI), each reply
    kept under the name its caller gave the command.

    Several checks share one batch (app/web/guards.py): each reads its own replies by name, so
    adding a command to one check cannot shift another's. On a cluster redis-py's
    pipeline sends each command to its slot's node; the replies are the same.
    """

    def __init__(self, client: Any) -> None:
        self._pipe = client.pipeline(transaction=False)
        self._names: list[str] = []
        self._replies: dict[str, Any] | None = None

    def get(self, name: str, key: str) -> None:
        self._name(name)
        self._pipe.get(key)

    def incr(self, name: str, key: str) -> None:
        self._name(name)
        self._pipe.incr(key)

    def expire(self, name: str, key: str, seconds: int) -> None:
        self._name(name)
        self._pipe.expire(key, seconds)

    def set(
        self, name: str, key: str, value: Any, *, nx: bool = False, ex: int | None = None
    ) -> None:
        self._name(name)
        self._pipe.set(key, value, nx=nx, ex=ex)

    def _name(self, name: str) -> None:
        if name in self._names:
            raise ValueError(f"a command named {name!r} is already in this batch")
        self._names.append(name)

    def execute(self) -> None:
        replies = self._pipe.execute() if self._names else []
        self._replies = dict(zip(self._names, replies, strict=True))

    def reply(self, name: str) -> Any:
        """The reply to the command queued as `name`, once the batch has run."""
        if self._replies is None:
            raise RuntimeError("the batch has not been executed")
        return self._replies[name]
