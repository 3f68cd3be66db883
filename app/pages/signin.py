"""Browser sign-in at the partner's OpenID provider: authorization code + PKCE (S256).

Authlib's Flask client does the protocol (discovery, `state`, `nonce`, the code verifier,
the ID token's signature and claims); its state lives in the server-side session. The
tokens are kept in that session too (Redis), never in a cookie. The customer id the
rules see is the access token's `sub`, checked exactly as the JSON API checks a Bearer
token; an expired access token is refreshed with the refresh token, and when that fails
the customer is signed out.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from ..adapters.upstream import observed
from ..checkout.errors import Unauthorized, UpstreamError
from ..signals import journey_step
from ..web import landing
from ..web.language import chosen
from ..web.problems import SignInRequired
from ..web.services import services
from ..web.sessions import RedisSession, first_touch_link

log = logging.getLogger(__name__)

bp = Blueprint("signin", __name__)

PROVIDER = "partner"
AUTH = "auth"  # the session key that holds the tokens
_NEXT = "signin_next"
_AFTER_SIGN_OUT = "signed_out_next"
# Refresh a little before the access token expires, so a page never sees it lapse.
_REFRESH_MARGIN = 30
_MAX_NEXT = 2048


def init_app(app: Flask) -> None:
    """One OAuth registry per app (not per process), so each app keeps its own issuer."""
    oauth = OAuth(app)
    oauth.register(
        PROVIDER,
        client_id=app.config["OAUTH_CLIENT_ID"],
        client_secret=app.config["OAUTH_CLIENT_SECRET"],
        server_metadata_url=f"{app.config['OAUTH_ISSUER']}/.well-known/openid-configuration",
        client_kwargs={
            "scope": app.config["OAUTH_SCOPE"],
            "code_challenge_method": "S256",
            "default_timeout": app.config["OAUTH_TIMEOUT_SECONDS"],
        },
    )
    app.register_blueprint(bp)


def _client() -> Any:
    oauth = cast(OAuth, current_app.extensions["authlib.integrations.flask_client"])
    return oauth.create_client(PROVIDER)


def safe_next(target: str | None, default: str = "/") -> str:
    """A same-origin relative path to return to, or `default`: never another site."""
    if not target or len(target) > _MAX_NEXT or "\\" in target:
        return default
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def sign_in_url(next_path: str | None = None) -> str:
    return url_for("signin.begin", next=safe_next(next_path, url_for("journey.basket")))


# -- who is signed in ------------------------------------------------------------------


def customer_or_none() -> str | None:
    """The signed-in customer's id (refreshing the access token if due), else None."""
    if "customer_id" in g:
        return cast(str | None, g.customer_id)
    auth = session.get(AUTH)
    customer: str | None = None
    if isinstance(auth, dict) and isinstance(auth.get("access_token"), str):
        if float(auth.get("expires_at") or 0) - _REFRESH_MARGIN <= time.time():
            auth = _refresh(auth)
        if auth is not None:
            try:
                customer = services().tokens.validate(f"Bearer {auth['access_token']}").subject
            except Unauthorized as exc:
                log.info("signed out: %s", exc.reason)
                session.pop(AUTH, None)
    g.customer_id = customer
    return customer


def require_customer() -> str:
    """The signed-in customer, or `SignInRequired` (a GET goes to sign in and comes back)."""
    customer = customer_or_none()
    if customer is None:
        raise SignInRequired("not signed in")
    return customer


def signed_in() -> bool:
    """Whether this browser holds a customer's sign-in (the header offers Sign out)."""
    auth = session.get(AUTH)
    return isinstance(auth, dict) and isinstance(auth.get("access_token"), str)


# The claims a provider may name the customer by, best first (OpenID Connect Core 5.1).
_NAME_CLAIMS = ("name", "preferred_username", "email")
_MAX_NAME = 100


def display_name(claims: dict[str, Any]) -> str | None:
    """What to call the customer: their `name`, else `preferred_username`, else `email`."""
    for claim in _NAME_CLAIMS:
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()[:_MAX_NAME]
    return None


def customer_name() -> str | None:
    auth = session.get(AUTH)
    name = auth.get("name") if isinstance(auth, dict) else None
    return name if isinstance(name, str) else None


def _refresh(auth: dict[str, Any]) -> dict[str, Any] | None:
    refresh_token = auth.get("refresh_token")
    if not isinstance(refresh_token, str):
        session.pop(AUTH, None)
        return None
    try:
        with observed("identity"):
            token = _client().fetch_access_token(
                grant_type="refresh_token", refresh_token=refresh_token
            )
    except requests.RequestException as exc:
        log.warning("token refresh unavailable: %s", type(exc).__name__)
        raise UpstreamError() from exc
    except (AuthlibBaseError, ValueError, KeyError) as exc:
        log.info("token refresh refused: %s", type(exc).__name__)
        session.pop(AUTH, None)
        return None
    fresh = {
        **auth,
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token") or refresh_token,
        "expires_at": float(token.get("expires_at") or time.time() + 300),
    }
    session[AUTH] = fresh
    return fresh


