"""The sandbox's HTTP server: the two routes of the LMS API over real loopback HTTP.

``GET /incoming/v2/ping`` and ``POST /incoming/v2/learningPathExternalActivity``, as the
vendor documents them: bearer auth, the rate limit with its headers, the feature flag, the
endpoint's validation (:func:`recon.validation.validate_activity`), the injected faults
of :class:`~recon.sandbox.settings.SandboxSettings`, and every request recorded in the
:class:`~recon.sandbox.store.Store` before its answer goes out.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..client import ACTIVITY_PATH, CONTENT_PATH, PING_PATH, USERS_PATH
from ..validation import MSG_FEATURE_OFF, validate_activity
from .directory import content_page, users_page
from .settings import Plan, SandboxSettings, TokenBucket
from .store import Store, now_wire

MSG_BAD_JSON = "request body is not valid JSON"
MSG_NOT_OBJECT = "request body must be a JSON object"
MSG_TOO_LARGE = "request body is too large"

# Far above any activity body; a bigger one is refused without being read.
_MAX_BODY = 1 << 20
# An idle keep-alive connection is closed after this, so handler threads do not pile up.
_IDLE_TIMEOUT_S = 60

log = logging.getLogger(__name__)


class _Dropped(Exception):
    """Raised inside a handler to close the connection without answering."""


class _TooLarge(Exception):
    """A body the sandbox will not read (too large, chunked or a bad Content-Length)."""


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        key: str,
        settings: SandboxSettings,
        store: Store,
    ) -> None:
        self.key = key.encode("utf-8")
        self.practice = True
        self.settings = settings
        self.store = store
        # What GET /incoming/v2/users and /content list (recon.sandbox.directory).
        self.learners: list[dict[str, Any]] = []
        self.paths: list[dict[str, Any]] = []
        self.bucket = TokenBucket()
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (a DNS lookup that can hang);
        # the sandbox has no use for it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._clients_lock:
            self._clients.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._clients_lock:
            self._clients.discard(request)
        super().shutdown_request(request)

    def close_clients(self) -> None:
        """End every open connection, so idle keep-alive ones stop being served."""
        with self._clients_lock:
            clients = list(self._clients)
        for sock in clients:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a timeout, a test closing its session) is not an error.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        log.exception("sandbox: error while answering a request")


class _Handler(BaseHTTPRequestHandler):
    """One connection; with HTTP/1.1 keep-alive, many requests in turn."""

    protocol_version = "HTTP/1.1"
    server_version = "recon-sandbox"
    sys_version = ""
    timeout = _IDLE_TIMEOUT_S
    # Headers and body go out in two writes; with Nagle on, the second waits for the
    # client's delayed ACK (~40 ms a request).
    disable_nagle_algorithm = True
    server: Server

    # Unknown methods get 404 like unknown paths: the route table decides.
    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes to stderr; the request line has no header, so no key.
        log.debug("%s %s", self.address_string(), format % args)

    # -- one request

    def _handle(self) -> None:
        received_at = now_wire()
        parts = urlsplit(self.path)
        path = parts.path
        self._query_params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        text: str | None = None
        try:
            raw = self._read_body()
            text = raw.decode("utf-8", errors="replace") if raw else None
            self._route(received_at, path, raw, text)
        except _Dropped:
            # No status line, no headers: the client sees the connection close.
            self.close_connection = True
        except _TooLarge:
            self.close_connection = True
            self._answer(received_at, path, None, 413, {"errors": [MSG_TOO_LARGE]})

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _TooLarge  # not supported; refused and the connection closed
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _TooLarge from None
        if length < 0 or length > _MAX_BODY:
            raise _TooLarge
        return self.rfile.read(length) if length else b""

    def _route(self, received_at: str, path: str, raw: bytes, text: str | None) -> None:
        plan = self.server.settings._plan()
        if plan.latency_s:
            time.sleep(plan.latency_s)  # no lock held: concurrent requests overlap
        route = (self.command, path)
        lists = (("GET", USERS_PATH), ("GET", CONTENT_PATH))
        if route not in (("GET", PING_PATH), ("POST", ACTIVITY_PATH), *lists):
            self._answer(received_at, path, text, 404, {"errors": ["not found"]})
            return
        if not self._authorized():
            self._answer(received_at, path, text, 401, None)
            return
        verdict = self.server.bucket.take(plan.rate, plan.burst)
        limit_headers = verdict.headers
        if not verdict.allowed:
            self._answer(
                received_at,
                path,
                text,
                429,
                {"error": "rate_limit_exceeded", "retryAfter": verdict.retry_after},
                headers={**limit_headers, "Retry-After": str(verdict.retry_after)},
                errors=["rate_limit_exceeded"],
            )
            return
        if route == ("GET", PING_PATH):
            # The practice mark: what recon's sandbox accepts never counts for a real LMS.
            answer = {"valid": True, "practice": True} if self.server.practice else {"valid": True}
            self._answer(received_at, path, text, 200, answer, headers=limit_headers)
            return
        if route in lists:
            shape = self.server.settings.page_shape
            if route[1] == USERS_PATH:
                status, body = users_page(self.server.learners, self._query_params, shape)
            else:
                status, body = content_page(self.server.paths, self._query_params, shape)
            self._answer(received_at, path, text, status, body, headers=limit_headers)
            return
        self._activity(received_at, path, raw, text, plan, limit_headers)

    def _activity(
        self,
        received_at: str,
        path: str,
        raw: bytes,
        text: str | None,
        plan: Plan,
        headers: dict[str, str],
    ) -> None:
        store = self.server.store
        plan = self.server.settings._roll(plan)

        def drop(fault: str, activity: dict[str, Any] | None = None) -> None:
            # Recorded without a status: the client never gets an answer.
            store.record(
                received_at=received_at,
                method="POST",
                path=path,
                status=None,
                body=text,
                fault=fault,
                activity=activity,
            )
            raise _Dropped

        if plan.drop:
            drop("drop")
        if plan.fail:
            body = {"errors": ["service temporarily unavailable"]}
            self._answer(received_at, path, text, 503, body, headers=headers, fault="fail")
            return
        fault = None
        if plan.stall_s:
            time.sleep(plan.stall_s)
            fault = "stall"
        if not plan.feature_on:
            self._reject(received_at, path, text, [MSG_FEATURE_OFF], headers, fault)
            return
        try:
            activity = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self._reject(received_at, path, text, [MSG_BAD_JSON], headers, fault)
            return
        if not isinstance(activity, dict):
            self._reject(received_at, path, text, [MSG_NOT_OBJECT], headers, fault)
            return
        errors = validate_activity(activity)
        if errors:
            self._reject(received_at, path, text, errors, headers, fault)
            return
        if plan.drop_after_accept:
            drop("drop-after-accept", activity)
        self._answer(
            received_at, path, text, 200, None, headers=headers, fault=fault, activity=activity
        )

    def _reject(
        self,
        received_at: str,
        path: str,
        text: str | None,
        errors: list[str],
        headers: dict[str, str],
        fault: str | None,
    ) -> None:
        self._answer(received_at, path, text, 400, {"errors": errors}, headers=headers, fault=fault)

    def _authorized(self) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode("utf-8"), self.server.key)

    def _answer(
        self,
        received_at: str,
        path: str,
        text: str | None,
        status: int,
        payload: Mapping[str, Any] | None,
        *,
        headers: Mapping[str, str] | None = None,
        errors: list[str] | None = None,
        fault: str | None = None,
        activity: Mapping[str, Any] | None = None,
    ) -> None:
        """Record the request (and activity), then send the answer with Content-Length."""
        if errors is None and payload is not None and isinstance(payload.get("errors"), list):
            errors = payload["errors"]
        # Recorded before the answer goes out: a client that saw it finds it stored.
        self.server.store.record(
            received_at=received_at,
            method=self.command,
            path=path,
            status=status,
            body=text,
            errors=errors,
            fault=fault,
            activity=activity,
        )
        data = json.dumps(payload).encode("utf-8") if payload is not None else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if data:
            self.wfile.write(data)
