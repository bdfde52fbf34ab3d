"""How a cell is normalised before any rule reads it: the SQL macros every stage uses.

The README's "Normalising" paragraph, as code: every cell trimmed of blanks (whatever
Python's ``str.strip`` removes), names (emails, course codes, ids) compared
case-insensitively but never through a look-alike (:func:`name_key`), dates read as ISO
8601 then each configured format (:func:`define_date_rule`), statuses ranked by name,
instants written as the endpoint takes them. The engine installs these on its connection
(:func:`install`); the LMS export's reading (``recon.engine.lms_macros``, also used by
the sandbox's seeding) reuses the same ones, so the two sides can never read a cell
differently.

Macros: ``recon_trim(v)``, ``recon_key(v)``, ``recon_rank(status)``, ``recon_wire(t)``,
``recon_date(v)`` (the provider's dates), ``recon_lms_date(v)`` (the LMS's), and the
helpers ``recon_year_ok(t)`` / ``recon_in_range(t)`` the date rules use.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from .config import EPOCH_FORMATS
from .duck import literal, run
from .errors import ConfigError
from .validation import STATUSES

# Exactly what Python's str.strip removes (tab, no-break space, em space, ...).
BLANKS = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
# Dates read from the inputs: ISO 8601 as the endpoint takes it, plus the hour-only
# offset (``+02``) that ISO 8601 allows as well. A year has four digits and is not before
# 1000 (as strptime's %Y, which needs four digits); an offset is within +-14:00, the
# widest any zone has (Pacific/Kiritimati; Etc/GMT+12 the other way).
ISO_INPUT = (
    r"^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?"
    r"(Z|[+-]((0\d|1[0-3])(:?[0-5]\d)?|14(:?00)?))?)?$"
)
# Every date, once in UTC, lies in the years 1000..9999: the wire format has four digits
# for the year, and a shift across a zone must not leave that range (year 0, or 10000).
_EARLIEST_MS = round(datetime(1000, 1, 1, tzinfo=UTC).timestamp() * 1000)
_LATEST_MS = round(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)
_OFFSET_AT_END = r"[+-]((0\d|1[0-3])(:?[0-5]\d)?|14(:?00)?)\s*$"
UNRANKED = -1
"""``recon_rank`` of a word that is no LMS status."""
LOOKALIKE = "\x01"
"""The mark :func:`name_key` puts before a name it compares exactly as written."""


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
        return LOOKALIKE + value
    return folded


def _name_keys(values: pa.Array) -> pa.Array:
    return pa.array([None if v is None else name_key(v) for v in values.to_pylist()], pa.string())


def install(
    con: duckdb.DuckDBPyConnection, date_formats: Iterable[str], source: Path | None
) -> None:
    """Every macro the provider's rows need: trim, key, rank, wire and ``recon_date``
    (with the provider's ``date_formats``). The session TimeZone must be set already."""
    date_macro(con, "recon_date", date_formats, source)
    key_macro(con)
    trim_macro(con)
    rank_macro(con)
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_wire(t) AS "
        "strftime(timezone('UTC', t), '%Y-%m-%dT%H:%M:%S.%gZ')",
    )


def define_date_rule(con: duckdb.DuckDBPyConnection, name: str, formats: Iterable[str]) -> None:
    """Create the SQL macro ``name(text) -> TIMESTAMPTZ or NULL``: the one date rule.

    ISO 8601 first (see ``ISO_INPUT``), then each strptime format in order; a value
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
    plain = ", ".join(literal(f) for f in formats if "%z" not in f and f not in numeric)
    zoned = ", ".join(literal(f) for f in formats if "%z" in f)
    parts = []
    if plain:
        parts.append(f"recon_year_ok(try_strptime(v, [{plain}]))::TIMESTAMPTZ")
    if zoned:
        parts.append(
            f"CASE WHEN regexp_matches(v, {literal(_OFFSET_AT_END)}) "
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
        f"WHEN regexp_full_match(v, {literal(ISO_INPUT)}) THEN try_cast(v AS TIMESTAMPTZ) "
        f"ELSE {by_format} END)",
    )


def date_macro(
    con: duckdb.DuckDBPyConnection, name: str, formats: Iterable[str], source: Path | None
) -> None:
    """The macro ``name(v)``: a trimmed date cell as a TIMESTAMPTZ, NULL when unreadable.

    ISO 8601 first, then each format in order; a value without an offset is in the
    session's TimeZone (set to the zone of the file being read). The provider's dates
    use ``recon_date``, the LMS's ``recon_lms_date``: the same rules, their own formats.
    A format DuckDB refuses is a config error (exit 2), not a crash mid-run.
    """
    formats = tuple(formats)
    for fmt in formats:
        if fmt in EPOCH_FORMATS:
            continue
        try:
            run(con, f"SELECT try_strptime('', {literal(fmt)})")
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


def key_macro(con: duckdb.DuckDBPyConnection) -> None:
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


def trim_macro(con: duckdb.DuckDBPyConnection) -> None:
    """``recon_trim(v)``: ``v`` without leading or trailing blanks."""
    # Trimmed means every kind of blank a spreadsheet leaves (tab, no-break space, ...),
    # as Python's str.strip does for the config's status words. trim() with a character
    # list is slow, so only cells whose first or last character is a blank take it (a
    # look at two code points is three times cheaper than a regular expression).
    # Most cells start and end with a printable ASCII character, none of them a blank:
    # two comparisons settle those. The codes are a list, not an IN: DuckDB turns a long
    # IN into a join, one per cell column.
    blanks = " || ".join(f"chr({ord(c)})" for c in BLANKS)
    codes = ", ".join(str(ord(c)) for c in BLANKS)
    low, high = ord(" ") + 1, min(ord(c) for c in BLANKS if c > " ") - 1
    assert not any(low <= ord(c) <= high for c in BLANKS)
    plain = f"BETWEEN {low} AND {high}"
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_trim(v) AS CASE "
        f"WHEN ascii(v) {plain} AND ascii(reverse(v)) {plain} THEN v "
        f"WHEN list_contains([{codes}], ascii(v)) OR list_contains([{codes}], ascii(reverse(v))) "
        f"THEN trim(v, {blanks}) ELSE v END",
    )


def rank_macro(con: duckdb.DuckDBPyConnection) -> None:
    """``recon_rank(status)``: how far along a status is (``STATUS_RANK``), -1 when it
    is no LMS status."""
    run(
        con,
        "CREATE OR REPLACE TEMP MACRO recon_rank(s) AS CASE s "
        + " ".join(f"WHEN {literal(s)} THEN {i}" for i, s in enumerate(STATUSES))
        + f" ELSE {UNRANKED} END",
    )


def set_zone(con: duckdb.DuckDBPyConnection, zone: str, section: str, source: Path | None) -> None:
    """Values without an offset are read in ``zone``: DuckDB's casts use TimeZone. A zone
    DuckDB refuses is a config error (exit 2), not a crash mid-run."""
    try:
        run(con, f"SET TimeZone = {literal(zone)}")
    except duckdb.Error:
        con.close()
        raise ConfigError(
            f"{source}: [{section}] unknown timezone {zone!r} (use an IANA name)", file=source
        ) from None
