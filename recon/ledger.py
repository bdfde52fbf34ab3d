"""The ledger: one SQLite file that is the single record of the workflow.

Size: over 600 lines (about 1,800) because schema and migrations, the storage of runs and
proposals (schema 4: payload once per key, a view for reading), decisions, attempts and
targets share one connection and its write discipline (retries, WAL check, locks, one
transaction per write): a split would have to pass that core between modules, and the
"cannot lose or double-send" reasoning below is easiest to check in one place. The
tables added later by other features keep their SQL with the feature
(:mod:`recon.aliases`, :mod:`recon.lms_pull`) and only append to ``MIGRATIONS`` here.

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
* Writes wait for a busy ledger (another program holding its write lock) with a generous
  budget (:attr:`Ledger.write_budget`, 10 minutes) instead of SQLite's single timeout, so
  an answered request is recorded rather than abandoned; when even that runs out the
  error says so. Before and after every write the ``-wal`` and ``-shm`` files are checked
  to be the ones this connection opened: a deleted write-ahead log would silently lose
  every commit since (at the next crash), so recon saves what it can into the ledger file
  and stops with a :class:`LedgerError`.
* Opening is safe from many processes at once: the schema is read and migrated inside one
  ``BEGIN IMMEDIATE`` transaction.

Storage (schema 4). A year of monthly runs proposes mostly the same corrections again,
so a proposal's payload is stored once per key (``corrections``: the fields, the
category, rows, learner and path it was first proposed with, and the payload text only
when it is not the plain JSON the view builds). A run refers to its keys
(``run_proposals``: its order, and only what it saw differently). Texts with few
distinct values (learning path ids, statuses, categories, course codes) are stored once
in ``words``. A run's exceptions are one zstd-compressed Parquet blob (``blobs``, once
per content; runs recorded before schema 4 keep their ``run_exceptions`` rows). The view
``proposals`` has the columns and order (``rowid``) of the table it replaced, so every
query of it still works; queries over many runs read ``run_proposals`` and
``corrections`` directly (faster). A run is recorded in bulk (:meth:`Ledger.record_run`):
its new keys in key order through one ``executemany``, its list's references to them in
one ``INSERT ... SELECT``, no Python step per reference but to keys stored before.

Lists (schema 7). A run's list of proposals (its order and what it saw differently) and
its suggestions are stored once per distinct content (``proposal_lists``,
``suggestion_lists``, keyed by the id of the run that stored them): a run proposing
exactly what an earlier run did, the same inputs again, refers to that run's lists
(``runs.proposal_list``, ``runs.suggestion_list``, found by their sha256) and stores
nothing more than its line in ``runs``. The views ``run_proposals`` and ``suggestions``
have the columns of the tables they replaced, for every run.

Targets (schema 3). Every attempt records its target (``scheme://host:port[/prefix]`` of
the base URL, never the key) and whether it was a practice sandbox (see
:mod:`recon.target`). An acceptance counts only for the target that gave it: "accepted is
final", ``already-submitted`` (:meth:`Ledger.accepted_keys`) and every count of accepted
records are per target, and practice acceptances never count for a real LMS. Decisions
are about the data and hold for every target.

A ledger belongs to one real LMS (table ``lms``): the first attempt to a real LMS binds
it, and an attempt to another real LMS is refused (:class:`TargetError`); ``recon submit``
checks this before sending anything (:meth:`Ledger.check_target`).

Attempts made before schema 3 have no target (NULL): recon cannot know whether they went
to a real LMS or to the notebooks' practice sandbox. Neither guess is safe: counting them
for the real LMS would repeat the bug that made targets necessary (practice acceptances
hiding corrections the LMS never got), and never counting them would resend everything a
user had already sent to their one LMS. So they count for no target until a person says,
once, where they went: the first real submit to a ledger holding such answered attempts
stops before sending and asks (``--legacy-attempts this-lms``: they went to this LMS and
count for it from then on; ``--legacy-attempts practice``: they were practice and count
for no LMS, so this LMS gets them all). The answer is stored with the binding; the
attempts themselves are left as they were written.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .aliases import MIGRATION as ALIASES_MIGRATION
from .errors import LedgerBusyError, LedgerError, TargetError
from .inputs import InputInfo
from .lms_pull import MIGRATION as LMS_PULL_MIGRATION
from .progress import progress_bar
from .result import PAYLOAD_FIELDS, Result, payload
from .target import Target

DEFAULT_NAME = "recon-ledger.db"
WORK_DIR_ENV = "RECON_WORK_DIR"  # a folder for the default ledger, instead of the config's
ANALYST_ENV = "RECON_ANALYST"  # who decides, when --by is not given

# Outcomes of one attempt. ``None`` (NULL) means the request went out and no answer was
# recorded: the process died or the connection dropped mid-way.
ACCEPTED, REJECTED, RETRY, FAILED, STOPPED = "accepted", "rejected", "retry", "failed", "stopped"

# A payload whose every value is printable ASCII without quote or backslash is stored as
# NULL and built by the view: json.dumps(payload, separators=(",", ":")) gives exactly
# this text then. Any other payload (an empty, non-ASCII or escaped value) is stored as
# sent. _PLAIN is the test (:func:`payload_texts`); the stored NULL says it held.
_PLAIN = r"[ !#-\[\]-~]+"


def _plain_payload(user: str, path: str, status: str, dates: str) -> str:
    """The SQL building a proposal's plain JSON body from its columns."""
    return (
        f"""('{{"userId":"' || {user} || '","learningPathId":"' || {path} """
        f"""|| '","status":"' || {status} || '"' """
        f"""|| coalesce(',"completionDate":"' || {dates}.completionDate || '"', '') """
        f"""|| coalesce(',"timeStampDate":"' || {dates}.timeStampDate || '"', '') || '}}')"""
    )


# What a run saw that differs from the correction's first proposal (NULL: the same).
# Expects ``p`` (the run's proposal: category, rows, learner, path), ``c`` (its
# correction), ``wc``/``wa`` (the words of p's category and path).
_OVERRIDES_SQL = """
    CASE WHEN wc.id = c.category THEN NULL ELSE wc.id END,
    CASE WHEN p.rows IS c.rows THEN NULL ELSE coalesce(p.rows, '') END,
    CASE WHEN p.learner IS c.learner THEN NULL ELSE coalesce(p.learner, '') END,
    CASE WHEN wa.id IS c.path THEN NULL ELSE coalesce(wa.id, 0) END
"""

