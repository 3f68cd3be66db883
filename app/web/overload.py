"""Overload, answered honestly: a bounded number of requests in flight per worker.

When more customers arrive than a worker can serve, the ones beyond `MAX_IN_FLIGHT` are
told at once, before any work: the API answers 503 problem+json with `Retry-After`, pages
a "busy, nothing was changed" page. Without the bound they would queue for a thread and
wait out their time unseen. The worker has more threads (`THREADS`) than the bound, so a
request beyond it still finds a thread to be turned away on. Static files and probes
are never turned away (app/web/routes.py).
"""

from __future__ import annotations

import threading

from flask import Flask, g, request

from .problems import ServerBusy
from .routes import kind_of

_ADMITTED = "checkout.in_flight"


def init_app(app: Flask) -> None:
    bound = int(app.config["MAX_IN_FLIGHT"])
    in_flight = threading.BoundedSemaphore(bound)

    @app.before_request
    def _admit() -> None:
        if not kind_of(request.path).shed:
            return
        if not in_flight.acquire(blocking=False):
            raise ServerBusy()
        g.setdefault(_ADMITTED, True)  # teardown releases only what was taken

    @app.teardown_request
    def _leave(_: BaseException | None) -> None:
        if g.pop(_ADMITTED, False):
            in_flight.release()
