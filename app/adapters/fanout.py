"""Independent upstream calls at once: one bounded thread pool per process.

A change waits on two services that do not depend on each other: reCAPTCHA's siteverify
and the subscription backend (a quote, or the subscription read of a create). Run one
after the other, a request holds its worker for the sum of their waits; run at once, for
the longer of the two. The caller starts the verification here, does its own call in the
request's thread, and waits on the verification before it writes anything
(`Checkout.change(before_save=...)`), so a failed check throws the quote away.

Tasks get the data they need as arguments, never the request context, and run in a copy
of the caller's `contextvars` context. The pool is made with the app, in each worker
(gunicorn loads the app after it forks), and is as large as the worker's own concurrency:
each request starts at most one task, so a task never waits for a thread.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class FanOut:
    def __init__(self, size: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="checkout-fanout")

    def start(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Run `call` at once in another thread; its `result()` returns or raises as it did."""
        context = contextvars.copy_context()
        return self._pool.submit(context.run, call, *args, **kwargs)
