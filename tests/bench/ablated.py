"""The checkout with parts of a request taken away, served by `make bench-ablate` only.

`BENCH_ABLATE` names what to take away, comma-separated:

- `redis-read`: a GET's basket read is answered from memory after the first
- `render`: the basket page's HTML is rendered once and reused
- `landing-cookie`: the landing cookie's signature is checked once per value
- `access-log`: no access-log line
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, request

from app import baskets, create_app, fastjson, landing, views


def _without_redis_read() -> None:
    stored: dict[str, bytes | None] = {}

    def get_data(store: baskets.BasketStore, basket_id: str) -> dict[str, Any] | None:
        if basket_id not in stored:
            stored[basket_id] = store.redis.get(store.keys.basket(basket_id))
        raw = stored[basket_id]
        return fastjson.loads(raw) if raw is not None else None

    baskets.BasketStore.get_data = get_data  # type: ignore[method-assign]


def _without_render() -> None:
    original = views.render_template
    rendered: dict[str, str] = {}

    def render_template(name: str, **context: Any) -> str:
        if name not in rendered:
            rendered[name] = original(name, **context)
        return rendered[name]

    views.render_template = render_template  # type: ignore[assignment]


def _without_landing_cookie() -> None:
    original = landing._unsign
    known: dict[str, tuple[str | None, float | None]] = {}

    def unsign() -> tuple[str | None, float | None]:
        raw = request.cookies.get("landing_state", "")
        if raw not in known:
            known[raw] = original()
        return known[raw]

    landing._unsign = unsign


def _without_access_log() -> None:
    logging.getLogger("checkout.access").disabled = True


ABLATIONS: dict[str, Callable[[], None]] = {
    "redis-read": _without_redis_read,
    "render": _without_render,
    "landing-cookie": _without_landing_cookie,
    "access-log": _without_access_log,
}


def build() -> Flask:
    for name in filter(None, os.environ.get("BENCH_ABLATE", "").split(",")):
        ABLATIONS[name]()
    return create_app()


app = build()
