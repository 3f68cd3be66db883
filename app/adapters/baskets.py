"""The baskets' store on Redis: `checkout.ports.BasketStore`.

A basket is one JSON value under one key, with a TTL refreshed on every write. Every
write is a compare-and-set on the basket's `version` (one Lua script, one round trip), so
two updates at once never lose one: the loser re-reads and applies its change again.

The same script keeps the partner events' outbox (app/adapters/outbox.py), in the
basket's shard, so an event is written exactly when its change is: the completion that
records an order adds `checkout.completed` to the shard's stream (once: only on the change
from another status to completed), and an open basket with changes is listed, with the
`checkout.abandoned` it would be, under when it expires.

The JSON is the basket's own fields, camelCased, with the values' fields inside them the
same way (`BasketCodec`): a field added to `Basket` is stored without a line here. What
was stored was checked on the way in (the backend's answers by their `parse`), so it is
read back without checking it again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import types
import typing
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from functools import cache
from typing import Any

from redis.cluster import RedisCluster

from ..checkout.basket import Basket
from ..checkout.ports import StoreUnavailable
from ..signals import redis_failed, write_unreplicated
from . import webhooks
from .storage import FAILURES, Batch, Keys

log = logging.getLogger(__name__)

# KEYS: the basket, its shard's outbox stream, expiring set and abandonable hash.
# ARGV: the version read, the basket, its TTL, its id, when it expires, the completed
# event (or ''), the abandoned event it would be (or ''), '1' when events are on, and how
# long the outbox is kept when nothing touches it.
_CAS = """
local current = redis.call('GET', KEYS[1])
local was = nil
if ARGV[1] == '0' then
  if current then return 0 end
else
  if not current then return -1 end
  local stored = cjson.decode(current)
  if tostring(stored['version']) ~= ARGV[1] then return 0 end
  was = stored['status']
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
if ARGV[8] == '1' then
  if ARGV[6] ~= '' and was ~= 'completed' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', 'event', ARGV[6])
    redis.call('EXPIRE', KEYS[2], ARGV[9])
  end
  if ARGV[7] ~= '' then
    redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
    redis.call('HSET', KEYS[4], ARGV[4], ARGV[7])
    redis.call('EXPIRE', KEYS[3], ARGV[9])
    redis.call('EXPIRE', KEYS[4], ARGV[9])
  else
    redis.call('ZREM', KEYS[3], ARGV[4])
    redis.call('HDEL', KEYS[4], ARGV[4])
  end
end
return 1
"""


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _same(value: Any) -> Any:
    return value


@cache
def _encoder(kind: Any) -> Callable[[Any], Any]:
    """How to write a value of `kind` (a type hint of a field) as JSON."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        writers = [
            (f.name, _camel(f.name), _encoder(hints[f.name])) for f in dataclasses.fields(kind)
        ]
        plain = [(name, key) for name, key, write in writers if write is _same]
        converted = [(name, key, write) for name, key, write in writers if write is not _same]

        def write(value: Any) -> dict[str, Any]:
            written = {key: getattr(value, name) for name, key in plain}
            for name, key, convert in converted:
                written[key] = convert(getattr(value, name))
            return written

        return write
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        item = _encoder(args[0])
        return lambda value: [item(v) for v in value]
    if origin in (typing.Union, types.UnionType):  # `X | None`
        inner = _encoder(next(arg for arg in args if arg is not type(None)))
        return inner if inner is _same else lambda value: None if value is None else inner(value)
    return str if kind is Decimal else _same  # str, int, float, bool, dict[str, str]


