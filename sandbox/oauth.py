"""The partner's OAuth 2.0 / OpenID Connect provider, built on Authlib's Flask server.

One confidential client, authorization code with PKCE (S256 only) and refresh tokens;
access tokens are RS256 JWTs from :func:`sandbox.tokens.mint_access_token`.

The sign-in, signed-out and error pages are in English or Welsh, as OpenID Connect's
``ui_locales`` asks (:mod:`sandbox.language`).
"""

from __future__ import annotations

import hmac
import time
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)
from flask.typing import ResponseReturnValue
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from sandbox.data import CUSTOMERS, Customer
from sandbox.keys import ALGORITHM, get_signing_key, public_jwks
from sandbox.language import LANGUAGES, PAGE_TEXTS, PageText, from_ui_locales
from sandbox.settings import Settings, get_settings
from sandbox.state import AuthorizationCode, RefreshToken, get_state
from sandbox.tokens import DEFAULT_SCOPE, mint_access_token

bp = Blueprint("oauth", __name__)

EXTENSION_KEY = "sandbox.oauth_server"
SCOPES = ("openid", "profile", "email")
#: any port, this exact path: the checkout running locally on whatever port a test picked
LOCAL_HOSTS = ("127.0.0.1", "localhost")
CALLBACK_PATH = "/auth/callback"


class SandboxClient(ClientMixin):
    """The checkout as a confidential client registered with the partner."""

    def __init__(self, settings: Settings) -> None:
        self.client_id = settings.client_id
        self.client_secret = settings.client_secret
        self.redirect_uris = settings.redirect_uris

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri is always required

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return DEFAULT_SCOPE
        return " ".join(s for s in scope.split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if redirect_uri in self.redirect_uris:
            return True
        try:
            parts = urlsplit(redirect_uri)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            return False
        return (
            parts.scheme == "http"
            and parts.hostname in LOCAL_HOSTS
            and parts.path == CALLBACK_PATH
            and not parts.query
            and not parts.fragment
            and not parts.username
            and not parts.password
        )

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


def query_client(client_id: str) -> SandboxClient | None:
    settings = get_settings()
    return SandboxClient(settings) if client_id == settings.client_id else None


def save_token(token: dict[str, Any], oauth_request: Any) -> None:
    """Only refresh tokens need remembering: access tokens are self-contained JWTs."""
    if refresh_token := token.get("refresh_token"):
        get_state().grants.save_refresh_token(
            RefreshToken(
                refresh_token,
                oauth_request.client.get_client_id(),
                oauth_request.user.id,
                token.get("scope", DEFAULT_SCOPE),
            )
        )


class S256CodeChallenge(CodeChallenge):
    """PKCE is required of every client, and only with S256."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: AuthorizationCode) -> str | None:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(
        self, authorization_code: AuthorizationCode
    ) -> str | None:
        return authorization_code.code_challenge_method


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    def save_authorization_code(self, code: str, oauth_request: Any) -> None:
        data = oauth_request.payload.data
        get_state().grants.save_code(
            AuthorizationCode(
                code=code,
                client_id=oauth_request.client.get_client_id(),
                redirect_uri=oauth_request.payload.redirect_uri,
                scope=oauth_request.scope,
                customer_id=oauth_request.user.id,
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
            )
        )

    def query_authorization_code(
        self, code: str, client: SandboxClient
    ) -> AuthorizationCode | None:
        return get_state().grants.find_code(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        get_state().grants.delete_code(authorization_code.code)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Customer | None:
        return CUSTOMERS.get(authorization_code.customer_id)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotate: each refresh token works once
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        return get_state().grants.find_refresh_token(refresh_token)

    def authenticate_user(self, refresh_token: RefreshToken) -> Customer | None:
        return refresh_token.customer

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        get_state().grants.revoke_refresh_token(refresh_token.token)


class SandboxOpenIDCode(OpenIDCode):
    """Adds the ID token (with the request's nonce) to the authorization code grant."""

    def exists_nonce(self, nonce: str, oauth_request: Any) -> bool:
        return get_state().grants.nonce_used(oauth_request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: SandboxClient) -> RSAKey:
        return get_signing_key()

    def get_client_algorithm(self, client: SandboxClient) -> str:
        return ALGORITHM

    def get_client_claims(self, client: SandboxClient) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": get_settings().issuer,
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + get_settings().access_token_ttl,
        }

    def get_encode_header(self, client: SandboxClient) -> dict[str, Any]:
        return {"alg": ALGORITHM, "kid": get_signing_key().kid}

    def generate_user_info(self, user: Customer, scope: str) -> UserInfo:
        return UserInfo(sub=user.id, **user.claims())


def _access_token(client: SandboxClient, grant_type: str, user: Customer, scope: str) -> str:
    settings = get_settings()
    return mint_access_token(
        get_signing_key(),
        subject=user.id,
        issuer=settings.issuer,
        audience=settings.audience,
        client_id=client.get_client_id(),
        expires_in=settings.access_token_ttl,
        scope=scope,
        roles=user.roles,
    )


def _refresh_token(**_: Any) -> str:
    return generate_token(48)


def _expires_in(client: SandboxClient, grant_type: str) -> int:
    return get_settings().access_token_ttl


def init_app(app: Flask) -> None:
    """Create this app's authorization server and mount the provider's endpoints."""
    server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
    server.register_token_generator(
        "default", BearerTokenGenerator(_access_token, _refresh_token, _expires_in)
    )
    server.register_grant(
        AuthorizationCodeGrant, [S256CodeChallenge(required=True), SandboxOpenIDCode()]
    )
    server.register_grant(RefreshTokenGrant)
    app.extensions[EXTENSION_KEY] = server
    app.register_blueprint(bp)


def _server() -> AuthorizationServer:
    return cast(AuthorizationServer, current_app.extensions[EXTENSION_KEY])


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    issuer = get_settings().issuer
    return jsonify(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "jwks_uri": f"{issuer}/oauth/jwks",
            "userinfo_endpoint": f"{issuer}/oauth/userinfo",
            "end_session_endpoint": f"{issuer}/oauth/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "scopes_supported": list(SCOPES),
            "ui_locales_supported": list(LANGUAGES),
            "claims_supported": [
                "sub",
                "name",
                "email",
                "roles",
                "iss",
                "aud",
                "exp",
                "iat",
                "nonce",
            ],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
        }
    )


