"""What kind of answer a path gives, decided once for every part that asks.

The access-log envelope, the session, the in-flight bound and the error answers all need
to know, before Flask has matched a route (the session opens first), whether a request is
a page, a call of the partner API, a probe or a static file. They ask `kind_of(path)`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Kind:
    machine: bool  # read by programs: problems as problem+json, nothing to run or frame
    session: bool  # may use the browser's session (a Redis round trip to open it)
    shed: bool  # may be turned away at the in-flight bound (app/web/overload.py)
    cached: bool  # may be kept by caches; everything else is Cache-Control: no-store
    localised: bool = False  # in the customer's language (app/web/language.py); else English


PAGE = Kind(machine=False, session=True, shed=True, cached=False, localised=True)
API = Kind(machine=True, session=False, shed=True, cached=False)
# Never turned away: a process manager that sees a busy worker as dead would kill it, and
# an overloaded worker is exactly when its operators need to see its metrics.
PROBE = Kind(machine=True, session=False, shed=False, cached=False)
ASSET = Kind(machine=False, session=False, shed=False, cached=True)
# A download for programs that an operator's signed-in browser may fetch too.
EXPORT = Kind(machine=True, session=True, shed=True, cached=False)
# The operators' pages: in English, the operators' one vocabulary.
OPERATOR = Kind(machine=False, session=True, shed=True, cached=False)

_BY_PREFIX = (
    ("/static/", ASSET),
    ("/favicon.ico", ASSET),
    ("/api/", API),
    ("/healthz", PROBE),
    ("/readyz", PROBE),
    ("/metrics", PROBE),
    ("/ops/funnel.csv", EXPORT),
    ("/ops/", OPERATOR),
)


def kind_of(path: str) -> Kind:
    for prefix, kind in _BY_PREFIX:
        if path.startswith(prefix):
            return kind
    return PAGE
