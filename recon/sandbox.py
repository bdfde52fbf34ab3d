"""A local stand-in for the LMS API, for the demo, the notebooks and the tests.

Size: over 600 lines for now; issue 10 turns it into a subpackage (settings and faults,
the store and its seeding, the HTTP server) and moves its test-only inspection API to the
tests.

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
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import math
import random
import shutil
import signal
import socket
import socketserver
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO, Union
from urllib.parse import urlsplit

import pandas as pd

from .client import ACTIVITY_PATH, PING_PATH

if TYPE_CHECKING:
    from .config import ProgressSpec
from .errors import InputError, ReconError
from .validation import MSG_FEATURE_OFF, STATUS_RANK, validate_activity

__all__ = [
    "ACTIVITY_PATH",
    "DEFAULT_KEY",
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

PROGRESS_COLUMNS = ["userId", "learningPathId", "status", "completionDate"]
"""The columns of the LMS progress view, as ``recon reconcile`` reads them by default."""

MSG_BAD_JSON = "request body is not valid JSON"
MSG_NOT_OBJECT = "request body must be a JSON object"
MSG_TOO_LARGE = "request body is too large"

# Far above any activity body; a bigger one is refused without being read.
_MAX_BODY = 1 << 20
# An idle keep-alive connection is closed after this, so handler threads do not pile up.
_IDLE_TIMEOUT_S = 60
_SCHEMA_VERSION = 1

log = logging.getLogger(__name__)

# Practice sandboxes running in this process, by base URL: lets the widget and the demo say
# "practice" before any request (a ping still decides for submit).
_RUNNING: dict[str, Sandbox] = {}


def practice_sandbox_at(url: str) -> bool:
    """True when a practice sandbox of this process serves ``url`` (a target URL)."""
    from .target import target_url

    return any(target_url(u) == url for u in list(_RUNNING))


def wire_date(value: str) -> str:
    """``value`` as ``YYYY-MM-DDTHH:MM:SS.sssZ`` (UTC) when it reads as ISO 8601.

    A date without an offset is taken as UTC (our reading of the LMS). Text that is not ISO 8601
    is returned unchanged (trimmed): the progress view must not lose what the LMS holds.
    """
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _format(moment.astimezone(UTC))


def _format(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now_wire() -> str:
    return _format(datetime.now(UTC))


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class _Plan:
    """What to do with one request: the settings it arrived under, and its faults."""

    rate: float
    burst: int
    feature_on: bool
    latency_s: float
    drop: bool = False
    fail: bool = False
    stall_s: float = 0.0
    drop_after_accept: bool = False


@dataclass
class SandboxSettings:
    """How a sandbox behaves; every field can be changed while it runs.

    Assignments are thread safe (``sandbox.settings.feature_on = False``) and checked;
    :meth:`update` changes several fields at once. Each request reads the settings once,
    when it arrives.

    ``rate``/``burst``: the token bucket (default: the vendor's standard plan, 120/min
    with a burst of 20). ``latency_ms``: added to every request. The fault fields apply to
    ``POST`` requests that passed authentication and the rate limit, in this order:
    ``drop_rate`` closes the connection without an answer and without storing;
    ``fail_first`` answers the next N with ``503`` (counted from when it is set);
    ``fail_rate`` answers that fraction with ``503``; ``stall_rate`` waits ``stall_ms``
    before going on (the activity is still stored, so a client that timed out meets an
    unknown outcome); ``drop_after_accept_rate`` stores the activity, then closes the
    connection without an answer. ``feature_on``: the company's ``externalActivity``
    feature. ``seed``: makes the random faults reproducible (setting it restarts the
    sequence); each ``POST`` draws the same number of random values whatever is on.
    """

    rate: float = 2.0
    burst: int = 20
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    fail_first: int = 0
    drop_rate: float = 0.0
    drop_after_accept_rate: float = 0.0
    stall_ms: float = 0.0
    stall_rate: float = 0.0
    feature_on: bool = True
    seed: int | None = None

    # Not settings: the lock that makes changes atomic, and the fault dice.
    _lock: threading.RLock = field(init=False, repr=False, compare=False)
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _fail_first_left: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(self.seed)
        self._fail_first_left = self.fail_first

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name not in _SETTING_NAMES:
            raise AttributeError(f"SandboxSettings has no setting {name!r}")
        value = _check_setting(name, value)
        lock = self.__dict__.get("_lock")
        if lock is None:  # still in __init__; __post_init__ does the rest
            object.__setattr__(self, name, value)
            return
        with lock:
            object.__setattr__(self, name, value)
            if name == "fail_first":
                self._fail_first_left = value
            elif name == "seed":
                self._rng.seed(value)

    def update(self, **changes: Any) -> None:
        """Change several settings at once: a request sees all of them or none."""
        for name, value in changes.items():
            if name not in _SETTING_NAMES:
                raise AttributeError(f"SandboxSettings has no setting {name!r}")
            _check_setting(name, value)
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def snapshot(self) -> dict[str, Any]:
        """The current settings as a plain dict (a consistent view)."""
        with self._lock:
            return {name: getattr(self, name) for name in _SETTING_NAMES}

    def _plan(self) -> _Plan:
        """The settings one request works with, read once when it arrives."""
        with self._lock:
            return _Plan(
                rate=self.rate,
                burst=self.burst,
                feature_on=self.feature_on,
                latency_s=self.latency_ms / 1000,
            )

    def _roll(self, plan: _Plan) -> _Plan:
        """Roll the fault dice for a POST that passed the key and the rate limit.

        Atomic, so concurrent requests never share a draw or a ``fail_first`` slot.
        """
        with self._lock:
            # Always four draws, so a seed gives the same sequence whatever is switched on.
            d_drop, d_fail, d_stall, d_after = (self._rng.random() for _ in range(4))
            fail = d_fail < self.fail_rate
            if self._fail_first_left > 0:
                self._fail_first_left -= 1
                fail = True
            return dataclasses.replace(
                plan,
                drop=d_drop < self.drop_rate,
                fail=fail,
                stall_s=self.stall_ms / 1000 if d_stall < self.stall_rate else 0.0,
                drop_after_accept=d_after < self.drop_after_accept_rate,
            )


_SETTING_NAMES = tuple(f.name for f in dataclasses.fields(SandboxSettings) if f.init)


def _check_setting(name: str, value: Any) -> Any:
    if name == "feature_on":
        if not isinstance(value, bool):
            raise ValueError("feature_on must be True or False")
        return value
    if name == "seed":
        if value is not None and not isinstance(value, int):
            raise ValueError("seed must be an integer or None")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if name.endswith("_rate") and name != "rate":
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be between 0 and 1, not {value}")
        return float(value)
    if name == "rate":
        if not value > 0:
            raise ValueError(f"rate must be above 0 requests per second, not {value}")
        return float(value)
    if name in ("burst", "fail_first"):
        if int(value) != value or value < (1 if name == "burst" else 0):
            raise ValueError(f"{name} must be a whole number >= {1 if name == 'burst' else 0}")
        return int(value)
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {value}")
    return float(value)


# ----------------------------------------------------------------------- rate limit


@dataclass(frozen=True)
class _Verdict:
    allowed: bool
    headers: dict[str, str]
    retry_after: int


class _TokenBucket:
    """The server's rate limit: ``rate`` tokens a second, at most ``burst`` saved up.

    Rate and burst are passed on each call so a settings change applies at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: float | None = None  # full on the first request
        self._stamp = time.monotonic()

    def take(self, rate: float, burst: int) -> _Verdict:
        with self._lock:
            now = time.monotonic()
            if self._tokens is None:
                tokens = float(burst)
            else:
                tokens = min(float(burst), self._tokens + (now - self._stamp) * rate)
            self._stamp = now
            # A hair of tolerance: float refill must not turn an on-time request away.
            allowed = tokens >= 1 - 1e-9
            if allowed:
                tokens = max(0.0, tokens - 1)
            self._tokens = tokens
        wall = time.time()
        retry_after = 0 if allowed else max(1, math.ceil((1 - tokens) / rate))
        headers = {
            "X-RateLimit-Limit": str(burst),
            "X-RateLimit-Remaining": str(int(tokens)),
            "X-RateLimit-Reset": str(math.ceil(wall + (burst - tokens) / rate)),
        }
        return _Verdict(allowed, headers, retry_after)


