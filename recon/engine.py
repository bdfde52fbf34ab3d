"""The reconciliation rules, as one in-process DuckDB pipeline: inputs in, a Result out.

Size: over 600 lines because every reconciliation rule is kept in this one file so a
reader finds each by name (search for the README's words: "never downgrade", "earliest
completion wins", "the first problem found is its outcome").

Pure: :func:`reconcile` reads the four inputs and returns a :class:`Result`; it opens no
ledger and writes no file (what the ledger knows, the keys already accepted, comes in as
data). Writing the outputs and recording the run is :mod:`recon.pipeline`'s job.
Reading happens in :mod:`recon.inputs`, the cell normalisation in :mod:`recon.normalise`,
writing in :mod:`recon.outputs`; nothing here touches the network.

The stages, each a temp table named for what it holds (CONTRIBUTING.md draws them):

1. ``_load``: the inputs as read (``ext``, ``progress``, ``users``, ``paths``).
2. ``_classify``: lookups ``directory`` / ``path_mapping`` and their integer codes
   (``user_codes``, ``path_codes``); the LMS's fold (``_fold_lms``: ``lms_state``,
   ``lms_words``, ``lms_unknown_words``); every provider row normalised with its row
   problem, the first one found by ``ROW_PROBLEM_RULES`` (``classified``), and the
   original cells of rows that may end as exceptions (``exception_sources``).
3. ``_compare``: valid rows collapsed per (userId, learningPathId), the survivor
   compared with the LMS (``collapsed``: rank in the pair, survivor, verdict), and
   completions per month (``completions``).
4. ``_propose``: one proposal per pair that needs one (``proposed``), validated with the
   endpoint's rules and checked against the accepted keys (``proposals``).
5. ``_frames``: the Result's frames; rows with a row problem (``row_problems``) and
   valid rows are unioned, never joined.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from . import normalise, xapi
from . import outcomes as oc
from .config import Config, ProgressSpec, load_config
from .derive import StatusRule, status_sql
from .duck import frame, frame_in_row_order, literal, quote, run
from .errors import ConfigError, InputError
from .inputs import BAD, ROW, InputInfo, load_table
from .normalise import LOOKALIKE, UNRANKED
from .normalise import name_key as name_key  # how names compare; long imported from here
from .result import PAYLOAD_FIELDS, Result
from .validation import _ISO_8601, STATUS_RANK, STATUSES, validate_activity

KEY_LENGTH = 20
DUCKDB_MEMORY_FLOOR_MB = 320
DUCKDB_MEMORY_PER_INPUT_MB = 1.6
# Past a gigabyte DuckDB spills instead: at ten million rows (2 GB of CSV) the limit
# would otherwise be 3.4 GB, and the whole command must stay within 2 GB.
DUCKDB_MEMORY_CAP_MB = 1024
_SEP = "\x1f"
COMPLETED = STATUS_RANK["completed"]
"""The rank of ``completed``: ranks are named, never written as numbers."""
NOT_STARTED = STATUS_RANK["not-started"]


def proposal_key(body: dict[str, str | None]) -> str:
    """The stable key of a correction: the same payload always has the same key.

    The SQL below computes the same value; a test holds the two together.
    """
    text = _SEP.join(body.get(f) or "" for f in PAYLOAD_FIELDS)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_LENGTH]


def _parse_as_of(as_of: datetime | str | None, tz: str) -> datetime:
    if as_of is None:
        return datetime.now(UTC)
    if isinstance(as_of, str):
        try:
            as_of = datetime.fromisoformat(as_of.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"--as-of {as_of!r} is not an ISO 8601 date or date-time") from None
    if not isinstance(as_of, datetime):
        raise InputError(f"as_of must be an ISO 8601 date-time, not {as_of!r}")
    if as_of.tzinfo is None:
        from zoneinfo import ZoneInfo

        as_of = as_of.replace(tzinfo=ZoneInfo(tz))
    try:
        return as_of.astimezone(UTC)
    except (OverflowError, ValueError):
        # 0001-01-01 east of UTC, or 9999-12-31 west of it, has no UTC instant.
        raise InputError(
            f"--as-of {as_of.isoformat()} falls outside the calendar (years 1 to 9999) "
            "once moved to UTC"
        ) from None


def _connect(config: Config, spill_dir: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"preserve_insertion_order": True})
    run(con, "SET enable_progress_bar = false")  # it would draw on the analyst's terminal
    # Past this, DuckDB spills to disk rather than growing. It scales with the inputs
    # because a step's hash tables and results must fit; a million rows (211 MB of CSV)
    # stay near the floor.
    inputs_mb = (
        sum(
            spec.file.stat().st_size
            for spec in (config.external, config.progress, config.users, config.paths)
            if spec is not None and spec.file.is_file()
        )
        / 2**20
    )
    limit_mb = min(
        DUCKDB_MEMORY_CAP_MB,
        max(DUCKDB_MEMORY_FLOOR_MB, round(DUCKDB_MEMORY_PER_INPUT_MB * inputs_mb)),
    )
    run(con, f"SET memory_limit = '{limit_mb}MB'")
    run(con, f"SET temp_directory = {literal(spill_dir)}")
    # Values without an offset are in the configured zone: DuckDB's casts use TimeZone.
    # A zone or format DuckDB refuses is a config error (exit 2), not a crash mid-run.
    source = config.source
    try:
        run(con, f"SET TimeZone = {literal(config.external.timezone)}")
    except duckdb.Error:
        con.close()
        raise ConfigError(
            f"{source}: unknown timezone {config.external.timezone!r} (use an IANA name)",
            file=source,
        ) from None
    normalise.install(con, config.external.date_formats, source)
    return con


def lms_macros(con: duckdb.DuckDBPyConnection, spec: ProgressSpec, source: Path | None) -> None:
    """Everything :func:`lms_rows_sql` needs, for the LMS export ``spec`` describes.

    The engine and the sandbox's seeding both read an LMS export with these, so the two
    can never read it differently. Sets the session TimeZone to the export's zone.
    """
    normalise.trim_macro(con)
    normalise.rank_macro(con)
    normalise.date_macro(con, "recon_lms_date", spec.date_formats, source)
    words = spec.status_map()
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_lms_status(w) AS CASE w "
        + " ".join(f"WHEN {literal(w)} THEN {literal(s)}" for w, s in words.items())
        + " END",
    )
    normalise.set_zone(con, spec.timezone, "progress", source)


def load_progress(
    con: duckdb.DuckDBPyConnection, spec: ProgressSpec
) -> tuple[InputInfo, dict[str, str]]:
    """The LMS export ``spec`` names, loaded as ``progress`` with the columns
    :func:`lms_rows_sql` reads (user, path, status, and completion when configured: a
    configured column the file lacks is an :class:`recon.errors.InputError`, never
    skipped). The engine, the review's evidence and a report's sources all read it so."""
    return load_table(
        con,
        "progress",
        "progress",
        Path(spec.file),
        {
            "user": spec.user_id,
            "path": spec.path_id,
            "status": spec.status,
            "completion": spec.completion_date,
        },
        sheet=spec.sheet,
        allow_no_rows=True,
    )


def lms_rows_sql(table: str, cols: Mapping[str, str]) -> str:
    """A SELECT of every row of an LMS export loaded as ``table`` (columns named in
    ``cols``: user, path, status and maybe completion), read by the written rules:

    ``row``; ``user_id`` and ``path_id`` trimmed (NULL when blank); ``word``: the status
    as written, trimmed ('' when blank); ``status``: the LMS status it means, NULL when
    recon does not understand it; ``completion_raw`` (trimmed, NULL when blank) and
    ``completion_ts``: read for completed rows only, NULL when absent or unreadable.
    Needs :func:`lms_macros`. The two stages, :func:`lms_cells_sql` then
    :func:`lms_read_sql`, in one statement.
    """
    return lms_read_sql(f"({lms_cells_sql(table, cols)})")


def lms_cells_sql(table: str, cols: Mapping[str, str]) -> str:
    """The first stage of :func:`lms_rows_sql`: each row's cells trimmed (``row``,
    ``user_id``, ``path_id``, ``word``, ``status``, ``completion_raw``)."""
    completion = (
        f"nullif(recon_trim({quote(cols['completion'])}), '')" if "completion" in cols else "NULL"
    )
    return f"""
        SELECT {ROW} AS row,
               -- a row that does not line up with the header is not used (and counted)
               CASE WHEN {BAD} IS NULL THEN nullif(recon_trim({quote(cols["user"])}), '') END
                 AS user_id,
               nullif(recon_trim({quote(cols["path"])}), '') AS path_id,
               coalesce(recon_trim({quote(cols["status"])}), '') AS word,
               recon_lms_status(lower(coalesce(recon_trim({quote(cols["status"])}), ''))) AS status,
               {completion}::VARCHAR AS completion_raw
        FROM {table}
    """


def lms_read_sql(cells: str) -> str:
    """The second stage of :func:`lms_rows_sql`: the completion dates of ``cells`` (a
    table or subquery of :func:`lms_cells_sql`) read. Apart, for a few rows: the date
    macro over the trim macro made DuckDB spend 25 ms setting up a 50-row query."""
    return f"""
    SELECT row, user_id, path_id, word, status, completion_raw,
           CASE WHEN status = 'completed' THEN recon_lms_date(completion_raw) END
             AS completion_ts
    FROM {cells}
    """


def lms_marks_sql(r: str) -> str:
    """The columns :func:`lms_fold_sql` folds, for one row ``r`` of :func:`lms_rows_sql`:
    ``rk`` (the status's rank, -1 when recon does not understand it), ``completion_ts``,
    ``blank_id`` (a blank learner or path id: the row is ignored, and counted),
    ``unknown_word`` (the status word when recon does not understand it) and ``bad_date``
    (a completed row's completion date recon cannot read, as written)."""
    return f"""recon_rank({r}.status) AS rk,
           {r}.completion_ts,
           {r}.user_id IS NULL OR {r}.path_id IS NULL AS blank_id,
           CASE WHEN {r}.status IS NULL THEN {r}.word END AS unknown_word,
           CASE WHEN {r}.status = 'completed' AND {r}.completion_raw IS NOT NULL
                 AND {r}.completion_ts IS NULL THEN {r}.completion_raw END AS bad_date"""


def lms_fold_sql(rows: str, pair: str) -> str:
    """The LMS's progress folded per learner and path: one line per ``pair`` (its columns
    in ``rows``, a table or subquery of :func:`lms_marks_sql` columns).

    The LMS may list a pair more than once: its furthest status counts (``rk``; NULL when
    no status of the pair was understood), and the earliest completion date it holds
    (``completion_ts``). ``ignored``: its rows with a blank id; ``unknown_word`` and
    ``bad_date``: the first in sort order of its status words recon does not understand
    and of its unreadable completion dates, ``bad_dates`` how many of those. The engine
    and the sandbox's seeding both fold with this, so the two can never disagree.
    """
    return f"""
    SELECT {pair},
           -- README: "its furthest status counts, and the earliest completion wins"
           max(rk) FILTER (WHERE rk <> {UNRANKED}) AS rk,
           min(completion_ts) AS completion_ts,
           count(*) FILTER (WHERE blank_id) AS ignored,
           min(unknown_word) FILTER (WHERE NOT blank_id) AS unknown_word,
           min(bad_date) FILTER (WHERE NOT blank_id) AS bad_date,
           count(bad_date) FILTER (WHERE NOT blank_id) AS bad_dates
    FROM {rows}
    GROUP BY {pair}
    """


def _load(con: duckdb.DuckDBPyConnection, config: Config) -> tuple[dict[str, InputInfo], dict]:
    ext, prog = config.external, config.progress
    infos: dict[str, InputInfo] = {}
    cols: dict[str, dict[str, str]] = {}
    infos["external"], cols["external"] = load_table(
        con,
        "ext",
        "external",
        ext.file,
        {
            "learner": ext.learner,
            "path": ext.path,
            "status": ext.status,
            "completion": ext.completion_date,
            "activity": ext.activity_date,
            "percent": ext.percent,
            "flag": ext.completed_flag,
            "success": ext.success,
            # xAPI statements carry why a learner is blank and whether they were voided
            **(
                {"note": "learner_note", "voided": "voided"}
                if xapi.is_xapi_file(Path(ext.file))
                else {}
            ),
        },
        sheet=ext.sheet,
    )
    infos["progress"], cols["progress"] = load_progress(con, prog)
    if config.users is not None:
        u = config.users
        infos["users"], cols["users"] = load_table(
            con, "users", "users", u.file, {"email": u.email, "id": u.user_id}, sheet=u.sheet
        )
    if config.paths is not None:
        p = config.paths
        infos["paths"], cols["paths"] = load_table(
            con,
            "paths",
            "paths",
            p.file,
            {"code": p.external_code, "id": p.learning_path_id},
            sheet=p.sheet,
        )
    return infos, cols


def _drop_input(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Free an input once its last reader is done (see :func:`recon.inputs.load_table`)."""
    run(con, f"DROP VIEW IF EXISTS {name}")
    run(con, f"DROP TABLE IF EXISTS {name}_raw")


def _lookup(con: duckdb.DuckDBPyConnection, name: str, table: str, key: str, value: str) -> None:
    """A lookup table key -> id, with ``n`` = how many distinct ids the key names."""
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE {name} AS "
        f"SELECT recon_key(recon_trim({key})) AS k, min(recon_trim({value})) AS id, "
        f"count(DISTINCT lower(recon_trim({value}))) AS n FROM {table} "
        f"WHERE {BAD} IS NULL AND nullif(recon_trim({key}), '') IS NOT NULL "
        f"AND nullif(recon_trim({value}), '') IS NOT NULL "
        "GROUP BY 1",
    )


def _own_ids(con: duckdb.DuckDBPyConnection, name: str, column: str) -> None:
    """Without a directory (or mapping) the external file's own ids are the lookup:
    compared as every id is (trimmed, case-insensitively), so ``n`` is always 1."""
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE {name} AS "
        f"SELECT recon_key(recon_trim({column})) AS k, min(recon_trim({column})) AS id, 1 AS n "
        f"FROM ext WHERE nullif(recon_trim({column}), '') IS NOT NULL GROUP BY 1",
    )


def _code(con: duckdb.DuckDBPyConnection, lookup: str, codes: str) -> None:
    """Number the ids of a lookup 0..N-1 (table ``codes``: code, id) and add the code to
    the lookup. The heavy steps then partition, join and sort on integers instead of
    36-character ids, and the outcomes frame holds ids as pandas categoricals.

    Ids are compared case-insensitively (the LMS's ids are UUIDs, whose hex digits have
    no case): ``k`` is the id in lower case, ``id`` the spelling sent, the directory's
    or mapping's own (the first in sort order when it spells one id several ways)."""
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE {codes} AS "
        f"SELECT (row_number() OVER (ORDER BY k) - 1)::INTEGER AS code, k, id "
        f"FROM (SELECT lower(id) AS k, min(id) AS id FROM {lookup} WHERE n = 1 GROUP BY 1)",
    )
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE {lookup} AS "
        f"SELECT l.k, l.n, l.via, x.code FROM {lookup} l "
        f"LEFT JOIN {codes} x ON x.k = lower(l.id)",
    )


def _identity(con: duckdb.DuckDBPyConnection, name: str, table: str, value: str) -> None:
    """For ids given as ids: the directory/mapping only vets that they exist.

    One line per key, like :func:`_lookup`: ids that differ only in case are ambiguous
    (``n`` > 1) instead of joining an external row twice.
    """
    _lookup(con, name, table, value, value)


@dataclass(frozen=True)
class RowRule:
    """One row problem, as the README writes it.

    ``when``: the SQL condition, over a normalised provider row, under which the row has
    this problem (checked only once every earlier rule has not held). ``detail``: what
    the outcome's detail says, a ladder of (condition, SQL text) pairs, the first that
    holds; the last condition is ``TRUE``. ``readme``: the README's words for it (the
    "Outcomes" table's meaning), which a test finds in the README.
    """

    outcome: str
    readme: str
    when: str
    detail: tuple[tuple[str, str], ...]


def row_rules(learner_kind: str, path_kind: str, as_of: str) -> tuple[RowRule, ...]:
    """The row problems in the order they are checked: "the first problem found is its
    outcome" (README, "The rules"). ``learner_kind`` and ``path_kind`` are the words the
    details use ("email", "course code"); ``as_of`` is the run's time as a SQL literal.

    The columns they read are those of ``_classify``'s ``dated`` stage: the trimmed
    cells (``learner``, ``path``, ``status_raw``, ``completion_raw``, ``activity_raw``,
    NULL when blank), what they mean (``status``, ``user_code``, ``path_code``,
    ``completion_ts``, ``activity_ts``, NULL when unknown or unreadable), ``bad``,
    ``voided``, ``learner_note``, ``status_how``, ``user_n`` and ``path_n``.
    """
    lookalike = "it holds look-alike characters, so it is compared exactly as written"
    completion_unreadable = "completion_raw IS NOT NULL AND completion_ts IS NULL"
    activity_unreadable = "activity_raw IS NOT NULL AND activity_ts IS NULL"
    rules = (
        RowRule(
            oc.BAD_ROW,
            "more or fewer fields than the header (or values right of it in a sheet)",
            "bad IS NOT NULL",
            (("TRUE", "bad"),),
        ),
        RowRule(
            oc.VOIDED,
            "an xAPI statement voided in the same file, or the voiding statement",
            "voided IS NOT NULL",
            (("TRUE", "voided"),),
        ),
        RowRule(
            oc.UNKNOWN_STATUS,
            "blank, or a word not in `[external.statuses]`",
            "status IS NULL",
            (
                ("status_raw IS NULL", "'status is blank'"),
                (
                    "TRUE",
                    "'status ''' || status_raw || ''' is not in [external.statuses]' "
                    "|| coalesce(' (' || status_how || ')', '')",
                ),
            ),
        ),
        RowRule(
            oc.UNKNOWN_LEARNER,
            "blank, not in the directory, or ambiguous there",
            "user_code IS NULL",
            (
                ("learner IS NULL AND learner_note IS NOT NULL", "learner_note"),
                ("learner IS NULL", "'learner is blank'"),
                (
                    "user_n > 1",
                    f"'{learner_kind} ''' || learner || ''' names ' || user_n "
                    "|| ' different user ids in the directory'",
                ),
                (
                    f"starts_with(recon_key(learner), chr({ord(LOOKALIKE)}))",
                    f"'{learner_kind} ''' || learner || ''' is not in the directory ({lookalike})'",
                ),
                ("TRUE", f"'{learner_kind} ''' || learner || ''' is not in the directory'"),
            ),
        ),
        RowRule(
            oc.UNKNOWN_PATH,
            "blank, not in the mapping, or ambiguous there",
            "path_code IS NULL",
            (
                ("path IS NULL", "'learning path is blank'"),
                (
                    "path_n > 1",
                    f"'{path_kind} ''' || path || ''' maps to ' || path_n || ' learning paths'",
                ),
                (
                    f"starts_with(recon_key(path), chr({ord(LOOKALIKE)}))",
                    f"'{path_kind} ''' || path || ''' is not in the path mapping ({lookalike})'",
                ),
                ("TRUE", f"'{path_kind} ''' || path || ''' is not in the path mapping'"),
            ),
        ),
        RowRule(
            oc.BAD_DATE,
            "a date cell that cannot be read",
            f"({completion_unreadable}) OR ({activity_unreadable})",
            (
                (
                    completion_unreadable,
                    "'completion date ''' || completion_raw || ''' is not a readable date'",
                ),
                ("TRUE", "'activity date ''' || activity_raw || ''' is not a readable date'"),
            ),
        ),
        RowRule(
            oc.MISSING_COMPLETION_DATE,
            "completed without a completion date",
            "status = 'completed' AND completion_ts IS NULL",
            (("TRUE", "'completed, but no completion date'"),),
        ),
        RowRule(
            oc.FUTURE_DATE,
            "a date after the as-of time",
            f"completion_ts > TIMESTAMPTZ {as_of} OR activity_ts > TIMESTAMPTZ {as_of}",
            (
                (
                    f"completion_ts > TIMESTAMPTZ {as_of}",
                    "'completion date ' || recon_wire(completion_ts) || ' is after the as-of time'",
                ),
                (
                    "TRUE",
                    "'activity date ' || recon_wire(activity_ts) || ' is after the as-of time'",
                ),
            ),
        ),
    )
    # The README lists the row problems in this order; voided (xAPI only) comes right
    # after bad-row: a voided statement is settled, whatever else it holds.
    assert tuple(r.outcome for r in rules if r.outcome != oc.VOIDED) == oc.ROW_PROBLEMS
    return rules


def problem_ladder(rules: Iterable[RowRule]) -> tuple[str, str]:
    """The two SQL CASE expressions of a rule table: the row's problem (NULL: none),
    then, over a column ``problem`` holding it, its detail."""
    rules = tuple(rules)
    problem = "CASE\n" + "\n".join(
        f"        WHEN {r.when} THEN {literal(r.outcome)}" for r in rules
    )
    detail = "CASE WHEN problem IS NULL THEN NULL\n"
    for r in rules:
        *steps, (last, otherwise) = r.detail
        assert last == "TRUE", f"{r.outcome}: the detail ladder ends with TRUE"
        ladder = " ".join(f"WHEN {cond} THEN {text}" for cond, text in steps)
        explained = f"CASE {ladder} ELSE {otherwise} END" if steps else otherwise
        detail += f"        WHEN problem = {literal(r.outcome)} THEN {explained}\n"
    return problem + "\n      END", detail + "      END"


def _apply_aliases(
    con: duckdb.DuckDBPyConnection, lookup: str, kind: str, aliases: pd.DataFrame | None
) -> None:
    """Aliases an analyst accepted (``kind``, ``value``, ``id``, ``via``; see
    :mod:`recon.aliases`) come before the directory or mapping ``lookup``: a value with an
    alias is looked up there only; ``via`` says so in the outcome's detail (NULL for the
    file's own lines)."""
    rows = pd.DataFrame(columns=["kind", "value", "id", "via"], dtype=object)
    if aliases is not None and len(aliases):
        rows = aliases[["kind", "value", "id", "via"]].astype(object)
    con.register("alias_rows", rows)
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE {lookup} AS "
        "WITH a AS (SELECT recon_key(recon_trim(value)) AS k, min(recon_trim(id)) AS id, "
        "1 AS n, min(via) AS via FROM alias_rows "
        f"WHERE kind = {literal(kind)} AND nullif(recon_trim(value), '') IS NOT NULL "
        "AND nullif(recon_trim(id), '') IS NOT NULL GROUP BY 1) "
        f"SELECT k, id, n, via FROM a UNION ALL SELECT k, id, n, NULL FROM {lookup} "
        "WHERE k NOT IN (SELECT k FROM a)",
    )
    con.unregister("alias_rows")


