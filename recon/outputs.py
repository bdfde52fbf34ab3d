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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import outcomes as oc
from .config import Config, load_config
from .duck import run
from .errors import ReconError
from .result import OUTCOME_COLUMNS, PROPOSAL_COLUMNS, SOURCE_COLUMNS, Result
from .sources import SourceRows, read_sources

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


# DuckDB's CSV writer quotes a cell holding one of these, or an empty one (NULL is
# written as nothing); the Arrow writer below writes the same bytes.
_QUOTED = r'[,"\n\r#]'
_CHUNK_ROWS = 131_072
"""Rows assembled at once by the Arrow writer: a few dozen MB, whatever the file's size."""


def _rendered(values: pa.Array) -> pa.Array:
    """Text cells as the CSV holds them: escaped when a spreadsheet would run them
    (the rule :func:`_escaped` writes in SQL, by the same RE2 patterns), quoted as DuckDB
    quotes them, NULL as nothing. Few cells need either: the others are not copied."""
    values = pc.cast(values, pa.string())
    formula = pc.and_(
        pc.match_substring_regex(values, _FORMULA_START),
        pc.invert(pc.match_substring_regex(values, _NUMBER.pattern)),
    )
    if pc.any(formula).as_py():
        values = pc.if_else(formula, pc.binary_join_element_wise("'", values, ""), values)
    quoted = pc.or_(pc.match_substring_regex(values, _QUOTED), pc.equal(values, ""))
    if pc.any(quoted).as_py():
        wrapped = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
        values = pc.if_else(quoted, wrapped, values)
    return pc.fill_null(values, "") if values.null_count else values


def _with(values: pa.Array, separator: str) -> pa.Array:
    """Each cell followed by the separator that ends it in the file."""
    return pc.binary_join_element_wise(values, separator, "")