@bp.get("/oauth/jwks")
def jwks() -> Response:
    return jsonify(public_jwks(get_signing_key()))


def _page_text() -> PageText:
    """The pages' words in the first language of ``ui_locales`` they know, else English.

    From the query, or from the sign-in form, which posts the query back in hidden fields.
    """
    return PAGE_TEXTS[from_ui_locales(request.values.get("ui_locales"))]


def _rejected(error: OAuth2Error) -> ResponseReturnValue:
    """Redirect errors only to a redirect URI Authlib validated; otherwise show a page."""
    if error.redirect_uri:
        return cast(Response, _server().handle_error_response(None, error))
    text = _page_text()
    page = render_template(
        "error.html",
        text=text,
        title=text.rejected_title,
        error=error.error,
        # Authlib's words, in English whatever the page's language
        description=error.description,
        description_lang="en",
    )
    return page, 400


@bp.get("/oauth/authorize")
def authorize_page() -> ResponseReturnValue:
    """The sign-in page: pick a demo customer; the request travels on in hidden fields."""
    try:
        _server().get_consent_grant(end_user=None)
    except OAuth2Error as error:
        return _rejected(error)
    return render_template(
        "authorize.html",
        text=_page_text(),
        params=list(request.args.items(multi=True)),
        customers=[customer for customer in CUSTOMERS.values() if customer.listed],
        client_id=request.args.get("client_id", ""),
    )


@bp.post("/oauth/authorize")
def authorize() -> ResponseReturnValue:
    customer = CUSTOMERS.get(request.form.get("customer", ""))
    try:
        grant = _server().get_consent_grant(end_user=customer)
    except OAuth2Error as error:
        return _rejected(error)
    if customer is None:
        text = _page_text()
        page = render_template(
            "error.html",
            text=text,
            title=text.rejected_title,
            error="invalid_request",
            description=text.no_such_customer,
        )
        return page, 400
    return cast(Response, _server().create_authorization_response(grant_user=customer, grant=grant))


@bp.post("/oauth/token")
def token() -> Response:
    return cast(Response, _server().create_token_response())


@bp.get("/oauth/userinfo")
def userinfo() -> ResponseReturnValue:
    scheme, _, access_token = request.headers.get("Authorization", "").partition(" ")
    claims = verify_access_token(access_token) if scheme.lower() == "bearer" else None
    customer = CUSTOMERS.get(str(claims.get("sub"))) if claims else None
    if customer is None:
        body = {"error": "invalid_token", "error_description": "A valid access token is required."}
        return jsonify(body), 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return jsonify({"sub": customer.id, **customer.claims()})


def verify_access_token(access_token: str) -> dict[str, Any] | None:
    """The claims of a valid access token from this provider, else None."""
    settings = get_settings()
    try:
        token = jwt.decode(access_token, get_signing_key(), algorithms=[ALGORITHM])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "value": settings.audience},
            exp={"essential": True},
            sub={"essential": True},
        ).validate(token.claims)
    except (JoseError, ValueError):
        return None
    return dict(token.claims)


@bp.get("/oauth/logout")
def logout() -> ResponseReturnValue:
    """End the session: back to a local post-logout URI, else a plain signed-out page.

    The page follows ``ui_locales``, which RP-initiated logout also defines.
    """
    target = request.args.get("post_logout_redirect_uri", "")
    parts = urlsplit(target)
    if parts.scheme in ("http", "https") and parts.hostname in LOCAL_HOSTS:
        if state := request.args.get("state"):
            separator = "&" if parts.query else "?"
            target = f"{target}{separator}{urlencode({'state': state})}"
        return redirect(target)
    return render_template("signed_out.html", text=_page_text())
