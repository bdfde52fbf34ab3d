"""A local stand-in for the LMS API, for the demo, the notebooks and the tests.

It answers ``POST /incoming/v2/learningPathExternalActivity`` and
``GET /incoming/v2/ping`` exactly as the vendor documents them (see
``docs/api/learningPathExternalActivity.seed.txt`` and ``docs/api/lms-api-facts.md``):

- ``Authorization: Bearer <key>`` is required; anything else gets ``401`` with an empty
  body.
- With the ``externalActivity`` feature off: ``400 {"errors": ["externalActivity feature
  is not enabled"]}``.
- A body is checked by :func:`recon.validation.validate_activity`, the very function
  recon checks its proposals with, so the two can never disagree: ``400 {"errors": [...]}``
  with the documented messages, or ``200`` with an empty body and the activity stored.
- A token bucket (``rate`` requests/s, ``burst``) limits authenticated requests. Every
  authenticated answer carries ``X-RateLimit-Limit`` (the bucket's capacity, ``burst``),
  ``X-RateLimit-Remaining`` (whole requests left now) and ``X-RateLimit-Reset`` (Unix
  seconds, rounded up, when the bucket is full again). Over the limit: ``429`` with
  ``Retry-After`` (whole seconds until one request is allowed, at least 1) and
  ``{"error": "rate_limit_exceeded", "retryAfter": N}``.

It also lists the LMS's learners (``GET /incoming/v2/users``) and learning paths (``GET
/incoming/v2/content?types=learningPath``), seeded from a config's directory and mapping,
in either documented page shape (:mod:`.directory`), for ``recon lms pull``.

It is a *practice* target and says so: its ping answers ``{"valid": true, "practice":
true}``, so recon never counts what it accepted for a real LMS (see :mod:`recon.target`).

Faults can be switched on, at runtime and reproducibly (``seed``), so tests can prove a
client's retries: latency, ``503`` answers, connections dropped before or after the
activity is stored, and stalls long enough to trip a client's timeout. See
:class:`SandboxSettings`.

Everything received and accepted is stored in SQLite (WAL), and :func:`export_progress`
writes the LMS's progress view as the CSV ``recon reconcile`` reads, so a rerun shows the
gap closed.

The API key is never printed, logged or stored.

This package is the public face (:class:`Sandbox`, :func:`serve`, and the names below);
its parts, one concept each: :mod:`.settings` (settings, faults, the rate limit),
:mod:`.store` (the SQLite store and the LMS's progress view), :mod:`.seed` (a starting
state read and folded by the engine's own SQL) and :mod:`.server` (the HTTP routes). What
only tests read about a running sandbox (the requests it answered, what it accepted) is
in the tests' ``sandbox_inspect.py``: it reads the database file, as anyone may.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO

import pandas as pd

from ..client import ACTIVITY_PATH, PING_PATH
from ..errors import ReconError
from .directory import PAGE_SHAPES, from_config
from .seed import Seed, read_seed
from .server import Server
from .settings import SandboxSettings
from .store import (
    PROGRESS_COLUMNS,
    PROGRESS_SQL,
    Store,
    export_progress,
    in_shape,
    progress_frame,
    progress_rows,
    remove_database,
    seed_progress,
    wire_date,
)

if TYPE_CHECKING:
    from ..config import Config, ProgressSpec

__all__ = [
    "ACTIVITY_PATH",
    "DEFAULT_KEY",
    "PAGE_SHAPES",
    "PING_PATH",
    "PROGRESS_COLUMNS",
    "Sandbox",
    "SandboxSettings",
    "export_progress",
    "in_shape",
    "practice_sandbox_at",
    "progress_frame",
    "seed_progress",
    "serve",
    "wire_date",
]


DEFAULT_KEY = "sandbox-key"
"""The key a sandbox wants when none is given (the CLI prefers ``TI_API_KEY``)."""


# Practice sandboxes running in this process, by base URL: lets the widget and the demo say
# "practice" before any request (a ping still decides for submit).
_RUNNING: dict[str, Sandbox] = {}


def practice_sandbox_at(url: str) -> bool:
    """True when a practice sandbox of this process serves ``url`` (a target URL)."""
    from ..target import target_url

    return any(target_url(u) == url for u in list(_RUNNING))


# -------------------------------------------------------------------------- sandbox


class Sandbox:
    """A running stand-in for the LMS API, in a background thread of this process.

    ::

        with Sandbox(key="k", rate=5, burst=5, latency_ms=100) as sb:
            requests.get(sb.url + PING_PATH, headers={"Authorization": "Bearer k"})
            sb.settings.feature_on = False   # takes effect on the next request

    ``db``: the SQLite file to use (created if needed, kept after stop); ``None`` or
    ``":memory:"``: a temporary file removed on stop. ``port=0`` picks a free port.
    ``seed_progress``: an LMS progress export to start from (see :func:`seed_progress`).
    ``learners`` / ``paths``: what ``GET /incoming/v2/users`` and ``/content`` list
    (:mod:`.directory`; :meth:`seed_lists` fills them from a config), paged in the
    ``page_shape`` setting's shape.
    The remaining arguments are the initial :class:`SandboxSettings`.
    """

    def __init__(
        self,
        *,
        key: str = DEFAULT_KEY,
        db: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed_progress: Seed | None = None,
        rate: float = 2.0,
        burst: int = 20,
        latency_ms: float = 0.0,
        fail_rate: float = 0.0,
        fail_first: int = 0,
        drop_rate: float = 0.0,
        drop_after_accept_rate: float = 0.0,
        stall_ms: float = 0.0,
        stall_rate: float = 0.0,
        feature_on: bool = True,
        seed: int | None = None,
        page_shape: str = "pageInfo",
        learners: list[dict[str, Any]] | None = None,
        paths: list[dict[str, Any]] | None = None,
    ) -> None:
        if not key:
            raise ValueError("the sandbox needs a non-empty API key")
        self._key = key
        self.host = host
        self.port = port
        self.settings = SandboxSettings(
            rate=rate,
            burst=burst,
            latency_ms=latency_ms,
            fail_rate=fail_rate,
            fail_first=fail_first,
            drop_rate=drop_rate,
            drop_after_accept_rate=drop_after_accept_rate,
            stall_ms=stall_ms,
            stall_rate=stall_rate,
            feature_on=feature_on,
            seed=seed,
            page_shape=page_shape,
        )
        self.learners = list(learners or [])
        self.paths = list(paths or [])
        self._tmpdir: str | None = None
        if db is None or str(db) == ":memory:":
            self._tmpdir = tempfile.mkdtemp(prefix="recon-sandbox-")
            self.db_path = Path(self._tmpdir) / "sandbox.db"
        else:
            self.db_path = Path(db)
        self._seed_file = seed_progress
        # Tests only: False makes this sandbox answer its ping as a real LMS does (no
        # practice mark), to play "the real LMS" over loopback. Never set by the CLI.
        self._practice = True
        self._server: Server | None = None
        self._store: Store | None = None
        self._thread: threading.Thread | None = None

    def seed_lists(self, config: Config) -> Sandbox:
        """List ``config``'s directory and mapping as the LMS's learners and learning
        paths (see :func:`.directory.from_config`); takes effect at once. Returns self."""
        learners, paths = from_config(config)
        self.learners[:] = learners
        self.paths[:] = paths
        return self

    def __repr__(self) -> str:  # the key stays out of reprs and tracebacks
        state = self.url if self._server is not None else "stopped"
        return f"<Sandbox {state} db={self.db_path}>"

    # -- life cycle

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        # The seed is read before anything is created, and a start that fails after
        # that (the port in use, say) removes the database it created: a failed start
        # leaves nothing behind, and an existing database keeps its seed.
        seed = read_seed(self._seed_file) if self._seed_file is not None else None
        created = [p for p in (self.db_path.parent, *self.db_path.parent.parents) if not p.exists()]
        fresh = not self.db_path.exists()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        store: Store | None = None
        try:
            store = Store(self.db_path)
            try:
                server = Server(
                    (self.host, self.port), key=self._key, settings=self.settings, store=store
                )
            except OSError as exc:
                raise ReconError(
                    f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
                ) from None
            if seed is not None:
                try:
                    store.replace_seed(seed)
                except BaseException:
                    server.server_close()
                    raise
        except BaseException:
            if store is not None:
                store.close()
            if fresh:
                remove_database(self.db_path, created)
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise
        server.practice = self._practice
        server.learners, server.paths = self.learners, self.paths
        self._store, self._server = store, server
        self.port = server.server_port
        if self._practice:
            _RUNNING[self.url] = self
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"recon-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end open connections, close the database. Safe to call twice."""
        if self._server is not None:
            _RUNNING.pop(self.url, None)
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_clients()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._store is None:
            raise RuntimeError("the sandbox is not running")
        return self._store.query(sql, params)

    def progress(self) -> pd.DataFrame:
        """The LMS progress view now; see :func:`progress_frame`. Shipped, not only for the
        tests: :meth:`export_progress` writes it, and ``recon demo`` exports it."""
        return progress_rows(self._query(PROGRESS_SQL))

    def export_progress(self, out: str | Path, spec: ProgressSpec | None = None) -> int:
        """Write :meth:`progress` to ``out`` as CSV (in ``spec``'s shape when given, see
        :func:`in_shape`); returns the row count."""
        from ..outputs import write_csv

        frame = in_shape(self.progress(), spec)
        write_csv(frame, out)
        return len(frame)


def serve(*, out: TextIO | None = None, **options: Any) -> None:
    """Run a sandbox in the foreground until Ctrl-C or SIGTERM.

    ``options`` are those of :class:`Sandbox`. Prints ``listening on http://HOST:PORT``
    (flushed, so a parent process can read the port) and never the key.
    """
    out = out if out is not None else sys.stdout
    stop = threading.Event()
    sandbox = Sandbox(**options).start()
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        s = sandbox.settings
        print(f"listening on {sandbox.url}", file=out, flush=True)
        print(
            f"  database {sandbox.db_path}; {s.rate:g} requests/s, burst {s.burst}; "
            f"feature {'on' if s.feature_on else 'off'}; Ctrl-C to stop",
            file=out,
            flush=True,
        )
        while not stop.wait(0.2):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sandbox.stop()
        print("sandbox stopped", file=out, flush=True)
