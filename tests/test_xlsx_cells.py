"""XLSX cells read kind by kind in Arrow give exactly the texts the cell-by-cell reading gave.

recon/inputs.py once turned every cell of a column with any non-text cell into text one at
a time (``_cell_text``), after a Python transpose of the rows. It now converts each kind of
cell (dates, date-times, times, numbers, booleans, ...) in Arrow. These tests hold the two
together over every cell kind a workbook has: text (also text that looks like a date, a
boolean or a number), whole and fractional numbers, huge and tiny ones, booleans, dates,
date-times with and without microseconds, times, durations, empty cells, formula results,
error cells, blank rows before, between and after the data, and values right of the header.
The reference below is the former reading, kept here verbatim in its rules.
"""

from __future__ import annotations

import gc
import re
import zipfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from recon.errors import InputError
from recon.inputs import _cell_text, _names, _read_xlsx


def cell_by_cell(path: Path, sheet: str | None = None) -> tuple[list[dict], list[str], list[int]]:
    """The former reading: rows transposed in Python, every cell through ``_cell_text``."""
    book = CalamineWorkbook.from_path(str(path))
    try:
        ws = book.get_sheet_by_name(sheet) if sheet is not None else book.get_sheet_by_index(0)
        grid = ws.to_python(skip_empty_area=False)
    finally:
        book.close()
    header = list(grid[0]) if grid else []
    while header and header[-1] in (None, ""):
        header.pop()
    if not header:
        raise InputError(f"{path}: the sheet is empty (no header row)", file=path)
    width = len(header)
    names = _names([_cell_text(v) or "" for v in header])
    rows = grid[1:]
    total = max(map(len, rows), default=0)
    rows = [list(r) + [""] * (total - len(r)) for r in rows]
    out: list[dict] = []
    bad_rows: list[int] = []
    for n, r in enumerate(rows):
        texts = [_cell_text(v) for v in r]
        record: dict[str, Any] = {"__row": n + 1}
        for i in range(width):
            text = texts[i] if i < total else None
            record[f"c{i}"] = None if text == "" else text
        extra = [t for t in texts[width:] if t]
        record["__bad"] = None
        if extra:
            record["__bad"] = "values right of the header's last column: " + ", ".join(
                repr(c) for c in extra
            )
            bad_rows.append(n + 1)
        out.append(record)
    while out and all(v is None for k, v in out[-1].items() if k != "__row"):
        out.pop()  # trailing blank rows are formatting
    return out, names, bad_rows


def column_by_column(
    path: Path, sheet: str | None = None
) -> tuple[list[dict], list[str], list[int]]:
    table, names, bad_rows = _read_xlsx(path, sheet)
    return table.to_pylist(), names, bad_rows


def same_reading(path: Path, sheet: str | None = None) -> None:
    try:
        expected = cell_by_cell(path, sheet)
    except InputError as exc:
        with pytest.raises(InputError) as got:
            column_by_column(path, sheet)
        assert str(got.value) == str(exc)
        return
    assert column_by_column(path, sheet) == expected


def write_book(path: Path, rows: list[list[Any]], at_column: int = 1) -> Path:
    book = openpyxl.Workbook()
    ws = book.active
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=at_column):
            if value is not None:
                ws.cell(row=r, column=c, value=value)
    book.save(path)
    return path


def with_cached_results(path: Path, results: dict[str, tuple[str, str]]) -> None:
    """Give formula cells a cached result, as Excel saves them (openpyxl writes none):
    ``{"B2": ("n", "2")}``, with the cell type (n number, str text, b boolean, e error)."""
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    name = "xl/worksheets/sheet1.xml"
    xml = files[name].decode()
    for ref, (kind, value) in results.items():
        pattern = re.compile(rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*/?>(?:</v>)?')

        def cached(m: re.Match[str], ref: str = ref, kind: str = kind, value: str = value) -> str:
            others = re.sub(r' t="[^"]*"', "", m.group(1))
            return f'<c r="{ref}" t="{kind}"{others}><f>{m.group(2)}</f><v>{value}</v>'

        xml, count = pattern.subn(cached, xml)
        assert count == 1, (ref, xml[:2000])
    files[name] = xml.encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)