def _classify(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    cols: dict,
    as_of: datetime,
    aliases: pd.DataFrame | None = None,
) -> None:
    """Table ``classified``: every external row, normalised, with its row problem (or
    NULL) and the problem's detail; table ``exception_sources``: the original cells of
    the rows that may end as exceptions."""
    ext = cols["external"]
    status_map = pd.DataFrame(
        list(config.status_map().items()), columns=["word", "status"], dtype=object
    )
    con.register("status_map_frame", status_map)
    run(con, "CREATE OR REPLACE TEMP TABLE status_words AS SELECT * FROM status_map_frame")
    con.unregister("status_map_frame")

    if config.users is not None:
        u = cols["users"]
        if config.external.learner_kind == "email":
            _lookup(con, "directory", "users", quote(u["email"]), quote(u["id"]))
        elif config.external.learner_kind == "email_or_user_id":
            # Emails hold an @ and the LMS's ids do not: one lookup serves both.
            _lookup(con, "directory_emails", "users", quote(u["email"]), quote(u["id"]))
            _identity(con, "directory_ids", "users", quote(u["id"]))
            run(
                con,
                "CREATE OR REPLACE TEMP TABLE directory AS "
                "SELECT * FROM directory_emails UNION ALL "
                "SELECT * FROM directory_ids WHERE k NOT IN (SELECT k FROM directory_emails)",
            )
            run(con, "DROP TABLE directory_emails")
            run(con, "DROP TABLE directory_ids")
        else:
            _identity(con, "directory", "users", quote(u["id"]))
    else:
        _own_ids(con, "directory", quote(ext["learner"]))
    if config.paths is not None:
        p = cols["paths"]
        if config.external.path_kind == "code":
            _lookup(con, "path_mapping", "paths", quote(p["code"]), quote(p["id"]))
        else:
            _identity(con, "path_mapping", "paths", quote(p["id"]))
    else:
        _own_ids(con, "path_mapping", quote(ext["path"]))
    _apply_aliases(con, "directory", "learner", aliases)
    _apply_aliases(con, "path_mapping", "path", aliases)
    _code(con, "directory", "user_codes")
    _code(con, "path_mapping", "path_codes")
    # The LMS's export is folded now that ids have codes, and freed before the
    # provider's rows are normalised: memory is what a million-row run is judged by.
    _fold_lms(con, config, cols)

    def cell(role: str) -> str:
        return f"nullif(recon_trim(e.{quote(ext[role])}), '')"

    activity = cell("activity") if "activity" in ext else "NULL"
    rule = StatusRule(
        status="status" if "status" in ext else None,
        percent="percent" if "percent" in ext else None,
        percent_completed=config.external.percent_completed,
        completed_flag="flag" if "flag" in ext else None,
        success="success" if "success" in ext else None,
    )
    # The status word, from the status column or a derived rule (recon.derive), and the
    # rule that decided it (NULL when the status column did): shown in the detail.
    status_word, status_how = status_sql(rule, cell)
    note = cell("note") if "note" in ext else "NULL"
    voided = cell("voided") if "voided" in ext else "NULL"
    learner_kind = {
        "email": "email",
        "user_id": "user id",
        "email_or_user_id": "learner",
    }[config.external.learner_kind]
    path_kind = "course code" if config.external.path_kind == "code" else "learning path id"
    problem, problem_detail = problem_ladder(
        row_rules(learner_kind, path_kind, literal(as_of.isoformat()))
    )
    # Each cell is trimmed once, and the lookups join on the trimmed text.
    run(
        con,
        f"""
    CREATE OR REPLACE TEMP TABLE classified AS
    WITH cells AS (
        SELECT e.{ROW} AS row, e.{BAD} AS bad,
               {cell("learner")} AS learner,
               {cell("path")} AS path,
               {status_word} AS status_raw,
               {status_how} AS status_how,
               {cell("completion")} AS completion_raw,
               {activity} AS activity_raw,
               {note} AS learner_note,
               {voided} AS voided
        FROM ext e
    ), normalised AS (
        SELECT cells.*, w.status AS status,
               d.code AS user_code, d.n AS user_n,
               m.code AS path_code, m.n AS path_n,
               nullif(concat_ws('; ', d.via, m.via), '') AS via
        FROM cells
        LEFT JOIN status_words w ON w.word = lower(cells.status_raw)
        LEFT JOIN directory d ON d.k = recon_key(cells.learner)
        LEFT JOIN path_mapping m ON m.k = recon_key(cells.path)
    ), dated AS (
        SELECT *, recon_date(completion_raw) AS completion_ts,
                  recon_date(activity_raw) AS activity_ts
        FROM normalised
    ), judged AS (
        SELECT *, {problem} AS problem
        FROM dated
    )
    SELECT row, user_code, path_code, status, completion_ts, activity_ts, learner, path,
      nullif(concat_ws('; ', status_how, via), '') AS status_how, problem,
      {problem_detail} || coalesce('; ' || via, '') AS problem_detail
    FROM judged
    """,
    )
    # Keep the original cells only of rows that can end as exceptions: those with a row
    # problem, those whose status is not an LMS status (the one way a proposal fails
    # the endpoint's validation, since recon writes the dates and ids are never blank),
    # and those of a pair whose LMS rows could not be read.
    # Then the provider's file is freed: memory is what a million-row run is judged by.
    run(
        con,
        f"""
    CREATE OR REPLACE TEMP TABLE exception_sources AS
    WITH unread AS (
        SELECT user_code, path_code FROM lms_state
        WHERE unknown_word IS NOT NULL OR bad_date IS NOT NULL
    ), keep AS (
        SELECT c.row FROM classified c LEFT JOIN unread l
          ON l.user_code = c.user_code AND l.path_code = c.path_code
        WHERE c.problem IS NOT NULL OR recon_rank(c.status) = {UNRANKED}
           OR l.user_code IS NOT NULL
    )
    SELECT e.* FROM ext e SEMI JOIN keep k ON k.row = e.{ROW}
    """,
    )
    _drop_input(con, "ext")
    for table in ("status_words", "directory", "path_mapping"):
        run(con, f"DROP TABLE IF EXISTS {table}")
    for view in ("users", "paths"):
        _drop_input(con, view)


