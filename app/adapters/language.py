"""The language a request's customer reads, for the upstreams that word things for them.

The request layer sets it for a customer's page (app/web/language.py); the backend client
asks for its names and descriptions in it (`Accept-Language`). Fan-out tasks run in a copy
of the request's context, so they share it.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

_language: ContextVar[str | None] = ContextVar("checkout_language", default=None)


def use(language: str) -> Token[str | None]:
    return _language.set(language)


def reset(token: Token[str | None]) -> None:
    _language.reset(token)


def current() -> str | None:
    """The customer's language; None outside a customer's page (the API's own default)."""
    return _language.get()
