"""The ledger: one SQLite file that is the single record of the workflow.

It holds each reconcile run (as-of, inputs' sha256 and counts, outcome counts), the run's
proposals (key, payload, category), the decisions people made about them, and every
submission attempt (time, HTTP status, the API's messages, latency).

Why it cannot lose or double-send a record:

* WAL mode with ``synchronous=FULL``: a committed decision or result survives a crash
  or power cut.
* Every attempt is committed *before* its request goes out and updated after the answer.
  After a crash an attempt without a result is "unknown": the record may or may not have
  reached the LMS. It is sent again, which is safe because the endpoint *sets* the
  learner's status on the path: the same body twice leaves the same state.
* An attempt with result ``accepted`` is final: that key is never selected again, in this
  run or any later one (reconcile reports it as ``already-submitted``).
* Decisions and attempts are append-only; the latest decision about a key wins. A
  decision is about the correction (its key), so it carries over to a later run that
  proposes the very same correction.
* One ``submit`` at a time: an exclusive lock on ``<ledger>.lock``, released by the
  kernel even when the process is killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import LedgerBusyError, LedgerError
from .inputs import InputInfo
from .result import Result, payload

DEFAULT_NAME = "recon-ledger.db"
WORK_DIR_ENV = "RECON_WORK_DIR"  # a folder for the default ledger, instead of the config's
ANALYST_ENV = "RECON_ANALYST"  # who decides, when --by is not given

# Outcomes of one attempt. ``None`` (NULL) means the request went out and no answer was
# recorded: the process died or the connection dropped mid-way.
ACCEPTED, REJECTED, RETRY, FAILED, STOPPED = "accepted", "rejected", "retry", "failed", "stopped"

# Append a script to migrate; never edit a released one. PRAGMA user_version counts them.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY,
        created_at   TEXT NOT NULL,
        as_of        TEXT NOT NULL,
        config       TEXT,
        inputs       TEXT NOT NULL,   -- JSON: role -> {path, sha256, rows, ...}
        counts       TEXT NOT NULL,   -- JSON: outcome -> rows
        rows_read    INTEGER NOT NULL,
        proposals    INTEGER NOT NULL,
        problems     INTEGER NOT NULL
    );
    CREATE TABLE proposals (
        run_id           INTEGER NOT NULL REFERENCES runs(id),
        key              TEXT NOT NULL,
        userId           TEXT NOT NULL,
        learningPathId   TEXT NOT NULL,
        status           TEXT NOT NULL,
        completionDate   TEXT,
        timeStampDate    TEXT,
        category         TEXT NOT NULL,
        rows             TEXT,
        learner          TEXT,
        path             TEXT,
        payload          TEXT NOT NULL,   -- the exact JSON body to send
        PRIMARY KEY (run_id, key)
    );
    CREATE INDEX proposals_key ON proposals(key);
    CREATE TABLE decisions (
        id        INTEGER PRIMARY KEY,
        run_id    INTEGER NOT NULL REFERENCES runs(id),
        key       TEXT NOT NULL,
        decision  TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
        by        TEXT,
        at        TEXT NOT NULL,
        note      TEXT,
        policy    TEXT               -- set when a rule decided, not a person one by one
    );
    CREATE INDEX decisions_key ON decisions(key, id);
    CREATE TABLE attempts (
        id           INTEGER PRIMARY KEY,
        run_id       INTEGER REFERENCES runs(id),
        key          TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        result       TEXT,           -- NULL until answered: unknown after a crash
        http_status  INTEGER,
        errors       TEXT,           -- JSON list: the API's messages or the transport error
        latency_ms   REAL
    );
    CREATE INDEX attempts_key ON attempts(key, id);
    """,
    # 2: keep what a report of an old run needs, so it never has to re-read the inputs.
    """
    ALTER TABLE runs ADD COLUMN progress_ignored INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN timings TEXT;
    CREATE TABLE run_exceptions (
        run_id    INTEGER NOT NULL REFERENCES runs(id),
        row       INTEGER NOT NULL,
        outcome   TEXT NOT NULL,
        detail    TEXT,
        original  TEXT NOT NULL,          -- JSON: the row's cells as the file had them
        PRIMARY KEY (run_id, row)
    );
    CREATE TABLE run_completions (
        run_id       INTEGER NOT NULL REFERENCES runs(id),
        month        TEXT NOT NULL,
        source       TEXT NOT NULL,
        completions  INTEGER NOT NULL
    );
    """,
)

