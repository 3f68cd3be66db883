"""Hostile links and headers against the pages: inert or refused, never a 500 or a redirect away."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest
import requests

from sandbox.stack import Service
from tests.integration.test_hardening import HOSTILE


@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
def test_a_crafted_marketing_link_comes_back_inert(app_server: Service, sandbox, payload):
    http = requests.Session()
    query = {"subscription": payload, "offer": payload, "utm_source": payload, "ref": payload}
    header = payload.replace("\r", "").replace("\n", "").replace("\x00", "")
    header = header.encode("utf-8").decode("latin-1")
    for path in (
        f"/start?{urlencode(query)}",
        f"/start?{urlencode({**query, 'subscription': 'SUB-1001'})}",
        f"/signin?{urlencode({'next': payload})}",
        f"/{payload[:100]}",
    ):
        response = http.get(
            app_server.url + path,
            headers={
                "Referer": header,
                "X-Request-ID": header,
                "Cookie": f"checkout_session={header}; landing_state={header}",
            },
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code < 500, (path, response.status_code)
        assert "<script>" not in response.text and "<img" not in response.text
        assert "evil" not in response.headers.get("Set-Cookie", "")
        location = response.headers.get("Location", "")
        host = urlsplit(location).hostname
        assert host in (None, "127.0.0.1", "localhost"), location
        assert "script-src" in response.headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
