"""The partner events' queue in Redis: Redis Streams with a consumer group, per shard.

The checkout writes an event into its shard's stream in the same script as the change it
reports (app/adapters/baskets.py). Deliverers (app/ops/deliverer.py, any number, on any
host) read the streams as one consumer group, `deliverers`:

- `take_new` reads entries no deliverer has had (XREADGROUP) and moves each, in one script,
  out of the stream and into the shard's schedule of deliveries, due now plus a lease;
- `take_due` takes the deliveries that are due, pushing each one's due time a lease ahead
  first, so a deliverer killed mid-attempt leaves it due again once the lease ends;
- `recover` takes over stream entries a deliverer read and died before moving (XAUTOCLAIM);
- an attempt's outcome ends the delivery (`delivered`), schedules the next attempt from
  the retry schedule, or, after the last one, keeps the event as failed (`gave_up`), where
  an operator can send it again (`resend`).

Every step is one script over keys in the shard's slot, so it holds on a single server,
through Sentinel and on a cluster alike. Every key has a TTL, the retention period,
renewed as it is written: an event and its record are kept that long, and an outbox no
deliverer ever reads goes in the end. The streams are capped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from .storage import Keys
from .webhooks import Attempt, Event

log = logging.getLogger(__name__)

GROUP = "deliverers"
RECENT = 50  # deliveries the ops page lists

# Moves read stream entries into the schedule. KEYS: stream, deliveries, undelivered, then
# each entry's event key. ARGV: due, retention seconds, then (entry id, event JSON) pairs.
_MOVE = """
local moved = {}
for i = 3, #ARGV, 2 do
  local event = cjson.decode(ARGV[i + 1])
  local key = KEYS[3 + (i - 1) / 2]
  if redis.call('EXISTS', key) == 0 then
    local record = cjson.encode({event = ARGV[i + 1], attempts = 0, state = 'pending'})
    redis.call('SET', key, record, 'EX', ARGV[2])
    redis.call('ZADD', KEYS[2], ARGV[1], event['id'])
    redis.call('ZADD', KEYS[3], event['createdAt'], event['id'])
    table.insert(moved, event['id'])
  end
  redis.call('XACK', KEYS[1], 'deliverers', ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ARGV[2]) end
return moved
"""
# Takes what is due. KEYS: deliveries. ARGV: now, lease end, most.
_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
"""
# An attempt's end. KEYS: deliveries, undelivered, failed, the event key. ARGV: the event
# id, the record, retention, the next attempt's due time ('' when it is over), failed at
# ('' unless it failed for good).
_SETTLE = """
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
return 1
"""
# Sends a failed event again. KEYS: deliveries, undelivered, failed, the event key.
_RESEND = """
local raw = redis.call('GET', KEYS[4])
if not raw or redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return 0 end
local record = cjson.decode(raw)
record['state'] = 'pending'
record['attempts'] = 0
redis.call('SET', KEYS[4], cjson.encode(record), 'EX', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], cjson.decode(record['event'])['createdAt'], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""
# Abandoned baskets into the stream. KEYS: expiring, abandonable, stream, then each
# basket's key. ARGV: retention, then the baskets' ids, in the same order.
_ABANDON = """
local sent = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('EXISTS', KEYS[2 + i]) == 0 then
    local event = redis.call('HGET', KEYS[2], id)
    if event then
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', '100000', '*', 'event', event)
      redis.call('EXPIRE', KEYS[3], ARGV[1])
      sent = sent + 1
    end
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  end
end
return sent
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    shard: str
    event: Event
    attempts: int  # made so far