# ``proposals``: the table of schema 1-3, as a view (same columns, same order by rowid).
_PROPOSALS_VIEW = f"""
    CREATE VIEW proposals AS
    SELECT r.run_id, c.key, c.userId, wp.word AS learningPathId, ws.word AS status,
           c.completionDate, c.timeStampDate, wc.word AS category,
           CASE WHEN r.rows IS NULL THEN c.rows ELSE nullif(r.rows, '') END AS rows,
           CASE WHEN r.learner IS NULL THEN c.learner ELSE nullif(r.learner, '') END
               AS learner,
           wa.word AS path,
           coalesce(c.payload, {_plain_payload("c.userId", "wp.word", "ws.word", "c")})
               AS payload,
           r.seq AS rowid
    FROM run_proposals r
    JOIN corrections c ON c.id = r.correction
    JOIN words wp ON wp.id = c.learningPathId
    JOIN words ws ON ws.id = c.status
    JOIN words wc ON wc.id = coalesce(r.category, c.category)
    LEFT JOIN words wa ON wa.id = CASE WHEN r.path IS NULL THEN c.path
                                       ELSE nullif(r.path, 0) END
"""

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
    # 3: targets. Attempts before this have target NULL: of unknown target (see above).
    """
    ALTER TABLE attempts ADD COLUMN target TEXT;      -- scheme://host:port[/prefix]
    ALTER TABLE attempts ADD COLUMN practice INTEGER; -- 1: a practice sandbox, 0: an LMS
    CREATE TABLE lms (
        id         INTEGER PRIMARY KEY CHECK (id = 1),   -- a ledger belongs to one LMS
        target     TEXT NOT NULL,
        bound_at   TEXT NOT NULL,
        legacy     TEXT CHECK (legacy IN ('this-lms', 'practice')),
        legacy_at  TEXT,
        legacy_by  TEXT
    );
    """,
    # 4: a proposal's payload is stored once per key (``corrections``); a run refers to
    # the keys it proposed (``run_proposals``, with what only that run saw); texts with
    # few distinct values are stored once (``words``); a run's exceptions are one
    # compressed blob, stored once per content. ``proposals`` becomes a view with the
    # columns the table had. See "Storage" in the module docstring.
    f"""
    CREATE TABLE words (
        id    INTEGER PRIMARY KEY,
        word  TEXT NOT NULL UNIQUE
    );
    CREATE TABLE corrections (
        id              INTEGER PRIMARY KEY,
        key             TEXT NOT NULL UNIQUE,
        userId          TEXT NOT NULL,
        learningPathId  INTEGER NOT NULL REFERENCES words(id),
        status          INTEGER NOT NULL REFERENCES words(id),
        completionDate  TEXT,
        timeStampDate   TEXT,
        category        INTEGER NOT NULL REFERENCES words(id),  -- as first proposed
        rows            TEXT,                                   -- as first proposed
        learner         TEXT,                                   -- as first proposed
        path            INTEGER REFERENCES words(id),           -- as first proposed
        payload         TEXT     -- NULL: exactly the plain JSON the view builds
    );
    CREATE TABLE run_proposals (
        run_id      INTEGER NOT NULL REFERENCES runs(id),
        correction  INTEGER NOT NULL REFERENCES corrections(id),
        seq         INTEGER NOT NULL,   -- the order of the run's proposals
        -- NULL: as the correction has it, else what this run saw ('' or 0: none)
        category    INTEGER,
        rows        TEXT,
        learner     TEXT,
        path        INTEGER,
        PRIMARY KEY (run_id, correction)
    ) WITHOUT ROWID;
    CREATE TABLE blobs (
        id      INTEGER PRIMARY KEY,
        sha256  TEXT NOT NULL UNIQUE,
        data    BLOB NOT NULL
    );
    ALTER TABLE runs ADD COLUMN exceptions INTEGER REFERENCES blobs(id);
    INSERT INTO words (word)
        SELECT learningPathId FROM proposals UNION SELECT status FROM proposals
        UNION SELECT category FROM proposals
        UNION SELECT path FROM proposals WHERE path IS NOT NULL;
    INSERT INTO corrections (key, userId, learningPathId, status, completionDate,
                             timeStampDate, category, rows, learner, path, payload)
        SELECT p.key, p.userId, wp.id, ws.id, p.completionDate, p.timeStampDate, wc.id,
               p.rows, p.learner, wa.id,
               CASE WHEN p.payload IS {
        _plain_payload("p.userId", "p.learningPathId", "p.status", "p")
    }
                    THEN NULL ELSE p.payload END
        FROM proposals p
        JOIN words wp ON wp.word = p.learningPathId
        JOIN words ws ON ws.word = p.status
        JOIN words wc ON wc.word = p.category
        LEFT JOIN words wa ON wa.word = p.path
        WHERE p.rowid IN (SELECT min(rowid) FROM proposals GROUP BY key)
        ORDER BY p.rowid;
    INSERT INTO run_proposals (run_id, correction, seq, category, rows, learner, path)
        SELECT p.run_id, c.id, p.rowid, {_OVERRIDES_SQL}
        FROM proposals p
        JOIN corrections c ON c.key = p.key
        JOIN words wc ON wc.word = p.category
        LEFT JOIN words wa ON wa.word = p.path;
    DROP TABLE proposals;
    {_PROPOSALS_VIEW}
    """,
)

# 5 (issue 14): suggestions, aliases and rejected suggestions; kept in recon.aliases and
# appended after every other step, so it follows schema 4 (payload storage) when merged.
MIGRATIONS = (*MIGRATIONS, ALIASES_MIGRATION)

# 6 (issue 14): `recon lms pull` (the LMS's learners and learning paths, and which pull a
# run read); kept in recon.lms_pull and appended as its own step.
MIGRATIONS = (*MIGRATIONS, LMS_PULL_MIGRATION)

# 7 (issue 12): a run's list of proposals and its suggestions are stored once per
# distinct content. A second run on the same inputs proposes the very same list, so it
# refers to the earlier run's (``runs.proposal_list``, ``runs.suggestion_list``: the id
# of the run that stored the list; ``*_sha256``: the list's digest, to find it again).
# The tables keep their rows and are renamed, ``run_id`` becoming ``list_id``; views with
# the old names and columns (``run_proposals``, ``suggestions``, ``proposals``) read
# them for every run. Runs recorded before this keep their own lists (no digest).
_LISTS_MIGRATION = (
    """
    DROP VIEW proposals;
    ALTER TABLE run_proposals RENAME TO proposal_lists;
    ALTER TABLE proposal_lists RENAME COLUMN run_id TO list_id;
    DROP INDEX IF EXISTS suggestions_run;
    ALTER TABLE suggestions RENAME TO suggestion_lists;
    ALTER TABLE suggestion_lists RENAME COLUMN run_id TO list_id;
    CREATE INDEX suggestion_lists_list ON suggestion_lists(list_id, row);
    ALTER TABLE runs ADD COLUMN proposal_list INTEGER REFERENCES runs(id);
    ALTER TABLE runs ADD COLUMN proposals_sha256 TEXT;
    ALTER TABLE runs ADD COLUMN suggestion_list INTEGER REFERENCES runs(id);
    ALTER TABLE runs ADD COLUMN suggestions_sha256 TEXT;
    UPDATE runs SET proposal_list = id, suggestion_list = id;
    CREATE VIEW run_proposals AS
    SELECT x.id AS run_id, l.correction, l.seq, l.category, l.rows, l.learner, l.path
    FROM runs x JOIN proposal_lists l ON l.list_id = x.proposal_list;
    CREATE VIEW suggestions AS
    SELECT x.id AS run_id, s.row, s.kind, s.value, s.candidate, s.candidate_id, s.score,
           s.reason, s.rank
    FROM runs x JOIN suggestion_lists s ON s.list_id = x.suggestion_list;
    CREATE VIEW proposals AS
    SELECT x.id AS run_id, c.key, c.userId, wp.word AS learningPathId, ws.word AS status,
           c.completionDate, c.timeStampDate, wc.word AS category,
           CASE WHEN r.rows IS NULL THEN c.rows ELSE nullif(r.rows, '') END AS rows,
           CASE WHEN r.learner IS NULL THEN c.learner ELSE nullif(r.learner, '') END
               AS learner,
           wa.word AS path,
           coalesce(c.payload, """
    + _plain_payload("c.userId", "wp.word", "ws.word", "c")
    + """)
               AS payload,
           r.seq AS rowid
    FROM runs x
    JOIN proposal_lists r ON r.list_id = x.proposal_list
    JOIN corrections c ON c.id = r.correction
    JOIN words wp ON wp.id = c.learningPathId
    JOIN words ws ON ws.id = c.status
    JOIN words wc ON wc.id = coalesce(r.category, c.category)
    LEFT JOIN words wa ON wa.id = CASE WHEN r.path IS NULL THEN c.path
                                       ELSE nullif(r.path, 0) END
"""
)
MIGRATIONS = (*MIGRATIONS, _LISTS_MIGRATION)

# What the attempts made before targets were recorded (target NULL) were declared to be.
LEGACY_THIS_LMS, LEGACY_PRACTICE = "this-lms", "practice"
LEGACY_CHOICES = (LEGACY_THIS_LMS, LEGACY_PRACTICE)

BEFORE_TARGETS = Target("(recorded before targets)", practice=False)
"""The pseudo-target of attempts made before schema 3 that nobody attributed yet."""

