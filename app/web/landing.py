"""The signed `landing_state` cookie that carries the basket id.

The value is the bare basket id (URL-safe already), signed with the time by
itsdangerous's `TimestampSigner` under the app's secret key; cookies signed with a key in
`SECRET_KEY_FALLBACKS` still read after a rotation. A missing, tampered, expired or
foreign cookie reads as "no basket"; it never raises.
"""

from __future__ import annotations

import time

from flask import Flask, current_app, request
from itsdangerous import BadSignature, TimestampSigner
from werkzeug.wrappers import Response

from ..config import secret_keys

_SALT = "checkout.landing-state"
_EXTENSION = "checkout.landing"
# The cookie lives two basket TTLs (see `renew`); the basket's own TTL in Redis decides.
_MAX_AGE_FACTOR = 2
_MAX_COOKIE = 512
_MAX_BASKET_ID = 64


class LandingCookie:
    """The cookie's settings and signer, made once per app."""

    def __init__(self, app: Flask) -> None:
        self.name = str(app.config["LANDING_COOKIE_NAME"])
        self.ttl = int(app.config["BASKET_TTL_SECONDS"])
        self.max_age = self.ttl * _MAX_AGE_FACTOR
        self.secure = bool(app.config["SESSION_COOKIE_SECURE"])
        self.signer = TimestampSigner(secret_keys(app.config), salt=_SALT)

    def read(self, value: str | None) -> tuple[str, float] | None:
        """The basket id and when it was signed, or None."""
        if not value or len(value) > _MAX_COOKIE:
            return None
        try:
            basket_id, signed_at = self.signer.unsign(
                value, max_age=self.max_age, return_timestamp=True
            )
        except BadSignature:
            return None
        text = basket_id.decode("utf-8", "replace")
        return (text, signed_at.timestamp()) if 0 < len(text) <= _MAX_BASKET_ID else None


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION] = LandingCookie(app)


def _cookie() -> LandingCookie:
    cookie: LandingCookie = current_app.extensions[_EXTENSION]
    return cookie


def _read() -> tuple[str, float] | None:
    """The request's landing state: its basket id and when it was signed."""
    cookie = _cookie()
    return cookie.read(request.cookies.get(cookie.name))


def read_basket_id() -> str | None:
    """The basket id from the request's cookie, or None."""
    found = _read()
    return found[0] if found else None


def renew(response: Response, basket_id: str) -> None:
    """After a change: keep the cookie outliving the basket.

    Every write renews the basket's TTL and the cookie lives two TTLs, so it is signed
    again only once it is past half its life.
    """
    found = _read()
    signed_at = found[1] if found and found[0] == basket_id else 0.0
    if time.time() - signed_at > _cookie().ttl:
        issue(response, basket_id)


def issue(response: Response, basket_id: str) -> None:
    cookie = _cookie()
    response.set_cookie(
        cookie.name,
        cookie.signer.sign(basket_id).decode(),
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
