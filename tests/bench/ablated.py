"""Parts of a request taken away, for measuring what each costs.

Each entry of `STAND_INS` names an attribute and makes what stands in for it:

- `redis-read`: a GET's basket read is answered from memory after the first
- `render`: the basket page's HTML is rendered once and reused
- `signed-cookies`: a landing cookie's signature is checked once per value
- `access-log`: no access-log line
- `siteverify`: a PUT's reCAPTCHA token is claimed but not sent to siteverify
- `quote`: the backend's quote for the same choices is asked once and remembered

`make bench-layers` swaps them in and out in process; `make bench-ablate` serves
`build()` under gunicorn with the ones `BENCH_ABLATE` names (comma-separated).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable
from typing import Any

from flask import Flask

from app import backend, baskets, create_app, landing, recaptcha, views


def read_from_memory() -> Callable[[baskets.BasketStore, str], baskets.Basket | None]:
    """The stored bytes are remembered; parsing them is still done each time, as after
    a real read."""
    stored: dict[str, bytes | None] = {}

    def get(store: baskets.BasketStore, basket_id: str) -> baskets.Basket | None:
        if basket_id not in stored:
            stored[basket_id] = store.client.get(store.keys.basket(basket_id))
        raw = stored[basket_id]
        return baskets.Basket.from_json(raw) if raw is not None else None

    return get


def remembered(
    original: Callable[..., Any], key: Callable[..., Hashable]
) -> Callable[[], Callable[..., Any]]:
    """A stand-in maker: `original`'s answer, asked once per `key` of the arguments and
    then remembered (each stand-in made remembers on its own)."""

    def make() -> Callable[..., Any]:
        known: dict[Hashable, Any] = {}

        def stand_in(*args: Any, **kwargs: Any) -> Any:
            found = key(*args, **kwargs)
            if found not in known:
                known[found] = original(*args, **kwargs)
            return known[found]

        return stand_in

    return make


STAND_INS: dict[str, tuple[Any, str, Callable[[], Any]]] = {
    "redis-read": (baskets.BasketStore, "get", read_from_memory),
    "render": (
        views,
        "render_template",
        remembered(views.render_template, lambda name, **_: name),
    ),
    "signed-cookies": (
        landing.LandingCookie,
        "read",
        remembered(landing.LandingCookie.read, lambda self, value: (id(self), value)),
    ),
    "access-log": (logging.getLogger("checkout.access"), "disabled", lambda: True),
    # The token is still claimed (admission); only the call to siteverify goes.
    "siteverify": (recaptcha.RecaptchaVerifier, "verify", lambda: lambda *_, **__: None),
    "quote": (
        backend.SubscriptionClient,
        "quote",
        remembered(
            backend.SubscriptionClient.quote,
            lambda self, subscription, add, remove: (subscription, tuple(add), tuple(remove)),
        ),
    ),
}


def build() -> Flask:
    """The checkout with the parts `BENCH_ABLATE` names taken away (gunicorn's factory)."""
    for name in filter(None, os.environ.get("BENCH_ABLATE", "").split(",")):
        owner, attribute, stand_in = STAND_INS[name]
        setattr(owner, attribute, stand_in())
    return create_app()