# Per key: what its attempts add up to, and its last attempt (by id, i.e. time order).
_STATE_SQL = """
    WITH agg AS (
        SELECT key,
               max(result = 'accepted') AS accepted,
               max(result = 'rejected') AS rejected,
               count(*) AS attempts,
               max(id) AS last_id
        FROM attempts GROUP BY key
    )
    SELECT agg.key, agg.accepted, agg.rejected, agg.attempts,
           a.result AS last_result, a.errors AS last_errors, a.http_status AS last_http_status
    FROM agg JOIN attempts a ON a.id = agg.last_id
"""
# Per key: the latest decision (decisions are only ever appended).
_LATEST_SQL = """
    SELECT d.key, d.decision, d.by, d.at, d.note, d.policy
    FROM decisions d
    JOIN (SELECT key, max(id) AS id FROM decisions GROUP BY key) m ON m.id = d.id
"""


def now_iso() -> str:
    """The current UTC time as the ledger writes it (milliseconds, Z)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rejected_messages(proposals: pd.DataFrame) -> Counter[str]:
    """How often each API message rejected a proposal, from :meth:`Ledger.proposals`."""
    counts: Counter[str] = Counter()
    if len(proposals):
        rejected = proposals.loc[proposals["submission"] == "rejected", "api_errors"]
        for text in rejected.dropna():
            counts.update(json.loads(text))
    return counts


def default_path(config_path: str | Path) -> Path:
    """``recon-ledger.db`` beside the config file."""
    return Path(config_path).resolve().parent / DEFAULT_NAME


def ledger_for(config_path: str | Path | None, ledger: str | Path | None = None) -> Path:
    """The ledger a command or notebook uses: the one rule every entry point follows.

    ``ledger`` (``--ledger``, a notebook's ``ledger_path``) when given; else
    ``recon-ledger.db`` in ``$RECON_WORK_DIR`` when that is set (tests, scheduled reruns);
    else :func:`default_path` beside the config; with no config either,
    ``recon-ledger.db`` in the current folder. One rule, so the CLI, the notebooks and the
    report never keep a config's runs and decisions in two different ledgers.
    """
    if ledger is not None and str(ledger):
        return Path(ledger).expanduser()
    work = os.environ.get(WORK_DIR_ENV, "").strip()
    if work:
        return Path(work).expanduser() / DEFAULT_NAME
    if config_path is not None:
        return default_path(Path(config_path).expanduser())
    return Path(DEFAULT_NAME)


def default_analyst() -> str | None:
    """Who decides, when nobody says: ``$RECON_ANALYST``, else the login name.

    The CLI and the review widget both use it, so one person's decisions carry one name.
    """
    named = os.environ.get(ANALYST_ENV, "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers; the decision is still recorded
        return None


@dataclass(frozen=True)
class Decided:
    """What a :meth:`Ledger.decide` wrote: the keys it ``changed`` (a decision recorded)
    and, for a bulk decision, the keys ``left`` as they were (decided earlier), with
    ``held``: the decision each of those carries, as the ledger had it (``decision``,
    ``by``, ``at``, ``note``, ``policy``)."""

    decision: str
    changed: tuple[str, ...]
    left: tuple[str, ...] = ()
    held: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)

    def describe(self, what: str = "", how_to_override: str = "") -> str:
        """``approved 124 <what>; 1 already decided, left as it was (<how_to_override>)``:
        the CLI and the widget say it in the same words."""
        text = f"{self.decision} {len(self.changed):,}{what}"
        if self.left:
            n = len(self.left)
            text += f"; {n:,} already decided, left as {'it was' if n == 1 else 'they were'}"
            if how_to_override:
                text += f" ({how_to_override})"
        return text


class Ledger:
    """The SQLite ledger. Safe to share between threads; open one per process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open the ledger {self.path}: {exc}") from None

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self._lock:
            cur = self._db.execute(sql, params)
            columns = [d[0] for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=columns)

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise LedgerError(
                f"{self.path} was written by a newer recon (schema {current}); upgrade recon"
            )
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            with self._tx() as db:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {version}")

    @contextlib.contextmanager
    def submission_lock(self) -> Iterator[None]:
        """Hold the one-submit-at-a-time lock, or raise :class:`LedgerBusyError`."""
        # The resolved path: two names of one ledger (a symlink) must share one lock.
        real = self.path.resolve()
        lock_path = real.with_name(real.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LedgerBusyError(
                    f"another `recon submit` is running against {self.path}; wait for it to finish"
                ) from None
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    # -- runs -----------------------------------------------------------------------------

    def record_run(self, result: Result) -> int:
        """Store a reconcile run and its proposals; returns the run id (also set on result)."""
        summary = result.to_dict()
        props = result.proposals
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs (created_at, as_of, config, inputs, counts, rows_read, "
                "proposals, problems, progress_ignored, timings) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now_iso(),
                    summary["as_of"],
                    result.config_path,
                    json.dumps(summary["inputs"]),
                    json.dumps(summary["counts"]),
                    result.rows_read,
                    len(props),
                    result.problems,
                    result.progress_ignored,
                    json.dumps(summary["timings_s"]),
                ),
            )
            run_id = int(cur.lastrowid or 0)
            records = (
                (
                    run_id,
                    r["key"],
                    r["userId"],
                    r["learningPathId"],
                    r["status"],
                    _text(r["completionDate"]),
                    _text(r["timeStampDate"]),
                    r["category"],
                    _text(r["rows"]),
                    _text(r.get("learner")),
                    _text(r.get("path")),
                    json.dumps(payload(r), separators=(",", ":")),
                )
                for r in props.to_dict("records")
            )
            db.executemany(
                "INSERT INTO proposals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records
            )
            exc = result.exceptions
            fixed = ["row", "outcome", "detail"]
            originals = [c for c in exc.columns if c not in fixed]
            db.executemany(
                "INSERT INTO run_exceptions VALUES (?, ?, ?, ?, ?)",
                (
                    (
                        run_id,
                        int(r["row"]),
                        r["outcome"],
                        _text(r["detail"]),
                        json.dumps({c: _text(r[c]) for c in originals}),
                    )
                    for r in exc.to_dict("records")
                ),
            )
            db.executemany(
                "INSERT INTO run_completions VALUES (?, ?, ?, ?)",
                (
                    (run_id, str(r["month"])[:10], r["source"], int(r["completions"]))
                    for r in result.completions.to_dict("records")
                ),
            )
        result.run_id = run_id
        return run_id

    def resolve_run(self, run: str | int | None = "latest") -> int:
        """A run id from ``latest``/None or an id; :class:`LedgerError` when there is none."""
        if run is None or str(run) == "latest":
            rows = self._query("SELECT max(id) FROM runs")
            if rows[0][0] is None:
                raise LedgerError(
                    f"the ledger {self.path} has no runs yet: run `recon reconcile` first"
                )
            return int(rows[0][0])
        try:
            run_id = int(run)
        except ValueError:
            raise LedgerError(f"--run must be 'latest' or a run id, not {run!r}") from None
        if not self._query("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
            raise LedgerError(f"the ledger {self.path} has no run {run_id}")
        return run_id

    def runs(self) -> pd.DataFrame:
        """Every run with its outcome counts and what became of its proposals."""
        frame = self._frame(
            f"""
            WITH state AS ({_STATE_SQL}),
            latest AS ({_LATEST_SQL})
            SELECT r.id AS run_id, r.created_at, r.as_of, r.rows_read, r.proposals,
                   r.problems, r.counts, r.inputs,
                   count(l.decision = 'approved' OR NULL) AS approved,
                   count(l.decision = 'rejected' OR NULL) AS declined,
                   count(s.accepted = 1 OR NULL) AS accepted,
                   count((s.rejected = 1 AND coalesce(s.accepted, 0) = 0) OR NULL)
                       AS refused
            FROM runs r
            LEFT JOIN proposals p ON p.run_id = r.id
            LEFT JOIN latest l ON l.key = p.key
            LEFT JOIN state s ON s.key = p.key
            GROUP BY r.id ORDER BY r.id
            """
        )
        if not frame.empty:
            frame["counts"] = frame["counts"].map(json.loads)
            frame["inputs"] = frame["inputs"].map(json.loads)
        return frame

    def result(self, run: str | int | None = "latest") -> Result:
        """A run as a :class:`Result` (counts, proposals, exceptions, completions), read
        back from the ledger so a report of an old run needs no input file."""
        run_id = self.resolve_run(run)
        row = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))[0]
        proposals = self.proposals(run_id)
        exceptions = self._frame(
            "SELECT row, outcome, detail, original FROM run_exceptions WHERE run_id = ? "
            "ORDER BY row",
            (run_id,),
        )
        originals = pd.DataFrame([json.loads(t) for t in exceptions.pop("original")])
        exceptions = pd.concat([exceptions, originals], axis=1)
        completions = self._frame(
            "SELECT month, source, completions FROM run_completions WHERE run_id = ? "
            "ORDER BY month, source",
            (run_id,),
        )
        completions["month"] = pd.to_datetime(completions["month"])
        inputs = {
            role: InputInfo(
                role=role,
                path=info["path"],
                sha256=info["sha256"],
                rows=info["rows"],
                columns=(),
                encoding=info.get("encoding", ""),
                delimiter=info.get("delimiter"),
            )
            for role, info in json.loads(row["inputs"]).items()
        }
        result = Result(
            outcomes=pd.DataFrame(columns=["row", "outcome"]),
            proposals=proposals,
            exceptions=exceptions,
            completions=completions,
            inputs=inputs,
            as_of=datetime.fromisoformat(row["as_of"].replace("Z", "+00:00")),
            timings=json.loads(row["timings"] or "{}"),
            progress_ignored=int(row["progress_ignored"]),
            run_id=run_id,
            config_path=row["config"],
            recorded_counts=json.loads(row["counts"]),
        )
        return result

    def accepted_keys(self) -> set[str]:
        """Keys the API has accepted at some point: never to be sent or proposed again."""
        return {
            r[0]
            for r in self._query("SELECT DISTINCT key FROM attempts WHERE result = ?", (ACCEPTED,))
        }

    # -- proposals and decisions ----------------------------------------------------------

    def proposals(self, run: str | int | None = "latest") -> pd.DataFrame:
        """A run's proposals with their latest decision and submission state.

        ``decision``: undecided, approved or rejected. ``submission``: not-sent, accepted,
        rejected (by the API), failed, unknown (sent, answer never recorded).
        """
        run_id = self.resolve_run(run)
        frame = self._frame(
            f"""
            WITH state AS ({_STATE_SQL}),
            latest AS ({_LATEST_SQL})
            SELECT p.run_id, p.key, p.userId, p.learningPathId, p.status, p.completionDate,
                   p.timeStampDate, p.category, p.rows, p.learner, p.path, p.payload,
                   coalesce(l.decision, 'undecided') AS decision, l.by AS decided_by,
                   l.at AS decided_at, l.note, l.policy,
                   CASE WHEN s.accepted = 1 THEN 'accepted'
                        WHEN s.rejected = 1 THEN 'rejected'
                        WHEN s.key IS NULL THEN 'not-sent'
                        WHEN s.last_result IS NULL THEN 'unknown'
                        WHEN s.last_result = 'stopped' THEN 'not-sent'
                        ELSE 'failed' END AS submission,
                   coalesce(s.attempts, 0) AS attempts,
                   s.last_errors AS api_errors, s.last_http_status AS http_status
            FROM proposals p
            LEFT JOIN latest l ON l.key = p.key
            LEFT JOIN state s ON s.key = p.key
            WHERE p.run_id = ?
            ORDER BY p.rowid
            """,
            (run_id,),
        )
        return frame

    def select(
        self,
        run: str | int | None = "latest",
        *,
        categories: Iterable[str] = (),
        paths: Iterable[str] = (),
        keys: Iterable[str] = (),
        everything: bool = False,
    ) -> list[str]:
        """Keys of a run's proposals matching every given filter (``everything`` for all).

        Filters of one kind are alternatives (OR); different kinds must all hold (AND).
        """
        categories, paths, keys = list(categories), list(paths), list(keys)
        if not (everything or categories or paths or keys):
            raise LedgerError("say which proposals: --all, or --category/--path/--key")
        run_id = self.resolve_run(run)
        # A typo must not quietly decide nothing: every value named must exist in the run.
        for column, values, what in (
            ("category", categories, "category"),
            ("learningPathId", paths, "learning path"),
            ("key", keys, "key"),
        ):
            if not values:
                continue
            marks = ", ".join("?" * len(values))
            present = {
                r[0]
                for r in self._query(
                    f"SELECT DISTINCT {column} FROM proposals WHERE run_id = ? "
                    f"AND {column} IN ({marks})",
                    (run_id, *values),
                )
            }
            missing = [v for v in values if v not in present]
            if missing:
                raise LedgerError(
                    f"run {run_id} has no proposal with {what} {missing[0]!r}"
                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                )
        sql = "SELECT key FROM proposals WHERE run_id = ?"
        params: list[Any] = [run_id]
        for column, values in (("category", categories), ("learningPathId", paths), ("key", keys)):
            if values:
                sql += f" AND {column} IN ({', '.join('?' * len(values))})"
                params.extend(values)
        return [r[0] for r in self._query(sql + " ORDER BY rowid", params)]

    def decide(
        self,
        keys: Iterable[str],
        decision: str,
        *,
        run: str | int | None = "latest",
        by: str | None = None,
        note: str | None = None,
        policy: str | None = None,
        only_undecided: bool = False,
    ) -> Decided:
        """Record ``approved`` or ``rejected`` for each key of a run.

        By key (the default) every key gets the decision, whatever it had: a person
        named that proposal. ``only_undecided`` is the rule of every bulk decision: keys
        that already carry a decision are left as they are and reported in
        :attr:`Decided.left`. Which keys are undecided is read inside the writing
        transaction, so a decision another person committed a moment ago is respected.
        Committed at once: a kernel restart or a second analyst sees it.
        """
        if decision not in ("approved", "rejected"):
            raise LedgerError(f"a decision is 'approved' or 'rejected', not {decision!r}")
        run_id = self.resolve_run(run)
        keys = list(dict.fromkeys(keys))
        known = self._known_keys(run_id, keys)
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise LedgerError(
                f"run {run_id} has no proposal with key {unknown[0]!r}"
                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
            )
        at = now_iso()
        with self._tx() as db:
            decided = _latest_decisions(db, keys) if only_undecided else {}
            todo = [k for k in keys if k not in decided]
            db.executemany(
                "INSERT INTO decisions (run_id, key, decision, by, at, note, policy) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, k, decision, by, at, note, policy) for k in todo],
            )
        return Decided(decision, tuple(todo), tuple(k for k in keys if k in decided), decided)

    def _known_keys(self, run_id: int, keys: list[str]) -> set[str]:
        """Which of ``keys`` the run proposed: looked up in chunks (a click on one row
        must not read a 100,000-proposal run)."""
        known: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._query(
                f"SELECT key FROM proposals WHERE run_id = ? AND key IN ({marks})",
                (run_id, *chunk),
            )
            known.update(r[0] for r in rows)
        return known

    # -- submissions ----------------------------------------------------------------------

    def to_send(self, run: str | int | None = "latest") -> pd.DataFrame:
        """Approved proposals of a run that still need sending: never sent, failed, or
        unknown (sent but never answered). Accepted and API-rejected ones are final."""
        frame = self.proposals(run)
        mask = (frame["decision"] == "approved") & frame["submission"].isin(
            ["not-sent", "failed", "unknown"]
        )
        return frame[mask].reset_index(drop=True)

    def still_to_send(self, key: str) -> bool:
        """True while ``key``'s latest decision is ``approved`` and the API has given it no
        final answer: checked just before each request, so a proposal rejected while a
        submit runs is not sent."""
        rows = self._query(
            "SELECT (SELECT decision FROM decisions WHERE key = ? ORDER BY id DESC LIMIT 1), "
            "EXISTS (SELECT 1 FROM attempts WHERE key = ? AND result IN (?, ?))",
            (key, key, ACCEPTED, REJECTED),
        )
        decision, settled = rows[0]
        return decision == "approved" and not settled

    def begin_attempt(self, key: str, run_id: int | None) -> int:
        """Commit an attempt before its request goes out; returns its id."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO attempts (run_id, key, started_at) VALUES (?, ?, ?)",
                (run_id, key, now_iso()),
            )
            return int(cur.lastrowid or 0)

    def finish_attempt(
        self,
        attempt_id: int,
        result: str,
        *,
        http_status: int | None = None,
        errors: Sequence[str] = (),
        latency_ms: float | None = None,
    ) -> None:
        """Commit an attempt's answer."""
        with self._tx() as db:
            db.execute(
                "UPDATE attempts SET finished_at = ?, result = ?, http_status = ?, "
                "errors = ?, latency_ms = ? WHERE id = ?",
                (
                    now_iso(),
                    result,
                    http_status,
                    json.dumps(list(errors)) if errors else None,
                    latency_ms,
                    attempt_id,
                ),
            )

    def attempts(self, run: str | int | None = None) -> pd.DataFrame:
        """Every attempt (of one run, or all)."""
        if run is None:
            return self._frame("SELECT * FROM attempts ORDER BY id")
        return self._frame(
            "SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (self.resolve_run(run),)
        )

    def decisions(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM decisions ORDER BY id")


def _latest_decisions(db: sqlite3.Connection, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The latest decision of each of ``keys`` that has one, in chunks (a bulk decision
    over a whole run must not build one statement of 100,000 parameters)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = db.execute(
            "SELECT key, decision, by, at, note, policy FROM decisions WHERE id IN "
            f"(SELECT max(id) FROM decisions WHERE key IN ({marks}) GROUP BY key)",
            chunk,
        )
        found.update(
            {
                r[0]: dict(zip(("decision", "by", "at", "note", "policy"), r[1:], strict=True))
                for r in rows
            }
        )
    return found


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if value is pd.NA:
        return None
    return str(value)


__all__ = [
    "Decided",
    "Ledger",
    "default_analyst",
    "default_path",
    "ledger_for",
    "now_iso",
    "rejected_messages",
]
