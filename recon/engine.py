"""The reconciliation rules, as one in-process DuckDB pipeline.

Size: over 600 lines because every reconciliation rule is kept in this one file so a
reader finds each by name; issue 10 reshapes it (named stage tables, ladders from one
table) and moves the DuckDB helpers out.

The rules are written once, here, in SQL over text columns; pandas is only the shape of
what goes out. Reading happens in :mod:`recon.inputs`, writing in :mod:`recon.outputs`;
nothing in this module touches the network or writes a file.

Rule order for each external row (the first problem found is its outcome):
bad-row, unknown-status, unknown-learner, unknown-path, bad-date, missing-completion-date,
future-date. Valid rows are collapsed per (userId, learningPathId); the survivor is
compared with the LMS's progress. See the README for the full written rules.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from . import outcomes as oc
from . import xapi
from .config import EPOCH_FORMATS, Config, ProgressSpec, load_config
from .derive import StatusRule, status_sql
from .errors import ConfigError, InputError
from .inputs import BAD, ROW, InputInfo, load_table, run
from .ledger import Ledger
from .result import PAYLOAD_FIELDS, Result
from .validation import _ISO_8601, STATUSES, validate_activity

KEY_LENGTH = 20
# Exactly what Python's str.strip removes (tab, no-break space, em space, ...).
_BLANKS = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
# DuckDB's memory: at least this, and more for big inputs (some results cannot spill).
DUCKDB_MEMORY_FLOOR_MB = 320
DUCKDB_MEMORY_PER_INPUT_MB = 1.6
_SEP = "\x1f"
# Dates read from the inputs: ISO 8601 as the endpoint takes it, plus the hour-only
# offset (``+02``) that ISO 8601 allows as well. A year has four digits and is not before
# 1000 (as strptime's %Y, which needs four digits); an offset is within +-14:00, the
# widest any zone has (Pacific/Kiritimati; Etc/GMT+12 the other way).
_ISO_INPUT = (
    r"^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?"
    r"(Z|[+-]((0\d|1[0-3])(:?[0-5]\d)?|14(:?00)?))?)?$"
)
# Every date, once in UTC, lies in the years 1000..9999: the wire format has four digits
# for the year, and a shift across a zone must not leave that range (year 0, or 10000).
_EARLIEST_MS = round(datetime(1000, 1, 1, tzinfo=UTC).timestamp() * 1000)
_LATEST_MS = round(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)
_OFFSET_AT_END = r"[+-]((0\d|1[0-3])(:?[0-5]\d)?|14(:?00)?)\s*$"
_LOOKALIKE = "\x01"


def proposal_key(body: dict[str, str | None]) -> str:
    """The stable key of a correction: the same payload always has the same key.

    The SQL below computes the same value; a test holds the two together.
    """
    text = _SEP.join(body.get(f) or "" for f in PAYLOAD_FIELDS)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_LENGTH]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def name_key(value: str) -> str:
    """How a name (email, course code, id) is compared: case-insensitively, but a
    character that only looks like another never matches it.

    ASCII text is lower-cased. Other text is lower-cased after canonical (NFC)
    composition, unless it holds a compatibility look-alike (NFKC would change it:
    fullwidth letters, ligatures, ``ſ``) or a character that lower-cases into ASCII (the
    Kelvin sign becomes ``k``, ``İ`` becomes ``i`` + a dot): such text is compared
    exactly as written, marked so that it can only ever equal itself.
    """
    if value.isascii():
        return value.lower()
    composed = unicodedata.normalize("NFC", value)
    folded = composed.lower()
    ascii_before = sum(c.isascii() for c in value)
    if (
        unicodedata.normalize("NFKC", value) != composed
        or sum(c.isascii() for c in folded) > ascii_before
    ):
        return _LOOKALIKE + value
    return folded


def _name_keys(values: pa.Array) -> pa.Array:
    return pa.array([None if v is None else name_key(v) for v in values.to_pylist()], pa.string())


def define_date_rule(con: duckdb.DuckDBPyConnection, name: str, formats: Iterable[str]) -> None:
    """Create the SQL macro ``name(text) -> TIMESTAMPTZ or NULL``: the one date rule.

    ISO 8601 first (see ``_ISO_INPUT``), then each strptime format in order; a value
    without an offset is in the connection's TimeZone; whatever does not give an instant
    in the years 1000..9999 (local and UTC) is NULL, i.e. unreadable. Both sides (the
    provider's dates and the LMS's) read dates with a macro made here.
    """
    # Number formats (epoch_ms, epoch_s, excel_serial) are no strptime codes: each reads
    # a plain number of its own length (Unix milliseconds 11-15 digits and seconds 9-12,
    # i.e. from 1973 on; Excel's day numbers up to 7), so one file may use several and a
    # stray "0" is unreadable, not 1970. Excel's days are local wall-clock days, like a
    # cell typed in the file's zone, from 61 (1900-03-01: Excel counts a 29 February 1900
    # that never was, so the numbers before it are a day off); Unix time is an instant.
    formats = tuple(formats)
    numeric = {f for f in formats if f in EPOCH_FORMATS}
    # Formats with an offset (%z) apart: in one list with the others, DuckDB would read
    # the others' values as UTC instead of the configured zone; and %z takes offsets up
    # to 23:59, so the value must end with one of at most 14:00.
    plain = ", ".join(_lit(f) for f in formats if "%z" not in f and f not in numeric)
    zoned = ", ".join(_lit(f) for f in formats if "%z" in f)
    parts = []
    if plain:
        parts.append(f"recon_year_ok(try_strptime(v, [{plain}]))::TIMESTAMPTZ")
    if zoned:
        parts.append(
            f"CASE WHEN regexp_matches(v, {_lit(_OFFSET_AT_END)}) "
            f"THEN recon_year_ok(try_strptime(v, [{zoned}])) END"
        )
    if "epoch_ms" in numeric:
        parts.append(
            "CASE WHEN regexp_full_match(v, '[0-9]{11,15}') "
            "THEN to_timestamp(v::BIGINT / 1000.0) END"
        )
    if "epoch_s" in numeric:
        parts.append(
            "CASE WHEN regexp_full_match(v, '[0-9]{9,12}(\\.[0-9]+)?') "
            "THEN to_timestamp(v::DOUBLE) END"
        )
    if "excel_serial" in numeric:
        parts.append(
            "CASE WHEN regexp_full_match(v, '[0-9]{1,7}(\\.[0-9]+)?') "
            "AND TRY_CAST(v AS DOUBLE) >= 61 "
            "THEN (TIMESTAMP '1899-12-30' + to_microseconds((v::DOUBLE * 86400e6)::BIGINT))"
            "::TIMESTAMPTZ END"
        )
    by_format = f"coalesce({', '.join(parts)})" if parts else "NULL"
    run(
        con,
        f"CREATE OR REPLACE TEMP MACRO {name}(v) AS recon_in_range(CASE "
        "WHEN v IS NULL THEN NULL "
        f"WHEN regexp_full_match(v, {_lit(_ISO_INPUT)}) THEN try_cast(v AS TIMESTAMPTZ) "
        f"ELSE {by_format} END)",
    )


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
    limit_mb = max(DUCKDB_MEMORY_FLOOR_MB, round(DUCKDB_MEMORY_PER_INPUT_MB * inputs_mb))
    run(con, f"SET memory_limit = '{limit_mb}MB'")
    run(con, f"SET temp_directory = {_lit(spill_dir)}")
    # Values without an offset are in the configured zone: DuckDB's casts use TimeZone.
    # A zone or format DuckDB refuses is a config error (exit 2), not a crash mid-run.
    source = config.source
    try:
        run(con, f"SET TimeZone = {_lit(config.external.timezone)}")
    except duckdb.Error:
        con.close()
        raise ConfigError(
            f"{source}: unknown timezone {config.external.timezone!r} (use an IANA name)",
            file=source,
        ) from None
    _date_macro(con, "recon_date", config.external.date_formats, source)
    _key_macro(con)
    _trim_macro(con)
    _rank_macro(con)
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_wire(t) AS "
        "strftime(timezone('UTC', t), '%Y-%m-%dT%H:%M:%S.%gZ')",
    )
    return con


def _date_macro(
    con: duckdb.DuckDBPyConnection, name: str, formats: Iterable[str], source: Path | None
) -> None:
    """The macro ``name(v)``: a trimmed date cell as a TIMESTAMPTZ, NULL when unreadable.

    ISO 8601 first, then each format in order; a value without an offset is in the
    session's TimeZone (set to the zone of the file being read). The provider's dates
    use ``recon_date``, the LMS's ``recon_lms_date``: the same rules, their own formats.
    """
    formats = tuple(formats)
    for fmt in formats:
        if fmt in EPOCH_FORMATS:
            continue
        try:
            run(con, f"SELECT try_strptime('', {_lit(fmt)})")
        except duckdb.Error as exc:
            con.close()
            raise ConfigError(f"{source}: date_formats entry {fmt!r}: {exc}", file=source) from None
    # DuckDB's %Y also takes "26"; Python's (the format language the README names) needs
    # four digits. A year before 1000 is no training record: unreadable.
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_year_ok(t) AS "
        "CASE WHEN year(t) BETWEEN 1000 AND 9999 THEN t END",
    )
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_in_range(t) AS "
        f"CASE WHEN epoch_ms(t) BETWEEN {_EARLIEST_MS} AND {_LATEST_MS} THEN t END",
    )
    define_date_rule(con, name, formats)


def _key_macro(con: duckdb.DuckDBPyConnection) -> None:
    """``recon_key(v)``: how names are compared, :func:`name_key`. DuckDB does ASCII
    itself (most cells), Python the rest."""
    con.create_function(  # type: ignore[call-overload]  # "arrow": the stubs want an enum
        "recon_key_py", _name_keys, ["VARCHAR"], "VARCHAR", type="arrow", side_effects=False
    )
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_key(v) AS CASE WHEN v IS NULL THEN NULL "
        "WHEN strlen(v) = length(v) THEN lower(v) ELSE recon_key_py(v) END",
    )


def _trim_macro(con: duckdb.DuckDBPyConnection) -> None:
    # Trimmed means every kind of blank a spreadsheet leaves (tab, no-break space, ...),
    # as Python's str.strip does for the config's status words. trim() with a character
    # list is slow, so only cells whose first or last character is a blank take it (a
    # look at two code points is three times cheaper than a regular expression).
    blank_chars = _BLANKS
    blanks = " || ".join(f"chr({ord(c)})" for c in blank_chars)
    codes = ", ".join(str(ord(c)) for c in blank_chars)
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_trim(v) AS CASE "
        f"WHEN ascii(v) IN ({codes}) OR ascii(reverse(v)) IN ({codes}) "
        f"THEN trim(v, {blanks}) ELSE v END",
    )


def _rank_macro(con: duckdb.DuckDBPyConnection) -> None:
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_rank(s) AS CASE s "
        + " ".join(f"WHEN {_lit(s)} THEN {i}" for i, s in enumerate(STATUSES))
        + " ELSE -1 END",
    )


def _set_zone(con: duckdb.DuckDBPyConnection, zone: str, section: str, source: Path | None) -> None:
    """Values without an offset are read in ``zone``: DuckDB's casts use TimeZone. A zone
    DuckDB refuses is a config error (exit 2), not a crash mid-run."""
    try:
        run(con, f"SET TimeZone = {_lit(zone)}")
    except duckdb.Error:
        con.close()
        raise ConfigError(
            f"{source}: [{section}] unknown timezone {zone!r} (use an IANA name)", file=source
        ) from None


def lms_macros(con: duckdb.DuckDBPyConnection, spec: ProgressSpec, source: Path | None) -> None:
    """Everything :func:`lms_rows_sql` needs, for the LMS export ``spec`` describes.

    The engine and the sandbox's seeding both read an LMS export with these, so the two
    can never read it differently. Sets the session TimeZone to the export's zone.
    """
    _trim_macro(con)
    _rank_macro(con)
    _date_macro(con, "recon_lms_date", spec.date_formats, source)
    words = spec.status_map()
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_lms_status(w) AS CASE w "
        + " ".join(f"WHEN {_lit(w)} THEN {_lit(s)}" for w, s in words.items())
        + " END",
    )
    _set_zone(con, spec.timezone, "progress", source)


def lms_rows_sql(table: str, cols: Mapping[str, str]) -> str:
    """A SELECT of every row of an LMS export loaded as ``table`` (columns named in
    ``cols``: user, path, status and maybe completion), read by the written rules:

    ``row``; ``user_id`` and ``path_id`` trimmed (NULL when blank); ``word``: the status
    as written, trimmed ('' when blank); ``status``: the LMS status it means, NULL when
    recon does not understand it; ``completion_raw`` (trimmed, NULL when blank) and
    ``completion_ts``: read for completed rows only, NULL when absent or unreadable.
    Needs :func:`lms_macros`.
    """
    completion = (
        f"nullif(recon_trim({_q(cols['completion'])}), '')" if "completion" in cols else "NULL"
    )
    return f"""
    SELECT row, user_id, path_id, word, status, completion_raw,
           CASE WHEN status = 'completed' THEN recon_lms_date(completion_raw) END
             AS completion_ts
    FROM (
        SELECT {ROW} AS row,
               -- a row that does not line up with the header is not used (and counted)
               CASE WHEN {BAD} IS NULL THEN nullif(recon_trim({_q(cols["user"])}), '') END
                 AS user_id,
               nullif(recon_trim({_q(cols["path"])}), '') AS path_id,
               coalesce(recon_trim({_q(cols["status"])}), '') AS word,
               recon_lms_status(lower(coalesce(recon_trim({_q(cols["status"])}), ''))) AS status,
               {completion}::VARCHAR AS completion_raw
        FROM {table}
    )
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
    infos["progress"], cols["progress"] = load_table(
        con,
        "progress",
        "progress",
        prog.file,
        {
            "user": prog.user_id,
            "path": prog.path_id,
            "status": prog.status,
            "completion": prog.completion_date,
        },
        sheet=prog.sheet,
        allow_no_rows=True,
    )
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
        f"SELECT l.k, l.n, l.via, x.code FROM {lookup} l LEFT JOIN {codes} x ON x.k = lower(l.id)",
    )


