"""The sandbox's own app, in process: these tests are of the stand-in, not the checkout
that tests/unit/conftest.py makes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

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


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """The same app behind a real threaded werkzeug server, for socket-level behaviour."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