def _categories_cells(column: pd.Series) -> pa.Array | None:
    """A categorical text column's cells, each category rendered once: the cell of code
    ``c`` at ``c + 1``, a missing value's at 0. None for any other column."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return None
    categories = column.cat.categories
    if not pd.api.types.is_string_dtype(categories):
        return None
    try:
        shown = pa.array(categories, pa.string())
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return pa.concat_arrays([pa.array([""], pa.string()), _rendered(shown)])


def _text_cells(column: pd.Series) -> pa.Array | None:
    """A text column's cells as Arrow text (missing values NULL), or None when any cell
    is no text (a number in an object column, say: COPY renders those)."""
    if isinstance(column.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype)
    ):
        return None
    try:
        cells = pa.array(column, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if isinstance(cells, pa.ChunkedArray):
        cells = cells.combine_chunks()
    if pa.types.is_null(cells.type):  # every cell missing
        return pa.nulls(len(cells), pa.string())
    if pa.types.is_string(cells.type) or pa.types.is_large_string(cells.type):
        return cells
    return None


def _is_integer(column: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(column.dtype) and isinstance(column.dtype, np.dtype)


def _write_rows_arrow(frame: pd.DataFrame, out: BinaryIO) -> bool:
    """Write the rows of a frame of text, categorical text and integer columns to
    ``out`` as DuckDB's COPY would, a chunk of rows at a time: each category is
    rendered once with the separator that follows it, each other cell once per chunk,
    so a chunk's bytes are one ``take`` of those cells, row after row. False, having
    written nothing, for a frame with any other column (floats, booleans, dates, mixed
    objects: DuckDB's COPY renders those, :func:`_copy_rows`)."""
    columns = [frame.iloc[:, j] for j in range(frame.shape[1])]
    if not columns:
        return False
    last = len(columns) - 1
    fixed: list[pa.Array] = []  # every categorical's cells, in one array
    bases: list[int] = []  # where each column's cells start in it; -1: rendered per chunk
    rows: list[np.ndarray | pa.Array] = []  # per column: its codes, numbers or text
    size = 0
    for j, column in enumerate(columns):
        cells = _categories_cells(column)
        if cells is not None:
            fixed.append(_with(cells, "\n" if j == last else ","))
            bases.append(size)
            size += len(cells)
            rows.append(column.cat.codes.to_numpy())
        elif _is_integer(column):
            bases.append(-1)
            rows.append(column.to_numpy())
        else:
            text = _text_cells(column)
            if text is None:
                return False
            bases.append(-1)
            rows.append(text)
    for start in range(0, len(frame), _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, len(frame))
        index = np.empty((stop - start, len(columns)), dtype=np.int64)
        values, at = list(fixed), size
        for j, base in enumerate(bases):
            if base >= 0:
                index[:, j] = rows[j][start:stop]
                index[:, j] += base + 1
                continue
            column_rows = rows[j]
            if isinstance(column_rows, pa.Array):  # text: escaped and quoted as categories are
                cells = _rendered(column_rows.slice(start, stop - start))
            else:  # numbers are written as DuckDB writes them: digits only
                cells = pc.cast(pa.array(column_rows[start:stop]), pa.string())
            values.append(_with(cells, "\n" if j == last else ","))
            index[:, j] = np.arange(at, at + stop - start)
            at += stop - start
        taken = pa.concat_arrays(values).take(pa.array(index.ravel()))
        offsets = np.frombuffer(taken.buffers()[1], dtype=np.int32)
        first, end = offsets[taken.offset], offsets[taken.offset + len(taken)]
        out.write(memoryview(taken.buffers()[2])[first:end])
    return True


def _copy_rows(frame: pd.DataFrame, data: str) -> None:
    """Write ``frame``'s rows to the file ``data`` with DuckDB's COPY, text escaped."""
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
    finally:
        con.close()


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV with a header, formula-like cells escaped.

    Written to a temporary file first and moved into place, so a reader never sees half a
    file and a failure leaves the old one intact. Text, categorical and integer columns
    are written by Arrow, others by DuckDB's COPY; the bytes are the same either way
    (tests/test_outputs.py compares the two).
    """
    path = Path(path)
    if path.is_dir():
        # Else the temporary file lands in the folder's parent and the message names it.
        raise IsADirectoryError(f"{path} is a folder; give the CSV file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".recon-", suffix=".csv", dir=path.parent)
    os.close(fd)
    data = tmp + ".rows"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            # Header cells are cells too: exceptions.csv repeats the provider's names.
            csv.writer(out, lineterminator="\n").writerow(
                [escape_cell(str(name)) for name in frame.columns]
            )
        # Not opened for appending: copy_file_range refuses a file opened so.
        with open(tmp, "r+b") as out:
            out.seek(0, os.SEEK_END)
            written = _write_rows_arrow(frame, out)
        if not written:
            _copy_rows(frame, data)
            with open(tmp, "r+b") as out, open(data, "rb") as rows:
                out.seek(0, os.SEEK_END)
                _append(rows, out)
        os.replace(tmp, path)
    finally:
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


def _own_rows(result: Result) -> bool:
    """Whether the engine made ``result``: its outcomes then carry each row's learner and
    path as written, and ``review_instants`` the instants of the rows to review."""
    return result.review_instants is not None


def outcomes_frame(result: Result, sources: SourceRows | None) -> pd.DataFrame:
    """outcomes.csv: the contract columns, then ``learner`` and ``path`` as the provider
    wrote them: the engine's own (categoricals, not copied), else from ``sources``
    (blank when the run's files are not known, e.g. a Result built by hand)."""
    if _own_rows(result):
        return result.outcomes[OUTCOME_COLUMNS + SOURCE_COLUMNS]
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
    and local days in ``zone``) and why they differ in local terms. The engine's own
    rows when it made ``result`` (``sources`` is then not read), else ``sources``."""
    outcomes = result.outcomes
    rows = outcomes[outcomes["outcome"] == oc.COMPLETION_DATE_DIFFERS]
    frame = pd.DataFrame(
        {
            "row": rows["row"].to_numpy(),
            "userId": rows["userId"].astype(object).to_numpy(),
            "learningPathId": rows["learningPathId"].astype(object).to_numpy(),
            "detail": rows["detail"].astype(object).to_numpy(),
        }
    )
    own = _own_rows(result)
    if (sources is None and not own) or frame.empty:
        for name in REVIEW_COLUMNS:
            if name not in frame:
                frame[name] = None
        return frame[REVIEW_COLUMNS]
    if own:
        assert result.review_instants is not None
        frame["learner"] = rows["learner"].astype(object).to_numpy()
        frame["path"] = rows["path"].astype(object).to_numpy()
        instants = result.review_instants.set_index("row").reindex(frame["row"].to_numpy())
        for name in ("provider_completion_date", "lms_completion_date"):
            frame[name] = instants[name].to_numpy()
    else:
        assert sources is not None
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
    frame["detail"] = why_differ(provider, local_p, lms, local_l, zone)
    return frame[REVIEW_COLUMNS]


def review_view(frame: pd.DataFrame, zone: str) -> pd.DataFrame:
    """review.csv's lines for a page (notebook 01, the report): the local days and why;
    the instants are in the detail and in review.csv."""
    shown = frame[
        ["row", "learner", "path", "provider_completion_date_local", "lms_completion_date_local"]
    ].set_axis(["row", "learner", "path", f"provider ({zone})", f"LMS ({zone})"], axis=1)
    return shown.assign(why=frame["detail"].to_numpy())


def _minutes(instants: pd.Series) -> np.ndarray:
    """Each instant as ``YYYY-MM-DD HH:MM`` in its own zone ('' when missing)."""
    return instants.dt.strftime("%Y-%m-%d %H:%M").fillna("").to_numpy(dtype=object)


def why_differ(
    utc_p: pd.Series, local_p: pd.Series, utc_l: pd.Series, local_l: pd.Series, zone: str
) -> np.ndarray:
    """Why each pair of completions differs, in the provider's local terms (``local_*``
    are the ``utc_*`` instants in ``zone``), for every row at once."""
    # Calendar days apart in the zone: the local wall-clock dates, not 24-hour spans.
    day_p = local_p.dt.tz_localize(None).dt.normalize()
    day_l = local_l.dt.tz_localize(None).dt.normalize()
    days = ((day_p - day_l).abs() / pd.Timedelta(days=1)).fillna(0).astype("int64").to_numpy()
    apart = days.astype(str).astype(object)
    missing = (local_p.isna() | local_l.isna()).to_numpy()
    up, ul = _minutes(utc_p), _minutes(utc_l)
    if zone == "UTC":
        text = "provider " + up + " UTC, LMS " + ul + " UTC: " + apart + " day(s) apart"
    else:
        shown = "provider " + _minutes(local_p) + f" in {zone} (" + up + " UTC), "
        shown = shown + "LMS " + _minutes(local_l) + f" in {zone} (" + ul + " UTC)"
        same = f": the same day in {zone}; the UTC days differ only by the time zone"
        text = np.where(days == 0, shown + same, shown + ": " + apart + f" day(s) apart in {zone}")
    return np.where(missing, "provider and LMS completion dates differ", text).astype(object)


def write_result(
    result: Result,
    out_dir: str | Path,
    config: Config | None = None,
    *,
    kinds: Iterable[str] = tuple(OUTPUT_FILES),
) -> dict[str, Path]:
    """Write outcomes.csv, proposals.csv, exceptions.csv, review.csv, suggestions.csv and
    summary.json into ``out_dir`` (or only the ``kinds`` of :data:`OUTPUT_FILES` named).
    ``config`` (default: the result's recon.toml) names the files whose words
    outcomes.csv and review.csv repeat.

    Raises :class:`ReconError` when the folder cannot be written (the CLI's exit 2).
    """
    out = Path(out_dir)
    wanted = set(kinds)
    if unknown := wanted - set(OUTPUT_FILES):
        raise ValueError(f"no such output: {sorted(unknown)}")
    config = _config_of(result, config)
    # The engine's own rows when it made the Result; else the files, read again.
    sources = None
    if not _own_rows(result) and config is not None and wanted & {"outcomes", "review"}:
        sources = read_sources(config)
    zone = config.external.timezone if config is not None else "UTC"
    writers: dict[str, Callable[[Path], Path]] = {
        "outcomes": lambda path: write_csv(outcomes_frame(result, sources), path),
        "proposals": lambda path: write_csv(
            result.proposals[PROPOSAL_COLUMNS + SOURCE_COLUMNS], path
        ),
        "exceptions": lambda path: write_csv(result.exceptions, path),
        "review": lambda path: write_csv(review_frame(result, sources, zone), path),
        "suggestions": lambda path: write_csv(result.suggestions, path),
        "summary": lambda path: write_json(result.to_dict(), path),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        return {
            kind: writers[kind](out / OUTPUT_FILES[kind]) for kind in OUTPUT_FILES if kind in wanted
        }
    except (OSError, duckdb.IOException) as exc:
        raise ReconError(f"cannot write the outputs into {out}: {exc}") from None