def _identity(con: duckdb.DuckDBPyConnection, name: str, table: str, value: str) -> None:
    """For ids given as ids: the directory/mapping only vets that they exist.

    One line per key, like :func:`_lookup`: ids that differ only in case are ambiguous
    (``n`` > 1) instead of joining an external row twice.
    """
    _lookup(con, name, table, value, value)


def _apply_aliases(
    con: duckdb.DuckDBPyConnection, lookup: str, kind: str, aliases: pd.DataFrame | None
) -> None:
    """Aliases an analyst accepted (issue 14: ``kind``, ``value``, ``id``, ``via``) come
    before the directory or mapping ``lookup``: a value with an alias is looked up there
    only; ``via`` says so in the outcome's detail (NULL for the file's own lines)."""
    rows = pd.DataFrame(columns=["kind", "value", "id", "via"], dtype=object)
    if aliases is not None and len(aliases):
        rows = aliases[["kind", "value", "id", "via"]].astype(object)
    con.register("alias_rows", rows)
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE {lookup} AS "
        "WITH a AS (SELECT recon_key(recon_trim(value)) AS k, min(recon_trim(id)) AS id, "
        "1 AS n, min(via) AS via FROM alias_rows "
        f"WHERE kind = {_lit(kind)} AND nullif(recon_trim(value), '') IS NOT NULL "
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
    """Table ``c``: every external row, normalised, with its row problem (or NULL)."""
    ext = cols["external"]
    status_map = pd.DataFrame(
        list(config.status_map().items()), columns=["word", "status"], dtype=object
    )
    con.register("status_map_frame", status_map)
    run(con, "CREATE OR REPLACE TEMP TABLE smap AS SELECT * FROM status_map_frame")
    con.unregister("status_map_frame")

    if config.users is not None:
        u = cols["users"]
        if config.external.learner_kind == "email":
            _lookup(con, "dir", "users", _q(u["email"]), _q(u["id"]))
        elif config.external.learner_kind == "email_or_user_id":
            # Emails hold an @ and the LMS's ids do not: one lookup serves both.
            _lookup(con, "dir_email", "users", _q(u["email"]), _q(u["id"]))
            _identity(con, "dir_id", "users", _q(u["id"]))
            run(
                con,
                "CREATE OR REPLACE TEMP TABLE dir AS "
                "SELECT * FROM dir_email UNION ALL "
                "SELECT * FROM dir_id WHERE k NOT IN (SELECT k FROM dir_email)",
            )
            run(con, "DROP TABLE dir_email")
            run(con, "DROP TABLE dir_id")
        else:
            _identity(con, "dir", "users", _q(u["id"]))
    else:
        _own_ids(con, "dir", _q(ext["learner"]))
    learner_key = "recon_key(t.learner)"
    if config.paths is not None:
        p = cols["paths"]
        if config.external.path_kind == "code":
            _lookup(con, "pmap", "paths", _q(p["code"]), _q(p["id"]))
        else:
            _identity(con, "pmap", "paths", _q(p["id"]))
    else:
        _own_ids(con, "pmap", _q(ext["path"]))
    path_key = "recon_key(t.path)"
    _apply_aliases(con, "dir", "learner", aliases)
    _apply_aliases(con, "pmap", "path", aliases)
    _code(con, "dir", "uid")
    _code(con, "pmap", "pid")
    # The LMS's export is folded now that ids have codes, and freed before the
    # provider's rows are normalised: memory is what a million-row run is judged by.
    _fold_lms(con, config, cols)
    learner_join = f"LEFT JOIN dir d ON d.k = {learner_key}"
    path_join = f"LEFT JOIN pmap p ON p.k = {path_key}"

    names = {
        "L": _q(ext["learner"]),
        "P": _q(ext["path"]),
        "C": _q(ext["completion"]),
    }

    def cell(role: str) -> str:
        return f"nullif(recon_trim(e.{_q(ext[role])}), '')"

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
    # Each cell is trimmed once, and the lookups join on the trimmed text.
    normalised = f"""
    WITH t AS (
        SELECT e.{ROW} AS row, e.{BAD} AS bad,
               nullif(recon_trim(e.{{L}}), '') AS learner,
               nullif(recon_trim(e.{{P}}), '') AS path,
               {status_word} AS status_raw,
               {status_how} AS status_how,
               nullif(recon_trim(e.{{C}}), '') AS completion_raw,
               {activity} AS activity_raw,
               {note} AS learner_note,
               {voided} AS voided
        FROM ext e
    )
    SELECT t.*, s.status AS status,
           d.code AS user_code, d.n AS user_n,
           p.code AS path_code, p.n AS path_n,
           nullif(concat_ws('; ', d.via, p.via), '') AS via
    FROM t
    LEFT JOIN smap s ON s.word = lower(t.status_raw)
    {learner_join}
    {path_join}
    """.format(**names)
    as_of_lit = _lit(as_of.isoformat())
    run(
        con,
        f"""
    CREATE OR REPLACE TEMP TABLE c AS
    WITH n AS ({normalised}),
    d AS (
        SELECT *, recon_date(completion_raw) AS completion_ts,
                  recon_date(activity_raw) AS activity_ts
        FROM n
    )
    SELECT row, user_code, path_code, status, completion_ts, activity_ts, learner, path,
      nullif(concat_ws('; ', status_how, via), '') AS status_how,
      CASE
        WHEN bad IS NOT NULL THEN '{oc.BAD_ROW}'
        WHEN voided IS NOT NULL THEN '{oc.VOIDED}'
        WHEN status IS NULL THEN '{oc.UNKNOWN_STATUS}'
        WHEN user_code IS NULL THEN '{oc.UNKNOWN_LEARNER}'
        WHEN path_code IS NULL THEN '{oc.UNKNOWN_PATH}'
        WHEN (completion_raw IS NOT NULL AND completion_ts IS NULL)
          OR (activity_raw IS NOT NULL AND activity_ts IS NULL) THEN '{oc.BAD_DATE}'
        WHEN status = 'completed' AND completion_ts IS NULL THEN '{oc.MISSING_COMPLETION_DATE}'
        WHEN completion_ts > TIMESTAMPTZ {as_of_lit}
          OR activity_ts > TIMESTAMPTZ {as_of_lit} THEN '{oc.FUTURE_DATE}'
      END AS problem,
      CASE
        WHEN bad IS NOT NULL THEN bad
        WHEN voided IS NOT NULL THEN voided
        WHEN status IS NULL AND status_raw IS NULL THEN 'status is blank'
        WHEN status IS NULL THEN 'status ''' || status_raw || ''' is not in [external.statuses]'
             || coalesce(' (' || status_how || ')', '')
        WHEN learner IS NULL AND learner_note IS NOT NULL THEN learner_note
        WHEN learner IS NULL THEN 'learner is blank'
        WHEN user_n > 1 THEN '{learner_kind} ''' || learner || ''' names ' || user_n
             || ' different user ids in the directory'
        WHEN user_code IS NULL AND starts_with(recon_key(learner), chr(1))
             THEN '{learner_kind} ''' || learner || ''' is not in the directory (it holds '
             || 'look-alike characters, so it is compared exactly as written)'
        WHEN user_code IS NULL THEN '{learner_kind} ''' || learner || ''' is not in the directory'
        WHEN path IS NULL THEN 'learning path is blank'
        WHEN path_n > 1 THEN '{path_kind} ''' || path || ''' maps to ' || path_n
             || ' learning paths'
        WHEN path_code IS NULL AND starts_with(recon_key(path), chr(1))
             THEN '{path_kind} ''' || path || ''' is not in the path mapping (it holds '
             || 'look-alike characters, so it is compared exactly as written)'
        WHEN path_code IS NULL THEN '{path_kind} ''' || path || ''' is not in the path mapping'
        WHEN completion_raw IS NOT NULL AND completion_ts IS NULL
             THEN 'completion date ''' || completion_raw || ''' is not a readable date'
        WHEN activity_raw IS NOT NULL AND activity_ts IS NULL
             THEN 'activity date ''' || activity_raw || ''' is not a readable date'
        WHEN status = 'completed' AND completion_ts IS NULL THEN 'completed, but no completion date'
        WHEN completion_ts > TIMESTAMPTZ {as_of_lit}
             THEN 'completion date ' || recon_wire(completion_ts) || ' is after the as-of time'
        WHEN activity_ts > TIMESTAMPTZ {as_of_lit}
             THEN 'activity date ' || recon_wire(activity_ts) || ' is after the as-of time'
      END || coalesce('; ' || via, '') AS problem_detail
    FROM d
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
    CREATE OR REPLACE TEMP TABLE exc_src AS
    WITH unread AS (
        SELECT user_code, path_code FROM lms
        WHERE unknown_word IS NOT NULL OR bad_date IS NOT NULL
    ), keep AS (
        SELECT c.row FROM c LEFT JOIN unread l
          ON l.user_code = c.user_code AND l.path_code = c.path_code
        WHERE c.problem IS NOT NULL OR recon_rank(c.status) < 0 OR l.user_code IS NOT NULL
    )
    SELECT e.* FROM ext e SEMI JOIN keep k ON k.row = e.{ROW}
    """,
    )
    _drop_input(con, "ext")
    for table in ("smap", "dir", "pmap"):
        run(con, f"DROP TABLE IF EXISTS {table}")
    for view in ("users", "paths"):
        _drop_input(con, view)


