"""Parts of a request taken away, for measuring what each costs.

Each entry of `STAND_INS` names an attribute and makes what stands in for it:

- `redis-read`: a GET's basket read is answered from memory after the first
- `render`: the basket page's HTML is rendered once and reused
- `landing-cookie`: the landing cookie's signature is checked once per value
- `access-log`: no access-log line

`make bench-layers` swaps them in and out in process; `make bench-ablate` serves
`build()` under gunicorn with the ones `BENCH_ABLATE` names (comma-separated).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, request

from app import baskets, create_app, fastjson, landing, views


def read_from_memory() -> Callable[[baskets.BasketStore, str], dict[str, Any] | None]:
    stored: dict[str, bytes | None] = {}

    def get_data(store: baskets.BasketStore, basket_id: str) -> dict[str, Any] | None:
        if basket_id not in stored:
            stored[basket_id] = store.reads.get(store.keys.basket(basket_id))
        raw = stored[basket_id]
        return fastjson.loads(raw) if raw is not None else None

    return get_data


def render_once() -> Callable[..., str]:
    original = views.render_template
    rendered: dict[str, str] = {}

    def render_template(name: str, **context: Any) -> str:
        if name not in rendered:
            rendered[name] = original(name, **context)
        return rendered[name]

    return render_template


def check_landing_once() -> Callable[[], tuple[str | None, float | None]]:
    original = landing._unsign
    known: dict[str, tuple[str | None, float | None]] = {}

    def unsign() -> tuple[str | None, float | None]:
        raw = request.cookies.get("landing_state", "")
        if raw not in known:
            known[raw] = original()
        return known[raw]

    return unsign


STAND_INS: dict[str, tuple[Any, str, Callable[[], Any]]] = {
    "redis-read": (baskets.BasketStore, "get_data", read_from_memory),
    "render": (views, "render_template", render_once),
    "landing-cookie": (landing, "_unsign", check_landing_once),
    "access-log": (logging.getLogger("checkout.access"), "disabled", lambda: True),
}


def build() -> Flask:
    """The checkout with the parts `BENCH_ABLATE` names taken away (gunicorn's factory)."""
    for name in filter(None, os.environ.get("BENCH_ABLATE", "").split(",")):
        owner, attribute, stand_in = STAND_INS[name]
        setattr(owner, attribute, stand_in())
    return create_app()
