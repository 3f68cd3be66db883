"""The sandbox's demo operator, olivia: a `roles` claim in her tokens, no subscription.

In process, through the sandbox app's test client, as tests/unit/sandbox/test_sandbox.py does.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet

from sandbox.__main__ import main as cli_main
from sandbox.data import CUSTOMERS, demo_subscriptions
from sandbox.oauth import SandboxClient, SandboxOpenIDCode, _access_token
from sandbox.settings import get_settings
from sandbox.state import EXTENSION_KEY as STATE_EXTENSION
from sandbox.state import SandboxState
from tests.unit.sandbox.backend_calls import BACKEND
from tests.unit.sandbox.oauth_flow import Pkce, authorize_params, code_flow, token_request

pytestmark = pytest.mark.unit

ROLES = ["checkout-operator"]


def decode(client: FlaskClient, token: str) -> Any:
    """A token verified with the provider's published keys."""
    keys = KeySet.import_key_set(client.get("/oauth/jwks").get_json())
    return jwt.decode(token, keys, algorithms=["RS256"])


def payload(token: str) -> dict[str, Any]:
    """A JWT's claims read straight from base64, so the raw shape is what is checked."""
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def cli_token(customer: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert cli_main(["token", customer]) == 0
    return capsys.readouterr().out.strip()


@pytest.fixture
def cli_env(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI signs with this module's key and the default issuer and audience."""
    monkeypatch.setenv("SANDBOX_SIGNING_KEY_FILE", str(key_file))
    monkeypatch.delenv("SANDBOX_ISSUER", raising=False)
    monkeypatch.delenv("SANDBOX_AUDIENCE", raising=False)


# --- demo data -------------------------------------------------------------------------


def test_olivia_is_an_operator_without_a_subscription() -> None:
    olivia = CUSTOMERS["olivia"]
    assert (olivia.name, olivia.subscription_id, olivia.listed) == ("Olivia Operator", None, True)
    assert olivia.roles == ("checkout-operator",)
    assert olivia.claims() == {"name": "Olivia Operator", "roles": ROLES}


def test_every_customer_owns_exactly_their_subscription_and_has_no_roles() -> None:
    """Customers and subscriptions are defined once (sandbox/data.py); they must agree."""
    customers = {c.id: c.subscription_id for c in CUSTOMERS.values() if not c.roles}
    subscriptions = demo_subscriptions()
    assert {s.id: s.customer_id for s in subscriptions.values()} == {
        sub: customer for customer, sub in customers.items()
    }
    assert all("roles" not in c.claims() for c in CUSTOMERS.values() if not c.roles)
    operators = [c for c in CUSTOMERS.values() if c.roles]
    assert [(c.id, c.subscription_id) for c in operators] == [("olivia", None)]


def test_backend_serves_no_subscription_for_olivia(app: Flask, client: FlaskClient) -> None:
    state: SandboxState = app.extensions[STATE_EXTENSION]
    owners = {s.customer_id for s in state.subscriptions.subscriptions.values()}
    assert "olivia" not in owners
    for missing in ("None", "olivia"):
        response = client.get(f"/backend/v1/subscriptions/{missing}", headers=BACKEND)
        assert response.status_code == 404


def test_backend_refuses_an_order_for_olivia_on_a_customers_subscription(
    client: FlaskClient,
) -> None:
    change = {"addOffers": ["OFFER-SPORTS"], "removeOffers": []}
    quote = client.post(
        "/backend/v1/subscriptions/SUB-1001/quotes", json=change, headers=BACKEND
    ).get_json()
    body = {
        **change,
        "subscriptionId": "SUB-1001",
        "customerId": "olivia",
        "quoteId": quote["quoteId"],
        "expectedPrice": quote["newPrice"],
    }
    headers = {**BACKEND, "Idempotency-Key": "olivia-1"}
    response = client.post("/backend/v1/orders", json=body, headers=headers)
    assert response.status_code == 404
    assert response.get_json()["error"] == "subscription_not_found"
    assert client.get("/_sandbox/orders").get_json()["orders"] == []


# --- tokens from the CLI and the control endpoint ----------------------------------------


@pytest.mark.usefixtures("cli_env")
def test_cli_token_for_olivia_carries_her_role(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    token = cli_token("olivia", capsys)
    assert payload(token)["roles"] == ROLES
    claims = decode(client, token).claims
    assert (claims["sub"], claims["roles"]) == ("olivia", ROLES)


@pytest.mark.usefixtures("cli_env")
def test_cli_token_for_a_customer_has_no_roles_claim(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    claims = decode(client, cli_token("alice", capsys)).claims
    assert set(claims) == {"iss", "aud", "sub", "iat", "exp", "jti", "scope", "client_id"}


@pytest.mark.parametrize(("sub", "roles"), [("olivia", ROLES), ("bob", None)])
def test_control_endpoint_token_carries_roles_only_for_olivia(
    client: FlaskClient, sub: str, roles: list[str] | None
) -> None:
    response = client.post("/_sandbox/token", json={"sub": sub, "expiresIn": 600})
    claims = decode(client, response.get_json()["access_token"]).claims
    assert claims["sub"] == sub
    assert claims.get("roles") == roles


# --- the provider: discovery, sign-in page, code flow -------------------------------------


def test_discovery_names_the_roles_claim(client: FlaskClient) -> None:
    config = client.get("/.well-known/openid-configuration").get_json()
    assert "roles" in config["claims_supported"]


def test_sign_in_page_lists_olivia_as_the_operator(client: FlaskClient) -> None:
    pkce = Pkce()
    page = client.get("/oauth/authorize", query_string=authorize_params(pkce))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'id="customer-olivia"\s+name="customer"\s+value="olivia">', html)
    assert '<label for="customer-olivia">Olivia Operator (olivia), operator</label>' in html
    assert '<label for="customer-alice">Alice Example (alice)</label>' in html
    assert html.count(", operator</label>") == 1
    assert html.count("<fieldset>") == 1 and html.count("checked") == 1


def test_generate_user_info_and_access_token_carry_olivia_role(app: Flask) -> None:
    olivia, alice = CUSTOMERS["olivia"], CUSTOMERS["alice"]
    grant = SandboxOpenIDCode()
    assert dict(grant.generate_user_info(olivia, "openid profile")) == {
        "sub": "olivia",
        "name": "Olivia Operator",
        "roles": ROLES,
    }
    assert "roles" not in grant.generate_user_info(alice, "openid profile")
    with app.app_context():
        client = SandboxClient(get_settings())
        minted = _access_token(client, "authorization_code", olivia, "openid profile")
        plain = _access_token(client, "authorization_code", alice, "openid profile")
    assert payload(minted)["roles"] == ROLES
    assert "roles" not in payload(plain)


def test_code_flow_for_olivia_carries_her_role_everywhere(client: FlaskClient) -> None:
    """ID token, access token, userinfo and a refreshed access token alike."""
    tokens, params = code_flow(client, "olivia")

    identity = decode(client, tokens["id_token"]).claims
    assert (identity["sub"], identity["name"], identity["roles"]) == (
        "olivia",
        "Olivia Operator",
        ROLES,
    )
    assert identity["nonce"] == params["nonce"]
    access = decode(client, tokens["access_token"]).claims
    assert (access["sub"], access["roles"]) == ("olivia", ROLES)
    userinfo = client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.get_json() == {"sub": "olivia", "name": "Olivia Operator", "roles": ROLES}

    refreshed = token_request(
        client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert decode(client, refreshed["access_token"]).claims["roles"] == ROLES


def test_code_flow_for_a_customer_carries_no_roles(client: FlaskClient) -> None:
    tokens, _ = code_flow(client, "carol")
    assert "roles" not in decode(client, tokens["id_token"]).claims
    assert "roles" not in decode(client, tokens["access_token"]).claims
    userinfo = client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.get_json() == {"sub": "carol", "name": "Carol Example"}
