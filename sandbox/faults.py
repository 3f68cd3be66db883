"""Injected failures, so the checkout's handling of a misbehaving partner can be tested.

Faults sit in front of the Flask app as WSGI middleware: ``drop`` and ``lose_answer``
must reach below Flask to close the connection without writing any HTTP answer.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.http import HTTP_STATUS_CODES

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MODES = ("slow", "error", "malformed", "wrong_type", "drop", "lose_answer")
#: the control endpoints are never faulted, so a test can always clear what it set
CONTROL_PREFIX = "/_sandbox/"


@dataclass
class Fault:
    mode: str
    path: str = "/backend/"
    #: how many more matching requests it applies to; 0 means until cleared
    remaining: int = 1
    delay_seconds: float = 3.0
    #: what mode ``error`` answers, so a test can choose e.g. 503 over the default 500
    status: int = 500

    @classmethod
    def parse(cls, body: Any) -> Fault:
        """Validate a ``POST /_sandbox/faults`` body; raises ValueError with the reason."""
        if not isinstance(body, dict) or body.get("mode") not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        count = body.get("count", 1)
        delay = body.get("delaySeconds", 3.0)
        path = body.get("path", "/backend/")
        status = body.get("status", 500)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError("count must be an integer >= 0")
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise ValueError("delaySeconds must be a number >= 0")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("path must be a path prefix starting with /")
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise ValueError("status must be an integer from 400 to 599")
        if "status" in body and body["mode"] != "error":
            raise ValueError("status applies to mode error only")
        return cls(body["mode"], path, count, float(delay), status)

    def to_json(self) -> dict[str, Any]:
        fault: dict[str, Any] = {
            "mode": self.mode,
            "path": self.path,
            "count": self.remaining,
            "delaySeconds": self.delay_seconds,
        }
        if self.mode == "error":
            fault["status"] = self.status
        return fault


class FaultQueue:
    """Faults in the order they were set; each matching request consumes one."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def take(self, path: str) -> Fault | None:
        """The first fault that applies to ``path``, used up by this request."""
        if path.startswith(CONTROL_PREFIX):
            return None
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path):
                    if fault.remaining == 1:
                        self._faults.remove(fault)
                    elif fault.remaining > 1:
                        fault.remaining -= 1
                    return fault
        return None


class ConnectionDropped(ConnectionAbortedError):
    """Raised after closing the socket; the server sees a client that went away."""


def drop_connection(environ: WSGIEnvironment) -> None:
    """Close the connection without an HTTP answer, so the client sees a connection error."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone: just as good
    raise ConnectionDropped("sandbox fault: connection dropped")


GARBAGE = b'<html><body><h1>502 Bad Gateway</h1><p>upstream said: \x00?{"trunc'
WRONG_SHAPES: dict[str, Any] = {"GET": {"id": 42, "plan": "x"}, "POST": ["not", "an", "object"]}


class FaultMiddleware:
    """Applies the next matching fault, after telling ``on_request`` a request arrived."""

    def __init__(
        self,
        app: WSGIApplication,
        faults: FaultQueue,
        on_request: Callable[[str, str], None],
    ) -> None:
        self.app = app
        self.faults = faults
        self.on_request = on_request

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        self.on_request(method, path)
        fault = self.faults.take(path)
        if fault is None:
            return self.app(environ, start_response)
        if fault.mode == "slow":
            time.sleep(fault.delay_seconds)
            return self.app(environ, start_response)
        if fault.mode == "error":
            body = {"error": "internal_error", "message": "Injected fault: server error."}
            reason = HTTP_STATUS_CODES.get(fault.status, "Error").upper()
            return _answer(start_response, f"{fault.status} {reason}", body)
        if fault.mode == "malformed":
            headers = [("Content-Type", "text/html"), ("Content-Length", str(len(GARBAGE)))]
            start_response("200 OK", headers)
            return [GARBAGE]
        if fault.mode == "wrong_type":
            return _answer(start_response, "200 OK", WRONG_SHAPES.get(method, ["?"]))
        if fault.mode == "lose_answer":
            self._process_and_discard(environ)
        drop_connection(environ)
        return []  # not reached: drop_connection always raises

    def _process_and_discard(self, environ: WSGIEnvironment) -> None:
        """Run the request to completion (so an order is recorded) and throw the answer away."""
        result = self.app(environ, lambda status, headers, exc_info=None: lambda data: None)
        try:
            for _ in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


def _answer(start_response: StartResponse, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