def _fold_lms(con: duckdb.DuckDBPyConnection, config: Config, cols: dict) -> None:
    """Fold the LMS's progress per pair (table ``lms``), and list the LMS's status words
    recon did not understand (table ``lms_words``: word, rows).

    The LMS may list a pair more than once: its furthest status counts, and the earliest
    completion date it holds. A pair with a status word recon does not understand, or a
    completion date it cannot read, is marked (``unknown_word``, ``bad_date``; each such
    pair's words are in table ``lms_unknown``): nothing is proposed against a state
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
    CREATE OR REPLACE TEMP TABLE lms_r AS
    SELECT u.code AS user_code, x.code AS path_code, recon_rank(r.status) AS rk,
           r.completion_ts,
           r.user_id IS NULL OR r.path_id IS NULL AS blank_id,
           CASE WHEN r.status IS NULL THEN r.word END AS unknown_word,
           CASE WHEN r.status = 'completed' AND r.completion_raw IS NOT NULL
                 AND r.completion_ts IS NULL THEN r.completion_raw END AS bad_date
    FROM ({rows}) r
    -- ids compared as the LMS compares them: UUIDs have no case
    LEFT JOIN uid u ON u.k = lower(r.user_id) LEFT JOIN pid x ON x.k = lower(r.path_id)
    """,
    )
    _drop_input(con, "progress")
    # Back to the provider's zone for everything after: only the LMS's dates are in its.
    run(con, f"SET TimeZone = {_lit(config.external.timezone)}")
    run(
        con,
        """
    CREATE OR REPLACE TEMP TABLE lms_words AS
    SELECT min(unknown_word) AS word, count(*) AS rows FROM lms_r
    WHERE unknown_word IS NOT NULL AND NOT blank_id
    GROUP BY lower(unknown_word)
    """,
    )
    run(
        con,
        """
    CREATE OR REPLACE TEMP TABLE lms AS
    -- Learners and paths unknown to the directory and mapping cannot meet an external
    -- row: they fold into groups without a code, as do the ignored rows (a blank id).
    SELECT user_code, path_code,
           max(rk) FILTER (WHERE rk >= 0) AS rk,
           min(completion_ts) AS completion_ts,
           count(*) FILTER (WHERE blank_id) AS ignored,
           min(unknown_word) FILTER (WHERE NOT blank_id) AS unknown_word,
           min(bad_date) FILTER (WHERE NOT blank_id) AS bad_date,
           count(bad_date) FILTER (WHERE NOT blank_id) AS bad_dates
    FROM lms_r
    GROUP BY 1, 2
    """,
    )
    # Every word of each pair that has one, for the outcome's detail: a few pairs, so
    # the distinct list is built here rather than in the fold above (three times dearer).
    run(
        con,
        """
    CREATE OR REPLACE TEMP TABLE lms_unknown AS
    SELECT user_code, path_code,
           string_agg(DISTINCT '''' || unknown_word || '''', ', '
                      ORDER BY '''' || unknown_word || '''') AS words
    FROM lms_r WHERE unknown_word IS NOT NULL AND NOT blank_id
    GROUP BY 1, 2
    """,
    )
    run(con, "DROP TABLE lms_r")