# -------------------------------------------------------------------------- storage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id          INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,     -- YYYY-MM-DDTHH:MM:SS.sssZ
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    status      INTEGER,           -- the HTTP status answered; NULL: no answer (dropped)
    body        TEXT,
    errors      TEXT,              -- JSON list of the messages answered, if any
    fault       TEXT               -- the injected fault, if any
);
CREATE TABLE IF NOT EXISTS activities (
    id             INTEGER PRIMARY KEY,
    received_at    TEXT NOT NULL,
    source         TEXT NOT NULL,  -- 'api': accepted by the endpoint; 'seed': starting state
    userId         TEXT NOT NULL,
    learningPathId TEXT NOT NULL,
    status         TEXT NOT NULL,
    completionDate TEXT,           -- as posted (or seeded)
    timeStampDate  TEXT
);
CREATE INDEX IF NOT EXISTS activities_pair ON activities (userId, learningPathId);
"""


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, check_same_thread=False, timeout=10)
    con.execute("PRAGMA journal_mode = WAL")
    # WAL + NORMAL: a commit costs no fsync, and a crash can lose only the last commits,
    # which is fine for a stand-in.
    con.execute("PRAGMA synchronous = NORMAL")
    return con


class _Store:
    """The sandbox's SQLite file. One connection shared under a lock: every statement is
    short, and no request ever sleeps while holding it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = _connect(path)
        with self._lock, self._con as con:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise InputError(
                    f"{path}: sandbox database version {version}, expected {_SCHEMA_VERSION}",
                    file=path,
                )
            con.executescript(_SCHEMA)
            con.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection | None]:
        # After close, a request still in flight (a stall, say) records nothing.
        with self._lock:
            if self._con is None:
                yield None
                return
            with self._con as con:
                yield con

    def record(
        self,
        *,
        received_at: str,
        method: str,
        path: str,
        status: int | None,
        body: str | None,
        errors: list[str] | None = None,
        fault: str | None = None,
        activity: Mapping[str, Any] | None = None,
    ) -> None:
        """Log one request and, in the same transaction, store the activity it carried."""
        with self._tx() as con:
            if con is None:
                return
            con.execute(
                "INSERT INTO requests (received_at, method, path, status, body, errors, fault) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    received_at,
                    method,
                    path,
                    status,
                    body,
                    json.dumps(errors) if errors else None,
                    fault,
                ),
            )
            if activity is not None:
                con.execute(
                    "INSERT INTO activities (received_at, source, userId, learningPathId, "
                    "status, completionDate, timeStampDate) VALUES (?, 'api', ?, ?, ?, ?, ?)",
                    (
                        received_at,
                        activity["userId"],
                        activity["learningPathId"],
                        activity.get("status") or "completed",
                        activity.get("completionDate"),
                        activity.get("timeStampDate"),
                    ),
                )

    def replace_seed(self, rows: list[tuple[str, str, str, str | None]]) -> None:
        received_at = _now_wire()
        with self._tx() as con:
            if con is None:
                raise ReconError("the sandbox is stopped")
            con.execute("DELETE FROM activities WHERE source = 'seed'")
            con.executemany(
                "INSERT INTO activities (received_at, source, userId, learningPathId, status, "
                "completionDate) VALUES (?, 'seed', ?, ?, ?, ?)",
                [(received_at, *row) for row in rows],
            )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._tx() as con:
            if con is None:
                raise ReconError("the sandbox is stopped")
            return con.execute(sql, params).fetchall()