def _fold_lms(con: duckdb.DuckDBPyConnection, config: Config, cols: dict) -> None:
    """Fold the LMS's progress per pair (table ``lms_state``), and list the LMS's status
    words recon did not understand (table ``lms_words``: word, rows).

    The LMS may list a pair more than once: its furthest status counts, and the earliest
    completion wins. A pair with a status word recon does not understand, or a
    completion date it cannot read, is marked (``unknown_word``, ``bad_date``; each such
    pair's words are in table ``lms_unknown_words``): nothing is proposed against a state
    recon could not read. Rows with a blank id, or whose fields do not line up with the
    header, are ignored, and counted. The LMS's dates without an offset are in [progress]
    timezone.
    """
    lms_macros(con, config.progress, config.source)
    rows = lms_rows_sql("progress", cols["progress"])
    # One narrow line per LMS row: codes instead of ids, and the word and date text kept
    # only where they are a problem (a few rows), so the table costs little memory.
    run(
        con,
        f"""
    CREATE OR REPLACE TEMP TABLE lms_rows AS
    SELECT u.code AS user_code, x.code AS path_code, {lms_marks_sql("r")}
    FROM ({rows}) r
    -- ids compared as the LMS compares them: UUIDs have no case
    LEFT JOIN user_codes u ON u.k = lower(r.user_id)
    LEFT JOIN path_codes x ON x.k = lower(r.path_id)
    """,
    )
    _drop_input(con, "progress")
    # Back to the provider's zone for everything after: only the LMS's dates are in its.
    run(con, f"SET TimeZone = {literal(config.external.timezone)}")
    run(
        con,
        """
    CREATE OR REPLACE TEMP TABLE lms_words AS
    SELECT min(unknown_word) AS word, count(*) AS rows FROM lms_rows
    WHERE unknown_word IS NOT NULL AND NOT blank_id
    GROUP BY lower(unknown_word)
    """,
    )
    # Learners and paths unknown to the directory and mapping cannot meet an external
    # row: they fold into groups without a code, as do the ignored rows (a blank id).
    run(
        con,
        "CREATE OR REPLACE TEMP TABLE lms_state AS "
        + lms_fold_sql("lms_rows", "user_code, path_code"),
    )
    # Every word of each pair that has one, for the outcome's detail: a few pairs, so
    # the distinct list is built here rather than in the fold above (three times dearer).
    run(
        con,
        """
    CREATE OR REPLACE TEMP TABLE lms_unknown_words AS
    SELECT user_code, path_code,
           string_agg(DISTINCT '''' || unknown_word || '''', ', '
                      ORDER BY '''' || unknown_word || '''') AS words
    FROM lms_rows WHERE unknown_word IS NOT NULL AND NOT blank_id
    GROUP BY 1, 2
    """,
    )
    run(con, "DROP TABLE lms_rows")


