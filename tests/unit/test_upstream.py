"""The upstream HTTP client's proxy choice, worked out once from the standard variables."""

from __future__ import annotations

import pytest
import urllib3

from app.upstream import Upstream, _proxy_for

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_without_proxy_variables_calls_go_direct() -> None:
    assert _proxy_for("https://backend.partner.example/v1") is None
    upstream = Upstream("https://backend.partner.example/v1", connect_timeout=1, read_timeout=1)
    assert isinstance(upstream.pool, urllib3.HTTPSConnectionPool)
    assert (upstream.pool.host, upstream.pool.port) == ("backend.partner.example", 443)
    assert upstream.prefix == "/v1"


def test_the_proxy_named_for_the_scheme_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert _proxy_for("https://backend.partner.example/v1") == "http://proxy.internal:3128"
    assert _proxy_for("http://backend.partner.example/v1") is None
    upstream = Upstream("https://backend.partner.example/v1", connect_timeout=1, read_timeout=1)
    assert isinstance(upstream.pool, urllib3.ProxyManager)
    assert upstream.prefix == "https://backend.partner.example/v1"


def test_no_proxy_hosts_go_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "partner.example,localhost")
    assert _proxy_for("https://backend.partner.example/v1") is None
