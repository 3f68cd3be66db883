"""The partners' JSON API: three operations on the basket (views.py), what they accept and
answer (schemas.py), and their OpenAPI description, made from both (openapi.py)."""

from __future__ import annotations

from flask import Flask

from ..web import csrf
from . import views


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    csrf.exempt(views.bp)  # Bearer tokens, not cookies, authenticate the JSON API
