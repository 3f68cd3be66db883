"""The sandbox as an operator runs it: ``python -m sandbox serve`` and ``token``."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    return {**clean, "SANDBOX_SIGNING_KEY_FILE": str(tmp_path / "signing-key.json")}


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    """A sandbox process on a free port; yields the URL it announced."""
    command = [sys.executable, "-m", "sandbox", "serve", "--port", "0"]
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=30)
        line = process.stdout.readline().strip() if ready else ""
        try:
            assert line.startswith("sandbox listening on http://127.0.0.1:"), line
            yield line.removeprefix("sandbox listening on ")
        finally:
            process.terminate()
            process.wait(timeout=10)


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


def test_token_command_signs_with_the_servers_key(served: str, env: dict[str, str]) -> None:
    token = _cli_token(served, env, "alice")
    assert (token.claims["sub"], token.claims["iss"]) == ("alice", served)
    jwt.JWTClaimsRegistry(aud={"essential": True, "value": "checkout-api"}).validate(token.claims)
    subscription = requests.get(
        f"{served}/backend/v1/subscriptions/SUB-1001",
        headers={"Authorization": "Bearer sandbox-backend-token"},
        timeout=5,
    )
    assert subscription.json()["customerId"] == "alice"


def test_token_command_gives_the_operator_her_roles(served: str, env: dict[str, str]) -> None:
    """olivia's token carries her `roles`, like the token endpoint's."""
    token = _cli_token(served, env, "olivia")
    assert (token.claims["sub"], token.claims["roles"]) == ("olivia", ["checkout-operator"])
    config = requests.get(f"{served}/.well-known/openid-configuration", timeout=5).json()
    assert "roles" in config["claims_supported"]


def test_token_command_refuses_unknown_customers(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "token", "mallory"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
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
