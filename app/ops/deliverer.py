"""The partner events' deliverer: `python -m app.ops.deliverer`, beside the app.

Delivery is never on a request's path: the checkout only writes events (with the change
they report, app/adapters/baskets.py), and this process sends them, with the app's own
settings. Run one or more wherever Redis and the partner's endpoint are reachable; as one
consumer group they share the work (app/adapters/outbox.py). Each round it takes over
what a dead deliverer left, takes new events and due retries from every shard, and
attempts them, a few at once; every `CHECKOUT_WEBHOOK_SWEEP_SECONDS` it turns baskets that
expired with a change chosen into `checkout.abandoned` events.

SIGTERM or SIGINT: it takes no more work, finishes the attempts in hand (each bounded by
CHECKOUT_WEBHOOK_TIMEOUT_SECONDS) and exits. An attempt it could not finish, killed, is
taken over once its lease (CHECKOUT_WEBHOOK_LEASE_SECONDS) ends.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

from .. import create_app
from ..adapters.outbox import Delivery, Outbox
from ..adapters.storage import FAILURES
from ..adapters.webhooks import Sender
from ..web.services import services

log = logging.getLogger("checkout.deliverer")
IDLE_SECONDS = 0.1  # between rounds that found nothing to do
BACKOFF_SECONDS = 1.0  # after Redis failed us (a failover)


class Deliverer:
    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        *,
        concurrency: int,
        sweep_every: float,
        name: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.sender = sender
        self.concurrency = concurrency
        self.sweep_every = sweep_every
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="deliverer")
        self._next_sweep = 0.0
        self._next_recovery = 0.0

    def run(self, stop: threading.Event) -> None:
        log.info("deliverer %s started", self.name)
        ready = False
        while not stop.is_set():
            try:
                if not ready:
                    self.outbox.ensure_groups()
                    ready = True
                worked = self.round()
            except FAILURES as exc:
                log.warning("deliverer: redis unavailable: %s", type(exc).__name__)
                ready = ready and "NOGROUP" not in str(exc)  # a stream that expired, idle
                stop.wait(BACKOFF_SECONDS)
                continue
            if not worked:
                stop.wait(IDLE_SECONDS)
        self._pool.shutdown(wait=True)
        log.info("deliverer %s stopped", self.name)

    def round(self) -> int:
        """One pass over every shard: what it took, attempted; how many."""
        now = time.monotonic()
        deliveries: list[Delivery] = []
        if now >= self._next_recovery:
            self._next_recovery = now + self.outbox.lease / 2
            for shard in self.outbox.shards:
                deliveries += self.outbox.recover(shard, self.name, self.concurrency)
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_every
            for shard in self.outbox.shards:
                self.outbox.sweep_abandoned(shard, time.time())
        deliveries += self.outbox.take_new(self.name, self.concurrency)
        deliveries += self.outbox.take_due(self.concurrency)
        for future in [self._pool.submit(self.attempt, d) for d in deliveries]:
            future.result()
        return len(deliveries)

    def attempt(self, delivery: Delivery) -> str:
        started = time.perf_counter()
        attempt = self.sender.send(delivery.event)
        outcome = self.outbox.settle(delivery, attempt)
        record = {
            "event": "webhook",
            "id": delivery.event.id,
            "type": delivery.event.type,
            "attempt": delivery.attempts + 1,
            "outcome": outcome,
            "status": attempt.status,
            "durationMs": round((time.perf_counter() - started) * 1000, 1),
        }
        log.info(json.dumps(record, separators=(",", ":")))
        return outcome


def main() -> int:
    app = create_app()
    found = services(app)
    if found.sender is None:
        log.error("CHECKOUT_WEBHOOK_URL is not set: there is nowhere to deliver to")
        return 2
    config = app.config
    deliverer = Deliverer(
        found.outbox,
        found.sender,
        concurrency=int(config["WEBHOOK_CONCURRENCY"]),
        sweep_every=float(config["WEBHOOK_SWEEP_SECONDS"]),
    )
    stop = threading.Event()

    def stopping(signum: int, _: FrameType | None) -> None:
        log.info("deliverer: %s, finishing the attempts in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    deliverer.run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
