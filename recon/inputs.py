"""Reading the four inputs into DuckDB, as text, without losing or cutting a record.

Size: over 700 lines because the fast DuckDB read and the exact line-by-line reader
must be read side by side to see that they agree (every line accounted for), and the
XLSX reader beside them turns cells into the same text a CSV would hold.

CSV: comma, semicolon or tab; CRLF, LF or CR; quoted fields (RFC 4180). Nothing about a
file's dialect is guessed by DuckDB: the delimiter is chosen from the header, and every
option that could drop or cut data (comment lines, skipped lines, header detection,
types, nulls, padding, error skipping) is pinned. A clean UTF-8 file is read by DuckDB
directly; anything else (a line not in UTF-8, UTF-16, a row whose field count differs
from the header's, a blank line between rows, a stray quote, a huge cell) is read by
Python's csv module line by line and handed to DuckDB as a normalised copy, so the two
ways read exactly the same cells (a test holds them together).

XLSX (python-calamine): the first sheet (or a named one), every row there is (the sheet's own
``<dimension>`` tag is not trusted), real date cells kept as dates.

Every table has the file's columns under positional names (``c0``, ``c1``, ...; the
names as written are in :attr:`InputInfo.columns`), so a provider's column may be called
anything, ``rowid`` and ``__row`` included. Two columns are recon's own: ``__row``, the
1-based data row (header and blank lines not counted), and ``__bad``, why a row does
not line up with the header (NULL when it does).
"""

from __future__ import annotations

import bisect
import codecs
import csv
import gc
import hashlib
import io
import sys
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .duck import run
from .errors import InputError
from .progress import progress_bar

ROW = "__row"
BAD = "__bad"
INTERNAL = (ROW, BAD)
MAX_COLUMNS = 16_384  # Excel's own limit: wider is no export of training records
LISTED = 1_000  # row numbers listed per kind in summary.json (all are counted)
_CHUNK = 1 << 20
_HEAD = 1 << 16
_DELIMITERS = (",", ";", "\t")
_DUCKDB_LINE = 2_000_000  # DuckDB's default longest line; longer ones go through Python

csv.field_size_limit(sys.maxsize)  # a huge cell is read, not refused (see the README)


def _c1(error: UnicodeError) -> tuple[str, int]:
    """The five bytes cp1252 leaves undefined become the C1 controls they are in Latin-1
    (as browsers do), so no byte is ever lost or replaced."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return "".join(chr(b) for b in bad), error.end


codecs.register_error("recon-c1", _c1)


def sql_column(i: int) -> str:
    """The positional name of the file's ``i``-th column inside DuckDB."""
    return f"c{i}"


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
    not_utf8_rows: tuple[int, ...] = ()
    """Data rows (0: the header) with a line that is not UTF-8, read as cp1252."""
    bad_rows: tuple[int, ...] = ()
    """Data rows whose number of fields differs from the header's (see ``__bad``)."""
    blank_lines: int = 0
    """Blank lines between or after the rows: not data rows, only counted."""
    blank_before: tuple[int, ...] = field(default=(), repr=False, compare=False)
    """Per blank line before the last data row, how many data rows come before it
    (ascending): what moves a row's line in a spreadsheet (:meth:`spreadsheet_line`)."""

    def spreadsheet_line(self, row: int) -> int:
        """The line a spreadsheet shows for data row ``row``: the header is line 1, and a
        blank line in the file is a line there too (recon does not count it as a row)."""
        return 1 + int(row) + bisect.bisect_left(self.blank_before, int(row))

    @property
    def sql_columns(self) -> tuple[str, ...]:
        """The columns' names inside DuckDB, in the order of :attr:`columns`."""
        return tuple(sql_column(i) for i in range(len(self.columns)))

    def sql_name(self, column: str) -> str:
        """The DuckDB name of the column written ``column`` in the file."""
        return sql_column(self.columns.index(column))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "rows": self.rows,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "not_utf8_count": len(self.not_utf8_rows),
            "not_utf8_rows": list(self.not_utf8_rows[:LISTED]),
            "bad_row_count": len(self.bad_rows),
            "bad_rows": list(self.bad_rows[:LISTED]),
            "blank_lines": self.blank_lines,
        }

    def notes(self) -> list[str]:
        """What the analyst should know about how this file was read, one line each."""
        name = Path(self.path).name
        notes = []
        if self.not_utf8_rows:
            notes.append(
                f"{name}: {len(self.not_utf8_rows):,} row(s) not in UTF-8, read as cp1252: "
                + _some(self.not_utf8_rows)
            )
        if self.bad_rows:
            notes.append(
                f"{name}: {len(self.bad_rows):,} row(s) with a number of fields other than "
                f"the header's {len(self.columns)}: " + _some(self.bad_rows)
            )
        if self.blank_lines:
            notes.append(f"{name}: {self.blank_lines:,} blank line(s) skipped (not data rows)")
        return notes


