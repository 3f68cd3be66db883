"""gunicorn settings for production and `make bench`.

    gunicorn -c app/gunicorn_config.py wsgi:app

Threaded workers (gthread): every change waits on other people's services (reCAPTCHA,
the subscription backend), tens to hundreds of milliseconds a call. A sync worker serves
one request at a time, so two of them cap the checkout at 2 ÷ 0.2 s = 10 changes a
second however fast the code is; measured with +120 ms backend and +80 ms siteverify at
64 connections, sync ×2 gave 4.6 req/s (p50 9 s) and gthread ×32 251 req/s (p50 242 ms).
Threads rather than gevent: requests, redis-py and the fan-out pool work unchanged, and
nothing has to be monkey-patched before the app is imported.

`CHECKOUT_THREADS` is also the app's `THREADS` setting, which sizes its upstream
connection pools and its fan-out pool (app/adapters/fanout.py), so they always fit.
"""

import multiprocessing
import os
import shutil
import tempfile
from typing import Any as _Any

worker_class = os.environ.get("CHECKOUT_WORKER_CLASS", "gthread")
if worker_class == "gevent":
    # For measuring gevent: the standard library must be patched before `app` (and with
    # it ssl, urllib3 and redis-py) is imported below, which the worker's own patching,
    # after this file has run, is too late for.
    from gevent import monkey

    monkey.patch_all()

from gunicorn.config import KNOWN_SETTINGS as _KNOWN  # noqa: E402

from app.config import Defaults as _Defaults  # noqa: E402

bind = os.environ.get("CHECKOUT_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("CHECKOUT_WORKERS", multiprocessing.cpu_count()))
threads = int(os.environ.get("CHECKOUT_THREADS", _Defaults.THREADS))
# Connections a worker keeps open (kept-alive ones waiting for their next request too).
worker_connections = int(os.environ.get("CHECKOUT_WORKER_CONNECTIONS", 1000))
# A worker is never held longer than the backend budget plus a margin.
timeout = int(os.environ.get("CHECKOUT_WORKER_TIMEOUT", 30))
# On SIGTERM (a stop, or the old workers of a SIGHUP reload) a worker takes no new
# connection and has this long to finish the requests it holds: above the request
# deadline (5 s), so none is cut.
graceful_timeout = int(os.environ.get("CHECKOUT_GRACEFUL_TIMEOUT", 20))
keepalive = 5
backlog = 2048
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 20000
max_requests_jitter = 2000
# Our own one-line JSON access log (app/web/middleware.py) carries the request id.
accesslog = None
errorlog = "-"
# gunicorn 25+ opens a control socket at one path per user (~/.gunicorn/gunicorn.ctl):
# two instances on one host would take it from each other. Off unless a path is given.
if os.environ.get("CHECKOUT_CONTROL_SOCKET"):
    control_socket = os.environ["CHECKOUT_CONTROL_SOCKET"]
elif any(setting.name == "control_socket_disable" for setting in _KNOWN):
    control_socket_disable = True


_made = [""]  # the metrics directory on_starting made, if it made one


def on_starting(server: object) -> None:
    """A fresh directory for the workers' metrics (app/ops/metrics.py), before any forks:
    `PROMETHEUS_MULTIPROC_DIR` emptied when it is set, else a new temporary one."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made[0] = tempfile.mkdtemp(
            prefix="checkout-metrics-"
        )


def on_exit(server: object) -> None:
    """The temporary metrics directory goes with gunicorn; one the operator set stays."""
    if _made[0]:
        shutil.rmtree(_made[0], ignore_errors=True)


def post_worker_init(worker: _Any) -> None:
    """/readyz answers 503 from the moment this worker starts stopping (SIGTERM, the old
    workers of a reload, a recycle), so a balancer that asks it sends nothing new while
    the requests in hand finish."""
    from app.ops import health

    health.stopping_when(lambda: not worker.alive)


def child_exit(server: object, worker: _Any) -> None:
    """A worker's gauges (requests in flight, open circuits) end with it; counters stay."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server: object, worker: _Any) -> None:
    """The spans a worker still holds are sent before it goes (app/ops/tracing.py); a
    no-op with tracing off. Its provider was made with the app, in the worker."""
    from app.ops import tracing

    tracing.shutdown()
