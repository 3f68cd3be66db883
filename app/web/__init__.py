"""The request layer every route shares, pages, API and operations alike.

What each request gets, in the order `init_app` installs it: the app's adapters
(services.py); a request id, the client's address through trusted proxies, security
headers and one access-log line (middleware.py); the in-flight bound (overload.py); one
deadline for all its upstream calls; the landing cookie (landing.py); the server-side
session (sessions.py); the customer's language (language.py); CSRF on every form post;
and one answer for every refusal (problems.py). guards.py holds the checks a change
passes first, for pages and API alike.
"""

from __future__ import annotations

from flask import Flask, g
from flask_wtf.csrf import CSRFProtect

from ..adapters import Services, deadline
from . import landing, language, middleware, overload, problems, services, sessions

# Every POST of the browser pages carries a token; the JSON API is exempt (Bearer tokens).
csrf = CSRFProtect()
_DEADLINE = "checkout.deadline"


def init_app(app: Flask, made: Services) -> None:
    services.init_app(app, made)
    middleware.init_app(app)
    overload.init_app(app)  # first of the request's hooks: a request turned away does nothing
    _bind_deadline(app, float(app.config["REQUEST_DEADLINE_SECONDS"]))
    landing.init_app(app)
    sessions.init_app(app)
    language.init_app(app)  # after the session, which remembers the choice
    csrf.init_app(app)
    problems.init_app(app)


def _bind_deadline(app: Flask, seconds: float) -> None:
    """Each request's upstream calls share one deadline (app/adapters/deadline.py)."""

    @app.before_request
    def _start() -> None:
        g.setdefault(_DEADLINE, deadline.start(seconds))

    @app.teardown_request
    def _end(_: BaseException | None) -> None:
        token = g.pop(_DEADLINE, None)
        if token is not None:
            deadline.end(token)
