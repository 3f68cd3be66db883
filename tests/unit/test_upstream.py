"""The upstream HTTP client: proxy choice, retries, timeouts and limits, against a tiny
local server whose answers each test scripts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.upstream import MAX_ANSWER_BYTES, Retries, Unreachable, Upstream, _proxy_for

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_without_proxy_variables_calls_go_direct() -> None:
    assert _proxy_for("https://backend.partner.example/v1") is None
    upstream = Upstream("https://backend.partner.example/v1", connect_timeout=1, read_timeout=1)
    assert upstream.proxy is None


def test_the_proxy_named_for_the_scheme_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert _proxy_for("https://backend.partner.example/v1") == "http://proxy.internal:3128"
    assert _proxy_for("http://backend.partner.example/v1") is None
    upstream = Upstream("https://backend.partner.example/v1", connect_timeout=1, read_timeout=1)
    assert upstream.proxy == "http://proxy.internal:3128"


def test_no_proxy_hosts_go_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "partner.example,localhost")
    assert _proxy_for("https://backend.partner.example/v1") is None


OK = b'{"ok": true}'


class Script:
    """What the local server answers, in order, and what it saw."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, bytes, float]] = []
        self.seen: list[tuple[str, str, bytes]] = []
        # (an answer with a negative status closes the connection without answering)
        self.connections: set[tuple[str, int]] = set()

    def answer(self, status: int, body: bytes = OK, delay: float = 0.0) -> None:
        self.answers.append((status, body, delay))


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            script.seen.append((self.command, self.path, self.rfile.read(length)))
            script.connections.add(self.client_address)
            status, body, delay = script.answers.pop(0) if script.answers else (200, OK, 0)
            if status < 0:  # answer nothing: close the connection
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve  # noqa: N815 - http.server's names

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/api", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def _upstream(url: str, retries: int = 2, read_timeout: float = 1.0) -> Upstream:
    return Upstream(
        url,
        connect_timeout=0.5,
        read_timeout=read_timeout,
        headers={"Authorization": "Bearer t"},
        retries=Retries(count=retries, backoff_seconds=0.01),
    )


def test_answers_json_sends_the_body_and_keeps_the_connection(server) -> None:
    url, script = server
    upstream = _upstream(url)
    for n in range(3):
        assert upstream.request("POST", "/quotes", json={"n": n}) == (200, {"ok": True})
    assert [seen[:2] for seen in script.seen] == [("POST", "/api/quotes")] * 3
    assert script.seen[2][2] == b'{"n":2}'
    assert len(script.connections) == 1


def test_a_gateway_error_on_a_read_is_tried_again(server) -> None:
    url, script = server
    script.answer(503)
    script.answer(502)
    assert _upstream(url).request("GET", "/subscriptions/S") == (200, {"ok": True})
    assert len(script.seen) == 3


def test_a_change_is_never_sent_twice(server) -> None:
    url, script = server
    script.answer(503, b'{"error": "busy"}')
    assert _upstream(url).request("POST", "/orders", json={}) == (503, {"error": "busy"})
    assert len(script.seen) == 1


def test_retries_stop_at_the_configured_count(server) -> None:
    url, script = server
    for _ in range(5):
        script.answer(503)
    status, _ = _upstream(url, retries=2).request("GET", "/subscriptions/S")
    assert status == 503 and len(script.seen) == 3


def test_a_slow_answer_is_unreachable_and_not_repeated(server) -> None:
    url, script = server
    script.answer(200, delay=2.0)
    started = time.monotonic()
    with pytest.raises(Unreachable):
        _upstream(url, read_timeout=0.2).request("GET", "/subscriptions/S")
    assert time.monotonic() - started < 1.5  # the connect + read budget, not the server's delay
    assert len(script.seen) == 1


def test_an_oversized_answer_is_unreachable(server) -> None:
    url, script = server
    script.answer(200, b"x" * (MAX_ANSWER_BYTES + 1))
    with pytest.raises(Unreachable):
        _upstream(url).request("GET", "/subscriptions/S")


def test_a_body_that_is_not_json_reads_as_none(server) -> None:
    url, script = server
    script.answer(502, b"<html>bad gateway</html>")
    assert _upstream(url, retries=0).request("GET", "/x") == (502, None)


def test_nobody_listening_is_unreachable() -> None:
    upstream = _upstream("http://127.0.0.1:9/api", retries=1)
    with pytest.raises(Unreachable):
        upstream.request("GET", "/subscriptions/S")


def test_a_reused_connection_that_dies_unanswered_is_sent_again_once(server) -> None:
    """libcurl's own resend, which the module's notes rely on: the same request again."""
    url, script = server
    upstream = _upstream(url, retries=0)
    assert upstream.request("GET", "/warm")[0] == 200  # leaves a kept-alive connection
    script.answer(-1)  # the next request is read, then the connection closes unanswered
    status, _ = upstream.request("POST", "/orders", json={"n": 1}, headers={"Idempotency-Key": "k"})
    assert status == 200
    assert [seen[1:] for seen in script.seen[1:]] == [("/api/orders", b'{"n":1}')] * 2
    assert len(script.connections) == 2
