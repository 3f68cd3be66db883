"""The production gunicorn settings: every name is one gunicorn knows, and the worker hook
does what its docstring says."""

from __future__ import annotations

import subprocess
import sys
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
    assert "post_worker_init" in names
    assert names <= {setting.name for setting in KNOWN_SETTINGS}


def test_a_worker_freezes_its_loaded_objects_and_drops_unused_log_fields():
    probe = (
        "import gc, logging\n"
        "from app import gunicorn_config\n"
        "assert gc.get_freeze_count() == 0\n"
        "gunicorn_config.post_worker_init(None)\n"
        "print(gc.get_freeze_count() > 1000, logging._srcfile, logging.logThreads,"
        " logging.logMultiprocessing, logging.logProcesses)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "None", "False", "False", "True"]
