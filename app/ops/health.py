"""Liveness and readiness for process managers and load balancers."""

from __future__ import annotations

import os
from collections.abc import Callable

from flask import Blueprint, Response, jsonify

from ..adapters.storage import FAILURES
from ..signals import redis_failed
from ..web.services import services

bp = Blueprint("health", __name__)
_PROBE_TTL = 30
# Whether this process is stopping: told by the server it runs under (gunicorn's
# post_worker_init, app/gunicorn_config.py); never, under any other.
_stopping: list[Callable[[], bool]] = [lambda: False]


def stopping_when(check: Callable[[], bool]) -> None:
    """Ask `check` whether this process is stopping, from now on."""
    _stopping[0] = check


@bp.get("/healthz")
def live() -> Response:
    """The process answers; says nothing about its dependencies."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def ready() -> Response:
    """Ready to take traffic: Redis takes a write (a replica left behind by a failover,
    or a full server, does not) and this worker's circuit to the backend is closed.
    503 names the part that is not ready; a process that is stopping says so at once,
    asking nothing."""
    if _stopping[0]():
        response = jsonify({"status": "stopping"})
        response.status_code = 503
        return response
    checks = {"redis": _redis(), "backend": _backend()}
    is_ready = all(check["ready"] for check in checks.values())
    response = jsonify({"status": "ready" if is_ready else "not ready", "checks": checks})
    response.status_code = 200 if is_ready else 503
    return response


def _redis() -> dict[str, object]:
    try:
        found = services()
        found.redis.set(found.keys.readiness(str(os.getpid())), 1, ex=_PROBE_TTL)
    except FAILURES as exc:
        redis_failed.send(exc)
        return {"ready": False, "error": type(exc).__name__}
    return {"ready": True}


def _backend() -> dict[str, object]:
    is_open = services().backend.breaker.is_open
    return {"ready": not is_open, "circuit": "open" if is_open else "closed"}
