"""The sandbox as an operator runs it: ``python -m sandbox serve`` and ``token``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_serve_announces_its_url_and_issuer(served: str) -> None:
    config = requests.get(f"{served}/.well-known/openid-configuration", timeout=5).json()
    assert config["issuer"] == served
    assert config["jwks_uri"] == f"{served}/oauth/jwks"


def _cli_token(served: str, env: dict[str, str], customer: str) -> Any:
    """`python -m sandbox token <customer>`, verified with the served keys."""
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "token", customer, "--issuer", served],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    keys = KeySet.import_key_set(requests.get(f"{served}/oauth/jwks", timeout=5).json())
    return jwt.decode(result.stdout.strip(), keys, algorithms=["RS256"])


def test_token_command_signs_with_the_servers_key(served: str, sandbox_env: dict[str, str]) -> None:
    token = _cli_token(served, sandbox_env, "alice")
    assert (token.claims["sub"], token.claims["iss"]) == ("alice", served)
    jwt.JWTClaimsRegistry(aud={"essential": True, "value": "checkout-api"}).validate(token.claims)
    subscription = requests.get(
        f"{served}/backend/v1/subscriptions/SUB-1001",
        headers={"Authorization": "Bearer sandbox-backend-token"},
        timeout=5,
    )
    assert subscription.json()["customerId"] == "alice"


def test_token_command_gives_the_operator_her_roles(
    served: str, sandbox_env: dict[str, str]
) -> None:
    """olivia's token carries her `roles`, like the token endpoint's."""
    token = _cli_token(served, sandbox_env, "olivia")
    assert (token.claims["sub"], token.claims["roles"]) == ("olivia", ["checkout-operator"])
    config = requests.get(f"{served}/.well-known/openid-configuration", timeout=5).json()
    assert "roles" in config["claims_supported"]


def test_token_command_refuses_unknown_customers(sandbox_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "token", "mallory"],
        cwd=ROOT, env=sandbox_env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown customer" in result.stderr
    assert result.stdout == ""


def test_serve_keeps_connections_alive(served: str) -> None:
    """The checkout's pooled connections are reused, as with a real backend."""
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(served)
    assert address.hostname is not None
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
    try:
        sockets = []
        for _ in range(3):
            connection.request("GET", "/backend/v1/subscriptions/SUB-1001", headers={
                "Authorization": "Bearer sandbox-backend-token",
            })  # fmt: skip
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Connection", "").lower() != "close"
            response.read()
            sockets.append(connection.sock)
        assert sockets[0] is not None and sockets.count(sockets[0]) == 3
    finally:
        connection.close()