def _compare(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Collapse valid external rows per pair and compare each survivor with the LMS
    (table ``s``: one line per valid row with its rank ``rn`` in the pair, the
    ``survivor`` row and, for the survivor, the verdict).
    Returns how many LMS progress rows were ignored (a blank id), and how many have a
    completion date that cannot be read."""
    ignored, bad_dates = run(
        con, "SELECT coalesce(sum(ignored), 0), coalesce(sum(bad_dates), 0) FROM lms"
    )[0]
    lms_word = "CASE l.rk " + " ".join(f"WHEN {i} THEN '{w}'" for i, w in enumerate(STATUSES))
    lms_word += " END"
    run(
        con,
        f"""
    CREATE OR REPLACE TEMP TABLE s AS
    WITH v AS (
        SELECT row, user_code, path_code, status, recon_rank(status) AS rk,
               completion_ts, activity_ts, status_how,
               row_number() OVER w AS rn,
               first_value(row) OVER w AS survivor
        FROM c WHERE problem IS NULL
        WINDOW w AS (
            PARTITION BY user_code, path_code
            ORDER BY (status = 'completed') DESC,
                     CASE WHEN status = 'completed' THEN completion_ts END ASC NULLS LAST,
                     CASE WHEN status <> 'completed' THEN activity_ts END DESC NULLS LAST,
                     recon_rank(status) DESC,
                     row ASC)
    )
    SELECT v.row, v.rn, v.survivor, v.user_code, v.path_code, v.status,
      CASE
        WHEN v.rn > 1 THEN NULL
        -- recon never proposes against an LMS state it could not read
        WHEN l.unknown_word IS NOT NULL THEN '{oc.UNKNOWN_LMS_STATUS}'
        WHEN l.bad_date IS NOT NULL THEN '{oc.BAD_LMS_DATE}'
        -- a status the LMS does not know is proposed as is: validation turns it away
        WHEN v.rk < 0 THEN '{oc.MISSING_PROGRESS}'
        WHEN v.rk = 3 AND coalesce(l.rk, -1) < 3 THEN '{oc.MISSING_COMPLETION}'
        WHEN v.rk = 3 AND (l.completion_ts IS NULL OR
             timezone('UTC', l.completion_ts)::DATE = timezone('UTC', v.completion_ts)::DATE)
             THEN '{oc.IN_SYNC}'
        WHEN v.rk = 3 THEN '{oc.COMPLETION_DATE_DIFFERS}'
        -- absent means nothing known: the same as not-started
        WHEN v.rk > coalesce(l.rk, 0) THEN '{oc.MISSING_PROGRESS}'
        WHEN v.rk = coalesce(l.rk, 0) THEN '{oc.IN_SYNC}'
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
        WHEN v.rk = 3 AND l.rk = 3 AND l.completion_ts IS NOT NULL AND
             timezone('UTC', l.completion_ts)::DATE <> timezone('UTC', v.completion_ts)::DATE
          THEN 'provider ' || strftime(timezone('UTC', v.completion_ts), '%Y-%m-%d')
               || ', LMS ' || strftime(timezone('UTC', l.completion_ts), '%Y-%m-%d')
        ELSE 'LMS: ' || {lms_word}
      END || CASE WHEN v.rn = 1 THEN coalesce('; ' || v.status_how, '') ELSE '' END
        AS verdict_detail
    FROM v LEFT JOIN lms l ON l.user_code = v.user_code AND l.path_code = v.path_code
    LEFT JOIN lms_unknown w ON w.user_code = v.user_code AND w.path_code = v.path_code
    """,
    )
    # Completions per month, as the provider (survivors) and the LMS see them.
    run(
        con,
        """
    CREATE OR REPLACE TEMP TABLE completions AS
    SELECT month, source, count(*) AS completions FROM (
        SELECT date_trunc('month', timezone('UTC', c.completion_ts))::DATE AS month,
               'provider' AS source
        FROM s JOIN c ON c.row = s.row WHERE s.rn = 1 AND c.status = 'completed'
        UNION ALL
        SELECT date_trunc('month', timezone('UTC', completion_ts))::DATE, 'LMS'
        FROM lms
        WHERE completion_ts IS NOT NULL AND user_code IS NOT NULL AND path_code IS NOT NULL
    ) GROUP BY 1, 2
    """,
    )
    run(con, "DROP TABLE lms")
    run(con, "DROP TABLE lms_unknown")
    return int(ignored), int(bad_dates)


def _propose(con: duckdb.DuckDBPyConnection, accepted_keys: Iterable[str]) -> None:
    """Table ``p``: one proposal per pair that needs one, validated, keyed."""
    key_sql = (
        f"substr(sha256(concat_ws(chr(31), userId, learningPathId, status, "
        f"coalesce(completionDate, ''), coalesce(timeStampDate, ''))), 1, {KEY_LENGTH})"
    )
    run(
        con,
        f"""
    CREATE OR REPLACE TEMP TABLE p0 AS
    WITH base AS (
        SELECT c.row, u.id AS userId, x.id AS learningPathId, c.status,
               CASE WHEN s.verdict = '{oc.MISSING_COMPLETION}'
                    THEN recon_wire(c.completion_ts) END AS completionDate,
               CASE WHEN s.verdict = '{oc.MISSING_PROGRESS}'
                    THEN recon_wire(c.activity_ts) END AS timeStampDate,
               s.verdict AS category
        FROM s JOIN c ON c.row = s.row
        JOIN uid u ON u.code = c.user_code JOIN pid x ON x.code = c.path_code
        WHERE s.verdict IN ('{oc.MISSING_COMPLETION}', '{oc.MISSING_PROGRESS}')
    ), grouped AS (
        -- the external rows behind each proposal, the one used first
        SELECT s.survivor, string_agg(s.row::VARCHAR, ';' ORDER BY s.rn) AS rows
        FROM s SEMI JOIN base b ON s.survivor = b.row
        GROUP BY 1
    )
    SELECT {key_sql} AS key, base.*, g.rows
    FROM base JOIN grouped g ON g.survivor = base.row
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
                    ELSE regexp_full_match(completionDate, {_lit(_ISO_8601.pattern)}) END AS c_ok,
               CASE WHEN timeStampDate IS NULL THEN NULL
                    ELSE regexp_full_match(timeStampDate, {_lit(_ISO_8601.pattern)}) END AS t_ok
        FROM p0
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
    CREATE OR REPLACE TEMP TABLE p AS
    SELECT p0.*, k.errors,
           a.key IS NOT NULL AS accepted_before
    FROM p0
    LEFT JOIN shape_checks k
      ON k.status IS NOT DISTINCT FROM p0.status
     AND k.no_user = (p0.userId IS NULL OR trim(p0.userId) = '')
     AND k.no_path = (p0.learningPathId IS NULL OR trim(p0.learningPathId) = '')
     AND k.c_ok IS NOT DISTINCT FROM CASE WHEN p0.completionDate IS NULL THEN NULL
         ELSE regexp_full_match(p0.completionDate, {_lit(_ISO_8601.pattern)}) END
     AND k.t_ok IS NOT DISTINCT FROM CASE WHEN p0.timeStampDate IS NULL THEN NULL
         ELSE regexp_full_match(p0.timeStampDate, {_lit(_ISO_8601.pattern)}) END
    LEFT JOIN accepted_keys a ON a.key = p0.key
    """,
    )
    con.unregister("shape_checks")
    con.unregister("accepted_keys")


def _frame(
    con: duckdb.DuckDBPyConnection, sql: str, categorical: Iterable[str] = ()
) -> pd.DataFrame:
    """A query's rows as a DataFrame, through Arrow (about three times faster than
    ``.df()`` for a million text rows). Columns with few distinct values become
    categoricals: a million outcome names then cost a million bytes, not 30 MB."""
    # Streamed in batches: a materialised result would have to fit DuckDB's memory limit,
    # while a streamed sort spills to disk like every other step.
    table = con.sql(sql).to_arrow_reader(200_000).read_all()
    for name in categorical:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(name).dictionary_encode())
    return table.to_pandas()


def _categorical(codes: pd.Series, categories: list[str]) -> pd.Series:
    """Ids from their codes (-1: none) without building a million strings."""
    values = pd.Categorical.from_codes(codes.to_numpy(dtype="int32"), pd.Index(categories))
    return pd.Series(values, index=codes.index)


def _frames(con: duckdb.DuckDBPyConnection, ext_info: InputInfo) -> dict[str, pd.DataFrame]:
    """The result's frames. Every row is either a row problem (``c``) or a valid row
    (``s``), so the outcomes are a union of the two, never a join of two million-row
    tables: a join's hash table is what would decide peak memory."""
    proposals = _frame(
        con,
        """
    SELECT p.key, p.userId, p.learningPathId, p.status, p.completionDate, p.timeStampDate,
           p.category, p.rows, c.learner, c.path
    FROM p JOIN c ON c.row = p.row
    WHERE p.errors IS NULL AND NOT p.accepted_before
    ORDER BY p.row
    """,
    )
    run(
        con,
        """
    CREATE OR REPLACE TEMP TABLE cp AS
    SELECT row, user_code, path_code, status, problem, problem_detail
    FROM c WHERE problem IS NOT NULL
    """,
    )
    run(con, "DROP TABLE c")
    lost = run(
        con,
        f"SELECT count(*) FROM p ANTI JOIN exc_src e ON e.{ROW} = p.row WHERE p.errors IS NOT NULL",
    )[0][0]
    lost += run(
        con,
        f"SELECT count(*) FROM s ANTI JOIN exc_src e ON e.{ROW} = s.row "
        f"WHERE s.verdict IN ('{oc.UNKNOWN_LMS_STATUS}', '{oc.BAD_LMS_DATE}')",
    )[0][0]
    if lost:  # pragma: no cover - guards the reasoning in _classify
        raise RuntimeError("an exception's source row was not kept for exceptions.csv")
    # The provider's columns are in DuckDB under positional names (see recon.inputs), so
    # a provider column called "Row", "detail" or "rowid" is never confused with recon's.
    originals = list(ext_info.columns)
    picked = ", ".join(f"e.{_q(c)}" for c in ext_info.sql_columns)
    exceptions_frame = _frame(
        con,
        f"""
    WITH o AS (
        -- a voided statement is settled, not an exception
        SELECT row, problem AS outcome, problem_detail AS detail FROM cp
        WHERE problem <> '{oc.VOIDED}'
        UNION ALL
        SELECT row, '{oc.INVALID_PAYLOAD}', errors FROM p WHERE errors IS NOT NULL
        UNION ALL
        SELECT row, verdict, verdict_detail FROM s
        WHERE verdict IN ('{oc.UNKNOWN_LMS_STATUS}', '{oc.BAD_LMS_DATE}')
    )
    SELECT o.row, o.outcome, o.detail{", " + picked if picked else ""}
    FROM o JOIN exc_src e ON e.{ROW} = o.row
    ORDER BY o.row
    """,
    )
    own = {"row", "outcome", "detail"}
    exceptions_frame.columns = ["row", "outcome", "detail"] + [
        f"{c} (provider)" if c.strip().lower() in own else c for c in originals
    ]
    completions = _frame(con, "SELECT * FROM completions ORDER BY month, source")
    # The largest frame last, once everything else is freed.
    for table in ("exc_src", "p0", "completions"):
        run(con, f"DROP TABLE IF EXISTS {table}")
    user_ids = [r[0] for r in run(con, "SELECT id FROM uid ORDER BY code")]
    path_ids = [r[0] for r in run(con, "SELECT id FROM pid ORDER BY code")]
    outcomes = _frame(
        con,
        f"""
    SELECT row, problem AS outcome, coalesce(user_code, -1) AS user_code,
           coalesce(path_code, -1) AS path_code, status, problem_detail AS detail
    FROM cp
    UNION ALL
    SELECT s.row,
      CASE
        WHEN s.rn > 1 THEN '{oc.DUPLICATE}'
        WHEN p.errors IS NOT NULL THEN '{oc.INVALID_PAYLOAD}'
        WHEN p.accepted_before THEN '{oc.ALREADY_SUBMITTED}'
        ELSE s.verdict
      END,
      s.user_code, s.path_code, s.status,
      CASE
        WHEN s.rn > 1 THEN 'duplicate of row ' || s.survivor
        WHEN p.errors IS NOT NULL THEN p.errors
        WHEN p.accepted_before THEN 'accepted by the LMS earlier (key ' || p.key || ')'
        ELSE s.verdict_detail
      END
    FROM s LEFT JOIN p ON p.row = s.row
    ORDER BY row
    """,
        categorical=("outcome", "status", "detail"),
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
    }


