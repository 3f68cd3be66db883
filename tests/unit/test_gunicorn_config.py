"""The production gunicorn settings: every name is one gunicorn knows."""

from __future__ import annotations

import types

from gunicorn.config import KNOWN_SETTINGS

from app import gunicorn_config


def test_every_setting_is_one_gunicorn_knows():
    """gunicorn ignores a name it does not know: a misspelt hook would never run."""
    names = {
        name
        for name, value in vars(gunicorn_config).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert {"bind", "workers", "worker_class", "timeout"} <= names
    assert names <= {setting.name for setting in KNOWN_SETTINGS}