# Every attempt with the target it counts for: its own, or for one made before targets
# were recorded, what a person declared (:lms the bound LMS, :legacy the declaration).
_EFFECTIVE_SQL = """
    SELECT a.*,
           CASE WHEN a.target IS NOT NULL THEN a.target
                WHEN :legacy = 'this-lms' THEN :lms END AS t_url,
           CASE WHEN a.target IS NOT NULL THEN a.practice
                WHEN :legacy = 'this-lms' THEN 0
                WHEN :legacy = 'practice' THEN 1 END AS t_practice
    FROM attempts a
"""
# The attempts of one target (:url, :practice; both NULL: the unattributed old ones).
_SCOPED_SQL = f"""
    SELECT * FROM ({_EFFECTIVE_SQL}) WHERE t_url IS :url AND t_practice IS :practice
"""
# Per key: what its attempts to one target add up to, and its last attempt there (by id,
# i.e. time order).
_STATE_SQL = f"""
    WITH scoped AS ({_SCOPED_SQL}),
    agg AS (
        SELECT key,
               max(result = 'accepted') AS accepted,
               max(result = 'rejected') AS rejected,
               count(*) AS attempts,
               max(id) AS last_id
        FROM scoped GROUP BY key
    )
    SELECT agg.key, agg.accepted, agg.rejected, agg.attempts,
           a.result AS last_result, a.errors AS last_errors, a.http_status AS last_http_status
    FROM agg JOIN scoped a ON a.id = agg.last_id
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


# Ids are compared case-insensitively everywhere (the LMS's UUIDs have no case), so a
# `--path` filter folds both sides; categories and proposal keys are matched as written.
_ID_FOLD = {"category": "{}", "learningPathId": "lower({})", "key": "{}"}


def _fold(column: str, value: str) -> str:
    # ASCII only, as SQLite's lower() folds.
    if column != "learningPathId":
        return value
    return "".join(c.lower() if c.isascii() else c for c in value)


class Ledger:
    """The SQLite ledger. Safe to share between threads; open one per process.

    ``write_budget``: how long, in all, a write waits for a ledger another program holds
    locked before giving up with a :class:`LedgerError` (default 10 minutes).
    ``busy_timeout``: how long SQLite itself waits each time before recon tries again.
    """

    def __init__(
        self, path: str | Path, *, write_budget: float = 600.0, busy_timeout: float = 5.0
    ) -> None:
        self.path = Path(path)
        self.write_budget = write_budget
        self._lock = threading.RLock()
        self._broken: str | None = None
        self._wal_ids: dict[Path, tuple[int, int] | None] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=min(busy_timeout, write_budget),
            )
            self._db.row_factory = sqlite3.Row
            # Switching to WAL needs a moment alone with the file: many processes opening
            # a new ledger at once take turns here.
            mode = self._retry(
                lambda: self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0],
                "switching it to WAL mode",
            )
            if str(mode).lower() != "wal":
                raise LedgerError(
                    f"the ledger {self.path} cannot use WAL mode here (got {mode!r}); "
                    "keep it on a local disk"
                )
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            real = self.path.resolve()
            self._wal_ids = {
                real.with_name(real.name + suffix): None for suffix in ("-wal", "-shm")
            }
            self._check_wal()
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

    def _retry(self, action: Any, what: str) -> Any:
        """``action()``, tried again while another program holds the ledger locked, for
        up to :attr:`write_budget` seconds in all."""
        deadline = time.monotonic() + self.write_budget
        pause = 0.01
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise LedgerError(
                        f"the ledger {self.path} stayed locked by another program for "
                        f"{self.write_budget:g} s while {what}; recon gave up waiting. "
                        "Close whatever holds it (a database browser, a stuck recon) and "
                        "run again"
                    ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    @contextlib.contextmanager
    def _tx(self, what: str = "writing to it") -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_wal()
            self._retry(lambda: self._db.execute("BEGIN IMMEDIATE"), what)
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            # A log deleted while this transaction ran took the commit with it: save it.
            self._check_wal()

    def _check_wal(self) -> None:
        """Refuse to go on when the ``-wal`` or ``-shm`` file is not the one this
        connection uses: commits since would be lost at the next crash."""
        if self._broken:
            raise LedgerError(self._broken)
        changed = []
        for path, known in self._wal_ids.items():
            now = _file_id(path)
            if known is None:
                self._wal_ids[path] = now  # created since we looked: this is ours
            elif now != known:
                changed.append(path)
        if not changed:
            return
        saved = ""
        wal, shm = self._wal_ids
        if changed == [wal] and _file_id(wal) is None:
            # Only the log was deleted: this connection still holds it open, so copying
            # it into the ledger file now keeps every commit made so far.
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                saved = " recon copied what it had written into the ledger file;"
            except sqlite3.Error:
                saved = ""
        names = " and ".join(p.name for p in changed)
        self._broken = (
            f"{names} of the ledger {self.path} was deleted or replaced while recon was "
            f"using it (a clean-up job? never delete a ledger's -wal/-shm files while it is "
            f"open).{saved} recon stopped so that nothing more is written where it would be "
            "lost; run the command again"
        )
        raise LedgerError(self._broken)

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _frame(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> pd.DataFrame:
        with self._lock:
            cur = self._db.execute(sql, params)
            columns = [d[0] for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=columns)

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def _migrate(self) -> None:
        if self.schema_version == len(MIGRATIONS):
            return
        # Read the version and migrate in one locked transaction: of several processes
        # opening a new ledger at once, one migrates and the others find it done.
        with self._tx("migrating it") as db:
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            if current > len(MIGRATIONS):
                raise LedgerError(
                    f"{self.path} was written by a newer recon (schema {current}); upgrade recon"
                )
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
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
        """Store a reconcile run, its proposals and its suggestions; returns the run id
        (also set on result).

        A run's list of proposals, and its list of suggestions, are stored once per
        distinct content: a run proposing exactly what an earlier run did (the same
        inputs again) refers to that run's list, found by its digest, and adds little
        more than its line in ``runs``. A new list is stored in bulk (:func:`_store_proposals`):
        each new key's payload once (``corrections``), the list's references to its keys
        (``proposal_lists``)."""
        summary = result.to_dict()
        props = result.proposals
        texts = {name: _arrow_texts(props.get(name), len(props)) for name in _LIST_COLUMNS}
        digest = _digest(texts)
        suggested = _suggestion_rows(result.suggestions)
        # none: no list at all, so that one given later (record_suggestions) is the run's own
        suggested_digest = _rows_digest(suggested) if suggested else None
        exceptions = _exceptions_blob(result.exceptions)
        with self._tx() as db, progress_bar(4, "recording the run", unit="step") as bar:
            blob_id = _store_blob(db, exceptions)
            cur = db.execute(
                "INSERT INTO runs (created_at, as_of, config, inputs, counts, rows_read, "
                "proposals, problems, progress_ignored, timings, exceptions, "
                "proposals_sha256, suggestions_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    blob_id,
                    digest,
                    suggested_digest,
                ),
            )
            run_id = int(cur.lastrowid or 0)
            bar.update()
            proposal_list = _stored_list(db, "proposal", digest)
            if proposal_list is None:
                _store_proposals(db, run_id, texts)
                proposal_list = run_id
            bar.update()
            suggestion_list = None
            if suggested_digest is not None:
                suggestion_list = _stored_list(db, "suggestion", suggested_digest)
                if suggestion_list is None:
                    _store_suggestions(db, run_id, suggested)
                    suggestion_list = run_id
            db.execute(
                "UPDATE runs SET proposal_list = ?, suggestion_list = ? WHERE id = ?",
                (proposal_list, suggestion_list, run_id),
            )
            bar.update()
            db.executemany(
                "INSERT INTO run_completions VALUES (?, ?, ?, ?)",
                (
                    (run_id, str(r["month"])[:10], r["source"], int(r["completions"]))
                    for r in result.completions.to_dict("records")
                ),
            )
            bar.update()
        result.run_id = run_id
        return run_id

    def record_suggestions(self, run_id: int, found: pd.DataFrame) -> None:
        """Store suggestions for a run recorded without any (:meth:`record_run` stores a
        run's own): once per distinct content, as there."""
        rows = _suggestion_rows(found)
        if not rows:
            return
        digest = _rows_digest(rows)
        with self._tx("recording suggestions") as db:
            if not db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                raise LedgerError(f"the ledger {self.path} has no run {run_id}")
            if db.execute(
                "SELECT 1 FROM suggestions WHERE run_id = ? LIMIT 1", (run_id,)
            ).fetchone():
                raise LedgerError(f"run {run_id} has its suggestions recorded already")
            held = _stored_list(db, "suggestion", digest)
            if held is None:
                _store_suggestions(db, run_id, rows)
                held = run_id
            db.execute(
                "UPDATE runs SET suggestion_list = ?, suggestions_sha256 = ? WHERE id = ?",
                (held, digest, run_id),
            )

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

    def runs(self, target: Target | None = None) -> pd.DataFrame:
        """Every run with its outcome counts and what became of its proposals: accepted
        and refused by ``target`` (default: :meth:`home_target`, named in the frame's
        ``target`` column)."""
        target = target if target is not None else self.home_target()
        frame = self._frame(
            f"""
            WITH state AS ({_STATE_SQL})
            SELECT r.id AS run_id, r.created_at, r.as_of, r.rows_read, r.proposals,
                   r.problems, r.counts, r.inputs,
                   count(l.decision = 'approved' OR NULL) AS approved,
                   count(l.decision = 'rejected' OR NULL) AS declined,
                   count(s.accepted = 1 OR NULL) AS accepted,
                   count((s.rejected = 1 AND coalesce(s.accepted, 0) = 0) OR NULL)
                       AS refused
            FROM runs r
            -- the keys through the base tables: the view would build every column
            LEFT JOIN proposal_lists rp ON rp.list_id = r.proposal_list
            LEFT JOIN corrections p ON p.id = rp.correction
            -- the latest decision through the (key, id) index: a join with a grouped
            -- view of all decisions was scanned once per proposal (quadratic)
            LEFT JOIN decisions l ON l.id = (SELECT max(id) FROM decisions WHERE key = p.key)
            LEFT JOIN state s ON s.key = p.key
            GROUP BY r.id ORDER BY r.id
            """,
            self._scope(target),
        )
        frame["target"] = target.label if target is not None else None
        if not frame.empty:
            frame["counts"] = frame["counts"].map(json.loads)
            frame["inputs"] = frame["inputs"].map(json.loads)
        return frame

    def exceptions(self, run: str | int | None = "latest") -> pd.DataFrame:
        """A run's exceptions as exceptions.csv has them: ``row, outcome, detail`` and the
        row's original cells (a provider column may share a name with recon's)."""
        run_id = self.resolve_run(run)
        blob = self._query("SELECT exceptions FROM runs WHERE id = ?", (run_id,))[0][0]
        if blob is not None:
            data = self._query("SELECT data FROM blobs WHERE id = ?", (blob,))
            return _exceptions_frame(data[0][0])
        # recorded before schema 4: one row each
        exceptions = self._frame(
            "SELECT row, outcome, detail, original FROM run_exceptions WHERE run_id = ? "
            "ORDER BY row",
            (run_id,),
        )
        originals = pd.DataFrame([json.loads(t) for t in exceptions.pop("original")])
        return pd.concat([exceptions, originals], axis=1)

    def result(self, run: str | int | None = "latest") -> Result:
        """A run as a :class:`Result` (counts, proposals, exceptions, completions), read
        back from the ledger so a report of an old run needs no input file."""
        run_id = self.resolve_run(run)
        row = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))[0]
        proposals = self.proposals(run_id)
        exceptions = self.exceptions(run_id)
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
            counts=json.loads(row["counts"]),
            timings=json.loads(row["timings"] or "{}"),
            progress_ignored=int(row["progress_ignored"]),
            run_id=run_id,
            config_path=row["config"],
        )
        return result

    def accepted_keys(self, target: Target | None = None) -> set[str]:
        """Keys ``target`` has accepted at some point: never to be sent to it or proposed
        again. Default: the ledger's real LMS (none before it is bound); practice
        acceptances never count for it."""
        scope = self._scope(target or self._lms_or_nothing())
        rows = self._query(
            f"SELECT DISTINCT key FROM ({_SCOPED_SQL}) WHERE result = :accepted",
            {**scope, "accepted": ACCEPTED},
        )
        return {r[0] for r in rows}

    # -- targets --------------------------------------------------------------------------

    def binding(self) -> dict[str, Any] | None:
        """The real LMS this ledger belongs to: ``{target, bound_at, legacy, legacy_at,
        legacy_by}``, or None before its first real submit."""
        rows = self._query("SELECT target, bound_at, legacy, legacy_at, legacy_by FROM lms")
        return dict(rows[0]) if rows else None

    def lms(self) -> Target | None:
        """The bound LMS as a :class:`Target`, or None."""
        bound = self.binding()
        return Target(bound["target"], practice=False) if bound else None

    def _lms_or_nothing(self) -> Target:
        # Before a ledger is bound no real LMS has accepted anything: a target no attempt
        # has stands for "none".
        return self.lms() or Target("", practice=False)

    def home_target(self) -> Target | None:
        """The target views show by default: the bound LMS; before there is one, the
        target of the latest attempt (a practice sandbox); else the attempts recorded
        before targets (:data:`BEFORE_TARGETS`) when there are any; else None."""
        bound = self.lms()
        if bound is not None:
            return bound
        rows = self._query(
            "SELECT target, practice FROM attempts WHERE target IS NOT NULL "
            "ORDER BY id DESC LIMIT 1"
        )
        if rows:
            return Target(rows[0][0], practice=bool(rows[0][1]))
        if self._query("SELECT 1 FROM attempts WHERE target IS NULL LIMIT 1"):
            return BEFORE_TARGETS
        return None

    def _scope(self, target: Target | None) -> dict[str, Any]:
        """The SQL parameters selecting ``target``'s attempts (see ``_EFFECTIVE_SQL``)."""
        bound = self.binding()
        params: dict[str, Any] = {
            "lms": bound["target"] if bound else None,
            "legacy": bound["legacy"] if bound else None,
        }
        if target is None or target == BEFORE_TARGETS:
            return {**params, "url": None, "practice": None}
        return {**params, "url": target.url, "practice": int(target.practice)}

    def targets(self) -> pd.DataFrame:
        """One line per target attempts went to, first used first: ``target`` (its label),
        ``url``, ``practice``, ``bound`` (the ledger's LMS), ``attempts``, ``accepted`` and
        ``rejected`` (proposal keys), ``first_at``, ``last_at``. Attempts recorded before
        targets appear as :data:`BEFORE_TARGETS` until attributed."""
        frame = self._frame(
            f"""
            SELECT t_url AS url, t_practice AS practice, count(*) AS attempts,
                   count(DISTINCT CASE WHEN result = 'accepted' THEN key END) AS accepted,
                   count(DISTINCT CASE WHEN result = 'rejected' THEN key END) AS rejected,
                   min(started_at) AS first_at, max(started_at) AS last_at
            FROM ({_EFFECTIVE_SQL}) GROUP BY t_url, t_practice ORDER BY min(id)
            """,
            self._scope(None),
        )
        bound = self.binding()
        bound_url = bound["target"] if bound else None
        urls = [None if pd.isna(u) else str(u) for u in frame["url"]]
        flags = [None if pd.isna(p) else bool(p) for p in frame["practice"]]

        def label(url: str | None, practice: bool | None) -> str:
            if url is None:
                return "practice (recorded before targets)" if practice else BEFORE_TARGETS.url
            return Target(url, practice=bool(practice)).label + (f" ({url})" if practice else "")

        frame.insert(0, "target", [label(u, p) for u, p in zip(urls, flags, strict=True)])
        frame["url"] = urls
        frame["practice"] = pd.Series(flags, index=frame.index, dtype=object)
        frame["bound"] = [
            bound_url is not None and u == bound_url and p is False
            for u, p in zip(urls, flags, strict=True)
        ]
        return frame

    def unattributed(self) -> dict[str, int]:
        """Answered attempts recorded before targets that nobody attributed yet, by
        result (``accepted``, ``rejected``): they count for no target."""
        bound = self.binding()
        if bound and bound["legacy"]:
            return {}
        rows = self._query(
            "SELECT result, count(DISTINCT key) FROM attempts WHERE target IS NULL "
            "AND result IN (?, ?) GROUP BY result",
            (ACCEPTED, REJECTED),
        )
        return {r[0]: int(r[1]) for r in rows}

    def check_target(
        self,
        target: Target,
        *,
        configured: str | None = None,
        legacy: str | None = None,
    ) -> None:
        """Make sure a submit may go to ``target`` before anything is sent; raises
        :class:`TargetError` saying why not and the way out.

        A practice target is always allowed. A real one must be the ledger's LMS, or bind
        an unbound ledger to it (done here), and must be the LMS ``configured`` names
        (recon.toml's ``[lms] base_url``) when given. A ledger holding answered attempts
        recorded before targets needs ``legacy`` (``"this-lms"`` or ``"practice"``, see
        the module docstring) the first time; the answer is stored.
        """
        from .target import target_url

        if legacy is not None and legacy not in LEGACY_CHOICES:
            raise TargetError(f"--legacy-attempts is 'this-lms' or 'practice', not {legacy!r}")
        way_out = (
            f"To submit to {target.url}, use a new ledger for it (--ledger NEW.db, or move "
            f"{self.path.name} away, then reconcile into it)"
        )
        named = target_url(configured) if configured else None
        bound = self.binding()
        if named and bound and bound["target"] != named:
            raise TargetError(
                f"the ledger {self.path} belongs to the LMS {bound['target']}, but recon.toml's "
                f"[lms] base_url names {named}. Nothing was sent. Correct base_url, or use a "
                "new ledger for that LMS (--ledger NEW.db)"
            )
        if target.practice:
            return
        if named and target.url != named:
            raise TargetError(
                f"this submit goes to {target.url}, but recon.toml's [lms] base_url names "
                f"{named}. Nothing was sent. Check --base-url / TI_BASE_URL. {way_out} and "
                "correct base_url"
            )
        if bound and bound["target"] != target.url:
            raise TargetError(
                f"the ledger {self.path} belongs to the LMS {bound['target']} (bound by its "
                f"first real submit, {bound['bound_at']}); this submit goes to {target.url}. "
                f"Nothing was sent. {way_out}"
            )
        pending = self.unattributed()
        if pending and legacy is None:
            answered = ", ".join(f"{n:,} {r}" for r, n in sorted(pending.items()))
            raise TargetError(
                f"the ledger {self.path} holds answered attempts ({answered}) recorded before "
                "recon recorded where submissions go: recon cannot tell whether they went to "
                f"{target.url} or to a practice sandbox. Nothing was sent. Say it once: "
                f"--legacy-attempts this-lms if they went to {target.url} (they count for it "
                "and are not sent again), or --legacy-attempts practice if they were practice "
                "(the notebooks without TI_BASE_URL, recon demo): they are then sent to "
                f"{target.url}"
            )
        with self._tx("binding it to its LMS") as db:
            row = db.execute("SELECT target, legacy FROM lms").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO lms (id, target, bound_at) VALUES (1, ?, ?)",
                    (target.url, now_iso()),
                )
            elif row[0] != target.url:  # bound by another process since we looked
                raise TargetError(
                    f"the ledger {self.path} belongs to the LMS {row[0]}; this submit goes "
                    f"to {target.url}. Nothing was sent. {way_out}"
                )
            if pending:
                db.execute(
                    "UPDATE lms SET legacy = ?, legacy_at = ?, legacy_by = ?",
                    (legacy, now_iso(), _login()),
                )

    # -- proposals and decisions ----------------------------------------------------------

    def proposals(
        self, run: str | int | None = "latest", target: Target | None = None
    ) -> pd.DataFrame:
        """A run's proposals with their latest decision and submission state.

        ``decision``: undecided, approved or rejected (the same for every target).
        ``submission``, at ``target`` (default: :meth:`home_target`, named in the
        ``target`` column): not-sent, accepted, rejected (by the API), failed, unknown
        (sent, answer never recorded).
        """
        run_id = self.resolve_run(run)
        target = target if target is not None else self.home_target()
        frame = self._frame(
            f"""
            WITH state AS ({_STATE_SQL})
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
            -- the latest decision through the (key, id) index: a join with a grouped
            -- view of all decisions was scanned once per proposal (quadratic)
            LEFT JOIN decisions l ON l.id = (SELECT max(id) FROM decisions WHERE key = p.key)
            LEFT JOIN state s ON s.key = p.key
            WHERE p.run_id = :run_id
            ORDER BY p.rowid
            """,
            {**self._scope(target), "run_id": run_id},
        )
        frame["target"] = target.label if target is not None else None
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
        paths = self.path_ids(run_id, paths)
        # A typo must not quietly decide nothing: every value named must exist in the run.
        for column, values, what in (
            ("category", categories, "category"),
            ("learningPathId", paths, "learning path"),
            ("key", keys, "key"),
        ):
            if not values:
                continue
            marks = ", ".join("?" * len(values))
            fold = _ID_FOLD[column]
            present = {
                r[0]
                for r in self._query(
                    f"SELECT DISTINCT {fold.format(column)} FROM proposals WHERE run_id = ? "
                    f"AND {fold.format(column)} IN ({marks})",
                    (run_id, *(_fold(column, v) for v in values)),
                )
            }
            missing = [v for v in values if _fold(column, v) not in present]
            if missing:
                raise LedgerError(
                    f"run {run_id} has no proposal with {what} {missing[0]!r}"
                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                )
        sql = "SELECT key FROM proposals WHERE run_id = ?"
        params: list[Any] = [run_id]
        for column, values in (("category", categories), ("learningPathId", paths), ("key", keys)):
            if values:
                sql += f" AND {_ID_FOLD[column].format(column)} IN ({', '.join('?' * len(values))})"
                params.extend(_fold(column, v) for v in values)
        return [r[0] for r in self._query(sql + " ORDER BY rowid", params)]

    def path_ids(self, run: str | int | None, paths: Iterable[str]) -> list[str]:
        """Learning path ids for ``paths``, each an LMS id or the provider's course code
        (any case) as the run's proposals name it. A value that is neither stops with the
        codes the run does have."""
        run_id = self.resolve_run(run)
        ids: list[str] = []
        for value in paths:
            if self._query(
                "SELECT 1 FROM proposals WHERE run_id = ? AND lower(learningPathId) = lower(?) "
                "LIMIT 1",
                (run_id, value),
            ):
                ids.append(value)
                continue
            found = [
                r[0]
                for r in self._query(
                    "SELECT DISTINCT learningPathId FROM proposals WHERE run_id = ? "
                    "AND lower(trim(path)) = lower(trim(?)) ORDER BY 1",
                    (run_id, value),
                )
            ]
            if not found:
                codes = self._code_spellings(run_id)
                shown = ", ".join(codes[:20]) + (
                    f" (and {len(codes) - 20} more)" if len(codes) > 20 else ""
                )
                raise LedgerError(
                    f"run {run_id} has no proposal with learning path {value!r} (neither an "
                    f"LMS id nor a course code of the run); its course codes: {shown or 'none'}"
                )
            ids.extend(found)
        return list(dict.fromkeys(ids))

    def _code_spellings(self, run_id: int) -> list[str]:
        """The run's course codes, one spelling each (the one its proposals use most),
        sorted."""
        best: dict[str, tuple[int, str]] = {}
        for folded, spelled, n in self._query(
            "SELECT lower(trim(path)), trim(path), count(*) FROM proposals WHERE run_id = ? "
            "AND trim(coalesce(path, '')) <> '' GROUP BY 1, 2",
            (run_id,),
        ):
            held = best.get(folded)
            # the most used spelling; on a tie the first in sorted order (as recon.fmt)
            if held is None or n > held[0] or (n == held[0] and spelled < held[1]):
                best[folded] = (n, spelled)
        return sorted(spelled for _, spelled in best.values())

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
        Committed at once: a kernel restart or a second analyst sees it. The keys go
        into a temporary table and a few statements check, read and write them all, so
        one click and an "all matching" over 100,000 proposals take the same path (per
        500 keys, 89,649 keys took 8 s).
        """
        if decision not in ("approved", "rejected"):
            raise LedgerError(f"a decision is 'approved' or 'rejected', not {decision!r}")
        run_id = self.resolve_run(run)
        keys = list(dict.fromkeys(keys))
        at = now_iso()
        with self._tx() as db:
            db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS decide_keys (seq INTEGER PRIMARY KEY, key TEXT)"
            )
            db.execute("DELETE FROM temp.decide_keys")
            db.executemany("INSERT INTO temp.decide_keys (key) VALUES (?)", ((k,) for k in keys))
            unknown = [
                r[0]
                for r in db.execute(
                    "SELECT b.key FROM temp.decide_keys b WHERE NOT EXISTS (SELECT 1 FROM "
                    "corrections c CROSS JOIN run_proposals r ON r.run_id = ? AND "
                    "r.correction = c.id WHERE c.key = b.key) ORDER BY b.seq",
                    (run_id,),
                )
            ]
            if unknown:
                raise LedgerError(
                    f"run {run_id} has no proposal with key {unknown[0]!r}"
                    + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
                )
            decided: dict[str, dict[str, Any]] = {}
            if only_undecided:
                rows = db.execute(
                    "SELECT b.key, d.decision, d.by, d.at, d.note, d.policy "
                    "FROM temp.decide_keys b JOIN decisions d ON d.id = "
                    "(SELECT max(id) FROM decisions WHERE key = b.key) ORDER BY b.seq"
                )
                names = ("decision", "by", "at", "note", "policy")
                decided = {r[0]: dict(zip(names, r[1:], strict=True)) for r in rows}
            db.execute(
                "INSERT INTO decisions (run_id, key, decision, by, at, note, policy) "
                "SELECT ?, b.key, ?, ?, ?, ?, ? FROM temp.decide_keys b "
                "WHERE NOT (? AND EXISTS (SELECT 1 FROM decisions d WHERE d.key = b.key)) "
                "ORDER BY b.seq",
                (run_id, decision, by, at, note, policy, int(only_undecided)),
            )
            db.execute("DELETE FROM temp.decide_keys")
        todo = tuple(k for k in keys if k not in decided)
        return Decided(decision, todo, tuple(k for k in keys if k in decided), decided)

    # -- submissions ----------------------------------------------------------------------

    def to_send(
        self, run: str | int | None = "latest", target: Target | None = None
    ) -> pd.DataFrame:
        """Approved proposals of a run that still need sending to ``target`` (default: the
        ledger's real LMS): never sent there, failed, or unknown (sent but never
        answered). Accepted and API-rejected ones are final, for the target that answered."""
        frame = self.proposals(run, target or self._lms_or_nothing())
        mask = (frame["decision"] == "approved") & frame["submission"].isin(
            ["not-sent", "failed", "unknown"]
        )
        return frame[mask].reset_index(drop=True)

    def still_to_send(self, key: str, target: Target) -> bool:
        """True while ``key``'s latest decision is ``approved`` and ``target`` has given it
        no final answer: checked just before each request, so a proposal rejected while a
        submit runs is not sent."""
        rows = self._query(
            "SELECT (SELECT decision FROM decisions WHERE key = :key ORDER BY id DESC LIMIT 1), "
            f"EXISTS (SELECT 1 FROM ({_SCOPED_SQL}) WHERE key = :key "
            "AND result IN (:accepted, :rejected))",
            {**self._scope(target), "key": key, "accepted": ACCEPTED, "rejected": REJECTED},
        )
        decision, settled = rows[0]
        return decision == "approved" and not settled

    def begin_attempt(self, key: str, run_id: int | None, target: Target) -> int:
        """Commit an attempt to ``target`` before its request goes out; returns its id.

        The first attempt to a real LMS binds the ledger to it; one to another real LMS
        is refused (:class:`TargetError`), whatever the caller checked before."""
        with self._tx(f"recording an attempt to send {key}") as db:
            if not target.practice:
                row = db.execute("SELECT target FROM lms").fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO lms (id, target, bound_at) VALUES (1, ?, ?)",
                        (target.url, now_iso()),
                    )
                elif row[0] != target.url:
                    raise TargetError(
                        f"the ledger {self.path} belongs to the LMS {row[0]}, not {target.url}"
                    )
            cur = db.execute(
                "INSERT INTO attempts (run_id, key, started_at, target, practice) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, key, now_iso(), target.url, int(target.practice)),
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
        """Commit an attempt's answer. A busy ledger is waited for (see ``write_budget``):
        an answered request is never given up on while there is time."""
        what = (
            f"recording the API's answer (HTTP {http_status}, {result}) of attempt "
            f"{attempt_id}: that record stays 'unknown' and the next submit sends it again, "
            "which is safe"
        )
        with self._tx(what) as db:
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

    def activity_per_run(self, target: Target | None = None) -> pd.DataFrame:
        """What happened during each run: ``approved``/``declined``, the proposals whose
        last decision made while that run was reviewed says so; ``accepted``/``refused``,
        the proposals ``target`` (default: :meth:`home_target`) accepted or refused in
        attempts made for that run. A decision or an acceptance counts once, in its run,
        never again in earlier runs that proposed the same correction."""
        target = target if target is not None else self.home_target()
        decided = self._frame(
            """
            SELECT d.run_id,
                   count(d.decision = 'approved' OR NULL) AS approved,
                   count(d.decision = 'rejected' OR NULL) AS declined
            FROM decisions d
            WHERE d.id = (SELECT max(id) FROM decisions x
                          WHERE x.key = d.key AND x.run_id = d.run_id)
            GROUP BY d.run_id
            """
        )
        answered = self._frame(
            f"""
            WITH per_key AS (
                SELECT run_id, key, max(result = :accepted) AS accepted,
                       max(result = :rejected) AS rejected
                FROM ({_SCOPED_SQL}) WHERE run_id IS NOT NULL GROUP BY run_id, key
            )
            SELECT run_id, count(accepted = 1 OR NULL) AS accepted,
                   count((rejected = 1 AND accepted = 0) OR NULL) AS refused
            FROM per_key GROUP BY run_id
            """,
            {**self._scope(target), "accepted": ACCEPTED, "rejected": REJECTED},
        )
        ids = self._frame("SELECT id AS run_id FROM runs ORDER BY id")
        frame = ids.merge(decided, on="run_id", how="left").merge(answered, on="run_id", how="left")
        columns = ["approved", "declined", "accepted", "refused"]
        frame[columns] = frame[columns].fillna(0).astype(int)
        return frame

    def runs_by_activity(self, target: Target | None = None) -> pd.DataFrame:
        """:meth:`runs` with ``approved``, ``declined``, ``accepted`` and ``refused`` as
        :meth:`activity_per_run` counts them: in the run during which they happened."""
        runs = self.runs(target)
        if runs.empty:
            return runs
        columns = ["approved", "declined", "accepted", "refused"]
        activity = self.activity_per_run(target).set_index("run_id")[columns]
        runs[columns] = activity.reindex(runs["run_id"]).to_numpy()
        return runs

    def decisions_of(self, key: str) -> pd.DataFrame:
        """Every decision ever made about one proposal key, oldest first."""
        return self._frame(
            "SELECT run_id, decision, by, at, note, policy FROM decisions WHERE key = ? "
            "ORDER BY id",
            (key,),
        )

    def attempts_of(self, key: str) -> pd.DataFrame:
        """Every attempt to send one proposal key, oldest first, with its target."""
        return self._frame(
            "SELECT run_id, started_at, finished_at, target, practice, result, http_status, "
            "errors FROM attempts WHERE key = ? ORDER BY id",
            (key,),
        )

    # -- the review's reads (recon.review_model): lean for the whole run, full per page ----

    def review_rows(
        self, run: str | int | None = "latest", target: Target | None = None
    ) -> tuple[pd.DataFrame, dict[int, str]]:
        """The columns the review widget filters, counts and pages by, for every proposal
        of a run in ledger order, and ``words`` (word id -> text) for the id columns.

        ``correction`` (its id, for :meth:`review_page`), ``key``, ``who`` (learner, a
        space, user id), ``path_word``/``code_word``/``category_word`` (word ids of the
        learning path id, the course code (0: none) and the category), ``day`` (the
        first 10 characters of the completion or activity date), ``decision_id``
        (0: none); ``decision``, ``submission``, ``attempts``, ``api_errors`` and
        ``http_status`` as :meth:`proposals` has them. Ids and codes rather than text:
        reading 100,000 proposals' every column, the payload the view builds included,
        is what made the review slow to open.
        """
        run_id = self.resolve_run(run)
        target = target if target is not None else self.home_target()
        with self._lock:
            cursor = self._db.cursor()
            cursor.row_factory = None  # plain tuples: a Row object per proposal costs
            rows = cursor.execute(
                f"""
                WITH state AS ({_STATE_SQL})
                SELECT r.seq, r.correction, c.key,
                       coalesce(CASE WHEN r.learner IS NULL THEN c.learner
                                     ELSE nullif(r.learner, '') END, '') || ' ' || c.userId,
                       c.learningPathId,
                       coalesce(CASE WHEN r.path IS NULL THEN c.path
                                     ELSE nullif(r.path, 0) END, 0),
                       coalesce(r.category, c.category),
                       substr(coalesce(c.completionDate, c.timeStampDate), 1, 10),
                       coalesce(l.id, 0), coalesce(l.decision, 'undecided'),
                       CASE WHEN s.accepted = 1 THEN 'accepted'
                            WHEN s.rejected = 1 THEN 'rejected'
                            WHEN s.key IS NULL THEN 'not-sent'
                            WHEN s.last_result IS NULL THEN 'unknown'
                            WHEN s.last_result = 'stopped' THEN 'not-sent'
                            ELSE 'failed' END,
                       coalesce(s.attempts, 0), s.last_errors, s.last_http_status
                FROM run_proposals r
                JOIN corrections c ON c.id = r.correction
                -- the latest decision through the (key, id) index, as proposals()
                LEFT JOIN decisions l ON l.id = (SELECT max(id) FROM decisions WHERE key = c.key)
                LEFT JOIN state s ON s.key = c.key
                WHERE r.run_id = :run_id
                """,
                {**self._scope(target), "run_id": run_id},
            ).fetchall()
            words = {int(i): str(w) for i, w in self._db.execute("SELECT id, word FROM words")}
        names = (
            "seq", "correction", "key", "who", "path_word", "code_word", "category_word", "day",
            "decision_id", "decision", "submission", "attempts", "api_errors", "http_status",
        )  # fmt: skip
        ints = {"correction", "path_word", "code_word", "category_word", "decision_id", "attempts"}
        # One object array of every cell (built in C, no Python step per proposal), cut
        # into columns; in the run's order (seq), sorted here: an ORDER BY made SQLite
        # sort every row with its texts before returning the first.
        cells = np.array(rows, dtype=object).reshape(len(rows), len(names))
        cells = cells[np.argsort(cells[:, 0].astype(np.int64), kind="stable")]
        # Texts stay Python objects (dtype object): pandas would otherwise turn each text
        # column of the whole run into its string type, and the review works on objects.
        frame = pd.DataFrame(
            {
                name: cells[:, at].astype(np.int64)
                if name in ints
                else pd.Series(cells[:, at], dtype=object)
                for at, name in enumerate(names)
                if at
            }
        )
        return frame, words

    def review_page(
        self, run: str | int | None, corrections: Iterable[int], decision_ids: Iterable[int]
    ) -> pd.DataFrame:
        """For a few proposals of a run (by correction id; one row each, in no particular
        order): the columns of the ``proposals`` view with ``correction``, and the
        decision columns of :meth:`proposals` (``decision``, ``decided_by``,
        ``decided_at``, ``note``, ``policy``) from the decisions ``decision_ids`` (one per
        correction, 0: none): those :meth:`review_rows` read, so a page shows the run as
        it was read, not what another analyst decided since."""
        run_id = self.resolve_run(run)
        pairs = [(int(c), int(d)) for c, d in zip(corrections, decision_ids, strict=True)]
        if not pairs:
            pairs = [(0, 0)]  # VALUES needs a row; correction 0 does not exist
        values = ", ".join("(?, ?)" for _ in pairs)
        # The view's own SELECT (the same columns by the same rules), by correction id:
        # through the view a key would be looked for in the whole run.
        body = _PROPOSALS_VIEW.split(" AS", 1)[1].replace(
            "r.seq AS rowid", "r.seq AS rowid, r.correction"
        )
        return self._frame(
            f"""
            WITH wanted(correction, decision_id) AS (VALUES {values})
            SELECT p.run_id, p.key, p.userId, p.learningPathId, p.status, p.completionDate,
                   p.timeStampDate, p.category, p.rows, p.learner, p.path, p.payload,
                   coalesce(l.decision, 'undecided') AS decision, l.by AS decided_by,
                   l.at AS decided_at, l.note, l.policy, p.correction
            FROM ({body} WHERE r.run_id = ? AND r.correction IN
                  (SELECT correction FROM wanted)) p
            JOIN wanted w ON w.correction = p.correction
            LEFT JOIN decisions l ON l.id = w.decision_id
            """,
            (*(v for pair in pairs for v in pair), run_id),
        )


# The columns of a run's list of proposals, as stored (after ``id``; then ``payload``)
# and digested.
_LIST_COLUMNS = (
    "key",
    "userId",
    "learningPathId",
    "status",
    "completionDate",
    "timeStampDate",
    "category",
    "rows",
    "learner",
    "path",
)


# The columns of a list stored as word ids (``words``), not as text.
_WORD_COLUMNS = ("learningPathId", "status", "category", "path")


def payload_texts(texts: dict[str, Any]) -> list[str | None]:
    """Each proposal's request body as the ledger stores it (``texts``: the
    ``PAYLOAD_FIELDS`` as :func:`_arrow_texts`): ``None`` where the body is the plain JSON
    the ``proposals`` view builds from the columns (every value matches ``_PLAIN``, the
    dates may be missing), else the exact text of ``json.dumps(payload(row),
    separators=(",", ":"))``. The test runs in Arrow; only the rare other rows take a
    Python step."""
    import pyarrow.compute as pc

    odd = None
    for name in PAYLOAD_FIELDS:
        ok = pc.match_substring_regex(texts[name], f"^{_PLAIN}$")
        if name in ("completionDate", "timeStampDate"):
            ok = pc.or_kleene(ok, pc.is_null(texts[name]))
        bad = pc.invert(pc.fill_null(ok, False))
        odd = bad if odd is None else pc.or_(odd, bad)
    bodies: list[str | None] = [None] * len(texts[PAYLOAD_FIELDS[0]])
    for at in pc.indices_nonzero(odd).to_pylist():
        record = {name: texts[name][at].as_py() for name in PAYLOAD_FIELDS}
        bodies[at] = json.dumps(payload(record), separators=(",", ":"))
    return bodies


def _texts(column: pd.Series) -> pd.Series:
    """A column as text (None where empty), without a Python step per value."""
    return column.astype("string").astype(object).where(column.notna(), None)


def _arrow_texts(column: pd.Series | None, rows: int) -> Any:
    """A column as Arrow text (null where empty; all null when there is no such column),
    taken as it is when it holds text already."""
    import pyarrow as pa

    if column is None:
        return pa.nulls(rows, pa.large_string())
    try:
        array = pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        array = None
    if array is None or not (
        pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
    ):
        array = pa.array(_texts(column), pa.large_string(), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def _digest(texts: dict[str, Any]) -> str:
    """sha256 of text columns (:func:`_arrow_texts`): their names, which values are null,
    each value's length and bytes. Equal digests: equal columns."""
    import numpy as np

    digest = hashlib.sha256()
    for name, array in texts.items():
        _, offsets, data = array.buffers()
        ends = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
        digest.update(f"{name}\x00{len(array)}\x00".encode())
        digest.update(array.is_null().to_numpy(zero_copy_only=False).tobytes())
        digest.update((ends - ends[0]).tobytes())
        if data is not None:
            digest.update(memoryview(data)[int(ends[0]) : int(ends[-1])])
    return digest.hexdigest()


