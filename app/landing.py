"""The signed `landing_state` cookie that carries the basket id.

A missing, tampered, expired or foreign cookie reads as "no basket"; it never raises.
"""

from __future__ import annotations

import time

from flask import Flask, current_app, g, request
from werkzeug.wrappers import Response

from .cookies import SignedValue, from_header

_SALT = "checkout.landing-state"
_EXTENSION = "checkout.landing"
# The cookie lives two basket TTLs (see `renew`); the basket's own TTL in Redis decides.
_MAX_AGE_FACTOR = 2


class LandingCookie:
    """The cookie's settings, read once per app. The value is the bare basket id
    (URL-safe already), signed with the time: no JSON or base64 around it."""

    def __init__(self, app: Flask) -> None:
        self.name = str(app.config["LANDING_COOKIE_NAME"])
        self.ttl = int(app.config["BASKET_TTL_SECONDS"])
        self.max_age = self.ttl * _MAX_AGE_FACTOR
        self.secure = bool(app.config["SESSION_COOKIE_SECURE"])
        self.signed = SignedValue(str(app.config["SECRET_KEY"]), _SALT, timed=True, max_length=512)


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION] = LandingCookie(app)


def _cookie() -> LandingCookie:
    cookie: LandingCookie = current_app.extensions[_EXTENSION]
    return cookie


def read_basket_id() -> str | None:
    """The basket id from the request's cookie; checked once per request."""
    found = g.get("landing")
    if found is None:
        cookie = _cookie()
        found = g.landing = cookie.signed.unsign(
            from_header(request.environ, cookie.name), cookie.max_age
        ) or ("", 0)
    basket_id = found[0]
    return basket_id if 0 < len(basket_id) <= 64 else None


def renew(response: Response, basket_id: str) -> None:
    """After a change: keep the cookie outliving the basket.

    Every write renews the basket's TTL, and the cookie lives two TTLs, so signing it
    again once it is past half its life is enough; signing it on every change was a
    twentieth of a PUT's CPU.
    """
    ttl = _cookie().ttl
    signed_at = g.landing[1] if read_basket_id() == basket_id else 0
    if time.time() - signed_at > ttl:
        issue(response, basket_id)


def issue(response: Response, basket_id: str) -> None:
    cookie = _cookie()
    response.set_cookie(
        cookie.name,
        cookie.signed.sign(basket_id),
        max_age=cookie.max_age,
        httponly=True,
        samesite="Lax",
        secure=cookie.secure,
        path="/",
    )


def clear(response: Response) -> None:
    cookie = _cookie()
    response.delete_cookie(
        cookie.name, path="/", httponly=True, samesite="Lax", secure=cookie.secure
    )
