"""Parts of a request taken away, for measuring what each costs.

Each entry of `STAND_INS` names an attribute and makes what stands in for it:

- `redis-read`: a GET's basket read is answered from memory after the first
- `render`: the basket page's HTML is rendered once and reused
- `signed-cookies`: a signed cookie's signature is checked once per value
- `access-log`: no access-log line
- `siteverify`: a PUT's reCAPTCHA token is claimed but not sent to siteverify
- `quote`: the backend's quote for the same choices is asked once and remembered

`make bench-layers` swaps them in and out in process; `make bench-ablate` serves
`build()` under gunicorn with the ones `BENCH_ABLATE` names (comma-separated).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from flask import Flask

from app import backend, baskets, cookies, create_app, fastjson, models, recaptcha, views


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


def check_cookies_once() -> Callable[..., tuple[str, int] | None]:
    original = cookies.SignedValue.unsign
    known: dict[tuple[int, str | None], tuple[str, int] | None] = {}

    def unsign(
        self: cookies.SignedValue, signed: str | None, max_age: float | None = None
    ) -> tuple[str, int] | None:
        if (id(self), signed) not in known:
            known[id(self), signed] = original(self, signed, max_age)
        return known[id(self), signed]

    return unsign


def skip_siteverify() -> Callable[..., None]:
    def verify(
        self: recaptcha.RecaptchaVerifier, token: str | None, remote_ip: str | None, **_: Any
    ) -> None:
        return None

    return verify


def quote_from_memory() -> Callable[..., models.Quote]:
    original = backend.SubscriptionClient.quote
    known: dict[tuple[str, tuple[str, ...], tuple[str, ...]], models.Quote] = {}

    def quote(
        self: backend.SubscriptionClient, subscription_id: str, add: Any, remove: Any
    ) -> models.Quote:
        key = (subscription_id, tuple(add), tuple(remove))
        if key not in known:
            known[key] = original(self, subscription_id, add, remove)
        return known[key]

    return quote


STAND_INS: dict[str, tuple[Any, str, Callable[[], Any]]] = {
    "redis-read": (baskets.BasketStore, "get_data", read_from_memory),
    "render": (views, "render_template", render_once),
    "signed-cookies": (cookies.SignedValue, "unsign", check_cookies_once),
    "access-log": (logging.getLogger("checkout.access"), "disabled", lambda: True),
    "siteverify": (recaptcha.RecaptchaVerifier, "verify", skip_siteverify),
    "quote": (backend.SubscriptionClient, "quote", quote_from_memory),
}


def build() -> Flask:
    """The checkout with the parts `BENCH_ABLATE` names taken away (gunicorn's factory)."""
    for name in filter(None, os.environ.get("BENCH_ABLATE", "").split(",")):
        owner, attribute, stand_in = STAND_INS[name]
        setattr(owner, attribute, stand_in())
    return create_app()
