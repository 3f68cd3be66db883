"""Operations: what operators and marketers see of the checkout, observing it from above.

`/metrics` (metrics.py), the marketing funnel per campaign (funnel.py), the operators'
funnel page and CSV (pages.py, charts.py), and liveness and readiness (health.py). The
metrics and the funnel learn what happened from the signals the rest announces
(app/signals.py); nothing below this package imports it.
"""

from __future__ import annotations

from flask import Flask

from ..web import csrf
from . import funnel, health, metrics, pages


def init_app(app: Flask) -> None:
    metrics.init_app(app)
    funnel.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(pages.bp)
    for machine in (health.bp, metrics.bp):  # programs read these; they post no forms
        csrf.exempt(machine)