def _stored_list(db: sqlite3.Connection, what: str, digest: str) -> int | None:
    """The list (``proposal`` or ``suggestion``) an earlier run stored with ``digest``."""
    row = db.execute(
        f"SELECT {what}_list FROM runs WHERE {what}s_sha256 = ? AND {what}_list IS NOT NULL "
        "ORDER BY id LIMIT 1",
        (digest,),
    ).fetchone()
    return None if row is None else int(row[0])


def _store_proposals(db: sqlite3.Connection, list_id: int, texts: dict[str, Any]) -> None:
    """Store a run's proposals (:func:`_arrow_texts` columns) as list ``list_id``: each
    new key's fields once (``corrections``), the list's references to its keys
    (``proposal_lists``: its order, and what it saw differently from a key's first
    proposal).

    Fast for the big first run: new keys go in sorted (ids in key order, so the table and
    its unique index on random keys grow at their ends), through one ``executemany`` and
    no join; their references are one ``INSERT ... SELECT`` over a JSON array of their
    positions. Only references to keys stored before take a Python step each."""
    import pyarrow as pa
    import pyarrow.compute as pc

    words = _word_ids(db, {name: texts[name] for name in _WORD_COLUMNS})
    keys = texts["key"]
    held: list[tuple[Any, ...]] = []
    if db.execute("SELECT 1 FROM corrections LIMIT 1").fetchone():
        # the list's keys stored before (position in the list, their correction), by id;
        # CROSS JOIN: SQLite walks the list and looks each key up, never the other way
        lookup = db.cursor()
        lookup.row_factory = None  # plain tuples: they may be many
        held = lookup.execute(
            "SELECT j.key, c.id, c.category, c.rows, c.learner, c.path "
            "FROM json_each(?) j CROSS JOIN corrections c ON c.key = j.value ORDER BY c.id",
            (_json_list(keys.to_pylist()),),
        ).fetchall()
    if held:
        _refer_to_held(db, list_id, held, texts, words)
    fresh = np.ones(len(keys), dtype=bool)
    fresh[[int(row[0]) for row in held]] = False
    at = pa.array(np.flatnonzero(fresh))
    at = at.take(pc.sort_indices(keys.take(at)))  # in key order
    new = {name: column.take(at) for name, column in texts.items()}
    values = [(words[n].take(at) if n in words else new[n]).to_pylist() for n in _LIST_COLUMNS]
    first = int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM corrections").fetchone()[0])
    db.executemany(
        f"INSERT INTO corrections (id, {', '.join(_LIST_COLUMNS)}) "
        f"VALUES ({', '.join('?' * (len(_LIST_COLUMNS) + 1))})",
        zip(range(first, first + len(at)), *values, strict=True),
    )
    # payload NULL: the plain JSON the view builds; the few others are stored as sent
    db.executemany(
        "UPDATE corrections SET payload = ? WHERE id = ?",
        ((body, first + i) for i, body in enumerate(payload_texts(new)) if body is not None),
    )
    # the i-th new correction (id first + i) is the list's proposal at[i] (seq at[i] + 1),
    # proposed first by this very list: nothing differs
    db.execute(
        "INSERT INTO proposal_lists (list_id, correction, seq) "
        "SELECT ?, ? + j.key, j.value + 1 FROM json_each(?) j",
        (list_id, first, _json_list(at.to_pylist())),
    )


