"""HTTP to the upstreams (the subscription backend, reCAPTCHA), on urllib3's pool directly.

`requests` runs on urllib3 too; on top it looks up proxy variables in the environment,
merges cookie jars, settings and hooks on every call, which cost about as much CPU as
the call itself (a `PUT` makes two). Here the proxy is worked out once, at start, from
the same standard variables (HTTP(S)_PROXY, NO_PROXY), and each call is one
`urlopen` on a kept-alive connection. Each upstream is one host, so without a proxy
its connection pool is made once and called directly, not found again on every call by
parsing the URL.
"""

from __future__ import annotations

import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.util.retry import Retry

from . import fastjson

# Anything urllib3 raises for a call that did not get an answer: refused, reset, timed out,
# retries exhausted, a malformed status line.
Unreachable = urllib3.exceptions.HTTPError


class Upstream:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        headers: dict[str, str] | None = None,
        retries: Retry | None = None,
        maxsize: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.retries = retries or Retry(total=0, raise_on_status=False)
        self.headers = {"Accept": "application/json", **(headers or {})}
        proxy = _proxy_for(self.base_url)
        self.pool: urllib3.ProxyManager | urllib3.HTTPConnectionPool
        if proxy:
            self.pool = urllib3.ProxyManager(proxy, maxsize=maxsize)
            self.prefix = self.base_url  # a proxy is told the whole URL
        else:
            self.pool = urllib3.connection_from_url(self.base_url, maxsize=maxsize)
            self.prefix = urlsplit(self.base_url).path

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
        sent = {**self.headers, **(headers or {})}
        body: bytes | None = None
        if json is not None:
            body = fastjson.dumps(json)
            sent["Content-Type"] = "application/json"
        elif form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        response = self.pool.urlopen(
            method,
            self.prefix + path,
            body=body,
            headers=sent,
            timeout=self.timeout,
            retries=self.retries,
            redirect=False,
        )
        try:
            data = fastjson.loads(response.data) if response.data else None
        except fastjson.JSONDecodeError:
            data = None
        return response.status, data


def _proxy_for(url: str) -> str | None:
    """The proxy the standard environment variables name for `url`, if any."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxies.get(parts.scheme)
