"""Writing what a reconciliation found: CSVs a spreadsheet can open safely, summary.json.

Every CSV recon writes goes through :func:`write_csv`, which escapes cells a spreadsheet
would run as formulas.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import duckdb
import pandas as pd
import pyarrow as pa

from . import outcomes as oc
from .config import Config, load_config
from .duck import run
from .errors import ReconError
from .result import OUTCOME_COLUMNS, PROPOSAL_COLUMNS, SOURCE_COLUMNS, Result
from .sources import SourceRows, read_sources, sources_of

REVIEW_COLUMNS = [
    "row",
    "learner",
    "path",
    "userId",
    "learningPathId",
    "provider_completion_date",
    "lms_completion_date",
    "provider_completion_date_local",
    "lms_completion_date_local",
    "detail",
]
"""review.csv: one line per ``completion-date-differs`` row. The two dates as the wire
format (UTC), then the same two as local dates in the ``[external]`` timezone."""

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Sheets
# (tab and carriage return too, per OWASP); numbers such as -5 or +3.2 are left alone.
_FORMULA_START = r"^[=+\-@\t\r]"
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def escape_cell(value: object) -> object:
    """Prefix a formula-like text cell with ``'`` so a spreadsheet shows it as text."""
    if isinstance(value, str) and re.match(_FORMULA_START, value) and not _NUMBER.match(value):
        return "'" + value
    return value


def _escaped(col: str) -> str:
    """SQL: the text of column ``col``, escaped when a spreadsheet would run it."""
    return (
        f"CASE WHEN regexp_matches({col}::VARCHAR, '{_FORMULA_START}') AND NOT "
        f"regexp_full_match({col}::VARCHAR, '{_NUMBER.pattern}') "
        f"THEN '''' || {col}::VARCHAR ELSE {col}::VARCHAR END"
    )


def _escaped_categories(con: duckdb.DuckDBPyConnection, column: pd.Series) -> pd.Series | None:
    """A categorical text column with its categories escaped by the same SQL: each
    distinct value once rather than once per row (a million outcomes hold a few
    thousand details). None when ``column`` is no such column, or when escaping would
    make two categories equal (then its rows are escaped one by one)."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return None
    categories = column.cat.categories
    if not pd.api.types.is_string_dtype(categories):
        return None
    con.register("categories", pa.table({"c0": pa.array(categories, pa.string())}))
    try:
        escaped = [r[0] for r in run(con, f"SELECT {_escaped('c0')} FROM categories")]
    finally:
        con.unregister("categories")
    if len(set(escaped)) != len(escaped):
        return None
    return column.cat.rename_categories(escaped)


def _escaped_select(frame: pd.DataFrame, escaped: frozenset[str] = frozenset()) -> str:
    """The columns of ``frame`` (named c0, c1, ... in SQL) with text cells escaped; the
    columns named in ``escaped`` hold escaped text already."""
    parts = []
    for i, name in enumerate(frame.columns):
        col = f"c{i}"
        if pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name]):
            parts.append(col)
        elif col in escaped:
            parts.append(f"{col}::VARCHAR")
        else:
            parts.append(_escaped(col))
    return ", ".join(parts) if parts else "*"


def _arrow(frame: pd.DataFrame) -> pa.Table | pd.DataFrame:
    """``frame`` as an Arrow table when it converts (DuckDB scans pandas' Arrow-backed
    text one Python object at a time, but Arrow at once); else the frame itself."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return frame