@cache
def _decoder(kind: Any) -> Callable[[Any], Any]:
    """How to read back a value stored as `kind` (a type hint of a field)."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = [
            (f.name, _camel(f.name), _decoder(hints[f.name])) for f in dataclasses.fields(kind)
        ]
        make = typing.cast(Callable[..., Any], kind)

        def read(data: dict[str, Any]) -> Any:
            try:  # every field in order, as this release writes them
                return make(
                    *[r(data[key]) if r is not _same else data[key] for _, key, r in fields]
                )
            except KeyError:  # stored by an earlier release: a field it lacks takes its default
                return make(**{name: r(data[key]) for name, key, r in fields if key in data})

        return read
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        item = _decoder(args[0])
        return lambda data: tuple(map(item, data))
    if origin in (typing.Union, types.UnionType):  # `X | None`
        inner = _decoder(next(arg for arg in args if arg is not type(None)))
        return inner if inner is _same else lambda data: None if data is None else inner(data)
    if kind is Decimal:
        return Decimal
    return _same  # str, int, float, bool, dict[str, str]: JSON's own


_read_basket, _write_basket = _decoder(Basket), _encoder(Basket)


def encode(basket: Basket) -> str:
    return json.dumps(_write_basket(basket), separators=(",", ":"))


def decode(raw: bytes | str | None) -> Basket | None:
    return _read_basket(json.loads(raw)) if raw is not None else None


class RedisBasketStore:
    def __init__(
        self,
        client: Any,
        keys: Keys,
        ttl_seconds: int,
        *,
        min_replicas: int = 0,
        replica_timeout_ms: int = 100,
        events: bool = False,
        events_kept: int = 7 * 86400,
    ) -> None:
        self.client = client
        self.keys = keys
        self.ttl = int(ttl_seconds)
        self.events = events  # partner events are on: keep their outbox
        self.events_kept = int(events_kept)
        self._cas = client.register_script(_CAS)
        # A write is answered once this many replicas have it (WAIT), or after the timeout
        # without them: then the answer still says what the primary holds, and
        # `write_unreplicated` is sent.
        self.min_replicas = int(min_replicas)
        self.replica_timeout_ms = int(replica_timeout_ms)

    def get(self, basket_id: str) -> Basket | None:
        try:
            raw = self.client.get(self.keys.basket(basket_id))
            return decode(raw if raw is not None else self._moved(basket_id))
        except FAILURES as exc:
            raise _unavailable(exc) from exc

    def queue_get(self, batch: Batch, name: str, basket_id: str) -> None:
        """Queue a read on `batch`, to share a round trip with other checks."""
        batch.get(name, self.keys.basket(basket_id))

    def read(self, batch: Batch, name: str, basket_id: str) -> Basket | None:
        """The basket `queue_get` read, once the batch has run."""
        raw = batch.reply(name)
        try:
            return decode(raw if raw is not None else self._moved(basket_id))
        except FAILURES as exc:
            raise _unavailable(exc) from exc

    def _moved(self, basket_id: str) -> bytes | None:
        """A basket a release before the shards stored: moved to its shard's key, once.
        (A round trip only when the basket is not where it belongs, as on a 404.)"""
        legacy = self.keys.legacy_basket(basket_id)
        raw, ttl = self.client.pipeline(transaction=False).get(legacy).ttl(legacy).execute()
        if raw is not None and ttl > 0:
            self.client.set(self.keys.basket(basket_id), raw, ex=ttl, nx=True)
            self.client.delete(legacy)
        return raw

    def save(self, basket: Basket) -> Basket | None:
        now = time.time()
        written = replace(
            basket, version=basket.version + 1, updated_at=now, expires_at=now + self.ttl
        )
        shard = self.keys.shard(basket.basket_id)
        keys = [
            self.keys.basket(basket.basket_id),
            self.keys.outbox(shard),
            self.keys.expiring(shard),
            self.keys.abandonable(shard),
        ]
        completed = webhooks.completed(written) if self.events else None
        abandoned = webhooks.abandoned(written) if self.events else None
        args = [
            str(basket.version),
            encode(written),
            self.ttl,
            basket.basket_id,
            written.expires_at,
            completed.to_json() if completed else "",
            abandoned.to_json() if abandoned else "",
            "1" if self.events else "0",
            self.events_kept,
        ]
        try:
            result = self._write(keys, args)
        except FAILURES as exc:
            raise _unavailable(exc) from exc
        return written if result == 1 else None

    def _write(self, keys: list[str], args: list[Any]) -> Any:
        if not self.min_replicas:
            return self._cas(keys=keys, args=args)
        # WAIT counts the replicas that have this connection's writes, so it must follow the
        # script on the same connection: on a cluster, that of the node serving the slot.
        client = self.client
        if isinstance(client, RedisCluster):
            client = client.get_node_from_key(keys[0]).redis_connection
        pipe = client.pipeline(transaction=False)
        # EVAL with the text: a registered script on a pipeline costs a round trip of its
        # own to ask the server whether it knows it.
        pipe.execute_command("EVAL", _CAS, len(keys), *keys, *args)
        pipe.execute_command("WAIT", self.min_replicas, self.replica_timeout_ms)
        result, acknowledged = pipe.execute(raise_on_error=False)
        if isinstance(result, Exception):
            raise result
        if result == 1 and not (
            isinstance(acknowledged, int) and acknowledged >= self.min_replicas
        ):
            log.warning("basket written, replicas acknowledged %r", acknowledged)
            write_unreplicated.send(None)
        return result


def _unavailable(exc: BaseException) -> StoreUnavailable:
    log.warning("basket store unavailable: %s", type(exc).__name__)
    redis_failed.send(exc)
    return StoreUnavailable(type(exc).__name__)
