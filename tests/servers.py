"""Small real servers on 127.0.0.1 for answers the sandbox never gives: a scripted API
(any status, headers, raw body, delay), a server that trickles its answer, a recording
proxy, and a self-signed certificate for a loopback https server."""

from __future__ import annotations

import json
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# script(n, request headers) -> (status, headers, body): the n-th POST's answer.
Script = Callable[[int, dict[str, str]], tuple[int, dict[str, str], bytes]]


class Scripted:
    """A loopback HTTP(S) server answering the n-th POST with ``script(n, headers)``.

    ``delay``: seconds to wait before answering (may be changed while it runs).
    ``answered`` counts the answers fully written; ``received`` the requests read;
    ``bodies`` and ``times`` (time.monotonic) are each request's body and arrival, in
    order of arrival. ``tls``: an ``ssl.SSLContext`` for https.
    ``ping``: when given, ``GET /incoming/v2/ping`` answers it as JSON (as the LMS does
    before every submit) and is counted in ``pings``, not ``received``; otherwise a GET
    is scripted like a POST.
    """

    def __init__(
        self,
        script: Script,
        *,
        delay: float = 0.0,
        tls: ssl.SSLContext | None = None,
        ping: dict[str, object] | None = None,
    ) -> None:
        self.script = script
        self.ping = ping
        self.pings = 0
        self.delay = delay
        self.received = 0
        self.answered = 0
        self.bodies: list[bytes] = []
        self.paths: list[str] = []  # each request's path and query, in order of arrival
        self.times: list[float] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                sent = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.received += 1
                    outer.bodies.append(sent)
                    outer.paths.append(self.path)
                    outer.times.append(time.monotonic())
                    n = outer.received
                if outer.delay:
                    time.sleep(outer.delay)
                status, headers, body = outer.script(n, dict(self.headers))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                with outer.lock:
                    outer.answered += 1

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if outer.ping is not None and self.path.endswith("/incoming/v2/ping"):
                    body = json.dumps(outer.ping).encode()
                    with outer.lock:
                        outer.pings += 1
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.do_POST()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.port = self._server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> Scripted:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class Trickle:
    """A loopback server that reads a request, then sends its answer one byte every
    ``every`` seconds, forever: in the status line and headers (``phase="headers"``) or
    after complete headers promising a long body (``phase="body"``). With ``ping`` the
    ping before a submit is answered at once, as the LMS does."""

    def __init__(self, phase: str, every: float = 0.05, *, ping: bool = False) -> None:
        self.phase = phase
        self.ping = ping
        self.every = every
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                request = conn.recv(65536)
                if self.ping and request.startswith(b"GET ") and b"/ping" in request:
                    # The ping before a submit answers at once, as the LMS does: the
                    # trickle is for the records.
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b'Content-Length: 15\r\nConnection: close\r\n\r\n{"valid": true}'
                    )
                    return
                head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                if self.phase == "body":
                    conn.sendall(head)
                    payload = b"x" * 100000
                else:
                    payload = head.replace(b"\r\n\r\n", b"\r\nX-Slow: " + b"y" * 100000)
                for i in range(len(payload)):
                    if self._stop.wait(self.every):
                        return
                    conn.sendall(payload[i : i + 1])
            except OSError:
                return

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.1)
                if not ready:
                    continue
                conn, _ = self._sock.accept()
            except (OSError, ValueError):
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def __enter__(self) -> Trickle:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that records every request line and header block it
    gets. A plain request is answered ``200`` with an empty body (what a careless client
    would count as accepted); ``CONNECT host:port`` is tunnelled to 127.0.0.1:port, so a
    made-up host name works without DNS."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                self.seen.append(data)
                if not data.startswith(b"CONNECT "):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    return
                port = int(data.split(b" ", 2)[1].rsplit(b":", 1)[1])
                upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                with upstream:
                    pair = [conn, upstream]
                    while not self._stop.is_set():
                        ready, _, _ = select.select(pair, [], [], 0.2)
                        for side in ready:
                            chunk = side.recv(65536)
                            if not chunk:
                                return
                            (upstream if side is conn else conn).sendall(chunk)
            except OSError:
                return

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.1)
                if not ready:
                    continue
                conn, _ = self._sock.accept()
            except (OSError, ValueError):
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def __enter__(self) -> RecordingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (an IP or a DNS name) and its key, made with
    the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    kind = "IP" if host.replace(".", "").isdigit() else "DNS"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName={kind}:{host}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


class OneShot:
    """A loopback server that reads each request, writes ``raw`` bytes exactly as given
    (a broken answer, say) and closes the connection."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.1)
                if not ready:
                    continue
                conn, _ = self._sock.accept()
            except (OSError, ValueError):
                return
            with conn:
                try:
                    conn.settimeout(5)
                    conn.recv(65536)
                    conn.sendall(self.raw)
                    conn.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def __enter__(self) -> OneShot:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
