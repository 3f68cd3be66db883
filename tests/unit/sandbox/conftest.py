"""The sandbox's own app, in process: these tests are of the stand-in, not the checkout
that tests/unit/conftest.py makes."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sandbox import Settings, create_app
from sandbox.keys import load_signing_key


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One RSA key per module: generating one for every test would be slow.
    path = tmp_path_factory.mktemp("sandbox") / "signing-key.json"
    load_signing_key(path)
    return path


@pytest.fixture
def app(key_file: Path) -> Flask:
    return create_app(Settings(signing_key_file=key_file))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