def _compare(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Collapse valid external rows per pair and compare each survivor with the LMS
    (table ``collapsed``: one line per valid row with its rank ``rn`` in the pair, the
    ``survivor`` row and, for the survivor, the verdict and its detail).
    Returns how many LMS progress rows were ignored (a blank id), and how many have a
    completion date that cannot be read."""
    ignored, bad_dates = run(
        con, "SELECT coalesce(sum(ignored), 0), coalesce(sum(bad_dates), 0) FROM lms_state"
    )[0]
    lms_word = "CASE l.rk " + " ".join(f"WHEN {i} THEN '{w}'" for i, w in enumerate(STATUSES))
    lms_word += " END"
    same_utc_day = "timezone('UTC', l.completion_ts)::DATE = timezone('UTC', v.completion_ts)::DATE"
    run(
        con,
        f"""
    CREATE OR REPLACE TEMP TABLE collapsed AS
    WITH shared AS (
        -- Most pairs have one valid row: only the rows of shared pairs are ranked
        -- (a window over every row, carrying its text, cost four times as much).
        SELECT user_code, path_code FROM classified WHERE problem IS NULL
        GROUP BY ALL HAVING count(*) > 1
    ), order_in_pair AS (
        SELECT row, row_number() OVER pair AS rn, first_value(row) OVER pair AS survivor
        FROM classified SEMI JOIN shared USING (user_code, path_code)
        WHERE problem IS NULL
        -- README: "Valid rows for the same learner and learning path are collapsed: a
        -- completed row beats any other status and the earliest completion wins (its
        -- date is the one proposed); otherwise the latest activity date wins, then the
        -- further status ..., then the first row in the file. The others are
        -- `duplicate`"
        WINDOW pair AS (
            PARTITION BY user_code, path_code
            ORDER BY (status = 'completed') DESC,
                     CASE WHEN status = 'completed' THEN completion_ts END ASC NULLS LAST,
                     CASE WHEN status <> 'completed' THEN activity_ts END DESC NULLS LAST,
                     recon_rank(status) DESC,
                     row ASC)
    ), ranked AS (
        SELECT c.row, c.user_code, c.path_code, c.status, recon_rank(c.status) AS rk,
               c.completion_ts, c.activity_ts, c.status_how, c.learner, c.path,
               coalesce(o.rn, 1) AS rn, coalesce(o.survivor, c.row) AS survivor
        FROM classified c LEFT JOIN order_in_pair o ON o.row = c.row
        WHERE c.problem IS NULL
    )
    SELECT v.row, v.rn, v.survivor, v.user_code, v.path_code, v.status, v.learner, v.path,
      -- the instants the rules compared, so no later step joins the wide rows again
      v.completion_ts, v.activity_ts,
      CASE
        WHEN v.rn > 1 THEN NULL
        -- README: "recon never proposes against an LMS state it could not read"
        WHEN l.unknown_word IS NOT NULL THEN '{oc.UNKNOWN_LMS_STATUS}'
        WHEN l.bad_date IS NOT NULL THEN '{oc.BAD_LMS_DATE}'
        -- a status the LMS does not know is proposed as is: validation turns it away
        -- (README: "one that fails becomes `invalid-payload`")
        WHEN v.rk = {UNRANKED} THEN '{oc.MISSING_PROGRESS}'
        -- README: "| completed | not completed, or absent | `missing-completion` |"
        WHEN v.rk = {COMPLETED} AND coalesce(l.rk, {UNRANKED}) < {COMPLETED}
             THEN '{oc.MISSING_COMPLETION}'
        -- README: "| completed | completed, same UTC date or no date | `in-sync` |"
        WHEN v.rk = {COMPLETED} AND (l.completion_ts IS NULL OR {same_utc_day})
             THEN '{oc.IN_SYNC}'
        -- README: "| completed | completed, another date | `completion-date-differs` |"
        WHEN v.rk = {COMPLETED} THEN '{oc.COMPLETION_DATE_DIFFERS}'
        -- README: "absent means nothing known, the same as not-started"
        -- README: "| not completed, further than the LMS | behind or absent |
        -- `missing-progress` |"
        WHEN v.rk > coalesce(l.rk, {NOT_STARTED}) THEN '{oc.MISSING_PROGRESS}'
        -- README: "| same status | same status | `in-sync` |" (and not-started against
        -- absent)
        WHEN v.rk = coalesce(l.rk, {NOT_STARTED}) THEN '{oc.IN_SYNC}'
        -- README: "| behind the LMS | further | `lms-ahead` | — (never downgrade) |"
        ELSE '{oc.LMS_AHEAD}'
      END AS verdict,
      CASE
        WHEN v.rn > 1 THEN NULL
        WHEN w.words = ''''''
             THEN 'the LMS lists this learner and path with a blank status'
        WHEN w.words IS NOT NULL THEN 'the LMS lists this learner and path as '
             || w.words || ': not an LMS status, nor a word in [progress.statuses]'
        WHEN l.bad_date IS NOT NULL THEN 'the LMS''s completion date ''' || l.bad_date
             || ''' for this learner and path is not a readable date'
        WHEN l.rk IS NULL THEN 'LMS has no record'
        WHEN v.rk = {COMPLETED} AND l.rk = {COMPLETED} AND l.completion_ts IS NOT NULL
             AND NOT {same_utc_day}
          THEN 'provider ' || strftime(timezone('UTC', v.completion_ts), '%Y-%m-%d')
               || ', LMS ' || strftime(timezone('UTC', l.completion_ts), '%Y-%m-%d')
        ELSE 'LMS: ' || {lms_word}
      END || CASE WHEN v.rn = 1 THEN coalesce('; ' || v.status_how, '') ELSE '' END
        AS verdict_detail
    FROM ranked v LEFT JOIN lms_state l ON l.user_code = v.user_code AND l.path_code = v.path_code
    LEFT JOIN lms_unknown_words w ON w.user_code = v.user_code AND w.path_code = v.path_code
    """,
    )
    # Completions per month, as the provider (survivors) and the LMS see them.
    run(
        con,
        """
    CREATE OR REPLACE TEMP TABLE completions AS
    SELECT month, source, count(*) AS completions FROM (
        SELECT date_trunc('month', timezone('UTC', completion_ts))::DATE AS month,
               'provider' AS source
        FROM collapsed
        WHERE rn = 1 AND status = 'completed'
        UNION ALL
        SELECT date_trunc('month', timezone('UTC', completion_ts))::DATE, 'LMS'
        FROM lms_state
        WHERE completion_ts IS NOT NULL AND user_code IS NOT NULL AND path_code IS NOT NULL
    ) GROUP BY 1, 2
    """,
    )
    # What review.csv shows of each completion-date-differs row: the two instants the rule
    # compared, so no output has to read the files again.
    run(
        con,
        f"""
    CREATE OR REPLACE TEMP TABLE review_instants AS
    SELECT s.row, recon_wire(s.completion_ts) AS provider_completion_date,
           recon_wire(l.completion_ts) AS lms_completion_date
    FROM collapsed s
    JOIN lms_state l ON l.user_code = s.user_code AND l.path_code = s.path_code
    WHERE s.verdict = '{oc.COMPLETION_DATE_DIFFERS}'
    """,
    )
    run(con, "DROP TABLE lms_state")
    run(con, "DROP TABLE lms_unknown_words")
    return int(ignored), int(bad_dates)


def _propose(con: duckdb.DuckDBPyConnection, accepted_keys: Iterable[str]) -> None:
    """Table ``proposals``: one proposal per pair that needs one, validated, keyed, and
    marked ``accepted_before`` when its key is among ``accepted_keys``."""
    key_sql = (
        f"substr(sha256(concat_ws(chr(31), userId, learningPathId, status, "
        f"coalesce(completionDate, ''), coalesce(timeStampDate, ''))), 1, {KEY_LENGTH})"
    )
    run(
        con,
        f"""
    CREATE OR REPLACE TEMP TABLE proposed AS
    WITH base AS (
        SELECT s.row, u.id AS userId, x.id AS learningPathId, s.status,
               CASE WHEN s.verdict = '{oc.MISSING_COMPLETION}'
                    THEN recon_wire(s.completion_ts) END AS completionDate,
               CASE WHEN s.verdict = '{oc.MISSING_PROGRESS}'
                    THEN recon_wire(s.activity_ts) END AS timeStampDate,
               s.verdict AS category,
               s.learner, s.path  -- as the provider wrote them, for proposals.csv
        FROM collapsed s
        JOIN user_codes u ON u.code = s.user_code JOIN path_codes x ON x.code = s.path_code
        WHERE s.verdict IN ('{oc.MISSING_COMPLETION}', '{oc.MISSING_PROGRESS}')
    ), more AS (
        -- the other external rows behind each survivor, in the pair's order (few: most
        -- pairs have one row)
        SELECT survivor, string_agg(row::VARCHAR, ';' ORDER BY rn) AS rows
        FROM collapsed WHERE rn > 1
        GROUP BY 1
    )
    -- the external rows behind each proposal, the one used first
    SELECT {key_sql} AS key, base.*,
           base.row::VARCHAR || coalesce(';' || m.rows, '') AS rows
    FROM base LEFT JOIN more m ON m.survivor = base.row
    """,
    )
    # The endpoint's messages depend only on each field's presence, the status word and
    # whether each date is ISO 8601, so one check per distinct shape decides every row.
    shapes = run(
        con,
        f"""
        SELECT DISTINCT status,
               userId IS NULL OR trim(userId) = '' AS no_user,
               learningPathId IS NULL OR trim(learningPathId) = '' AS no_path,
               CASE WHEN completionDate IS NULL THEN NULL
                    ELSE regexp_full_match(completionDate, {literal(_ISO_8601.pattern)}) END
                 AS c_ok,
               CASE WHEN timeStampDate IS NULL THEN NULL
                    ELSE regexp_full_match(timeStampDate, {literal(_ISO_8601.pattern)}) END
                 AS t_ok
        FROM proposed
        """,
    )
    verdicts = []
    for status, no_user, no_path, c_ok, t_ok in shapes:
        body = {
            "userId": "" if no_user else "u",
            "learningPathId": "" if no_path else "p",
            "status": status,
            "completionDate": None if c_ok is None else ("2026-01-01" if c_ok else "?"),
            "timeStampDate": None if t_ok is None else ("2026-01-01" if t_ok else "?"),
        }
        messages = validate_activity({k: v for k, v in body.items() if v is not None})
        verdicts.append((status, no_user, no_path, c_ok, t_ok, "; ".join(messages) or None))
    checks = pd.DataFrame(
        verdicts, columns=["status", "no_user", "no_path", "c_ok", "t_ok", "errors"]
    ).astype(object)
    con.register("shape_checks", checks)
    accepted = pd.DataFrame({"key": sorted(set(accepted_keys))}, dtype=object)
    con.register("accepted_keys", accepted)
    run(
        con,
        f"""
    CREATE OR REPLACE TEMP TABLE proposals AS
    SELECT p.*, k.errors,
           a.key IS NOT NULL AS accepted_before
    FROM proposed p
    LEFT JOIN shape_checks k
      ON k.status IS NOT DISTINCT FROM p.status
     AND k.no_user = (p.userId IS NULL OR trim(p.userId) = '')
     AND k.no_path = (p.learningPathId IS NULL OR trim(p.learningPathId) = '')
     AND k.c_ok IS NOT DISTINCT FROM CASE WHEN p.completionDate IS NULL THEN NULL
         ELSE regexp_full_match(p.completionDate, {literal(_ISO_8601.pattern)}) END
     AND k.t_ok IS NOT DISTINCT FROM CASE WHEN p.timeStampDate IS NULL THEN NULL
         ELSE regexp_full_match(p.timeStampDate, {literal(_ISO_8601.pattern)}) END
    LEFT JOIN accepted_keys a ON a.key = p.key
    """,
    )
    con.unregister("shape_checks")
    con.unregister("accepted_keys")


def _categorical(codes: pd.Series, categories: list[str]) -> pd.Series:
    """Ids from their codes (-1: none) without building a million strings."""
    values = pd.Categorical.from_codes(codes.to_numpy(dtype="int32"), pd.Index(categories))
    return pd.Series(values, index=codes.index)


def _frames(con: duckdb.DuckDBPyConnection, ext_info: InputInfo) -> dict[str, pd.DataFrame]:
    """The result's frames. Every row is either a row problem (``row_problems``) or a
    valid row (``collapsed``), so the outcomes are a union of the two, never a join of
    two million-row tables: a join's hash table is what would decide peak memory."""
    run(
        con,
        """
    CREATE OR REPLACE TEMP TABLE row_problems AS
    SELECT row, user_code, path_code, status, problem, problem_detail, learner, path
    FROM classified WHERE problem IS NOT NULL
    """,
    )
    run(con, "DROP TABLE classified")  # before any frame is built: the widest table
    proposals = frame(
        con,
        """
    SELECT p.key, p.userId, p.learningPathId, p.status, p.completionDate, p.timeStampDate,
           p.category, p.rows, p.learner, p.path
    FROM proposals p
    WHERE p.errors IS NULL AND NOT p.accepted_before
    ORDER BY p.row
    """,
    )
    lost = run(
        con,
        f"SELECT count(*) FROM proposals p ANTI JOIN exception_sources e ON e.{ROW} = p.row "
        "WHERE p.errors IS NOT NULL",
    )[0][0]
    lost += run(
        con,
        f"SELECT count(*) FROM collapsed s ANTI JOIN exception_sources e ON e.{ROW} = s.row "
        f"WHERE s.verdict IN ('{oc.UNKNOWN_LMS_STATUS}', '{oc.BAD_LMS_DATE}')",
    )[0][0]
    if lost:  # pragma: no cover - guards the reasoning in _classify
        raise RuntimeError("an exception's source row was not kept for exceptions.csv")
    # The provider's columns are in DuckDB under positional names (see recon.inputs), so
    # a provider column called "Row", "detail" or "rowid" is never confused with recon's.
    originals = list(ext_info.columns)
    picked = ", ".join(f"e.{quote(c)}" for c in ext_info.sql_columns)
    exceptions_frame = frame(
        con,
        f"""
    WITH exceptions AS (
        -- a voided statement is settled, not an exception
        SELECT row, problem AS outcome, problem_detail AS detail FROM row_problems
        WHERE problem <> '{oc.VOIDED}'
        UNION ALL
        SELECT row, '{oc.INVALID_PAYLOAD}', errors FROM proposals WHERE errors IS NOT NULL
        UNION ALL
        SELECT row, verdict, verdict_detail FROM collapsed
        WHERE verdict IN ('{oc.UNKNOWN_LMS_STATUS}', '{oc.BAD_LMS_DATE}')
    )
    SELECT x.row, x.outcome, x.detail{", " + picked if picked else ""}
    FROM exceptions x JOIN exception_sources e ON e.{ROW} = x.row
    ORDER BY x.row
    """,
    )
    own = {"row", "outcome", "detail"}
    exceptions_frame.columns = ["row", "outcome", "detail"] + [
        f"{c} (provider)" if c.strip().lower() in own else c for c in originals
    ]
    completions = frame(con, "SELECT * FROM completions ORDER BY month, source")
    review_instants = frame(con, "SELECT * FROM review_instants ORDER BY row")
    # The largest frame last, once everything else is freed.
    for table in ("exception_sources", "proposed", "completions", "review_instants"):
        run(con, f"DROP TABLE IF EXISTS {table}")
    user_ids = [r[0] for r in run(con, "SELECT id FROM user_codes ORDER BY code")]
    path_ids = [r[0] for r in run(con, "SELECT id FROM path_codes ORDER BY code")]
    outcomes = frame_in_row_order(
        con,
        f"""
    SELECT row, problem AS outcome, coalesce(user_code, -1) AS user_code,
           coalesce(path_code, -1) AS path_code, status, problem_detail AS detail,
           learner, path
    FROM row_problems
    UNION ALL
    SELECT s.row,
      CASE
        -- README: "The others are `duplicate`" (the detail: "duplicate of row N")
        WHEN s.rn > 1 THEN '{oc.DUPLICATE}'
        -- README: "one that fails becomes `invalid-payload` with the messages"
        WHEN p.errors IS NOT NULL THEN '{oc.INVALID_PAYLOAD}'
        -- README: "A proposal whose key the ledger shows as accepted by the API earlier
        -- is `already-submitted`"
        WHEN p.accepted_before THEN '{oc.ALREADY_SUBMITTED}'
        ELSE s.verdict
      END,
      s.user_code, s.path_code, s.status,
      CASE
        WHEN s.rn > 1 THEN 'duplicate of row ' || s.survivor
        WHEN p.errors IS NOT NULL THEN p.errors
        WHEN p.accepted_before THEN 'accepted by the LMS earlier (key ' || p.key || ')'
        ELSE s.verdict_detail
      END,
      s.learner, s.path
    FROM collapsed s LEFT JOIN proposals p ON p.row = s.row
    """,
        categorical=("outcome", "status", "detail", "learner", "path"),
    )
    outcomes.insert(2, "userId", _categorical(outcomes.pop("user_code"), user_ids))
    outcomes.insert(
        3,
        "learningPathId",
        _categorical(outcomes.pop("path_code"), path_ids),
    )
    return {
        "outcomes": outcomes,
        "proposals": proposals,
        "exceptions": exceptions_frame,
        "completions": completions,
        "review_instants": review_instants,
    }


def reconcile(
    config: Config | str | Path,
    *,
    as_of: datetime | str | None = None,
    accepted_keys: Iterable[str] = (),
    aliases: pd.DataFrame | None = None,
) -> Result:
    """Reconcile the provider's export with the LMS's progress, by the written rules.

    Pure: reads the inputs, returns a :class:`Result`; records nothing and writes no
    file (:func:`recon.pipeline.reconcile_run` does both, in that order).
    ``config`` is a :class:`Config` or the path of a ``recon.toml``. ``as_of`` is the run's
    time (default now); dates after it are ``future-date``. ``accepted_keys`` are proposal
    keys already accepted by the LMS (a ledger's :meth:`recon.ledger.Ledger.accepted_keys`
    for its target): they become ``already-submitted``. ``aliases`` (``kind``, ``value``,
    ``id``, ``via``: :func:`recon.aliases.engine_aliases`) are looked up before the
    directory and the mapping.
    Raises :class:`recon.errors.InputError` for an input that cannot be used.
    """
    if not isinstance(config, Config):
        config = load_config(config)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    as_of_utc = _parse_as_of(as_of, config.external.timezone)
    spill = tempfile.TemporaryDirectory(prefix="recon-spill-")
    con = _connect(config, spill.name)
    try:
        infos, cols = _load(con, config)
        timings["read"] = time.perf_counter() - started
        # File order matters only while reading (rowid is the data row); every output
        # is sorted explicitly, so the rules may run on all cores in any order.
        run(con, "SET preserve_insertion_order = false")
        mark = time.perf_counter()
        _classify(con, config, cols, as_of_utc, aliases)
        ignored, lms_bad_dates = _compare(con)
        lms_words = dict(run(con, "SELECT word, rows FROM lms_words ORDER BY rows DESC, word"))
        _propose(con, accepted_keys)
        frames = _frames(con, infos["external"])
        timings["rules"] = time.perf_counter() - mark
    finally:
        con.close()
        spill.cleanup()
    timings["reconcile"] = time.perf_counter() - started
    outcomes = frames["outcomes"]
    found = outcomes["outcome"].value_counts()
    if int(found.sum()) != len(outcomes) or not set(found.index) <= set(oc.ALL):
        # a guard: every row has exactly one outcome, and each is a known name
        raise RuntimeError("a provider row has no outcome, or one recon does not know")
    return Result(
        outcomes=outcomes,
        proposals=frames["proposals"],
        exceptions=frames["exceptions"],
        completions=frames["completions"],
        review_instants=frames["review_instants"],
        inputs=infos,
        as_of=as_of_utc,
        counts={name: int(found.get(name, 0)) for name in oc.ALL},
        timings=timings,
        progress_ignored=ignored,
        lms_words_unknown=lms_words,
        lms_bad_dates=lms_bad_dates,
        config_path=str(config.source) if config.source else None,
    )
