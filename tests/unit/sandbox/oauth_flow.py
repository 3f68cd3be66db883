"""The checkout's side of the sandbox's sign-in, in process: PKCE, the authorize form, the
token endpoint."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient

CLIENT = ("checkout-dev", "checkout-dev-secret")
CALLBACK = "http://127.0.0.1:5000/auth/callback"


class Pkce:
    def __init__(self) -> None:
        self.verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(self.verifier.encode()).digest()
        self.challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(pkce: Pkce, **overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": CLIENT[0],
        "redirect_uri": CALLBACK,
        "scope": "openid profile",
        "state": "state-123",
        "nonce": secrets.token_hex(8),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return params


def token_request(client: FlaskClient, **form: str) -> dict[str, Any]:
    """The token endpoint's answer, with the client's basic credentials."""
    basic = base64.b64encode(":".join(CLIENT).encode()).decode()
    response = client.post("/oauth/token", data=form, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def code_flow(client: FlaskClient, customer: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Sign `customer` in and trade the code: the tokens, and the authorize parameters."""
    pkce = Pkce()
    params = authorize_params(pkce)
    signed_in = client.post("/oauth/authorize", data={**params, "customer": customer})
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    code = parse_qs(urlsplit(signed_in.headers["Location"]).query)["code"][0]
    tokens = token_request(
        client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=CALLBACK,
        code_verifier=pkce.verifier,
    )
    return tokens, params
