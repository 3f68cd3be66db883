"""The browser's server-side session: a signed random id in a cookie, the data in Redis.

The cookie (HttpOnly, SameSite=Lax, Secure outside development) carries only a 256-bit
session id, signed by itsdangerous's `Signer` (keys in `SECRET_KEY_FALLBACKS` still read);
the data (sign-in tokens, the landing's tracking, flask-wtf's CSRF secret, Authlib's
state) lives in Redis under `Keys.signin(id)`, in Flask's tagged JSON, with a TTL renewed
on every read and write. Tokens therefore never reach the browser. `rotate()` gives a
session a new id (on sign-in), so an id planted before sign-in is worthless after it.

Flask opens the session before any of the request's hooks; opening it here reads only the
cookie. Redis is read by the request's own hook (`init_app`), after the in-flight bound and
inside the request's trace: a request turned away, or for a route without a session, makes
no round trip, and a page's session read is its request's span's child, not a trace of its
own. Before that hook the session reads as empty.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Flask, Request, Response, session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from itsdangerous import BadSignature, Signer
from werkzeug.datastructures import CallbackDict

from ..adapters.storage import FAILURES
from ..checkout.errors import ServiceUnavailable
from ..config import secret_keys
from ..signals import redis_failed
from .routes import kind_of
from .services import services

log = logging.getLogger(__name__)

# The landing link's subscription, offer, tracking and referrer, kept from the first touch.
FIRST_TOUCH = "first_touch"
_SALT = "checkout.session"
_EXTENSION = "checkout.session_signer"
_MAX_COOKIE = 256


def init_app(app: Flask) -> None:
    app.session_interface = RedisSessionInterface()
    app.extensions[_EXTENSION] = Signer(secret_keys(app.config), salt=_SALT)

    @app.before_request
    def read_session() -> None:
        """The session's data, read once the request has been let in."""
        if not isinstance(session, RedisSession) or session.loaded:
            return
        try:
            session.load(app)
        except FAILURES as exc:
            # Without Redis a page can neither know who is signed in nor check its forms.
            log.warning("session store unavailable: %s", type(exc).__name__)
            redis_failed.send(exc)
            raise ServiceUnavailable("the session store is unavailable") from None


def first_touch_link() -> str | None:
    """The marketing link this visit started from, to start again with."""
    first_touch = session.get(FIRST_TOUCH)
    return first_touch.get("link") if isinstance(first_touch, dict) else None


def _new_id() -> str:
    return secrets.token_urlsafe(32)


def _changed(session: RedisSession) -> None:
    session.modified = True


class RedisSession(CallbackDict[str, Any], SessionMixin):
    def __init__(self, data: dict[str, Any] | None, sid: str, *, new: bool) -> None:
        super().__init__(data or {}, _changed)
        self.sid = sid
        self.new = new
        self.modified = False
        self.previous_sid: str | None = None
        # The cookie was signed with a fallback key: sign it again with the current one.
        self.sign_again = False
        # A new session has nothing stored to read; a cookie's is read by `load`.
        self.loaded = new

    def load(self, app: Flask) -> None:
        """Read what Redis holds for this id, renewing its idle TTL (a session ends after
        SESSION_TTL_SECONDS idle). What was written before the read stays over what was
        stored. Nothing stored, or nothing readable: a new session, under a new id."""
        adapters = services()
        ttl = int(app.config["SESSION_TTL_SECONDS"])
        stored = adapters.redis.getex(adapters.keys.signin(self.sid), ex=ttl)
        self.loaded = True
        data = _decoded(stored)
        if data is None:
            self.sid, self.new, self.sign_again = _new_id(), True, False
            return
        for key, value in data.items():
            dict.setdefault(self, key, value)  # not a change: no callback

    def rotate(self) -> None:
        """A new id for the same data; the old key is deleted when the response is saved."""
        if not self.new and self.previous_sid is None:
            self.previous_sid = self.sid
        self.sid = _new_id()
        self.modified = True


def _decoded(stored: bytes | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    try:
        data = RedisSessionInterface.serializer.loads(stored.decode())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _send(pipe: Any) -> None:
    if len(pipe):
        pipe.execute()


class RedisSessionInterface(SessionInterface):
    serializer = TaggedJSONSerializer()

    @staticmethod
    def _signer(app: Flask) -> Signer:
        signer: Signer = app.extensions[_EXTENSION]
        return signer

    def _session_id(self, app: Flask, request: Request) -> tuple[str, bool] | None:
        """The cookie's session id, and whether it is signed with the current key."""
        signed = request.cookies.get(self.get_cookie_name(app))
        if not signed or len(signed) > _MAX_COOKIE:
            return None
        signer = self._signer(app)
        try:
            sid = signer.unsign(signed).decode()
        except BadSignature:
            return None
        # Without fallback keys every good signature is the current key's.
        return sid, len(signer.secret_keys) == 1 or signer.sign(sid).decode() == signed

    def open_session(self, app: Flask, request: Request) -> RedisSession | None:
        if not kind_of(request.path).session:
            return None  # Flask's NullSession: readable, refuses writes, no round trip
        found = self._session_id(app, request)
        if found is None:
            return RedisSession(None, _new_id(), new=True)
        sid, current_key = found
        opened = RedisSession(None, sid, new=False)  # read by the request's hook
        opened.sign_again = not current_key
        return opened

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, RedisSession):
            return
        if not session.loaded and not session.modified:
            return  # never read (turned away first): nothing to write, the cookie stands
        try:
            if not session.loaded:  # written to before it was read: outside a request
                session.load(app)
            self._save(app, session, response)
        except FAILURES as exc:
            # The page has been rendered already; the customer sees the next request fail.
            log.warning("session not saved: %s", type(exc).__name__)
            redis_failed.send(exc)

    def _save(self, app: Flask, session: RedisSession, response: Response) -> None:
        keys = services().keys
        name, path = self.get_cookie_name(app), self.get_cookie_path(app)
        secure, samesite = self.get_cookie_secure(app), self.get_cookie_samesite(app)
        # One round trip for the session's writes.
        pipe = services().redis.pipeline(transaction=False)
        if session.previous_sid:
            pipe.delete(keys.signin(session.previous_sid))
        if not session:
            if not session.new:  # emptied: forget it on both sides
                pipe.delete(keys.signin(session.sid))
                response.delete_cookie(
                    name, path=path, secure=secure, httponly=True, samesite=samesite
                )
            _send(pipe)
            return
        if session.modified:
            ttl = int(app.config["SESSION_TTL_SECONDS"])
            pipe.set(keys.signin(session.sid), self.serializer.dumps(dict(session)), ex=ttl)
        _send(pipe)
        if not session.modified and not session.sign_again:
            return  # open_session renewed its TTL already, and the cookie stands
        # A browser-session cookie: Redis's TTL decides when the session ends.
        response.set_cookie(
            name,
            self._signer(app).sign(session.sid).decode(),
            path=path,
            secure=secure,
            httponly=True,
            samesite=samesite,
        )
        response.vary.add("Cookie")
