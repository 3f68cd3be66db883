"""The app's adapters (app/adapters/), made once per app and reached from any request."""

from __future__ import annotations

from flask import Flask, current_app

from ..adapters import Services

_EXTENSION = "checkout.services"


def init_app(app: Flask, made: Services) -> None:
    app.extensions[_EXTENSION] = made


def services(app: Flask | None = None) -> Services:
    """The adapters of `app`, by default of the app handling this request."""
    found: Services = (app or current_app).extensions[_EXTENSION]
    return found
