"""The child of `make bench-count`: serves requests in process, marking where each batch starts.

Run under callgrind with `--dump-before=getppid`, so each `os.getppid()` below writes out
the instructions counted since the last one. It imports only the standard library,
Werkzeug, Flask and the `app` package found first on the path: the tree being counted,
which may be an older revision.

    python tests/bench/counted.py SETTINGS.json

SETTINGS names the app's configuration, the requests ({name, path, headers}; the name
"floor" is a bare Flask route) and how many of each to warm up with and to count.
Dumps: the first holds start-up and every warm-up, then one per request in order.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder

from app import create_app


def floor() -> Flask:
    """The bare route of tests/bench/floor.py, made here: BASE trees may predate it."""
    bare = Flask("floor")
    bare.add_url_rule("/hello", "hello", lambda: "hello")
    return bare


def main() -> int:
    with open(sys.argv[1]) as file:
        settings = json.load(file)
    checkout = create_app(settings["config"])
    # Every request's access-log line is counted, as production writes one; the line
    # itself goes nowhere (a tenth of a GET's instructions went unseen while it was off).
    logging.getLogger().handlers[:] = [logging.StreamHandler(open(os.devnull, "w"))]  # noqa: SIM115
    batches = []
    for request in settings["requests"]:
        app = floor() if request["name"] == "floor" else checkout
        environs = [
            EnvironBuilder(path=request["path"], headers=request["headers"]).get_environ()
            for _ in range(settings["warm"] + settings["counted"])
        ]
        batches.append((app.wsgi_app, environs))
    for wsgi, environs in batches:
        for environ in environs[: settings["warm"]]:
            _serve(wsgi, environ)
    for wsgi, environs in batches:
        os.getppid()  # a dump: what came before
        for environ in environs[settings["warm"] :]:
            _serve(wsgi, environ)
    os.getppid()
    return 0


def _serve(wsgi: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> None:
    status: list[str] = []
    body = b"".join(wsgi(environ, lambda line, *_: status.append(line)))
    if not status[0].startswith("200"):
        raise SystemExit(f"{environ['PATH_INFO']} answered {status[0]}: {body[:200]!r}")


if __name__ == "__main__":
    sys.exit(main())