def _append(rows: BinaryIO, out: BinaryIO) -> None:
    """Append the file ``rows`` to ``out``: inside the kernel where it can (a million
    outcomes are 120 MB), else through a buffer."""
    out.flush()
    size = os.fstat(rows.fileno()).st_size
    try:
        while size > 0:
            copied = os.copy_file_range(rows.fileno(), out.fileno(), size)
            if copied == 0:
                break
            size -= copied
    except (AttributeError, OSError):
        pass  # no copy_file_range here, or not between these two files
    if size > 0:
        rows.seek(os.fstat(rows.fileno()).st_size - size)
        out.seek(0, os.SEEK_END)
        shutil.copyfileobj(rows, out, 1 << 20)


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV with a header, formula-like cells escaped.

    Written to a temporary file first and moved into place, so a reader never sees half a
    file and a failure leaves the old one intact.
    """
    path = Path(path)
    if path.is_dir():
        # Else the temporary file lands in the folder's parent and the message names it.
        raise IsADirectoryError(f"{path} is a folder; give the CSV file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".recon-", suffix=".csv", dir=path.parent)
    os.close(fd)
    data = tmp + ".rows"
    target = "'" + data.replace("'", "''") + "'"  # a folder may be named O'Brien
    # Positional names in SQL: DuckDB's names are case-insensitive, and a provider's
    # "Row" column must not be confused with recon's "row".
    positional = frame.set_axis([f"c{i}" for i in range(frame.shape[1])], axis=1)
    con = duckdb.connect()
    run(con, "SET enable_progress_bar = false")
    try:
        escaped = set()
        for col in positional.columns:
            categories = _escaped_categories(con, positional[col])
            if categories is not None:
                positional[col] = categories
                escaped.add(col)
        con.register("frame", _arrow(positional))
        run(
            con,
            f"COPY (SELECT {_escaped_select(frame, frozenset(escaped))} FROM frame) "
            f"TO {target} (HEADER false, DELIMITER ',', QUOTE '\"')",
        )
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            # Header cells are cells too: exceptions.csv repeats the provider's names.
            csv.writer(out, lineterminator="\n").writerow(
                [escape_cell(str(name)) for name in frame.columns]
            )
        # Not opened for appending: copy_file_range refuses a file opened so.
        with open(tmp, "r+b") as out, open(data, "rb") as rows:
            out.seek(0, os.SEEK_END)
            _append(rows, out)
        os.replace(tmp, path)
    finally:
        con.close()
        for leftover in (tmp, data):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return path


def write_json(data: object, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


OUTPUT_FILES = {
    "outcomes": "outcomes.csv",
    "proposals": "proposals.csv",
    "exceptions": "exceptions.csv",
    "review": "review.csv",
    "suggestions": "suggestions.csv",
    "summary": "summary.json",
}
"""The outputs of a run, by kind: their file names in the run's folder."""


def _config_of(result: Result, config: Config | None) -> Config | None:
    if config is not None:
        return config
    return load_config(result.config_path) if result.config_path else None


def outcomes_frame(result: Result, sources: SourceRows | None) -> pd.DataFrame:
    """outcomes.csv: the contract columns, then ``learner`` and ``path`` as the provider
    wrote them (blank when the run's files are not known, e.g. a Result built by hand)."""
    frame = result.outcomes[OUTCOME_COLUMNS].copy()
    if sources is None:
        for name in SOURCE_COLUMNS:
            frame[name] = None
        return frame
    written = sources.provider.set_index("row").reindex(frame["row"].to_numpy())
    for name in SOURCE_COLUMNS:
        frame[name] = written[name].to_numpy()
    return frame


def review_frame(result: Result, sources: SourceRows | None, zone: str = "UTC") -> pd.DataFrame:
    """review.csv: every ``completion-date-differs`` row with both dates (UTC wire format
    and local days in ``zone``) and why they differ in local terms."""
    rows = result.outcomes[result.outcomes["outcome"] == oc.COMPLETION_DATE_DIFFERS]
    frame = pd.DataFrame(
        {
            "row": rows["row"].to_numpy(),
            "userId": rows["userId"].astype(object).to_numpy(),
            "learningPathId": rows["learningPathId"].astype(object).to_numpy(),
            "detail": rows["detail"].astype(object).to_numpy(),
        }
    )
    if sources is None or frame.empty:
        for name in REVIEW_COLUMNS:
            if name not in frame:
                frame[name] = None
        return frame[REVIEW_COLUMNS]
    written = sources.provider.set_index("row").reindex(frame["row"].to_numpy())
    frame["learner"] = written["learner"].to_numpy()
    frame["path"] = written["path"].to_numpy()
    frame["provider_completion_date"] = written["completion"].to_numpy()
    pair = frame["userId"].astype(str).str.lower() + "\x00"
    pair += frame["learningPathId"].astype(str).str.lower()
    frame["lms_completion_date"] = sources.lms["lms_completion"].reindex(pair).to_numpy()
    provider = pd.to_datetime(frame["provider_completion_date"], utc=True, format="ISO8601")
    lms = pd.to_datetime(frame["lms_completion_date"], utc=True, format="ISO8601")
    local_p, local_l = provider.dt.tz_convert(zone), lms.dt.tz_convert(zone)
    frame["provider_completion_date_local"] = local_p.dt.strftime("%Y-%m-%d")
    frame["lms_completion_date_local"] = local_l.dt.strftime("%Y-%m-%d")
    frame["detail"] = [
        _why(p, lt, q, lu, zone)
        for p, lt, q, lu in zip(local_p, provider, local_l, lms, strict=True)
    ]
    return frame[REVIEW_COLUMNS]