Seed = Union[str, Path, "ProgressSpec"]
"""An LMS progress export: a file with the sandbox's column names, or a config's
``[progress]`` table (its file, sheet, column names, words, timezone and date formats)."""


@dataclass(frozen=True)
class _SeedRow:
    """One LMS export row as recon reads it: ``status`` is the API status, or the word
    as written when recon does not understand it (``known`` False); ``date`` is the
    completion date in wire form, or the text as written when it cannot be read
    (``readable`` False)."""

    user: str
    path: str
    status: str
    known: bool
    date: str | None
    readable: bool = True


def _read_seed(seed: Seed) -> list[tuple[str, str, str, str | None]]:
    """The rows of an LMS progress export (CSV or XLSX), read exactly as `recon
    reconcile` reads one (the engine's own SQL), then folded per learner and path."""
    import duckdb

    from .config import ProgressSpec
    from .engine import lms_macros, lms_rows_sql
    from .inputs import load_table, resolve_columns, run

    if isinstance(seed, ProgressSpec):
        spec = seed
    else:
        spec = ProgressSpec(file=Path(seed), completion_date="completionDate")
    path = Path(spec.file)
    wanted = {"user": spec.user_id, "path": spec.path_id, "status": spec.status}
    con = duckdb.connect(config={"preserve_insertion_order": True})
    try:
        info, cols = load_table(
            con, "seed", "seed progress", path, wanted, sheet=spec.sheet, allow_no_rows=True
        )
        # The completion date is optional: an export of unfinished work may lack it.
        date_column = spec.completion_date
        if date_column is not None and any(
            c.strip().lower() == date_column.strip().lower() for c in info.columns
        ):
            found = resolve_columns(list(info.columns), {"completion": date_column}, path)
            cols["completion"] = info.sql_name(found["completion"])
        lms_macros(con, spec, None)
        rows = run(
            con,
            "SELECT user_id, path_id, word, status, completion_raw, "
            "CASE WHEN completion_ts IS NOT NULL THEN strftime(timezone('UTC', completion_ts), "
            "'%Y-%m-%dT%H:%M:%S.%gZ') END "
            f"FROM ({lms_rows_sql('seed', cols)}) ORDER BY row",
        )
    finally:
        con.close()
    read = []
    for user, path_id, word, status, raw, wire in rows:
        if not (user and path_id):
            continue  # a blank id: recon ignores the row too
        if status is None:
            read.append(_SeedRow(user, path_id, word, known=False, date=None))
        elif status == "completed" and raw is not None:
            read.append(_SeedRow(user, path_id, status, True, wire or raw, readable=bool(wire)))
        else:
            read.append(_SeedRow(user, path_id, status, known=True, date=None))
    return _fold_seed(read)