def _some(rows: tuple[int, ...], shown: int = 10) -> str:
    words = ["header" if r == 0 else f"row {r}" for r in rows[:shown]]
    return ", ".join(words) + (", ..." if len(rows) > shown else "")


@dataclass
class _Scan:
    sha256: str = ""
    trailing_blank_lines: int = 0
    lf: int = 0  # line feeds in the file
    plain_line_ends: bool = True  # LF only, or CRLF only (no lone CR anywhere)
    ends_with_lf: bool = False


def _scan(path: Path) -> _Scan:
    """The file's sha256 and what the fast read's line accounting needs (line feeds,
    whether every line end is LF or every one CRLF, the blank lines ending the file).
    One pass, in a thread beside DuckDB's read."""
    digest = hashlib.sha256()
    last = b""
    tail = b""  # the run of line-end bytes the file ends with
    lf = cr = crlf = 0
    # The one pass over every byte of the file: the progress of reading it.
    size = path.stat().st_size
    with path.open("rb") as fh, progress_bar(size, f"reading {path.name}", unit="B") as bar:
        while chunk := fh.read(_CHUNK):
            bar.update(len(chunk))
            digest.update(chunk)
            lf += chunk.count(b"\n")
            crs = chunk.count(b"\r")  # most files have none: then skip what needs one
            cr += crs
            if crs or last == b"\r":
                crlf += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
            last = chunk[-1:]
            stripped = chunk.rstrip(b"\r\n")
            tail = tail + chunk if not stripped else chunk[len(stripped) :]
    scan = _Scan(sha256=digest.hexdigest(), lf=lf, ends_with_lf=tail.endswith(b"\n"))
    scan.plain_line_ends = cr == 0 or cr == crlf == lf
    breaks = len(tail.replace(b"\r\n", b"\n"))
    scan.trailing_blank_lines = max(breaks - 1, 0)
    return scan


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