def review_view(frame: pd.DataFrame, zone: str) -> pd.DataFrame:
    """review.csv's lines for a page (notebook 01, the report): the local days and why;
    the instants are in the detail and in review.csv."""
    shown = frame[
        ["row", "learner", "path", "provider_completion_date_local", "lms_completion_date_local"]
    ].set_axis(["row", "learner", "path", f"provider ({zone})", f"LMS ({zone})"], axis=1)
    return shown.assign(why=frame["detail"].to_numpy())


def _why(
    local_p: pd.Timestamp,
    utc_p: pd.Timestamp,
    local_l: pd.Timestamp,
    utc_l: pd.Timestamp,
    zone: str,
) -> str:
    """Why two completions differ, in the provider's local terms."""
    if pd.isna(local_p) or pd.isna(local_l):
        return "provider and LMS completion dates differ"
    days = abs((local_p.date() - local_l.date()).days)
    if zone == "UTC":
        return (
            f"provider {utc_p:%Y-%m-%d %H:%M} UTC, LMS {utc_l:%Y-%m-%d %H:%M} UTC: "
            f"{days} day(s) apart"
        )
    shown = (
        f"provider {local_p:%Y-%m-%d %H:%M} in {zone} ({utc_p:%Y-%m-%d %H:%M} UTC), "
        f"LMS {local_l:%Y-%m-%d %H:%M} in {zone} ({utc_l:%Y-%m-%d %H:%M} UTC)"
    )
    if days == 0:
        return f"{shown}: the same day in {zone}; the UTC days differ only by the time zone"
    return f"{shown}: {days} day(s) apart in {zone}"


def write_result(
    result: Result, out_dir: str | Path, config: Config | None = None
) -> dict[str, Path]:
    """Write outcomes.csv, proposals.csv, exceptions.csv, review.csv, suggestions.csv and
    summary.json into ``out_dir``. ``config`` (default: the result's recon.toml) names the
    files whose words outcomes.csv and review.csv repeat.

    Raises :class:`ReconError` when the folder cannot be written (the CLI's exit 2).
    """
    out = Path(out_dir)
    config = _config_of(result, config)
    # The engine's own rows when it made the Result; else the files, read again.
    sources = sources_of(result)
    if sources is None and config is not None:
        sources = read_sources(config)
    zone = config.external.timezone if config is not None else "UTC"
    name = OUTPUT_FILES
    try:
        out.mkdir(parents=True, exist_ok=True)
        return {
            "outcomes": write_csv(outcomes_frame(result, sources), out / name["outcomes"]),
            "proposals": write_csv(
                result.proposals[PROPOSAL_COLUMNS + SOURCE_COLUMNS], out / name["proposals"]
            ),
            "exceptions": write_csv(result.exceptions, out / name["exceptions"]),
            "review": write_csv(review_frame(result, sources, zone), out / name["review"]),
            "suggestions": write_csv(result.suggestions, out / name["suggestions"]),
            "summary": write_json(result.to_dict(), out / name["summary"]),
        }
    except (OSError, duckdb.IOException) as exc:
        raise ReconError(f"cannot write the outputs into {out}: {exc}") from None
