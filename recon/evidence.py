"""What lies behind a proposal, read from the run's input files: the provider's row(s) as
written, and what the LMS holds now for the learner and path.

The ledger keeps proposals, not every input row; the review widget's ``LMS now`` column
and its evidence panel read the config's files again through the engine's own readers
(:func:`recon.inputs.load_table`, :func:`recon.engine.lms_rows_sql`), so a file is never
read here differently from how ``recon reconcile`` read it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pandas as pd

from .config import Config, load_config
from .engine import lms_cells_sql, lms_macros, lms_read_sql, load_progress
from .inputs import ROW, InputInfo, load_table, run

__all__ = ["NO_RECORD", "Evidence", "LMS_RANK"]

NO_RECORD = "no record"
"""What ``LMS now`` says when the LMS export has no row for the learner and path."""
LMS_RANK = {"not-started": 0, "started": 1, "not-completed": 2, "completed": 3}
_WIRE = "%Y-%m-%dT%H:%M:%S.%gZ"
_RANK_SQL = " ".join(f"WHEN '{s}' THEN {r}" for s, r in LMS_RANK.items())
# The README's fold per pair: the furthest status; a word recon does not understand is
# shown as written (quoted: nothing is hidden), the first such row's; the earliest
# completion date.
_NOW_SQL = f"""
    SELECT pair,
           coalesce('“' || arg_min(word, row) FILTER (WHERE status IS NULL) || '”',
                    arg_max(status, CASE status {_RANK_SQL} END)) AS lms_status,
           min(completionDate) AS lms_date
    FROM {{rows}} GROUP BY pair
"""
# Above this many pairs asked about, ``LMS now`` folds the whole export at once (what a run's every
# proposal needs) rather than picking the pairs' rows first (what a page needs).
_FEW_PAIRS = 500
# The pairs of the registered frame ``wanted`` (user, path), folded by DuckDB's lower()
# as the export's pairs are: the same rule both sides.
_WANTED_PAIR = "lower(w.user) || chr(0) || lower(w.path)"


T = TypeVar("T")


def _in_background(work: Callable[[], T], name: str) -> Future[T]:
    """Run ``work`` on a thread of its own (named ``name``); its Future holds the result
    or the error, for whoever asks."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    try:
        return pool.submit(work)
    finally:
        pool.shutdown(wait=False)