LOOKALIKES = [
    "2026-04-25 12:24:32",
    "2026-04-25T12:24:32",
    "2026-04-25T00:00:00",
    "09:30:00",
    "TRUE",
    "true",
    "FALSE",
    "1e-07",
    "0.0000001",
    "1",
    "1.0",
    "100000000000000000000",
    "#N/A",
    " ",
]

texts = st.one_of(
    st.sampled_from(LOOKALIKES),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=6),
)
cells = st.one_of(
    st.none(),
    texts,
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1 + 0.2, 1e-07, 1.5e-05, 2.5, -0.0, 1e16, 1e20, 1e23, 2.0**63, 1e300]),
    st.booleans(),
    st.dates(date(1900, 3, 1), date(9999, 12, 31)),
    st.datetimes(datetime(1900, 3, 1), datetime(9999, 12, 31)),
    st.datetimes(datetime(1900, 3, 1), datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.times(),
    st.timedeltas(timedelta(0), timedelta(days=3)),
)


@st.composite
def sheets(draw):
    width = draw(st.integers(1, 4))
    header = draw(st.lists(texts, min_size=width, max_size=width))
    rows = draw(
        st.lists(
            st.one_of(
                st.lists(cells, max_size=width),  # short rows and blank ones
                st.lists(cells, min_size=width, max_size=width + 2),  # right of the header
                st.lists(cells, min_size=width, max_size=width).map(lambda r: [None] * len(r)),
            ),
            max_size=12,
        )
    )
    lead = draw(st.sampled_from([0, 0, 1]))  # a blank first row: no header
    at_column = draw(st.sampled_from([1, 1, 2]))  # a blank column A
    return [[None]] * lead + [header, *rows], at_column


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sheets())
def test_every_cell_kind_reads_as_cell_by_cell(tmp_path_factory, case):
    rows, at_column = case
    path = write_book(tmp_path_factory.mktemp("x") / "s.xlsx", rows, at_column)
    same_reading(path)


def test_one_column_of_each_kind_and_all_kinds_in_one_column(tmp_path):
    kinds: list[list[Any]] = [
        ["a", "2026-04-25 12:24:32", "TRUE", "1e-07", "", " "],
        [1, -5, 10**15, 0, 3, 42],
        [1.0, 2.5, 1e-07, 1e20, 1e23, 0.1 + 0.2],
        [True, False, True, None, False, True],
        [date(2026, 4, 25), date(1900, 3, 1), date(9999, 12, 31), None, None, None],
        [datetime(2026, 4, 25, 12, 24, 32), datetime(2026, 1, 1), None, None, None, None],
        [
            datetime(2026, 4, 25, 12, 24, 32, 123456),
            datetime(2026, 4, 25, 0, 0, 0, 1000),
            datetime(2026, 4, 25, 12, 24, 32, 500000),
            None,
            None,
            None,
        ],
        [time(9, 30), time(23, 59, 59, 250000), time(0, 0, 1), None, None, None],
        [timedelta(hours=30), timedelta(minutes=5), None, None, None, None],
    ]
    header = [f"k{i}" for i in range(len(kinds))]
    rows: list[list[Any]] = [header, *(list(r) for r in zip(*kinds, strict=True))]
    rows.insert(3, [])  # a blank row in the middle
    rows += [[v] for column in kinds for v in column]  # column A: every kind, one after another
    rows += [[], [], ["x", None, None, None, None, None, None, None, None, "stray"]]
    rows += [[], []]  # trailing blank rows
    path = write_book(tmp_path / "kinds.xlsx", rows)
    expected = cell_by_cell(path)
    table, names, bad_rows = _read_xlsx(path, None)
    assert (table.to_pylist(), names, bad_rows) == expected
    got = table.to_pylist()
    assert got[0]["c0"] == "a" and got[0]["c1"] == "1" and got[0]["c3"] == "TRUE"
    assert got[0]["c4"] == "2026-04-25T00:00:00" and got[0]["c7"] == "09:30:00"
    assert got[0]["c6"] == "2026-04-25T12:24:32.123000"
    assert got[2] == {"__row": 3, **{f"c{i}": None for i in range(9)}, "__bad": None}
    assert bad_rows == [len(rows) - 3] and got[-1]["__bad"].endswith("'stray'")


