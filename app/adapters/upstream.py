"""HTTP to the upstreams (the subscription backend, reCAPTCHA, the identity provider's
keys), on `requests`: every call the checkout makes itself goes through here.

Each `Upstream` owns one `requests.Session`, whose pool keeps connections alive for the
worker's concurrency (`pool_size`; a burst beyond it opens extra connections rather than
waiting or failing). It is made with the app, in each worker (gunicorn loads the app after
it forks), so no worker shares another's connections. The policy, and why:

- Retries (urllib3 `Retry`): a call that could not connect (refused, unresolved, connect
  timeout) never reached the upstream, so it is tried again whatever its method. A
  gateway error (502, 503, 504) is tried again for GET only, which changes nothing, and
  the last such answer is returned. A call that failed after it was sent (read timeout,
  reset, a kept-alive connection closed without an answer) is never sent again, whatever
  its method: the upstream may have done the work, and we never send an order twice (the
  caller's own retry carries the same `Idempotency-Key`). `Retry-After` is not obeyed: a
  worker does not wait on what an upstream asks.
- Timeouts: `connect_timeout` to connect, `read_timeout` for each wait on the answer,
  each cut to what is left of the request's deadline (deadline.py); with too little
  left, the call is not made at all.
- Answers larger than `MAX_ANSWER_BYTES` are `Unreachable`: the body is streamed and
  not read past the limit.
- Redirects are not followed: an upstream API answers where we asked.
- Proxies and certificates: requests' own reading of HTTP(S)_PROXY, NO_PROXY (CIDR
  entries too) and REQUESTS_CA_BUNDLE for the upstream's URL, once, when the `Upstream`
  is made (a process reads its environment at start).
- Cookies: none is kept. A cookie an upstream sets would go back with the next call,
  which is another customer's.
- Errors name what failed (the exception classes), never what was sent: the body and
  the headers carry secrets.
"""

from __future__ import annotations

import json as jsonlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..signals import upstream_called
from . import deadline

MAX_ANSWER_BYTES = 1 << 20
BACKOFF_SECONDS = 0.1  # before retry n: nothing, then 0.2 s, 0.4 s, … (urllib3's formula)
_CHUNK_BYTES = 64 * 1024


class Unreachable(Exception):
    """No answer came: refused, reset, timed out, too large, not HTTP."""


@contextmanager
def observed(service: str) -> Iterator[dict[str, str]]:
    """Time one call to `service` and announce it (`signals.upstream_called`). The block
    may name its outcome (`outcome["outcome"] = "5xx"`); else it is `ok`, or `error` if
    the block raised."""
    started = time.perf_counter()
    outcome = {"outcome": ""}
    try:
        yield outcome
    except BaseException:
        outcome["outcome"] = outcome["outcome"] or "error"
        raise
    finally:
        upstream_called.send(
            service, outcome=outcome["outcome"] or "ok", seconds=time.perf_counter() - started
        )


def status_class(status: int) -> str:
    """An answer's outcome: `2xx`, `4xx`, `5xx`…"""
    return f"{status // 100}xx"


def retry_policy(retries: int) -> Retry:
    """`retries` more tries after a failed connect, or after a gateway error on a GET."""
    return Retry(
        total=retries,
        connect=retries,
        status=retries,
        read=0,  # sent, then no answer: the upstream may have acted on it
        other=0,
        redirect=0,
        allowed_methods=frozenset({"GET"}),  # for gateway errors and read errors
        status_forcelist=frozenset({502, 503, 504}),
        backoff_factor=BACKOFF_SECONDS,
        raise_on_status=False,  # the last gateway error is the answer
        respect_retry_after_header=False,
    )


class Upstream:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        headers: dict[str, str] | None = None,
        retries: int = 0,
        pool_size: int = 32,
        service: str = "upstream",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.service = service  # its name in the metrics
        self.timeout = (connect_timeout, read_timeout)
        self._session = session = requests.Session()
        # The environment's proxy (NO_PROXY included) and CA bundle for this upstream,
        # worked out once by requests itself. Left to trust the environment, requests
        # reads every variable again on each call; and it would take credentials for the
        # host from ~/.netrc over the Authorization header we send.
        found = session.merge_environment_settings(self.base_url, {}, None, None, None)
        session.trust_env = False
        session.proxies, session.verify = found["proxies"], found["verify"]
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        session.headers.update(
            {"Accept": "application/json", "User-Agent": "partner-subscription-checkout"}
        )
        session.headers.update(headers or {})
        adapter = HTTPAdapter(
            pool_connections=1,  # one upstream host
            pool_maxsize=pool_size,
            pool_block=False,
            max_retries=retry_policy(retries),
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._session.close()

    def request(
        self,
        method: str,
        path: str = "",
        *,
        json: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """The status and the JSON answer (None when the body is not JSON).

        `path` is appended to the base URL, unless it is a URL of its own (an identity
        provider's JWKS may live elsewhere). Raises `Unreachable` when no answer came.
        """
        sent = dict(headers or {})
        data: bytes | dict[str, str] | None = form  # a form is encoded by requests
        if json is not None:
            data = jsonlib.dumps(json, separators=(",", ":"), allow_nan=False).encode()
            sent["Content-Type"] = "application/json"
        status, body = self.send(method, path, data, sent)
        return status, _decode(body)

    def send(
        self,
        method: str,
        path: str,
        data: bytes | dict[str, str] | None,
        headers: dict[str, str],
    ) -> tuple[int, bytes]:
        """`request`'s exchange: the status and the body as sent, whatever it is."""
        try:
            timeout = deadline.timeouts(*self.timeout)
        except deadline.DeadlinePassed:
            raise Unreachable("DeadlinePassed") from None
        with observed(self.service) as outcome:
            try:
                response = self._session.request(
                    method,
                    path if "://" in path else self.base_url + path,
                    data=data,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                )
                with response:
                    outcome["outcome"] = status_class(response.status_code)
                    return response.status_code, _read(response)
            except (requests.RequestException, urllib3.exceptions.HTTPError, Unreachable) as exc:
                outcome["outcome"] = "unreachable"
                if isinstance(exc, Unreachable):
                    raise
                raise Unreachable(_reason(exc)) from None


def _read(response: requests.Response) -> bytes:
    """The body, or `Unreachable` as soon as it is larger than `MAX_ANSWER_BYTES`."""
    too_large = Unreachable(f"answer larger than {MAX_ANSWER_BYTES} bytes")
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_ANSWER_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK_BYTES):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise too_large  # closing the response drops the connection, unread
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes) -> Any:
    try:
        return jsonlib.loads(body) if body else None
    except (ValueError, RecursionError):  # not JSON, not text, or nested too deep
        return None


def _reason(exc: BaseException) -> str:
    """The classes of the error and of what caused it, e.g. `ConnectionError <
    MaxRetryError < NewConnectionError < ConnectionRefusedError`: their messages may
    quote the URL."""
    names: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(names) < 6:
        seen.add(id(current))
        names.append(type(current).__name__)
        inner = getattr(current, "reason", None)  # urllib3's MaxRetryError
        if not isinstance(inner, BaseException):
            inner = next((a for a in current.args if isinstance(a, BaseException)), None)
        current = inner or current.__cause__ or current.__context__
    return " < ".join(names)
