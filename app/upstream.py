"""HTTP to the upstreams (the subscription backend, reCAPTCHA), on libcurl (pycurl).

A `PUT` makes two upstream calls, and they were the largest part of its CPU: urllib3
(and http.client under it) cost ~155 µs of CPU per call here, libcurl ~45 µs, and answers
come back sooner. Each thread keeps one curl handle per upstream, and with it a
kept-alive connection that libcurl checks before reuse.

- Proxy: worked out once, at start, from the standard variables (HTTP(S)_PROXY,
  NO_PROXY) and given to libcurl, which then looks at no variable itself.
- Timeouts: `connect_timeout` to connect, and `connect_timeout + read_timeout` for the
  whole call: one attempt never holds a worker longer than that.
- Retries (`Retries`): a call that could not connect never reached the upstream, so it
  is tried again whatever its method; a gateway error (502, 503, 504) is tried again only
  for methods that change nothing; a read that timed out is not tried again.
- libcurl itself sends a request once more, on a new connection, when a kept-alive
  connection it reused closes without a byte of answer (usually the upstream closed it
  while idle, but it may have done the work first). That is safe for what we send: a
  quote changes nothing, an order carries its `Idempotency-Key` and finds the same
  order, and a reCAPTCHA token seen twice is refused as a duplicate, which asks the
  customer to try again rather than letting anything through.
- Certificates: checked against certifi's bundle, the same as `requests` and urllib3.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import pycurl

from . import fastjson

MAX_ANSWER_BYTES = 1 << 20
# libcurl's codes for a call that never reached the upstream.
_NOT_CONNECTED = frozenset(
    {pycurl.E_COULDNT_RESOLVE_PROXY, pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_CONNECT}
)


class Unreachable(Exception):
    """No answer came: refused, reset, timed out, too large, not HTTP."""


@dataclass(frozen=True, slots=True)
class Retries:
    count: int = 0
    methods: frozenset[str] = frozenset({"GET"})
    statuses: frozenset[int] = frozenset({502, 503, 504})
    backoff_seconds: float = 0.1

    def pause(self, attempt: int) -> None:
        """Before retry `attempt` (1, 2, …): nothing, then 0.2 s, 0.4 s, …"""
        if attempt > 1:
            time.sleep(self.backoff_seconds * 2 ** (attempt - 1))


class Upstream:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        headers: dict[str, str] | None = None,
        retries: Retries | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.proxy = _proxy_for(self.base_url)
        self.connect_ms = max(1, int(connect_timeout * 1000))
        self.total_ms = max(1, int((connect_timeout + read_timeout) * 1000))
        self.retries = retries or Retries()
        self.headers = [
            f"{name}: {value}".encode("latin-1")
            for name, value in {"Accept": "application/json", **(headers or {})}.items()
        ]
        self._local = threading.local()

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

        Raises `Unreachable` when no answer came.
        """
        sent = [*self.headers, *(f"{k}: {v}".encode("latin-1") for k, v in (headers or {}).items())]
        body: bytes | None = None
        if json is not None:
            body = fastjson.dumps(json)
            sent.append(b"Content-Type: application/json")
        elif form is not None:
            body = urlencode(form).encode()
            sent.append(b"Content-Type: application/x-www-form-urlencoded")
        if body is not None:
            sent.append(b"Expect:")  # send the body at once, without waiting for "100 Continue"
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                status, answer = self._once(method, url, sent, body)
            except _NotConnected as exc:
                if attempt >= self.retries.count:
                    raise Unreachable(str(exc)) from None
            else:
                if not (
                    status in self.retries.statuses
                    and method in self.retries.methods
                    and attempt < self.retries.count
                ):
                    return status, _json(answer)
            attempt += 1
            self.retries.pause(attempt)

    def _once(
        self, method: str, url: str, headers: list[bytes], body: bytes | None
    ) -> tuple[int, bytes]:
        handle = self._handle()
        chunks: list[bytes] = []
        size = 0

        def write(data: bytes) -> int | None:
            nonlocal size
            size += len(data)
            if size > MAX_ANSWER_BYTES:
                return 0  # not all taken: libcurl stops the transfer
            chunks.append(data)
            return None

        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.HTTPHEADER, headers)
        handle.setopt(pycurl.WRITEFUNCTION, write)
        if body is not None:
            handle.setopt(pycurl.POSTFIELDS, body)
        else:
            handle.setopt(pycurl.HTTPGET, 1)
        if method in ("GET", "POST"):
            handle.unsetopt(pycurl.CUSTOMREQUEST)
        else:
            handle.setopt(pycurl.CUSTOMREQUEST, method)
        try:
            handle.perform()
        except pycurl.error as exc:
            code, message = exc.args[0], exc.args[1] if len(exc.args) > 1 else ""
            reason = f"curl error {code}: {message}"  # says what failed, never what was sent
            if code in _NOT_CONNECTED or (
                code == pycurl.E_OPERATION_TIMEDOUT and not handle.getinfo(pycurl.CONNECT_TIME)
            ):
                raise _NotConnected(reason) from None
            raise Unreachable(reason) from None
        return int(handle.getinfo(pycurl.RESPONSE_CODE)), b"".join(chunks)

    def _handle(self) -> pycurl.Curl:
        """This thread's handle, made on first use (and again in a forked child)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            handle = pycurl.Curl()
            handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without signals: safe in threads
            handle.setopt(pycurl.CONNECTTIMEOUT_MS, self.connect_ms)
            handle.setopt(pycurl.TIMEOUT_MS, self.total_ms)
            handle.setopt(pycurl.PROXY, self.proxy or "")  # "": none, whatever the environment
            handle.setopt(pycurl.CAINFO, certifi.where())
            handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
            handle.setopt(pycurl.FOLLOWLOCATION, 0)
            handle.setopt(pycurl.USERAGENT, "partner-subscription-checkout")
            local.handle, local.pid = handle, os.getpid()
        return local.handle


class _NotConnected(Unreachable):
    """The call never reached the upstream: safe to try again."""


def _json(answer: bytes) -> Any:
    try:
        return fastjson.loads(answer) if answer else None
    except fastjson.JSONDecodeError:
        return None


def _proxy_for(url: str) -> str | None:
    """The proxy the standard environment variables name for `url`, if any."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxies.get(parts.scheme)
