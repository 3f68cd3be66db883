"""gunicorn settings for production and `make bench`.

    gunicorn -c python:app.gunicorn_config wsgi:app

Sync workers: the checkout's requests are short and CPU-bound in Python; measured on two
cores, threads gave no more throughput and two to four times worse p99 tails.
"""

import multiprocessing
import os

bind = os.environ.get("CHECKOUT_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("CHECKOUT_WORKERS", multiprocessing.cpu_count()))
worker_class = "sync"
# A worker is never held longer than the backend budget plus a margin.
timeout = int(os.environ.get("CHECKOUT_WORKER_TIMEOUT", 30))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 20000
max_requests_jitter = 2000
# Our own one-line JSON access log (app/middleware.py) carries the request id.
accesslog = None
errorlog = "-"
