"""Reading the four inputs into DuckDB, as text, without losing a row.

CSV: UTF-8 with or without BOM, else cp1252; comma, semicolon or tab; CRLF or LF;
quoted fields. XLSX: the first sheet (or a named one), real date cells kept as dates.
Every column is text except real date cells, which become ISO 8601 text so the date
rules treat them like any other date. Each table gets a 1-based ``__row`` column: the
data row of the file, header not counted.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from .errors import InputError

ROW = "__row"
_CHUNK = 1 << 20
_DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class InputInfo:
    """What was read from one input file: reported in summary.json and the ledger."""

    role: str
    path: str
    sha256: str
    rows: int
    columns: tuple[str, ...]
    encoding: str
    delimiter: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "rows": self.rows,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
        }


def run(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    """Execute one statement and fetch all of it (DuckDB refuses new work while a result
    is pending on the connection)."""
    return con.execute(sql, params).fetchall()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)  # releases the GIL: runs beside DuckDB's read
    return digest.hexdigest()


def _header_line(path: Path) -> tuple[str, str]:
    """The first non-blank line and the file's likely encoding (UTF-8, else cp1252)."""
    with path.open("rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    return raw.decode("utf-8-sig"), "utf-8"
                except UnicodeDecodeError:
                    return raw.decode("cp1252", errors="replace"), "cp1252"
    return "", "utf-8"


def _transcode(path: Path, folder: str) -> Path:
    """A UTF-8 copy of a cp1252 file (DuckDB reads UTF-8; Latin-1 is not cp1252)."""
    target = Path(folder) / "utf8.csv"
    with (
        path.open("r", encoding="cp1252", errors="replace", newline="") as src,
        target.open("w", encoding="utf-8", newline="") as dst,
    ):
        while block := src.read(_CHUNK):
            dst.write(block)
    return target


def _sniff_delimiter(header: str) -> str:
    """The delimiter is the one of , ; TAB that splits the header most (outside quotes)."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _cell_text(value: Any) -> str | None:
    """An XLSX cell as the text a person sees; real dates as ISO 8601."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep="T")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(path: Path, sheet: str | None) -> pd.DataFrame:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise InputError(f"{path}: cannot read the workbook: {exc}", file=path) from None
    try:
        if sheet is not None:
            if sheet not in book.sheetnames:
                raise InputError(
                    f"{path}: no sheet named {sheet!r} (sheets: {', '.join(book.sheetnames)})",
                    file=path,
                )
            ws = book[sheet]
        else:
            ws = book.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None or all(v is None for v in header):
            raise InputError(f"{path}: the sheet is empty (no header row)", file=path)
        names = [_cell_text(v) or f"column{i + 1}" for i, v in enumerate(header)]
        data = [[_cell_text(v) for v in r[: len(names)]] for r in rows]
    finally:
        book.close()
    # Trailing blank rows are formatting, not data; blank rows in the middle are kept so
    # row numbers match what the analyst sees in the spreadsheet.
    while data and all(v is None for v in data[-1]):
        data.pop()
    frame = pd.DataFrame(data, columns=names, dtype=object)
    for i in range(len(names)):
        frame.iloc[:, i] = frame.iloc[:, i].where(frame.iloc[:, i].notna(), None)
    return frame


def resolve_columns(
    found: list[str], wanted: Mapping[str, str | None], path: Path
) -> dict[str, str]:
    """Map each configured column to the file's header: exact, else unique case-insensitive.

    Raises :class:`InputError` naming the file and column and listing the columns found.
    """
    resolved: dict[str, str] = {}
    folded: dict[str, list[str]] = {}
    for column in found:
        folded.setdefault(column.strip().lower(), []).append(column)
    for role, name in wanted.items():
        if name is None:
            continue
        if name in found:
            resolved[role] = name
            continue
        candidates = folded.get(name.strip().lower(), [])
        if len(candidates) == 1:
            resolved[role] = candidates[0]
            continue
        raise InputError(
            f"{path}: column {name!r} not found",
            file=path,
            column=name,
            columns_found=found,
        )
    return resolved


def _load_data(
    con: duckdb.DuckDBPyConnection, table: str, role: str, path: Path, sheet: str | None
) -> tuple[str, str | None]:
    """Create ``table`` from the file; returns (encoding, delimiter)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        frame = _read_xlsx(path, sheet)
        frame.insert(0, ROW, range(1, len(frame) + 1))
        con.register(f"{table}_frame", frame)
        run(con, f'CREATE OR REPLACE TABLE "{table}_raw" AS SELECT * FROM "{table}_frame"')
        con.unregister(f"{table}_frame")
        # The same shape as a CSV's: a view named ``table`` over ``table_raw``.
        run(con, f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM "{table}_raw"')
        return "xlsx", None
    if suffix == ".xls":
        raise InputError(f"{path}: old .xls workbooks are not supported; save as .xlsx", file=path)
    header, encoding = _header_line(path)
    if not header.strip():
        raise InputError(f"{role} file is empty: {path}", file=path)
    delimiter = _sniff_delimiter(header)
    read = (
        f'CREATE OR REPLACE TABLE "{table}_raw" AS SELECT * FROM read_csv(?, '
        "delim = ?, quote = '\"', escape = '\"', header = true, all_varchar = true, "
        "auto_detect = true, null_padding = true, strict_mode = false{})"
    )

    def read_csv(source: Path) -> None:
        try:
            run(con, read.format(""), [str(source), delimiter])
        except duckdb.Error as exc:
            if "unicode" in str(exc).lower():
                raise
            # The parallel reader refuses null_padding with newlines inside quoted
            # fields; the single-threaded one reads them (and is only a little slower).
            run(con, read.format(", parallel = false"), [str(source), delimiter])

    with tempfile.TemporaryDirectory(prefix="recon-") as tmp:
        try:
            if encoding == "utf-8":
                try:
                    read_csv(path)
                except duckdb.Error as exc:
                    # DuckDB checks every byte: not UTF-8 after all, so it is cp1252.
                    if "unicode" not in str(exc).lower():
                        raise
                    encoding = "cp1252"
            if encoding == "cp1252":
                read_csv(_transcode(path, tmp))
        except duckdb.Error as exc:
            raise InputError(f"{path}: cannot read as CSV: {exc}", file=path) from None
    # preserve_insertion_order keeps file order, so rowid is the data row. A view
    # rather than a copy: a million-row export is not held twice.
    run(
        con,
        f'CREATE OR REPLACE VIEW "{table}" AS SELECT rowid + 1 AS "{ROW}", * FROM "{table}_raw"',
    )
    return encoding, delimiter


def load_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    role: str,
    path: Path,
    wanted: Mapping[str, str | None],
    *,
    sheet: str | None = None,
    allow_no_rows: bool = False,
) -> tuple[InputInfo, dict[str, str]]:
    """Load ``path`` as DuckDB view ``table`` over ``table_raw`` (all text, plus ``__row``).

    Returns what was read and the configured-role -> real column mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{role} file not found: {path}", file=path)
    if path.stat().st_size == 0:
        raise InputError(f"{role} file is empty: {path}", file=path)
    hashing = ThreadPoolExecutor(max_workers=1)
    sha = hashing.submit(_sha256, path)
    try:
        encoding, delimiter = _load_data(con, table, role, path, sheet)
    finally:
        hashing.shutdown(wait=True)
    columns = [c for c in con.table(table).columns if c != ROW]
    mapping = resolve_columns(columns, wanted, path)
    rows = run(con, f'SELECT count(*) FROM "{table}"')[0][0]
    if rows == 0 and not allow_no_rows:
        raise InputError(f"{role} file has a header but no data rows: {path}", file=path)
    info = InputInfo(role, str(path), sha.result(), int(rows), tuple(columns), encoding, delimiter)
    return info, mapping