class Evidence:
    """The config's provider export and LMS progress export, ready to be asked about.

    ``lms``: every LMS row (``row``, ``userId``, ``learningPathId``, ``word``, ``status``
    (None when recon does not understand the word), ``completionDate`` (UTC wire format,
    completed rows with a readable date only), ``completion_raw``).
    ``provider_rows(rows)``: the provider's rows by row number, with their original cells.

    Neither export is read when this is made: the LMS export is read on first use (any
    question below waits for it, and raises its error if it cannot be read, the same
    :class:`~recon.errors.InputError` ``recon reconcile`` gives), or in the background
    once :meth:`start_lms` is called (the review widget calls it once it is built, and draws
    ``LMS now`` when :meth:`when_lms_read` says it is read, or failed).

    Why a page's ``LMS now`` is quick with a million rows: the LMS export is kept in
    DuckDB with only each row's pair (and its hash) computed; the written rules and the
    fold run on the rows of the pairs asked about (a page's, :meth:`now_for`; one
    pair's, :meth:`lms_rows`), and on every row only when all are asked for
    (:attr:`lms`, :meth:`now`, ``now_for`` of more than 500 pairs). Nothing is
    turned into a pandas frame of every row unless ``lms`` is asked for. The provider's
    export (only the evidence of a proposal needs it) is read on first use, or in the
    background once :meth:`start_provider` is called (the review widget calls it when it
    has drawn its first page; it starts after the LMS export's reading); reading it takes
    seconds at a million rows.
    """

    def __init__(self, config: Config | str | Path) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        ext = self.config.external
        self.provider_zone = ext.timezone
        self.provider_file = Path(ext.file)
        self._cols: dict[str, str] = {}
        self._lms: pd.DataFrame | None = None
        self._lock = threading.Lock()  # the LMS export's connection: one question at a time
        self._starting = threading.Lock()
        # Neither export is read here: opening the review must not wait for either.
        self._reading_lms: Future[duckdb.DuckDBPyConnection] | None = None
        self._provider: Future[tuple[duckdb.DuckDBPyConnection, InputInfo]] | None = None

    # -- the LMS export, read on first use or in the background ------------------------

    def start_lms(self) -> None:
        """Begin reading the LMS export in the background (once); what needs it waits."""
        with self._starting:
            if self._reading_lms is None:
                self._reading_lms = _in_background(self._read_lms, "recon-lms")

    def lms_ready(self) -> bool:
        """Whether the LMS export has been read, and read without error."""
        reading = self._reading_lms
        return reading is not None and reading.done() and reading.exception() is None

    def lms_error(self) -> BaseException | None:
        """Why the LMS export could not be read (None: not read yet, or read)."""
        reading = self._reading_lms
        return reading.exception() if reading is not None and reading.done() else None

    def when_lms_read(self, callback: Callable[[BaseException | None], None]) -> None:
        """Call ``callback(error)`` once the LMS export is read (error None) or has
        failed; at once if that has already happened. Starts the reading."""
        self.start_lms()
        assert self._reading_lms is not None
        self._reading_lms.add_done_callback(lambda done: callback(done.exception()))

    def _lms_con(self) -> duckdb.DuckDBPyConnection:
        """The connection holding the LMS export, waiting for its reading (its error, if
        it failed: the same :class:`~recon.errors.InputError` ``recon reconcile`` gives)."""
        self.start_lms()
        assert self._reading_lms is not None
        return self._reading_lms.result()

    def _read_lms(self) -> duckdb.DuckDBPyConnection:
        prog = self.config.progress
        con = duckdb.connect(config={"preserve_insertion_order": True})
        try:
            run(con, "SET enable_progress_bar = false")
            # One thread while reading: the review opening beside it keeps a core.
            run(con, "SET threads = 1")
            _, cols = load_progress(con, prog)
            lms_macros(con, prog, self.config.source)
            self._cols = cols
            # The rules' first stage (cells trimmed, the status word understood) runs
            # here on every row, with each row's pair (lower case, as the rules compare
            # ids); the second (completion dates: the costly part) on the rows of the
            # pairs asked about (:meth:`_pair_rows`), or on every row through the view
            # ``lms_rows`` when all of them are asked for (:attr:`lms`, :meth:`now`, a
            # whole run's ``LMS now``).
            run(
                con,
                "CREATE TABLE lms_cells AS SELECT *, hash(pair) AS h FROM (SELECT *, "
                "lower(user_id) || chr(0) || lower(path_id) AS pair FROM "
                f"({lms_cells_sql('progress', cols)}))",
            )
            run(con, "DROP VIEW IF EXISTS progress")
            run(con, "DROP TABLE IF EXISTS progress_raw")
            run(con, f"CREATE VIEW lms_rows AS {self._rows_sql('lms_cells')}")
            run(con, "RESET threads")
        except BaseException:
            con.close()
            raise
        return con

    def _rows_sql(self, cells: str) -> str:
        """The LMS rows of ``cells`` (trimmed as :func:`lms_cells_sql` trims: all of
        ``lms_cells``, or some of its rows) as the engine reads them
        (:func:`lms_rows_sql`), with ``pair``."""
        return (
            "SELECT row, user_id AS userId, path_id AS learningPathId, word, status, "
            f"strftime(timezone('UTC', completion_ts), '{_WIRE}') AS completionDate, "
            "completion_raw, lower(user_id) || chr(0) || lower(path_id) AS pair "
            f"FROM ({lms_read_sql(cells)}) "
            "WHERE user_id IS NOT NULL AND path_id IS NOT NULL"
        )

    def _pair_rows(self, con: duckdb.DuckDBPyConnection, pairs: Iterable[tuple[str, str]]) -> str:
        """Make the table ``picked``: :meth:`_rows_sql` of only the rows of ``pairs``
        (user id, learning path id; any case) and return its name. The rows are found in
        ``lms_cells`` by their pair's hash (a superset: the pair of the trimmed cells, and
        any collision), then the rules run on them and their own pair is compared."""
        users, paths = [], []
        for user, path in pairs:
            users.append(str(user))
            paths.append(str(path))
        # The pairs as parameters (a list each), folded by DuckDB's lower() as the
        # export's are: a literal per pair made DuckDB spend longer reading the statement
        # than running it. Their rows are found by the pairs' hashes (integers: the
        # quickest to find; a rare collision is dropped at the end, where the rules' own
        # pair is compared). Only the second stage of the rules runs here, the first ran
        # on reading (lms_cells): the two together over a page's rows took 30 ms, this
        # one 3 (see lms_read_sql). One statement: each one more cost a few ms.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE picked AS "
            "WITH wanted_pairs AS (SELECT DISTINCT pair, hash(pair) AS h "
            "FROM (SELECT lower(u) || chr(0) || lower(p) AS pair "
            "FROM (SELECT unnest($1::VARCHAR[]) AS u, unnest($2::VARCHAR[]) AS p))), "
            "picked_cells AS (SELECT * EXCLUDE (h) FROM lms_cells "
            "WHERE h IN (SELECT h FROM wanted_pairs)) "
            f"SELECT * FROM ({self._rows_sql('picked_cells')}) "
            "WHERE pair IN (SELECT pair FROM wanted_pairs)",
            [users, paths],
        )
        return "picked"

    def close(self) -> None:
        """Close what was read (a reading still under way closes when it ends)."""
        for reading in (self._reading_lms, self._provider):
            if reading is not None:
                reading.add_done_callback(_close_read)

    @property
    def lms(self) -> pd.DataFrame:
        """Every LMS row as a frame (built on first use: a million rows take seconds)."""
        with self._lock:
            if self._lms is None:
                self._lms = (
                    self._lms_con()
                    .sql(
                        "SELECT row, userId, learningPathId, word, status, completionDate, "
                        "completion_raw, pair FROM lms_rows ORDER BY row"
                    )
                    .df()
                )
            return self._lms

    # -- the provider's export, read on first use ------------------------------------------

    def start_provider(self) -> None:
        """Begin reading the provider's export in the background (once)."""
        with self._starting:
            if self._provider is None:
                self._provider = _in_background(self._read_provider, "recon-evidence")

    def _read_provider(self) -> tuple[duckdb.DuckDBPyConnection, InputInfo]:
        if self._reading_lms is not None:
            # After the LMS export (``LMS now`` of the page on screen needs it first),
            # whether or not it could be read: two reads at once slow both.
            wait([self._reading_lms])
        ext = self.config.external
        con = duckdb.connect(config={"preserve_insertion_order": True})
        run(con, "SET enable_progress_bar = false")
        # One thread: read while the analyst works, it must leave a core to the review.
        run(con, "SET threads = 1")
        info, _ = load_table(con, "ext", "external", Path(ext.file), {}, sheet=ext.sheet)
        return con, info

    def _provider_read(self) -> tuple[duckdb.DuckDBPyConnection, InputInfo]:
        """The provider's export, waiting for its reading (its error, if it failed)."""
        self.start_provider()
        assert self._provider is not None
        return self._provider.result()

    # -- questions ------------------------------------------------------------------------

    def now(self) -> pd.DataFrame:
        """What the LMS holds per pair (index: ``pair``, lower-case user and path id),
        folded by the README's rule: the furthest status, the earliest completion date.

        ``lms_status``: the status, or the word as written (quoted) when recon does not
        understand it; ``lms_date``: the completion date (UTC wire format) or None.
        """
        return (
            self._lms_con()
            .sql(_NOW_SQL.format(rows="lms_rows") + " ORDER BY pair")
            .df()
            .set_index("pair")
        )

    def now_for(self, users: pd.Series, paths: pd.Series) -> pd.DataFrame:
        """:meth:`now` for each (user id, learning path id) given, in their order
        (``lms_status`` None where the LMS export has no row for the pair): one join in
        DuckDB, so a run of 100,000 proposals never folds the whole export in pandas."""
        # Folded by DuckDB's lower(), as the export's pairs are: the same rule both sides.
        wanted = pd.DataFrame(
            {
                "at": np.arange(len(users), dtype=np.int64),
                "user": users.astype(str).to_numpy(dtype=object),
                "path": paths.astype(str).to_numpy(dtype=object),
            }
        )
        pairs = set(zip(wanted["user"], wanted["path"], strict=True))
        # A page asks about a few pairs (a NUL in an id: the whole export's fold, as ever).
        few = len(pairs) <= _FEW_PAIRS and not any("\0" in u + p for u, p in pairs)
        # The connection itself, under the lock: the rules' macros are its own (TEMP),
        # a cursor would not see them.
        with self._lock:
            con = self._lms_con()
            rows = self._pair_rows(con, pairs) if few else "lms_rows"
            con.register("wanted", wanted)
            found = con.sql(
                f"WITH now AS ({_NOW_SQL.format(rows=rows)}) SELECT n.lms_status, n.lms_date "
                f"FROM wanted w LEFT JOIN now n ON n.pair = {_WANTED_PAIR} ORDER BY w.at"
            ).df()
            con.unregister("wanted")
        found.index = users.index
        return found

    def lms_rows(self, user_id: str, path_id: str) -> pd.DataFrame:
        """Every LMS row for one learner and path, as the export has them."""
        pair = (str(user_id), str(path_id))
        with self._lock:
            con = self._lms_con()
            rows = "lms_rows" if "\0" in pair[0] + pair[1] else self._pair_rows(con, [pair])
            return con.execute(
                "SELECT row, userId, learningPathId, word, status, completionDate, "
                f"completion_raw FROM {rows} WHERE pair = lower(?) || chr(0) || lower(?) "
                "ORDER BY row",
                list(pair),
            ).df()

    def provider_rows(self, rows: list[int]) -> pd.DataFrame:
        """The provider's rows ``rows`` (1-based data rows) with their cells as written."""
        con, info = self._provider_read()
        if not rows:
            return pd.DataFrame(columns=["row", *info.columns])
        picked = ", ".join(info.sql_columns)
        wanted = ", ".join(str(int(r)) for r in rows)
        cursor = con.cursor()
        try:
            frame = cursor.sql(
                f"SELECT {ROW} AS row{', ' + picked if picked else ''} FROM ext "
                f"WHERE {ROW} IN ({wanted}) ORDER BY {ROW}"
            ).df()
        finally:
            cursor.close()
        frame.columns = ["row", *info.columns]
        return frame

    def spreadsheet_line(self, row: int) -> int:
        """The line a spreadsheet shows for data row ``row``: the header is line 1, and
        the file's blank lines count (:meth:`recon.inputs.InputInfo.spreadsheet_line`)."""
        return self._provider_read()[1].spreadsheet_line(row)

    def __enter__(self) -> Evidence:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _close_read(reading: Future[Any]) -> None:
    """Close the connection a finished reading made (nothing if it failed)."""
    if reading.cancelled() or reading.exception() is not None:
        return
    made = reading.result()
    (made[0] if isinstance(made, tuple) else made).close()
