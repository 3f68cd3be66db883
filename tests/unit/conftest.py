"""In-process fixtures for pytest-flask: `app` is the checkout with its development
defaults; pytest-flask makes `client` from it. Nothing here reaches the network."""

from __future__ import annotations

import pytest
from flask import Flask

from app import create_app


@pytest.fixture
def app() -> Flask:
    return create_app()