class Outbox:
    def __init__(
        self,
        client: Any,
        keys: Keys,
        *,
        schedule: list[float],
        lease: float,
        retention: float,
    ) -> None:
        self.client = client
        self.keys = keys
        self.schedule = schedule  # seconds before each attempt after the first
        self.lease = lease
        self.retention = int(retention)
        self._move = client.register_script(_MOVE)
        self._due = client.register_script(_DUE)
        self._settle = client.register_script(_SETTLE)
        self._resend = client.register_script(_RESEND)
        self._abandon = client.register_script(_ABANDON)

    @property
    def shards(self) -> list[str]:
        return self.keys.shards

    def ensure_groups(self) -> None:
        """The consumer group on every shard's stream, made once (MKSTREAM)."""
        for shard in self.shards:
            stream = self.keys.outbox(shard)
            try:
                self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self.client.expire(stream, self.retention)

    # -- taking work -------------------------------------------------------------------------

    def take_new(self, consumer: str, most: int) -> list[Delivery]:
        """Entries no deliverer has had yet, from every shard: one round trip to look."""
        pipe = self.client.pipeline(transaction=False)
        for shard in self.shards:
            pipe.xreadgroup(GROUP, consumer, {self.keys.outbox(shard): ">"}, count=most)
        deliveries = []
        for shard, found in zip(self.shards, pipe.execute(), strict=True):
            entries = [entry for _, stream in found or [] for entry in stream]
            deliveries += self._scheduled(shard, entries)
        return deliveries

    def recover(self, shard: str, consumer: str, most: int) -> list[Delivery]:
        """Entries another deliverer read and never moved (it died): theirs to move now."""
        reply = self.client.xautoclaim(
            self.keys.outbox(shard), GROUP, consumer, int(self.lease * 1000), count=most
        )
        return self._scheduled(shard, [entry for entry in reply[1] if entry[1]])

    def _scheduled(self, shard: str, entries: list[Any]) -> list[Delivery]:
        if not entries:
            return []
        events = [Event.from_json(fields[b"event"]) for _, fields in entries]
        keys = [
            self.keys.outbox(shard),
            self.keys.deliveries(shard),
            self.keys.undelivered(shard),
            *(self.keys.event(shard, event.id) for event in events),
        ]
        args: list[Any] = [time.time() + self.lease, self.retention]
        for (entry_id, fields), _ in zip(entries, events, strict=True):
            args += [entry_id, fields[b"event"]]
        moved = {raw.decode() for raw in self._move(keys=keys, args=args)}
        # An event written twice (a completion replayed after a failover) is one delivery:
        # the second finds the first's record, and is left to the first's schedule.
        firsts = {event.id: event for event in reversed(events) if event.id in moved}
        return [Delivery(shard, event, 0) for event in firsts.values()]

    def take_due(self, most: int) -> list[Delivery]:
        """Deliveries due now, from every shard: one round trip to look."""
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for shard in self.shards:
            pipe.zcount(self.keys.deliveries(shard), "-inf", now)
        deliveries = []
        for shard, due in zip(self.shards, pipe.execute(), strict=True):
            if due:
                deliveries += self._take_due(shard, now, most)
        return deliveries

    def _take_due(self, shard: str, now: float, most: int) -> list[Delivery]:
        due = self._due(keys=[self.keys.deliveries(shard)], args=[now, now + self.lease, most])
        ids = [raw.decode() for raw in due]
        records = self._records([(shard, event_id) for event_id in ids])
        expired = [
            event_id for event_id, record in zip(ids, records, strict=True) if record is None
        ]
        if expired:  # their records expired: nothing left to send
            pipe = self.client.pipeline(transaction=False)
            pipe.zrem(self.keys.deliveries(shard), *expired)
            pipe.zrem(self.keys.undelivered(shard), *expired)
            pipe.execute()
        return [
            Delivery(shard, Event.from_json(record["event"]), int(record["attempts"]))
            for record in records
            if record is not None
        ]

    def _records(self, events: list[tuple[str, str]]) -> list[dict[str, Any] | None]:
        """The delivery records of these (shard, event id)s, in one round trip; None where
        a record has expired."""
        if not events:
            return []
        pipe = self.client.pipeline(transaction=False)
        for shard, event_id in events:
            pipe.get(self.keys.event(shard, event_id))
        return [None if raw is None else json.loads(raw) for raw in pipe.execute()]

    # -- an attempt's end ----------------------------------------------------------------------

    def settle(self, delivery: Delivery, attempt: Attempt) -> str:
        """Record one attempt: `delivered`, `retry` (the next is scheduled) or `failed`."""
        attempts = delivery.attempts + 1
        now = time.time()
        if attempt.delivered:
            state, due = "delivered", ""
        elif attempts <= len(self.schedule):
            state, due = "pending", str(now + self.schedule[attempts - 1])
        else:
            state, due = "failed", ""
        record = {
            "event": delivery.event.to_json(),
            "attempts": attempts,
            "state": state,
            "lastAttemptAt": now,
            "lastStatus": attempt.status,
            "lastExcerpt": attempt.excerpt,
        }
        shard, event = delivery.shard, delivery.event
        self._settle(
            keys=[
                self.keys.deliveries(shard),
                self.keys.undelivered(shard),
                self.keys.failed(shard),
                self.keys.event(shard, event.id),
            ],
            args=[
                event.id,
                json.dumps(record),
                self.retention,
                due,
                str(now) if state == "failed" else "",
            ],
        )
        outcome = "retry" if state == "pending" else state
        seen = {
            "id": event.id,
            "shard": shard,
            "type": event.type,
            "outcome": outcome,
            "status": attempt.status,
            "attempts": attempts,
            "at": now,
        }
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(self.keys.delivery_counts(), f"{event.type}|{outcome}", 1)
        pipe.expire(self.keys.delivery_counts(), self.retention)
        pipe.lpush(self.keys.recent_deliveries(), json.dumps(seen))
        pipe.ltrim(self.keys.recent_deliveries(), 0, RECENT - 1)
        pipe.expire(self.keys.recent_deliveries(), self.retention)
        pipe.execute()
        return outcome

    def resend(self, shard: str, event_id: str) -> bool:
        """A failed event, due again now with a fresh set of attempts."""
        if shard not in self.shards:
            return False
        found = self._resend(
            keys=[
                self.keys.deliveries(shard),
                self.keys.undelivered(shard),
                self.keys.failed(shard),
                self.keys.event(shard, event_id),
            ],
            args=[event_id, time.time(), self.retention],
        )
        return bool(found)

    # -- abandoned baskets ---------------------------------------------------------------------

    def sweep_abandoned(self, shard: str, now: float, most: int = 100) -> int:
        """Baskets that expired with a change chosen and no order: their events into the
        stream. One that was saved since (and so expires later) is not yet due."""
        expiring = self.keys.expiring(shard)
        ids = [raw.decode() for raw in self.client.zrangebyscore(expiring, "-inf", now, 0, most)]
        if not ids:
            return 0
        keys = [
            expiring,
            self.keys.abandonable(shard),
            self.keys.outbox(shard),
            *(self.keys.basket(basket_id) for basket_id in ids),
        ]
        return int(self._abandon(keys=keys, args=[self.retention, *ids]))

    # -- what operators see -----------------------------------------------------------------

    def recent(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(self.keys.recent_deliveries(), 0, -1)]

    def failed(self, most: int = 50) -> list[dict[str, Any]]:
        """Events that used up every attempt, newest first, with their last attempt."""
        pipe = self.client.pipeline(transaction=False)
        for shard in self.shards:
            pipe.zrevrange(self.keys.failed(shard), 0, most - 1, withscores=True)
        found = []
        for shard, members in zip(self.shards, pipe.execute(), strict=True):
            for raw_id, at in members:
                found.append((at, shard, raw_id.decode()))
        found.sort(reverse=True)
        found = found[:most]
        records = self._records([(shard, event_id) for _, shard, event_id in found])
        rows = []
        expired = self.client.pipeline(transaction=False)
        for (at, shard, event_id), record in zip(found, records, strict=True):
            if record is None:  # kept no longer: its record expired
                expired.zrem(self.keys.failed(shard), event_id)
                continue
            event = Event.from_json(record["event"])
            rows.append({**record, "id": event_id, "shard": shard, "type": event.type, "at": at})
        if len(expired):
            expired.execute()
        return rows

    def failed_count(self) -> int:
        pipe = self.client.pipeline(transaction=False)
        for shard in self.shards:
            pipe.zcard(self.keys.failed(shard))
        return sum(int(n) for n in pipe.execute())

    def counts(self) -> dict[tuple[str, str], int]:
        """Attempts so far by event type and outcome (delivered, retry, failed)."""
        counts = {}
        for field, value in self.client.hgetall(self.keys.delivery_counts()).items():
            kind, _, outcome = field.decode().partition("|")
            counts[(kind, outcome)] = int(value)
        return counts

    def backlog(self) -> tuple[int, float | None]:
        """Events not yet delivered, and the age in seconds of the oldest of them."""
        pipe = self.client.pipeline(transaction=False)
        for shard in self.shards:
            pipe.xlen(self.keys.outbox(shard))
            pipe.xrange(self.keys.outbox(shard), count=1)
            pipe.zcard(self.keys.undelivered(shard))
            pipe.zrange(self.keys.undelivered(shard), 0, 0, withscores=True)
        replies = pipe.execute()
        depth, oldest = 0, None
        for n in range(0, len(replies), 4):
            stream_length, first, scheduled, earliest = replies[n : n + 4]
            depth += int(stream_length) + int(scheduled)
            times = [int(first[0][0].split(b"-")[0]) / 1000] if first else []
            times += [score for _, score in earliest]
            for at in times:
                oldest = at if oldest is None else min(oldest, at)
        return depth, None if oldest is None else max(time.time() - oldest, 0.0)