# -- the provider round trip -----------------------------------------------------------


@bp.get("/signin")
def begin() -> Response:
    default = safe_next(session.get(_NEXT), url_for("journey.basket"))
    session[_NEXT] = safe_next(request.args.get("next"), default)
    try:
        with observed("identity"):  # the discovery document, the first time
            # The provider's sign-in page in the customer's language (OpenID's ui_locales).
            redirected = _client().authorize_redirect(
                url_for("signin.callback", _external=True), ui_locales=chosen()
            )
        return cast(Response, redirected)
    except requests.RequestException as exc:
        log.warning("identity provider unavailable: %s", type(exc).__name__)
        raise UpstreamError() from exc


@bp.get("/auth/callback")
def callback() -> Response:
    client = _client()
    try:
        # The token endpoint, and the provider's keys when not cached.
        with observed("identity"):
            token = client.authorize_access_token()
    except requests.RequestException as exc:
        log.warning("identity provider unavailable: %s", type(exc).__name__)
        raise UpstreamError() from exc
    except (AuthlibBaseError, JoseError, ValueError, KeyError) as exc:
        log.info("sign-in refused: %s", type(exc).__name__)
        raise Unauthorized("sign-in did not complete") from exc
    access = services().tokens.validate(f"Bearer {token.get('access_token', '')}")
    userinfo = token.get("userinfo") or {}
    if userinfo.get("sub") != access.subject:
        raise Unauthorized("the ID token and the access token name different customers")
    next_path = safe_next(session.pop(_NEXT, None), url_for("journey.basket"))
    operator_at_work = next_path.startswith("/ops/")
    roles = roles_of(userinfo)
    if not roles and operator_at_work:
        # A provider that keeps roles out of the ID token.
        roles = roles_of(_userinfo(client, token))
    if isinstance(session, RedisSession):
        session.rotate()  # a session id planted before sign-in is useless after it
    session[AUTH] = {
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "expires_at": float(token.get("expires_at") or time.time() + 300),
        "id_token": token.get("id_token"),
        "name": display_name(userinfo),
        "roles": roles,
    }
    if not operator_at_work:  # an operator at work is not a customer's step
        journey_step.send("signed_in")
    return redirect(next_path, 303)


_MAX_ROLES = 20


def roles_of(claims: Any) -> list[str]:
    """The `roles` claim of an ID token, userinfo or access token, as a list of strings
    (a provider may send one string)."""
    value = claims.get("roles") if isinstance(claims, dict) else None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [role for role in value if isinstance(role, str)][:_MAX_ROLES]


def _userinfo(client: Any, token: dict[str, Any]) -> dict[str, Any]:
    try:
        with observed("identity"):
            found = client.userinfo(token=token)
    except requests.RequestException as exc:
        log.warning("userinfo unavailable: %s", type(exc).__name__)
        raise UpstreamError() from exc
    except (AuthlibBaseError, ValueError) as exc:
        log.info("userinfo refused: %s", type(exc).__name__)
        return {}
    return dict(found)


def roles() -> list[str]:
    """The signed-in person's roles, as the provider named them at sign-in."""
    return roles_of(session.get(AUTH))


@bp.post("/signout")
def sign_out() -> Response:
    auth = session.get(AUTH)
    id_token = auth.get("id_token") if isinstance(auth, dict) else None
    link = first_touch_link()
    session.clear()
    if isinstance(session, RedisSession):
        session.rotate()
    session[_AFTER_SIGN_OUT] = safe_next(link, url_for("journey.home"))
    try:
        response = cast(
            Response,
            _client().logout_redirect(
                post_logout_redirect_uri=url_for("signin.signed_out", _external=True),
                id_token_hint=id_token,
            ),
        )
    except (requests.RequestException, RuntimeError) as exc:
        # The provider is unreachable or has no end_session_endpoint: we are signed out here.
        log.warning("provider sign-out skipped: %s", type(exc).__name__)
        response = redirect(url_for("signin.signed_out"), 303)
    response = make_response(response)
    response.status_code = 303
    landing.clear(response)  # a shared computer keeps no way back to the basket
    return response


@bp.get("/auth/signed-out")
def signed_out() -> Response:
    """The provider sends the customer back here; then back to the link they came from."""
    if request.args.get("state"):
        try:
            _client().validate_logout_response()
        except AuthlibBaseError:
            log.info("sign-out came back with an unknown state")
    target = safe_next(session.pop(_AFTER_SIGN_OUT, None), url_for("journey.home"))
    session.clear()
    flash(_("You have signed out."), "success")
    return redirect(target, 303)