def reconcile(
    config: Config | str | Path,
    *,
    as_of: datetime | str | None = None,
    accepted_keys: Iterable[str] = (),
    ledger: Ledger | str | Path | None = None,
    aliases: pd.DataFrame | None = None,
) -> Result:
    """Reconcile the provider's export with the LMS's progress, by the written rules.

    ``config`` is a :class:`Config` or the path of a ``recon.toml``. ``as_of`` is the run's
    time (default now); dates after it are ``future-date``. ``accepted_keys`` are proposal
    keys the ledger shows as accepted by the API: they become ``already-submitted``.
    With a ``ledger`` (a :class:`Ledger` or its path) its accepted keys are used too, and
    the run is recorded in it (``result.run_id``). ``aliases`` (``kind``, ``value``,
    ``id``, ``via``; default: the ledger's) are looked up before the directory and mapping.
    Raises :class:`recon.errors.InputError` for an input that cannot be used.
    """
    if not isinstance(config, Config):
        config = load_config(config)
    if ledger is not None and not isinstance(ledger, Ledger):
        with Ledger(ledger) as opened:
            return reconcile(
                config, as_of=as_of, accepted_keys=accepted_keys, ledger=opened, aliases=aliases
            )
    if ledger is not None:
        accepted_keys = set(accepted_keys) | ledger.accepted_keys()
        if aliases is None:
            from .aliases import engine_aliases

            aliases = engine_aliases(ledger)
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
    result = Result(
        outcomes=frames["outcomes"],
        proposals=frames["proposals"],
        exceptions=frames["exceptions"],
        completions=frames["completions"],
        inputs=infos,
        as_of=as_of_utc,
        timings=timings,
        progress_ignored=ignored,
        lms_words_unknown=lms_words,
        lms_bad_dates=lms_bad_dates,
        config_path=str(config.source) if config.source else None,
    )
    if ledger is not None:
        mark = time.perf_counter()
        ledger.record_run(result)
        result.timings["ledger"] = time.perf_counter() - mark
    return result
