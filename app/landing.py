"""The signed `landing_state` cookie that carries the basket id.

A missing, tampered, expired or foreign cookie reads as "no basket"; it never raises.
"""

from __future__ import annotations

import time

from flask import current_app, g, request
from itsdangerous import BadData, TimestampSigner
from werkzeug.wrappers import Response

_SALT = "checkout.landing-state"
# The cookie lives two basket TTLs (see `renew`); the basket's own TTL in Redis decides.
_MAX_AGE_FACTOR = 2


def _signer() -> TimestampSigner:
    """One per app. The value is the bare basket id (URL-safe already), signed with the
    time: no JSON or base64 around it, which halves the cost of reading it."""
    signer = current_app.extensions.get("checkout.landing")
    if signer is None:
        signer = TimestampSigner(current_app.config["SECRET_KEY"], salt=_SALT)
        current_app.extensions["checkout.landing"] = signer
    return signer


def _max_age() -> int:
    return int(current_app.config["BASKET_TTL_SECONDS"]) * _MAX_AGE_FACTOR


def read_basket_id() -> str | None:
    """The basket id from the request's cookie; unsigned once per request."""
    if "landing_basket_id" not in g:
        g.landing_basket_id, g.landing_signed_at = _unsign()
    return g.landing_basket_id


def _unsign() -> tuple[str | None, float | None]:
    """The basket id and when its cookie was signed; (None, None) for no basket."""
    raw = request.cookies.get(current_app.config["LANDING_COOKIE_NAME"])
    if not raw or len(raw) > 512:
        return None, None
    try:
        value, signed_at = _signer().unsign(raw, max_age=_max_age(), return_timestamp=True)
        basket_id = value.decode()
    except (BadData, UnicodeDecodeError):
        return None, None
    if not 0 < len(basket_id) <= 64:
        return None, None
    return basket_id, signed_at.timestamp()


def renew(response: Response, basket_id: str) -> None:
    """After a change: keep the cookie outliving the basket.

    Every write renews the basket's TTL, and the cookie lives two TTLs, so signing it
    again once it is past half its life is enough; signing it on every change was a
    twentieth of a PUT's CPU.
    """
    signed_at = g.get("landing_signed_at") if read_basket_id() == basket_id else None
    ttl = int(current_app.config["BASKET_TTL_SECONDS"])
    if signed_at is None or time.time() - signed_at > ttl:
        issue(response, basket_id)


def issue(response: Response, basket_id: str) -> None:
    response.set_cookie(
        current_app.config["LANDING_COOKIE_NAME"],
        _signer().sign(basket_id).decode(),
        max_age=_max_age(),
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        path="/",
    )


def clear(response: Response) -> None:
    response.delete_cookie(
        current_app.config["LANDING_COOKIE_NAME"],
        path="/",
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