def _fold_seed(rows: list[_SeedRow]) -> list[tuple[str, str, str, str | None]]:
    """One row per learner and path, as recon folds an LMS export: the furthest status
    counts, and the earliest completion date. Without this, a messy export listing a
    pair twice would make the sandbox's view differ from what `recon reconcile` saw
    before anything was posted.

    What recon cannot read is kept as the LMS holds it, so that an export of the view
    is read the same way again: a pair with a word recon does not understand takes that
    word as its status (the first one, when it has several: the view holds one status a
    pair), and an unreadable completion date stays as written.
    """
    by_pair: dict[tuple[str, str], list[_SeedRow]] = {}
    for row in rows:
        by_pair.setdefault(_pair(row.user, row.path), []).append(row)
    folded = []
    for held in by_pair.values():
        user, path_id = held[0].user, held[0].path  # spelled as first seen
        unknown = [r.status for r in held if not r.known]
        known = [r.status for r in held if r.known]
        status = unknown[0] if unknown else max(known, key=STATUS_RANK.__getitem__)
        unreadable = [r.date for r in held if r.date and not r.readable]
        dates = sorted(r.date for r in held if r.date and r.readable)
        date = unreadable[0] if unreadable else (dates[0] if dates else None)
        folded.append((user, path_id, status, date))
    return folded


def _pair(user: str, path_id: str) -> tuple[str, str]:
    """A learner and path as the LMS tells them apart: ids have no letter case (UUIDs),
    so ``U-1`` and ``u-1`` are one learner, as recon reads them (ASCII case only)."""

    def fold(value: str) -> str:
        return "".join(c.lower() if c.isascii() else c for c in value)

    return fold(user), fold(path_id)


