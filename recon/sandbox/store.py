"""The sandbox's SQLite store, and the LMS's progress view it holds.

:class:`Store` is the database file (WAL): every request received (``requests``) and
every activity accepted or seeded (``activities``). :func:`progress_rows` folds the
stored activities into the LMS's view, as the LMS keeps one (the latest status posted, the
first completion date), and :func:`export_progress` writes that view as the CSV
``recon reconcile`` reads, so a rerun shows the gap closed. :func:`seed_progress` loads a
starting state (see :mod:`recon.sandbox.seed`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import InputError, ReconError
from .seed import Seed, SeedRow, id_key, read_seed

if TYPE_CHECKING:
    from ..config import ProgressSpec

PROGRESS_COLUMNS = ["userId", "learningPathId", "status", "completionDate"]
"""The columns of the LMS progress view, as ``recon reconcile`` reads them by default."""

_SCHEMA_VERSION = 1


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


def now_wire() -> str:
    return _format(datetime.now(UTC))


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


def connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, check_same_thread=False, timeout=10)
    con.execute("PRAGMA journal_mode = WAL")
    # WAL + NORMAL: a commit costs no fsync, and a crash can lose only the last commits,
    # which is fine for a stand-in.
    con.execute("PRAGMA synchronous = NORMAL")
    return con


class Store:
    """The sandbox's SQLite file. One connection shared under a lock: every statement is
    short, and no request ever sleeps while holding it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = connect(path)
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

    def replace_seed(self, rows: list[SeedRow]) -> None:
        received_at = now_wire()
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


def progress_rows(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Fold stored activities (seed first, then in arrival order) into the LMS's view."""
    view: dict[tuple[str, str], dict[str, Any]] = {}
    for user, path_id, status, completion, received_at, source in rows:
        entry = view.setdefault(
            (id_key(user), id_key(path_id)),
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


PROGRESS_SQL = (
    "SELECT userId, learningPathId, status, completionDate, received_at, source "
    "FROM activities ORDER BY source = 'api', id"
)


def remove_database(path: Path, folders: list[Path]) -> None:
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
        con = connect(path)
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
        rows = con.execute(PROGRESS_SQL).fetchall()
    finally:
        con.close()
    return progress_rows(rows)


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
    from ..outputs import write_csv

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
    rows = read_seed(progress_csv)  # before the database is touched
    store = Store(Path(db))
    try:
        store.replace_seed(rows)
    finally:
        store.close()
    return len(rows)
