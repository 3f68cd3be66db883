"""The browser's server-side session: a signed random id in a cookie, the data in Redis.

The cookie (HttpOnly, SameSite=Lax, Secure outside development) carries only a signed
256-bit session id; the data (sign-in tokens, the landing's tracking, flask-wtf's CSRF
secret, Authlib's state) lives in Redis under `Keys.signin(id)` with a TTL renewed on
every write. Tokens therefore never reach the browser. `rotate()` gives a session a new id
(on sign-in), so an id planted before sign-in is worthless after it.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import redis
from flask import Flask, Request, Response, g, session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from . import fastjson, landing
from .baskets import Prefetched
from .cookies import SignedValue, from_header
from .errors import ServiceUnavailable
from .storage import get_direct, get_keys, get_redis

log = logging.getLogger(__name__)

# The landing link's subscription, offer, tracking and referrer, kept from the first touch.
FIRST_TOUCH = "first_touch"
_SALT = "checkout.session"
_EXTENSION = "checkout.session_id"
_MAX_COOKIE = 256
# Requests that never need a browser session: no Redis round trip for them.
_SESSIONLESS = ("/static/", "/api/", "/healthz", "/readyz", "/favicon.ico")


def init_app(app: Flask) -> None:
    app.session_interface = RedisSessionInterface()
    app.extensions[_EXTENSION] = SignedValue(
        str(app.secret_key), _SALT, timed=False, max_length=_MAX_COOKIE
    )

    @app.before_request
    def session_store_down() -> None:
        """Without Redis a page can neither know who is signed in nor check its forms."""
        if g.get("session_unavailable"):
            raise ServiceUnavailable("the session store is unavailable")


def first_touch_link() -> str | None:
    """The marketing link this visit started from, to start again with."""
    first_touch = session.get(FIRST_TOUCH)
    return first_touch.get("link") if isinstance(first_touch, dict) else None


def _new_id() -> str:
    return secrets.token_urlsafe(32)


def _changed(session: RedisSession) -> None:
    """CallbackDict's hook, handed the session: a closure over `self` instead would make
    every session a reference cycle, left for the garbage collector to find."""
    session.modified = True


class RedisSession(CallbackDict[str, Any], SessionMixin):
    def __init__(self, data: dict[str, Any] | None, sid: str, *, new: bool) -> None:
        super().__init__(data or {}, _changed)
        self.sid = sid
        self.new = new
        self.modified = False
        self.previous_sid: str | None = None

    def rotate(self) -> None:
        """A new id for the same data; the old key is deleted when the response is saved."""
        if not self.new and self.previous_sid is None:
            self.previous_sid = self.sid
        self.sid = _new_id()
        self.modified = True


class RedisSessionInterface(SessionInterface):
    serializer = TaggedJSONSerializer()

    @staticmethod
    def _signed(app: Flask) -> SignedValue:
        signed: SignedValue = app.extensions[_EXTENSION]
        return signed

    def open_session(self, app: Flask, request: Request) -> RedisSession | None:
        if request.path.startswith(_SESSIONLESS):
            return None  # Flask's NullSession: readable, refuses writes
        found = self._signed(app).unsign(from_header(request.environ, self.get_cookie_name(app)))
        if found is not None:
            sid = found[0]
            try:
                stored = self._read(app, sid, request)
            except redis.RedisError as exc:
                log.warning("session store unavailable: %s", type(exc).__name__)
                g.session_unavailable = True
                return None
            if stored is not None:
                try:
                    data = self._loads(stored)
                except ValueError:
                    data = None
                if isinstance(data, dict):
                    return RedisSession(data, sid, new=False)
        return RedisSession(None, _new_id(), new=True)

    def _loads(self, stored: bytes) -> Any:
        """Flask's tagged JSON, read as plain JSON when nothing in it is tagged.

        Flask writes a value JSON lacks (a flashed message's tuple, bytes, a date) as a
        one-key object whose key starts with a space, `{" t": [...]}`, and on reading
        walks the whole decoded session in Python looking for them: 2.5 % of a basket
        page's instructions. Written compactly, every tag starts with the bytes `{" `;
        without them the session is plain JSON. With them, or with a plain key that
        starts with a space, Flask reads it as before.
        """
        if b'{" ' in stored:
            return self.serializer.loads(stored.decode())
        return fastjson.loads(stored)

    @staticmethod
    def _read(app: Flask, sid: str, request: Request) -> Any:
        """The session, its idle TTL renewed (GETEX), in one round trip with the basket.

        A page that shows a basket needs both; reading the basket here, pipelined, saves
        it a second round trip (`g.prefetched_basket`, parsed by the views that use it).
        """
        keys = get_keys()
        ttl = int(app.config["SESSION_TTL_SECONDS"])
        commands: list[tuple[Any, ...]] = [("GETEX", keys.signin(sid), "EX", ttl)]
        basket_id = landing.read_basket_id() if request.method == "GET" else None
        if basket_id:
            commands.append(("GET", keys.basket(basket_id)))
        results = get_direct().run(*commands)
        if basket_id:
            g.prefetched_basket = Prefetched(basket_id, results[1])
        return results[0]

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, RedisSession):
            return
        try:
            self._save(app, session, response)
        except redis.RedisError as exc:
            # The page has been rendered already; the customer sees the next request fail.
            log.warning("session not saved: %s", type(exc).__name__)

    def _save(self, app: Flask, session: RedisSession, response: Response) -> None:
        store, keys = get_redis(), get_keys()
        name, path = self.get_cookie_name(app), self.get_cookie_path(app)
        secure, samesite = self.get_cookie_secure(app), self.get_cookie_samesite(app)
        if session.previous_sid:
            store.delete(keys.signin(session.previous_sid))
        if not session:
            if not session.new:  # emptied: forget it on both sides
                store.delete(keys.signin(session.sid))
                response.delete_cookie(
                    name, path=path, secure=secure, httponly=True, samesite=samesite
                )
            return
        ttl = int(app.config["SESSION_TTL_SECONDS"])
        if not session.modified:
            return  # open_session renewed its TTL already
        store.set(keys.signin(session.sid), self.serializer.dumps(dict(session)), ex=ttl)
        # A browser-session cookie: Redis's TTL decides when the session ends.
        response.set_cookie(
            name,
            self._signed(app).sign(session.sid),
            path=path,
            secure=secure,
            httponly=True,
            samesite=samesite,
        )
        response.vary.add("Cookie")
