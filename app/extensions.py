"""Flask extensions, created unbound and initialised by the app factory."""

from __future__ import annotations

from flask import current_app, request
from flask_wtf import csrf as flask_wtf_csrf


class CSRFProtect(flask_wtf_csrf.CSRFProtect):
    """flask-wtf's CSRF protection, asking the request's method first.

    flask-wtf's own check looks up whether the view is exempt before it asks whether the
    method needs a token at all: seven look-ups through Flask's context on every GET,
    for an answer a GET never uses. The check for the methods that need one is its own.
    """

    def protect(self, apply_exemptions: bool = False) -> None:
        if request.method in current_app.config["WTF_CSRF_METHODS"]:
            super().protect(apply_exemptions)


# Every POST of the browser pages carries a token; the JSON API is exempt (Bearer tokens).
csrf = CSRFProtect()
