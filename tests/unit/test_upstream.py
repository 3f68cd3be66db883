"""The upstream HTTP client: bodies, retries, timeouts, limits, proxies and cookies, against
tiny local servers whose answers each test scripts."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3.util.retry

from app.adapters.upstream import MAX_ANSWER_BYTES, Unreachable, Upstream

pytestmark = pytest.mark.unit

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


OK = b'{"ok": true}'
DROP = -1  # read the request, then close the connection without answering
GARBAGE = -2  # answer something that is not HTTP


class Seen:
    def __init__(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        self.method = handler.command
        self.path = handler.path
        self.headers = handler.headers
        self.body = body


class Script:
    """What a local server answers, in order, and what it saw."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, bytes, dict[str, str], float, bool]] = []
        self.seen: list[Seen] = []
        self.connections: set[tuple[str, int]] = set()
        self.release = threading.Event()  # ends every delay, at teardown

    def answer(
        self,
        status: int,
        body: bytes = OK,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        length: bool = True,
    ) -> None:
        self.answers.append((status, body, headers or {}, delay, length))


def _serve(script: Script, port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            script.seen.append(Seen(self, self.rfile.read(length)))
            script.connections.add(self.client_address)
            status, body, headers, delay, with_length = (
                script.answers.pop(0) if script.answers else (200, OK, {}, 0.0, True)
            )
            self.close_connection = status < 0 or not with_length
            try:
                if status == DROP:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if status == GARBAGE:
                    self.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
                    return
                script.release.wait(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                if with_length:
                    self.send_header("Content-Length", str(len(body)))
                else:
                    self.send_header("Connection", "close")  # the body ends with it
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client went away (timed out, or stopped reading)

        do_GET = do_POST = _serve  # noqa: N815 - http.server's names

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


@pytest.fixture
def servers() -> Iterator[Callable[[Script], str]]:
    """Starts servers on loopback: each gives its base URL, and all stop at the end."""
    started: list[tuple[ThreadingHTTPServer, Script]] = []

    def start(script: Script) -> str:
        httpd = _serve(script)
        started.append((httpd, script))
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd, script in started:
        script.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server(servers: Callable[[Script], str]) -> tuple[str, Script]:
    script = Script()
    return servers(script) + "/api", script


@pytest.fixture
def upstreams() -> Iterator[Callable[..., Upstream]]:
    """Makes `Upstream`s with short timeouts, and closes them all at the end."""
    made: list[Upstream] = []

    def make(url: str, retries: int = 2, read_timeout: float = 1.0) -> Upstream:
        upstream = Upstream(
            url,
            connect_timeout=0.5,
            read_timeout=read_timeout,
            headers={"Authorization": "Bearer t"},
            retries=retries,
        )
        made.append(upstream)
        return upstream

    yield make
    for upstream in made:
        upstream.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_json_is_sent_and_answered_on_one_kept_alive_connection(server, upstreams) -> None:
    url, script = server
    upstream = upstreams(url)
    for n in range(3):
        assert upstream.request("POST", "/quotes", json={"n": n}) == (200, {"ok": True})
    assert [(seen.method, seen.path) for seen in script.seen] == [("POST", "/api/quotes")] * 3
    assert json.loads(script.seen[2].body) == {"n": 2}
    assert script.seen[2].headers["Content-Type"] == "application/json"
    assert len(script.connections) == 1


def test_a_form_is_sent_form_encoded(server, upstreams) -> None:
    url, script = server
    upstreams(url).request("POST", form={"secret": "s&t", "response": "r"})
    assert script.seen[0].path == "/api"
    assert script.seen[0].body == b"secret=s%26t&response=r"
    assert script.seen[0].headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_the_upstream_and_call_headers_are_sent(server, upstreams) -> None:
    url, script = server
    upstreams(url).request("POST", "/orders", json={}, headers={"Idempotency-Key": "k"})
    headers = script.seen[0].headers
    assert headers["Authorization"] == "Bearer t"
    assert headers["Idempotency-Key"] == "k"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "partner-subscription-checkout"


def test_a_gateway_error_on_a_get_is_tried_again(server, upstreams) -> None:
    url, script = server
    script.answer(503)
    script.answer(502)
    assert upstreams(url).request("GET", "/subscriptions/S") == (200, {"ok": True})
    assert len(script.seen) == 3


def test_retries_stop_at_the_configured_count_with_the_last_answer(server, upstreams) -> None:
    url, script = server
    for n in range(5):
        script.answer(504 if n < 2 else 503, b'{"n": %d}' % n)
    assert upstreams(url, retries=2).request("GET", "/subscriptions/S") == (503, {"n": 2})
    assert len(script.seen) == 3


def test_retry_after_is_not_waited_for(server, upstreams) -> None:
    url, script = server
    script.answer(503, headers={"Retry-After": "3"})
    started = time.monotonic()
    assert upstreams(url, retries=1).request("GET", "/subscriptions/S")[0] == 200
    assert time.monotonic() - started < 1.0


def test_a_gateway_error_on_a_post_is_answered_at_once(server, upstreams) -> None:
    url, script = server
    script.answer(503, b'{"error": "busy"}')
    assert upstreams(url).request("POST", "/orders", json={}) == (503, {"error": "busy"})
    assert len(script.seen) == 1


def test_a_slow_answer_is_unreachable_and_not_repeated(server, upstreams) -> None:
    url, script = server
    script.answer(200, delay=2.0)
    started = time.monotonic()
    with pytest.raises(Unreachable, match="ReadTimeout"):
        upstreams(url, read_timeout=0.2).request("GET", "/subscriptions/S")
    assert time.monotonic() - started < 1.0  # the read timeout, not the server's delay
    assert len(script.seen) == 1


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_reused_connection_that_dies_unanswered_is_not_sent_again(
    server, upstreams, method: str
) -> None:
    url, script = server
    upstream = upstreams(url)
    assert upstream.request("GET", "/warm")[0] == 200  # leaves a kept-alive connection
    script.answer(DROP)  # the next request is read, then the connection closes unanswered
    with pytest.raises(Unreachable, match="RemoteDisconnected"):
        upstream.request(method, "/orders", json={"n": 1}, headers={"Idempotency-Key": "k"})
    assert [(seen.method, seen.path) for seen in script.seen] == [
        ("GET", "/api/warm"),
        (method, "/api/orders"),
    ]
    assert len(script.connections) == 1  # and not on a new connection either


def test_nobody_listening_is_unreachable(upstreams) -> None:
    upstream = upstreams(f"http://127.0.0.1:{_free_port()}/api", retries=1)
    with pytest.raises(Unreachable, match="ConnectionRefusedError"):
        upstream.request("GET", "/subscriptions/S")


def test_a_post_that_could_not_connect_is_tried_again(
    monkeypatch: pytest.MonkeyPatch, upstreams
) -> None:
    """Refused twice (the first retry is at once); the server starts during the backoff
    before the second retry, which it answers."""
    port = _free_port()
    script = Script()
    pauses: list[float] = []

    def start_listening(seconds: float) -> None:  # urllib3's backoff, before a retry
        pauses.append(seconds)
        if len(pauses) == 1:
            httpd = _serve(script, port)  # listening once this returns
            started.append(httpd)

    started: list[ThreadingHTTPServer] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", start_listening)
    try:
        upstream = upstreams(f"http://127.0.0.1:{port}/api", retries=2)
        assert upstream.request("POST", "/orders", json={"n": 1}) == (200, {"ok": True})
    finally:
        for httpd in started:
            httpd.shutdown()
            httpd.server_close()
    assert pauses == [0.2]
    assert [(seen.method, seen.path, seen.body) for seen in script.seen] == [
        ("POST", "/api/orders", b'{"n":1}')
    ]


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_an_oversized_answer_is_unreachable(server, upstreams, length: bool) -> None:
    url, script = server
    script.answer(200, b"[" + b"0," * (MAX_ANSWER_BYTES // 2) + b"0]", length=length)
    upstream = upstreams(url)
    with pytest.raises(Unreachable, match="larger than"):
        upstream.request("GET", "/subscriptions/S")
    assert upstream.request("GET", "/subscriptions/S") == (200, {"ok": True})  # still usable


def test_an_answer_at_the_limit_is_read(server, upstreams) -> None:
    url, script = server
    body = b'"' + b"x" * (MAX_ANSWER_BYTES - 2) + b'"'
    script.answer(200, body, length=False)
    status, answer = upstreams(url).request("GET", "/subscriptions/S")
    assert status == 200 and len(answer) == MAX_ANSWER_BYTES - 2


def test_a_body_that_is_not_json_reads_as_none(server, upstreams) -> None:
    url, script = server
    script.answer(502, b"<html>bad gateway</html>")
    assert upstreams(url, retries=0).request("GET", "/x") == (502, None)


def test_an_answer_that_is_not_http_is_unreachable(server, upstreams) -> None:
    url, script = server
    script.answer(GARBAGE)
    with pytest.raises(Unreachable):
        upstreams(url).request("GET", "/x")
    assert len(script.seen) == 1


def _set_proxy_variables(monkeypatch: pytest.MonkeyPatch, proxy: str, no_proxy: str | None) -> None:
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        if no_proxy is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, no_proxy)


def test_calls_go_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, servers, upstreams
) -> None:
    target, proxy = Script(), Script()
    target_url, proxy_url = servers(target), servers(proxy)
    proxy.answer(200, b'{"via": "proxy"}')
    _set_proxy_variables(monkeypatch, proxy_url, None)
    assert upstreams(target_url + "/api").request("GET", "/x") == (200, {"via": "proxy"})
    assert [seen.path for seen in proxy.seen] == [target_url + "/api/x"]  # the absolute URL
    assert proxy.seen[0].headers["Authorization"] == "Bearer t"
    assert target.seen == []


def test_no_proxy_cidr_entries_go_direct(
    monkeypatch: pytest.MonkeyPatch, servers, upstreams
) -> None:
    target, proxy = Script(), Script()
    target_url, proxy_url = servers(target), servers(proxy)
    _set_proxy_variables(monkeypatch, proxy_url, "10.0.0.0/8,127.0.0.0/8")
    assert upstreams(target_url + "/api").request("GET", "/x") == (200, {"ok": True})
    assert [seen.path for seen in target.seen] == ["/api/x"]
    assert proxy.seen == []


def test_cookies_an_upstream_sets_are_not_sent_back(server, upstreams) -> None:
    url, script = server
    script.answer(200, headers={"Set-Cookie": "sid=customer-a; Path=/"})
    upstream = upstreams(url)
    upstream.request("GET", "/subscriptions/A")
    upstream.request("GET", "/subscriptions/B")
    assert [seen.headers.get("Cookie") for seen in script.seen] == [None, None]
