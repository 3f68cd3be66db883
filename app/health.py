"""Liveness and readiness for process managers and load balancers."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .storage import get_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def live() -> Response:
    """The process answers; says nothing about its dependencies."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def ready() -> Response:
    """Ready to take traffic: Redis answers (a Redis outage answers 503 via errors.py)."""
    get_redis().ping()
    return jsonify({"status": "ready"})