def _utf16(head: bytes) -> str | None:
    """``utf-16`` when the file starts with a UTF-16 byte-order mark, ``utf-16-le`` /
    ``utf-16-be`` when its first characters are ASCII spelled in two bytes each."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:200]
    if len(sample) >= 4 and sample.count(0) * 3 >= len(sample):
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        return "utf-16-le" if odd > even else "utf-16-be"
    return None


def _names(header: list[str]) -> list[str]:
    """The header's names as written; a blank one is ``columnN``, a repeated one is
    ``NAME_1`` (and so on), so every column has a name of its own."""
    names: list[str] = []
    seen: set[str] = set()
    for i, cell in enumerate(header):
        name = cell if cell.strip() else f"column{i + 1}"
        if name in seen:
            k = 1
            while f"{name}_{k}" in seen:
                k += 1
            name = f"{name}_{k}"
        seen.add(name)
        names.append(name)
    return names


def _columns_sql(n: int, *, row: bool = False, bad: bool = False) -> str:
    cols = [f"'{ROW}': 'BIGINT'"] if row else []
    cols += [f"'{sql_column(i)}': 'VARCHAR'" for i in range(n)]
    if bad:
        cols.append(f"'{BAD}': 'VARCHAR'")
    return "{" + ", ".join(cols) + "}"


def _read_sql(columns: str, header: bool, max_line: int) -> str:
    """read_csv with every option that could drop, cut or retype data pinned (see
    DuckDB's CSV documentation): no sniffing at all, no comment character, no skipped
    lines, the header is the first line, all text, only an empty cell is NULL, a row
    with the wrong number of fields or a stray quote is an error (never padded, never
    skipped), and no line-size surprise."""
    buffer = max(16 * _CHUNK, 2 * max_line)
    return (
        "SELECT * FROM read_csv(?, auto_detect = false, "
        f"header = {'true' if header else 'false'}, columns = {columns}, "
        "delim = ?, quote = '\"', escape = '\"', comment = '', skip = 0, "
        "strict_mode = true, null_padding = false, ignore_errors = false, "
        "store_rejects = false, nullstr = '', allow_quoted_nulls = true, "
        f"max_line_size = {max_line}, buffer_size = {buffer}, "
        "normalize_names = false, parallel = true)"
    )


def _lines(fh: IO[bytes], first: bool = True) -> Iterator[tuple[bytes, bool]]:
    """The file's physical lines (ends kept; LF, CRLF or a lone CR end one)."""
    for raw in fh:
        if b"\r" in raw and (raw.count(b"\r") > 1 or not raw.endswith(b"\r\n")):
            for piece in raw.splitlines(keepends=True):
                yield piece, first
                first = False
        else:
            yield raw, first
            first = False


class _Decoded:
    """The file's lines as text: each line UTF-8 if it is, else cp1252; remembers which
    physical lines (1-based) were not UTF-8."""

    def __init__(self, path: Path, encoding: str | None) -> None:
        self.path = path
        self.encoding = encoding  # a UTF-16 flavour, or None for UTF-8 / cp1252 per line
        self.not_utf8: deque[int] = deque()
        self.any_utf8_text = False

    def __iter__(self) -> Iterator[str]:
        if self.encoding is not None:
            with self.path.open("r", encoding=self.encoding, newline="") as text:
                yield from text
            return
        with self.path.open("rb") as fh:
            for number, (raw, first) in enumerate(_lines(fh), start=1):
                try:
                    line = raw.decode("utf-8-sig" if first else "utf-8")
                    if not self.any_utf8_text and not raw.isascii():
                        self.any_utf8_text = True
                except UnicodeDecodeError:
                    line = raw.decode("cp1252", errors="recon-c1")
                    self.not_utf8.append(number)
                yield line


@dataclass
class _Read:
    header: list[str]
    rows: int
    encoding: str
    not_utf8_rows: tuple[int, ...] = ()
    bad_rows: tuple[int, ...] = ()
    blank_lines: int = 0
    blank_before: tuple[int, ...] = ()


def _exact(
    con: duckdb.DuckDBPyConnection, table: str, path: Path, delimiter: str, utf16: str | None
) -> _Read:
    """Read ``path`` with Python's csv module into ``table_raw`` (``__row``, the cells,
    ``__bad``), through Arrow batches: no second CSV parser involved."""
    decoded = _Decoded(path, utf16)
    reader = csv.reader(decoded, delimiter=delimiter, quotechar='"', doublequote=True)
    header: list[str] | None = None
    width = 0
    rows = 0
    blank = 0
    blank_before: list[int] = []  # data rows before each blank line
    bad_rows: list[int] = []
    not_utf8_rows: list[int] = []
    batches: list[pa.RecordBatch] = []
    pending: list[list[str | None]] = []
    bad: list[str | None] = []

    def flush() -> None:
        if not pending and batches:
            return
        start = rows - len(pending) + 1
        arrays = [pa.array(range(start, rows + 1), pa.int64())]
        arrays += [pa.array([r[i] for r in pending], pa.string()) for i in range(width)]
        arrays.append(pa.array(bad, pa.string()))
        names = [ROW, *(sql_column(i) for i in range(width)), BAD]
        batches.append(pa.RecordBatch.from_arrays(arrays, names=names))
        pending.clear()
        bad.clear()

    for cells in reader:
        if not cells:  # a blank line: no data row (row numbers skip it)
            blank += 1
            blank_before.append(rows)
            continue
        number = 0 if header is None else rows + 1
        # the lines this row came from: flag it if one of them was not UTF-8
        flagged = False
        while decoded.not_utf8 and decoded.not_utf8[0] <= reader.line_num:
            decoded.not_utf8.popleft()
            flagged = True
        if flagged:
            not_utf8_rows.append(number)
        if header is None:
            header = cells
            width = len(cells)
            if width > MAX_COLUMNS:
                raise InputError(
                    f"{path}: the header has {width:,} columns; recon reads at most "
                    f"{MAX_COLUMNS:,}",
                    file=path,
                )
            continue
        rows += 1
        why = None
        if len(cells) != width:
            why = f"row has {len(cells)} fields, the header {width}"
            if len(cells) > width:
                why += "; extra fields: " + ", ".join(repr(c) for c in cells[width:])
            bad_rows.append(rows)
            cells = cells[:width]
        # an empty cell is NULL, as DuckDB reads it on the fast path
        pending.append([c or None for c in cells] + [None] * (width - len(cells)))
        bad.append(why)
        if len(pending) >= 100_000:
            flush()
    if header is None:
        raise InputError(f"file is empty: {path}", file=path)
    flush()
    frame = pa.Table.from_batches(batches)
    con.register(f"{table}_frame", frame)
    run(con, f'CREATE OR REPLACE TABLE "{table}_raw" AS SELECT * FROM "{table}_frame"')
    con.unregister(f"{table}_frame")
    if utf16 is not None:
        encoding = "utf-16"
    elif not not_utf8_rows:
        encoding = "utf-8"
    else:
        encoding = "cp1252" if not decoded.any_utf8_text else "utf-8+cp1252"
    return _Read(
        header, rows, encoding, tuple(not_utf8_rows), tuple(bad_rows), blank, tuple(blank_before)
    )


def _head(path: Path) -> tuple[str | None, list[str] | None, str]:
    """The file's UTF-16 flavour if any, the header row if the fast reader may take the
    file (clean UTF-8 start, header found), and the delimiter."""
    with path.open("rb") as fh:
        head = fh.read(_HEAD)
    utf16 = _utf16(head)
    if utf16 is not None:
        text = head[: len(head) - len(head) % 2].decode(utf16, errors="replace")
    else:
        text = head.decode("utf-8", errors="replace")
    text = text.lstrip("\ufeff")
    if not text.strip() and len(head) < _HEAD:
        raise InputError(f"file is empty: {path}", file=path)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = _sniff_delimiter(first)
    if utf16 is not None or text[:1] in ("\r", "\n"):
        return utf16, None, delimiter
    whole = len(head) < _HEAD
    try:
        start = (
            head.decode("utf-8-sig") if whole else head[: head.rfind(b"\n") + 1].decode("utf-8-sig")
        )
    except UnicodeDecodeError:
        return None, None, delimiter
    parsed = csv.reader(io.StringIO(start, newline=""), delimiter=delimiter)
    header = next(parsed, None)
    if not whole and next(parsed, None) is None:
        return None, None, delimiter  # the header may go on past the head: go exact
    return None, header or None, delimiter


def _read_csv(
    con: duckdb.DuckDBPyConnection, table: str, path: Path, scanning: Any
) -> tuple[_Read, str]:
    """Create ``table_raw`` and the view ``table`` from a CSV file."""
    utf16, header, delimiter = _head(path)
    if header is not None and 1 < len(header) <= MAX_COLUMNS:
        try:
            sql = _read_sql(_columns_sql(len(header)), True, _DUCKDB_LINE)
            run(con, f'CREATE OR REPLACE TABLE "{table}_raw" AS {sql}', [str(path), delimiter])
            scan: _Scan = scanning.result()
            if scan.plain_line_ends:
                rows = run(con, f'SELECT count(*) FROM "{table}_raw"')[0][0]
                # Every line of the file is accounted for, or the exact reader decides:
                # the header's, one a row, those inside quoted cells, the blank ones at
                # the end (a blank line between rows is not: the exact reader counts it).
                inside: tuple[Any, ...] = ()
                with_lf = run(
                    con,
                    "SELECT COLUMNS(*) FROM (SELECT count(*) FILTER "
                    f'(WHERE contains(COLUMNS(*), chr(10))) FROM "{table}_raw")',
                )[0]
                if any(with_lf):  # cells with line breaks: count them (rarely needed)
                    inside = run(
                        con,
                        "SELECT COLUMNS(*) FROM (SELECT sum(strlen(COLUMNS(*)) - "
                        f"strlen(replace(COLUMNS(*), chr(10), ''))) FROM \"{table}_raw\")",
                    )[0]
                lines = 1 + sum(c.count("\n") for c in header) + rows
                lines += sum(int(n or 0) for n in inside) + scan.trailing_blank_lines
                if lines == scan.lf + (0 if scan.ends_with_lf else 1):
                    run(
                        con,
                        f'CREATE OR REPLACE VIEW "{table}" AS SELECT rowid + 1 AS {ROW}, *, '
                        f'NULL::VARCHAR AS {BAD} FROM "{table}_raw"',
                    )
                    read = _Read(header, int(rows), "utf-8", blank_lines=scan.trailing_blank_lines)
                    return read, delimiter
        except duckdb.Error:
            pass  # not clean UTF-8 RFC 4180 with one shape: the exact reader decides
    try:
        read = _exact(con, table, path, delimiter, utf16)
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read as CSV: {exc}", file=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not {utf16}: {exc.reason}", file=path) from None
    run(con, f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM "{table}_raw"')
    return read, delimiter


def _cell_text(value: Any) -> str | None:
    """An XLSX cell as the text a person sees; real dates as ISO 8601."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep="T")
    if isinstance(value, date):  # a date cell at midnight: as a date-time, like any other
        return datetime.combine(value, time()).isoformat(sep="T")
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@contextmanager
def _without_gc() -> Iterator[None]:
    """Python's cycle collector paused, and resumed as it was. A sheet's rows arrive as
    hundreds of thousands of new lists, and every few hundred of them would start a
    collection that walks all live objects (half of ``to_python``'s time on a
    200,000-row sheet); lists of cell values cannot form a cycle."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _read_xlsx(path: Path, sheet: str | None) -> tuple[pa.Table, list[str], list[int]]:
    """The sheet as a table; see :func:`_read_sheet`."""
    with _without_gc():
        return _read_sheet(path, sheet)


def _read_sheet(path: Path, sheet: str | None) -> tuple[pa.Table, list[str], list[int]]:
    """The sheet as a table (``__row``, ``c0``..., ``__bad``), the header as written and
    the rows with values right of the header's last column.

    Read with python-calamine (Rust; openpyxl took 15 s for a 200,000-row sheet). Cells
    become text column by column, without a Python step per cell: the rows go into one
    2-D array (numpy copies the references in C), a column of text cells goes to Arrow
    as it is, and a column with other cells is converted kind by kind in Arrow
    (:func:`_column_text`). An empty cell is None, as in a CSV."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises several kinds for a damaged file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot read the workbook: {first}", file=path) from None
    try:
        sheets = list(book.sheet_names)
        if sheet is not None and sheet not in sheets:
            raise InputError(
                f"{path}: no sheet named {sheet!r} (sheets: {', '.join(sheets)})", file=path
            )
        try:
            ws = book.get_sheet_by_name(sheet) if sheet is not None else book.get_sheet_by_index(0)
            # Over the cells there are (calamine sizes the sheet by its cells, not by the
            # <dimension> tag), from the first row and column with a value: asked to start
            # at A1 instead, calamine copies the whole sheet first. ``start`` says where
            # that is, so rows and columns are numbered as the analyst sees them.
            with progress_bar(None, f"reading {path.name}", unit="sheet"):
                grid = ws.to_python(skip_empty_area=True)
                top, left = ws.start or (0, 0)
        except Exception as exc:  # a damaged sheet inside a valid zip
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{path}: cannot read the sheet: {first}", file=path) from None
    finally:
        book.close()
    # A blank first row is no header (whatever is below it); blank columns A, B, ... are
    # columns with no name and no values.
    header = [""] * left + list(grid[0]) if grid and not top else []
    while header and header[-1] in (None, ""):
        header.pop()
    if not header:
        raise InputError(f"{path}: the sheet is empty (no header row)", file=path)
    if len(header) > MAX_COLUMNS:
        raise InputError(f"{path}: more than {MAX_COLUMNS:,} columns", file=path)
    width = len(header)
    names = _names([_cell_text(v) or "" for v in header])
    rows = grid[1:]
    widths = set(map(len, rows))
    total = max(widths, default=0)
    if len(widths) > 1:  # calamine's rows are all as wide; in case not
        rows = [list(r) + [""] * (total - len(r)) for r in rows]
    # Rows x columns in one object array: a column is then a view, not a Python transpose.
    cells = np.array(rows, dtype=object).reshape(len(rows), total)
    del grid, rows
    total += left  # columns from A on; cells[:, i - left] is column i

    def text_of(i: int) -> pa.Array:
        if left <= i < total:
            return _column_text(cells[:, i - left])
        return pa.nulls(len(cells), pa.string())

    columns = [text_of(i) for i in range(width)]
    bad: list[str | None] = [None] * len(cells)
    bad_rows: list[int] = []
    if total > width:  # values right of the header: only the rows that have some
        extra = [text_of(i) for i in range(width, total)]
        found = extra[0].is_valid()
        for column in extra[1:]:
            found = pc.or_(found, column.is_valid())
        where = pc.indices_nonzero(found)
        texts = zip(*(c.take(where).to_pylist() for c in extra), strict=True)
        for n, row in zip(where.to_pylist(), texts, strict=True):
            bad[n] = "values right of the header's last column: " + ", ".join(
                repr(c) for c in row if c
            )
            bad_rows.append(n + 1)
    # Trailing blank rows are formatting, not data; blank rows in the middle are kept so
    # row numbers match what the analyst sees in the spreadsheet.
    keep = len(cells)
    if columns:
        filled = pa.array(bad, pa.string()).is_valid()
        for column in columns:
            filled = pc.or_(filled, column.is_valid())
        last = pc.indices_nonzero(filled)
        keep = int(last[-1].as_py()) + 1 if len(last) else 0
    arrays = [pa.array(range(1, keep + 1), pa.int64())]
    arrays += [c.slice(0, keep) for c in columns]
    arrays.append(pa.array(bad[:keep], pa.string()))
    table = pa.Table.from_arrays(arrays, names=[ROW, *(sql_column(i) for i in range(width)), BAD])
    return table, names, bad_rows


def _column_text(values: np.ndarray[Any, Any]) -> pa.Array:
    """One column's cells as text, exactly :func:`_cell_text`'s; '' (calamine's empty
    cell) is NULL. A column of text cells goes to Arrow as it is; any other column is
    converted one kind of cell at a time (dates, numbers, ...) in Arrow, so no kind
    costs a Python step per cell."""
    try:
        texts = pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # not all text: kind by kind
        kinds = np.fromiter(map(type, values), dtype=object, count=len(values))
        out = np.empty(len(values), dtype=object)
        for kind in set(kinds.tolist()):
            where = kinds == kind
            out[where] = _kind_text(kind, values[where])
        texts = pa.array(out, pa.string())
    return pc.if_else(pc.equal(texts, ""), pa.scalar(None, pa.string()), texts)


_FRACTION = r"\.000000$"  # Arrow writes microseconds always; isoformat only when not 0


def _kind_text(kind: type, values: np.ndarray[Any, Any]) -> Any:
    """Cells of one Python type as :func:`_cell_text` writes them, vectorised."""
    if kind is str:
        return values
    if kind is datetime:
        text = pc.cast(pa.array(values, pa.timestamp("us")), pa.string())
        text = pc.replace_substring(text, " ", "T", max_replacements=1)
        return pc.replace_substring_regex(text, _FRACTION, "").to_numpy(zero_copy_only=False)
    if kind is date:  # a date cell at midnight: as a date-time, like any other
        day = pc.cast(pa.array(values, pa.date32()), pa.string())
        return pc.binary_join_element_wise(day, "T00:00:00", "").to_numpy(zero_copy_only=False)
    if kind is time:
        text = pc.cast(pa.array(values, pa.time64("us")), pa.string())
        return pc.replace_substring_regex(text, _FRACTION, "").to_numpy(zero_copy_only=False)
    if kind is bool:
        flags = pa.array(values, pa.bool_())
        return pc.if_else(flags, "TRUE", "FALSE").to_numpy(zero_copy_only=False)
    if kind is int:
        return pc.cast(pa.array(values, pa.int64()), pa.string()).to_numpy(zero_copy_only=False)
    if kind is float:
        numbers = pa.array(values, pa.float64())
        # Whole numbers Arrow can hold as int64 are written as integers; the rest
        # (fractions, huge, inf, nan) by Python, whose repr Arrow does not copy exactly.
        whole = pc.and_(
            pc.equal(numbers, pc.floor(numbers)), pc.less(pc.abs(numbers), float(2**62))
        ).to_numpy(zero_copy_only=False)
        out = np.empty(len(values), dtype=object)
        ints = pc.cast(pc.filter(numbers, pa.array(whole)), pa.int64())
        out[whole] = pc.cast(ints, pa.string()).to_numpy(zero_copy_only=False)
        out[~whole] = [_cell_text(v) for v in values[~whole]]
        return out
    return [_cell_text(v) for v in values]


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
            f"{path}: column {name!r} not found"
            + (f" (several match it: {', '.join(map(repr, candidates))})" if candidates else ""),
            file=path,
            column=name,
            columns_found=found,
        )
    return resolved


def _load_data(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    sheet: str | None,
    scanning: Any,
) -> tuple[_Read, str | None]:
    """Create ``table`` from the file; returns what was read and the delimiter."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        frame, names, bad_rows = _read_xlsx(path, sheet)
        con.register(f"{table}_frame", frame)
        run(con, f'CREATE OR REPLACE TABLE "{table}_raw" AS SELECT * FROM "{table}_frame"')
        con.unregister(f"{table}_frame")
        # The same shape as a CSV's: a view named ``table`` over ``table_raw``.
        run(con, f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM "{table}_raw"')
        return _Read(names, len(frame), "xlsx", bad_rows=tuple(bad_rows)), None
    if suffix == ".xls":
        raise InputError(f"{path}: old .xls workbooks are not supported; save as .xlsx", file=path)
    if suffix in (".json", ".jsonl"):
        # xAPI statements: read into the columns recon.xapi documents, one row each.
        from .xapi import read_statements

        statements = read_statements(path)
        names = list(statements.columns)
        frame = pd.DataFrame(
            {sql_column(i): statements[c] for i, c in enumerate(names)}, dtype=object
        )
        frame.insert(0, ROW, range(1, len(frame) + 1))
        frame[BAD] = pd.Series([None] * len(frame), dtype=object)
        con.register(f"{table}_frame", frame)
        run(con, f'CREATE OR REPLACE TABLE "{table}_raw" AS SELECT * FROM "{table}_frame"')
        con.unregister(f"{table}_frame")
        run(con, f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM "{table}_raw"')
        return _Read(names, len(frame), "xapi"), None
    read, delimiter = _read_csv(con, table, path, scanning)
    read.header = _names(read.header)
    return read, delimiter


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
    """Load ``path`` as DuckDB view ``table`` over ``table_raw``: ``__row``, the file's
    columns as text under positional names, ``__bad``.

    Returns what was read and the configured-role -> DuckDB column mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{role} file not found: {path}", file=path)
    if path.stat().st_size == 0:
        raise InputError(f"{role} file is empty: {path}", file=path)
    scanner = ThreadPoolExecutor(max_workers=1)
    scanning = scanner.submit(_scan, path)
    try:
        read, delimiter = _load_data(con, table, path, sheet, scanning)
    except InputError as exc:
        if "file is empty" in str(exc):
            raise InputError(f"{role} file is empty: {path}", file=path) from None
        raise
    finally:
        scanner.shutdown(wait=True)
    columns = tuple(read.header)
    found = resolve_columns(list(columns), wanted, path)
    mapping = {role_: sql_column(columns.index(name)) for role_, name in found.items()}
    if read.rows == 0 and not allow_no_rows:
        raise InputError(f"{role} file has a header but no data rows: {path}", file=path)
    info = InputInfo(
        role,
        str(path),
        scanning.result().sha256,
        read.rows,
        columns,
        read.encoding,
        delimiter,
        not_utf8_rows=read.not_utf8_rows,
        bad_rows=read.bad_rows,
        blank_lines=read.blank_lines,
        blank_before=read.blank_before,
    )
    return info, mapping