def _progress_rows(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Fold stored activities (seed first, then in arrival order) into the LMS's view."""
    view: dict[tuple[str, str], dict[str, Any]] = {}
    for user, path_id, status, completion, received_at, source in rows:
        entry = view.setdefault(
            _pair(user, path_id),
            {"userId": user, "learningPathId": path_id, "status": None, "completionDate": None},
        )
        entry["status"] = status
        if status == "completed" and entry["completionDate"] is None:
            # The LMS takes a completion date when the completion is first recorded and
            # keeps it; a completion posted without one is dated when it was received.
            date = completion or (received_at if source == "api" else None)
            if date:
                entry["completionDate"] = wire_date(date)
    ordered = [view[k] for k in sorted(view)]
    return pd.DataFrame(ordered, columns=PROGRESS_COLUMNS, dtype=object)


_PROGRESS_SQL = (
    "SELECT userId, learningPathId, status, completionDate, received_at, source "
    "FROM activities ORDER BY source = 'api', id"
)


def _remove_database(path: Path, folders: list[Path]) -> None:
    """Remove a database a failed start created, its WAL files, and the folders made
    for it (only when empty)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with suppress(OSError):
            Path(f"{path}{suffix}").unlink()
    for folder in folders:  # innermost first
        with suppress(OSError):
            folder.rmdir()


def _open_existing(db: str | Path) -> sqlite3.Connection:
    path = Path(db)
    if not path.is_file():
        raise InputError(f"sandbox database not found: {path}", file=path)
    try:
        con = _connect(path)
        found = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        raise InputError(f"{path} is not a sandbox database", file=path) from None
    if "activities" not in found:
        con.close()
        raise InputError(f"{path} is not a sandbox database (no activities table)", file=path)
    return con


def progress_frame(db: str | Path) -> pd.DataFrame:
    """The LMS progress view of a sandbox database, one row per learner and path.

    ``status`` is the latest status posted (or seeded); ``completionDate`` the date of the
    first completion, as ``YYYY-MM-DDTHH:MM:SS.sssZ``. Rows are sorted by learner, path.
    """
    con = _open_existing(db)
    try:
        rows = con.execute(_PROGRESS_SQL).fetchall()
    finally:
        con.close()
    return _progress_rows(rows)


def in_shape(frame: pd.DataFrame, spec: ProgressSpec | None) -> pd.DataFrame:
    """The progress view in the shape of a config's ``[progress]`` table: its column
    names, and each status as the first word its `[progress.statuses]` maps to it (the
    API word when none does; recon always reads those). Words recon did not understand
    stay as the LMS holds them. Dates stay ISO 8601 in UTC, which every config reads.
    Without ``spec``: the view as it is (``PROGRESS_COLUMNS``)."""
    if spec is None:
        return frame
    words: dict[str, str] = {}
    for word, status in spec.statuses.items():
        words.setdefault(status.strip().lower(), word.strip())
    shaped = pd.DataFrame(
        {
            spec.user_id: frame["userId"],
            spec.path_id: frame["learningPathId"],
            spec.status: frame["status"].map(lambda s: words.get(s, s)),
        },
        dtype=object,
    )
    if spec.completion_date is not None:
        shaped[spec.completion_date] = frame["completionDate"]
    return shaped


def export_progress(db: str | Path, out: str | Path, spec: ProgressSpec | None = None) -> int:
    """Write :func:`progress_frame` of ``db`` to ``out`` as CSV; return the row count.

    Columns ``userId,learningPathId,status,completionDate``: the LMS progress export that
    ``recon reconcile`` reads; with a config's ``spec``, in that table's shape (see
    :func:`in_shape`). Written with :func:`recon.outputs.write_csv`.
    """
    from .outputs import write_csv

    frame = in_shape(progress_frame(db), spec)
    write_csv(frame, out)
    return len(frame)


def seed_progress(db: str | Path, progress_csv: Seed) -> int:
    """Load an LMS progress export into ``db`` as the LMS's starting state.

    A file has the columns ``userId``, ``learningPathId``, ``status`` and optionally
    ``completionDate`` (CSV or XLSX, read like any recon input); a config's
    :class:`~recon.config.ProgressSpec` names its own. Earlier seed rows are
    replaced; activities posted since are kept and stay later than the seed. Returns the
    number of rows seeded.
    """
    rows = _read_seed(progress_csv)  # before the database is touched
    store = _Store(Path(db))
    try:
        store.replace_seed(rows)
    finally:
        store.close()
    return len(rows)


# ----------------------------------------------------------------------------- HTTP


class _Dropped(Exception):
    """Raised inside a handler to close the connection without answering."""


class _TooLarge(Exception):
    """A body the sandbox will not read (too large, chunked or a bad Content-Length)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        key: str,
        settings: SandboxSettings,
        store: _Store,
    ) -> None:
        self.key = key.encode("utf-8")
        self.practice = True
        self.settings = settings
        self.store = store
        self.bucket = _TokenBucket()
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
    server: _Server

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
        received_at = _now_wire()
        path = urlsplit(self.path).path
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
        if route not in (("GET", PING_PATH), ("POST", ACTIVITY_PATH)):
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
        self._activity(received_at, path, raw, text, plan, limit_headers)

    def _activity(
        self,
        received_at: str,
        path: str,
        raw: bytes,
        text: str | None,
        plan: _Plan,
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
        )
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
        self._server: _Server | None = None
        self._store: _Store | None = None
        self._thread: threading.Thread | None = None

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
        seed = _read_seed(self._seed_file) if self._seed_file is not None else None
        created = [p for p in (self.db_path.parent, *self.db_path.parent.parents) if not p.exists()]
        fresh = not self.db_path.exists()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        store: _Store | None = None
        try:
            store = _Store(self.db_path)
            try:
                server = _Server(
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
                _remove_database(self.db_path, created)
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise
        server.practice = self._practice
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

    # -- what it saw

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._store is None:
            raise RuntimeError("the sandbox is not running")
        return self._store.query(sql, params)

    def status_counts(self) -> Counter[int]:
        """How many requests were answered with each HTTP status (drops not included)."""
        rows = self._query(
            "SELECT status, count(*) FROM requests WHERE status IS NOT NULL GROUP BY status"
        )
        return Counter({int(s): int(n) for s, n in rows})

    def dropped_count(self) -> int:
        """How many connections were closed without an answer (both drop faults)."""
        return int(self._query("SELECT count(*) FROM requests WHERE status IS NULL")[0][0])

    def requests_log(self) -> list[dict[str, Any]]:
        """Every request received, oldest first: received_at, method, path, status (None
        when dropped), body, errors (a list) and fault."""
        rows = self._query(
            "SELECT received_at, method, path, status, body, errors, fault FROM requests "
            "ORDER BY id"
        )
        names = ("received_at", "method", "path", "status", "body", "errors", "fault")
        out = []
        for row in rows:
            entry = dict(zip(names, row, strict=True))
            entry["errors"] = json.loads(entry["errors"]) if entry["errors"] else []
            out.append(entry)
        return out

    def accepted(self) -> list[dict[str, Any]]:
        """The activities the endpoint accepted (seed rows not included), oldest first,
        as posted: received_at, userId, learningPathId, status (default filled in),
        completionDate, timeStampDate."""
        rows = self._query(
            "SELECT received_at, userId, learningPathId, status, completionDate, "
            "timeStampDate FROM activities WHERE source = 'api' ORDER BY id"
        )
        names = (
            "received_at",
            "userId",
            "learningPathId",
            "status",
            "completionDate",
            "timeStampDate",
        )
        return [dict(zip(names, row, strict=True)) for row in rows]

    def accept_counts(self) -> Counter[tuple[str, str, str]]:
        """How many times each (userId, learningPathId, status) was accepted."""
        rows = self._query(
            "SELECT userId, learningPathId, status, count(*) FROM activities "
            "WHERE source = 'api' GROUP BY 1, 2, 3"
        )
        return Counter({(u, p, s): int(n) for u, p, s, n in rows})

    def seed_progress(self, progress_csv: Seed) -> int:
        """Replace the starting state with an LMS progress export; see
        :func:`seed_progress`. Returns the number of rows seeded."""
        if self._store is None:
            raise RuntimeError("the sandbox is not running")
        rows = _read_seed(progress_csv)
        self._store.replace_seed(rows)
        return len(rows)

    def progress(self) -> pd.DataFrame:
        """The LMS progress view now; see :func:`progress_frame`."""
        return _progress_rows(self._query(_PROGRESS_SQL))

    def export_progress(self, out: str | Path, spec: ProgressSpec | None = None) -> int:
        """Write :meth:`progress` to ``out`` as CSV (in ``spec``'s shape when given, see
        :func:`in_shape`); returns the row count."""
        from .outputs import write_csv

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
