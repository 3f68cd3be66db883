"""The session's stored form: Flask's tagged JSON, read without the tag walk when untagged."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.json.tag import TaggedJSONSerializer

from app import create_app
from app.sessions import RedisSession, RedisSessionInterface

pytestmark = pytest.mark.unit


@pytest.fixture
def interface():
    app = create_app()
    with app.app_context():
        assert isinstance(app.session_interface, RedisSessionInterface)
        yield app.session_interface


@pytest.mark.parametrize(
    "data",
    [
        {"_flashes": [("success", "You have signed out.")]},  # a tuple
        {"signed_at": datetime(2026, 11, 27, 9, 0, tzinfo=UTC)},
        {"raw": b"\x00\xff"},
        {" t": "a plain key that looks like a tag"},
        {"first_touch": {"tracking": {" utm_source": "mail"}}},
    ],
)
def test_tagged_values_read_back_as_written(interface, data: dict[str, Any]):
    stored = interface.serializer.dumps(data).encode()
    assert interface._loads(stored) == data


def test_an_untagged_session_is_read_as_plain_json(interface, monkeypatch):
    data = {"auth": {"sub": "alice", "expires": 1.5}, "csrf_signed": ["s", "t"], "n": None}
    stored = interface.serializer.dumps(data).encode()
    monkeypatch.setattr(TaggedJSONSerializer, "loads", lambda *_: pytest.fail("tag walk"))
    assert interface._loads(stored) == data


def test_a_session_is_freed_as_soon_as_it_is_dropped():
    """No reference cycle: the garbage collector need not find it (it would find one per
    page view, and promote what survives to where full collections look)."""
    gc.disable()
    try:
        session = RedisSession({"a": 1}, "sid", new=False)
        session["b"] = 2
        assert session.modified
        gone = weakref.ref(session)
        del session
        assert gone() is None
    finally:
        gc.enable()
