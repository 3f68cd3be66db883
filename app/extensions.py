"""Flask extensions, created unbound and initialised by the app factory."""

from __future__ import annotations

from flask_wtf.csrf import CSRFProtect

# Every POST of the browser pages carries a token; the JSON API is exempt (Bearer tokens).
csrf = CSRFProtect()