def _refer_to_held(
    db: sqlite3.Connection,
    list_id: int,
    held: list[tuple[Any, ...]],
    texts: dict[str, Any],
    words: dict[str, Any],
) -> None:
    """The list's references to keys stored before (``held``: position in the list,
    correction id and the category, rows, learner and path it was first proposed with),
    with what this list saw differently as ``_OVERRIDES_SQL`` has it: NULL the same,
    else the value ('' or 0: none). Compared in Arrow, a column at a time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    at, ids, *first = (list(column) for column in zip(*held, strict=True))
    positions = pa.array(at, pa.int64())
    overrides = []
    for (name, none), stored in zip(_OVERRIDDEN, first, strict=True):
        mine = (words[name] if name in words else texts[name]).take(positions)
        stored_array = pa.array(stored, mine.type)
        same = pc.or_kleene(
            pc.fill_null(pc.equal(mine, stored_array), False),
            pc.and_(pc.is_null(mine), pc.is_null(stored_array)),
        )
        told = pc.fill_null(mine, pa.scalar(none, mine.type))
        overrides.append(pc.if_else(same, pa.scalar(None, mine.type), told).to_pylist())
    db.executemany(
        "INSERT INTO proposal_lists (list_id, correction, seq, category, rows, learner, path) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        zip([list_id] * len(ids), ids, (p + 1 for p in at), *overrides, strict=True),
    )


# What a list may see differently from a key's first proposal, and what stands for "none"
# (``_OVERRIDES_SQL``): category is never none.
_OVERRIDDEN = (("category", 0), ("rows", ""), ("learner", ""), ("path", 0))


def _word_ids(db: sqlite3.Connection, columns: dict[str, Any]) -> dict[str, Any]:
    """Each text column (Arrow) as the ids of its words (null where the text is null),
    storing the words ``words`` lacks. One step per distinct word: they are few."""
    import pyarrow as pa
    import pyarrow.compute as pc

    distinct = pc.unique(pa.concat_arrays(list(columns.values()))).drop_null()
    ids = []
    for word in distinct.to_pylist():
        db.execute("INSERT OR IGNORE INTO words (word) VALUES (?)", (word,))
        ids.append(db.execute("SELECT id FROM words WHERE word = ?", (word,)).fetchone()[0])
    known = pa.array(ids, pa.int64())
    return {
        name: known.take(pc.index_in(column, value_set=distinct))
        for name, column in columns.items()
    }


def _json_list(values: list[Any]) -> str:
    """Values as one JSON array: a whole column in one parameter, for SQL's ``json_each``
    (no Python step per value on SQLite's side)."""
    return json.dumps(values, ensure_ascii=False)


def _optional_texts(column: pd.Series) -> list[str | None]:
    return [
        None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in column
    ]


def _suggestion_rows(found: pd.DataFrame) -> list[tuple[Any, ...]]:
    """A run's suggestions as ``suggestion_lists`` holds them (after ``list_id``): row,
    kind, value, candidate, candidate_id, score, reason and rank within the row and kind.
    A Python step per suggestion: they are few (one per unknown value's candidate)."""
    if found.empty:
        return []
    rank = found.groupby(["row", "kind"]).cumcount() + 1
    # in one order whatever order they came in: equal suggestions, equal digests
    return sorted(
        zip(
            found["row"].astype("int64").tolist(),
            [str(v) for v in found["kind"]],
            [str(v) for v in found["value"]],
            _optional_texts(found["candidate"]),
            _optional_texts(found["candidate_id"]),
            [None if pd.isna(v) else float(v) for v in found["score"]],
            _optional_texts(found["reason"]),
            rank.astype("int64").tolist(),
            strict=True,
        ),
        key=lambda line: (line[0], line[1], line[7]),
    )


def _rows_digest(rows: list[tuple[Any, ...]]) -> str:
    """sha256 of rows of texts, numbers and None (their JSON: floats exactly)."""
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def _store_suggestions(db: sqlite3.Connection, list_id: int, rows: list[tuple[Any, ...]]) -> None:
    db.executemany(
        "INSERT INTO suggestion_lists VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ((list_id, *row) for row in rows),
    )


def _exceptions_blob(frame: pd.DataFrame) -> bytes:
    """A run's exceptions as one zstd-compressed Parquet file: row, outcome, detail and
    the row's cells as the file had them, as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # By position: a provider's column may share a name with recon's (row, detail).
    arrays = [
        pa.array(frame.iloc[:, i].astype("int64"), pa.int64())
        if i == 0
        else _arrow_texts(frame.iloc[:, i], len(frame)).cast(pa.string())
        for i in range(frame.shape[1])
    ]
    table = pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def _exceptions_frame(data: bytes) -> pd.DataFrame:
    """A run's exceptions back from :func:`_exceptions_blob` (text cells, None if empty)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.ParquetFile(pa.BufferReader(data)).read()  # names may repeat
    columns = [
        column.to_pandas() if i == 0 else pd.Series(column.to_pylist(), dtype=object)
        for i, column in enumerate(table.columns)
    ]
    frame = pd.concat(columns, axis=1, ignore_index=True)
    frame.columns = pd.Index(table.column_names)
    return frame


def _store_blob(db: sqlite3.Connection, data: bytes) -> int:
    """Store ``data`` once per content; its id."""
    digest = hashlib.sha256(data).hexdigest()
    db.execute("INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)", (digest, data))
    return int(db.execute("SELECT id FROM blobs WHERE sha256 = ?", (digest,)).fetchone()[0])


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def _login() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return None


__all__ = [
    "BEFORE_TARGETS",
    "LEGACY_CHOICES",
    "Decided",
    "Ledger",
    "default_analyst",
    "default_path",
    "ledger_for",
    "now_iso",
    "rejected_messages",
]