def test_formula_results_and_error_cells_read_as_cell_by_cell(tmp_path):
    rows: list[list[Any]] = [
        ["id", "sum", "label", "flag", "broken", "error"],
        ["1", "=1+1", '="t"&A2', "=1=1", "=1/0", "#N/A"],
        ["2", "=0.1+0.2", '="2026-04-25 12:24:32"', "=1=2", "=NA()", "#DIV/0!"],
        ["3", "=B2", "=C2", None, "=A1", "#REF!"],
    ]
    path = write_book(tmp_path / "f.xlsx", rows)
    with_cached_results(
        path,
        {
            "B2": ("n", "2"),
            "C2": ("str", "t1"),
            "D2": ("b", "1"),
            "E2": ("e", "#DIV/0!"),
            "B3": ("n", "0.30000000000000004"),
            "C3": ("str", "2026-04-25 12:24:32"),
            "D3": ("b", "0"),
            "E3": ("e", "#N/A"),
        },
    )
    same_reading(path)
    got, _, _ = column_by_column(path)
    assert [r["c1"] for r in got] == ["2", "0.30000000000000004", None]
    assert [r["c3"] for r in got] == ["TRUE", "FALSE", None]


def test_a_named_sheet_and_the_errors_read_as_before(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active.append(["not the data"])
    data = book.create_sheet("Data")
    data.append(["a", "b"])
    data.append([date(2026, 4, 25), 1.5])
    path = tmp_path / "n.xlsx"
    book.save(path)
    same_reading(path, "Data")
    assert column_by_column(path, "Data")[0] == [
        {"__row": 1, "c0": "2026-04-25T00:00:00", "c1": "1.5", "__bad": None}
    ]
    with pytest.raises(InputError, match=r"no sheet named 'Nope' \(sheets: Notes, Data\)"):
        _read_xlsx(path, "Nope")
    empty = write_book(tmp_path / "e.xlsx", [[None], ["below a blank first row"]])
    with pytest.raises(InputError, match="the sheet is empty"):
        _read_xlsx(empty, None)


@pytest.mark.parametrize("collecting", [True, False])
def test_the_read_leaves_the_cycle_collector_as_it_found_it(tmp_path, collecting):
    """The read pauses Python's cycle collector (speed); it must come back on after a
    read and after a failed one, and stay off for a caller that had turned it off."""
    path = write_book(tmp_path / "g.xlsx", [["a", "b"], ["1", date(2026, 4, 25)]])
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(b"PK\x03\x04 not a workbook")
    (gc.enable if collecting else gc.disable)()
    try:
        assert _read_xlsx(path, None)[0].num_rows == 1
        assert gc.isenabled() is collecting
        for bad_path, sheet in ((path, "Nope"), (damaged, None)):
            with pytest.raises(InputError):
                _read_xlsx(bad_path, sheet)
            assert gc.isenabled() is collecting
    finally:
        gc.enable()


def test_a_sheet_starting_right_of_column_a_reads_as_cell_by_cell(tmp_path):
    """calamine is asked for the cells from the first column with a value on (not from A1,
    which makes it copy the whole sheet first): blank columns before it are still columns,
    numbered as the analyst sees them, with no name and no values."""
    rows: list[list[Any]] = [
        ["id", "when"],
        ["1", datetime(2026, 4, 25, 12, 24, 32)],
        [],
        ["3", None, "stray"],
    ]
    path = write_book(tmp_path / "c.xlsx", rows, at_column=3)
    same_reading(path)
    got, names, bad_rows = column_by_column(path)
    assert names[2:] == ["id", "when"] and len(names) == 4
    assert got[0] == {
        "__row": 1,
        **{"c0": None, "c1": None, "c2": "1", "c3": "2026-04-25T12:24:32"},
        "__bad": None,
    }
    assert bad_rows == [3] and got[2]["__bad"].endswith("'stray'")
    # A value in column A below a header that starts in column C: column A has values.
    rows.append(["4"])
    path = write_book(tmp_path / "a.xlsx", rows, at_column=3)
    book = openpyxl.load_workbook(path)
    book.active["A5"] = "left"
    book.save(path)
    same_reading(path)
    got, _, _ = column_by_column(path)
    assert got[-1]["c0"] == "left" and got[-1]["c2"] == "4"
