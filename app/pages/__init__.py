"""The customer's pages: the journey from a marketing link to the confirmation (views.py,
forms.py), and signing in at the partner's identity provider (signin.py)."""

from __future__ import annotations

from flask import Flask

from . import signin, views


def init_app(app: Flask) -> None:
    signin.init_app(app)
    views.init_app(app)
