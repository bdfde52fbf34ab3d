"""Reading the inputs: encodings, delimiters, line ends, quoting, XLSX, row numbers, errors."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest
from conftest import HEADERS, bodies_of, ext, outcomes_of, write_csv_file, write_xlsx_file

from recon import outcomes as oc
from recon.engine import reconcile
from recon.errors import InputError
from recon.inputs import load_table, run

USERS = [
    {"email": "josé.müller@example.com", "userId": "u-jose"},
    {"email": "zoë@example.com", "userId": "u-zoe"},
]
ROWS = [
    ext("josé.müller@example.com", completed="2026-01-15"),
    ext("ZOË@example.com", status="In Progress", activity="2026-03-01"),
    ext("françois@example.com", "€-1", "Completed", completed="2026-01-15"),
]
EXPECTED = [oc.MISSING_COMPLETION, oc.MISSING_PROGRESS, oc.UNKNOWN_LEARNER]


def load(path, wanted=None, **kwargs):
    """Load one file into a fresh DuckDB; returns (info, mapping, rows as tuples)."""
    con = duckdb.connect(config={"preserve_insertion_order": True})
    try:
        info, mapping = load_table(con, "t", "external", path, wanted or {}, **kwargs)
        return info, mapping, run(con, "SELECT * EXCLUDE (__bad) FROM t ORDER BY __row")
    finally:
        con.close()


# --- CSV variants, end to end --------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", False), ("utf-8", True), ("cp1252", False)],
    ids=["utf-8", "utf-8-bom", "cp1252"],
)
def test_csv_variants(reconcile_case, encoding, bom, delimiter, newline):
    result = reconcile_case(
        ROWS, users=USERS, encoding=encoding, bom=bom, delimiter=delimiter, newline=newline
    )
    assert outcomes_of(result) == EXPECTED
    ext_info = result.inputs["external"]
    assert ext_info.encoding == encoding
    assert ext_info.delimiter == delimiter
    assert ext_info.rows == 3
    # the original values come back unharmed
    assert list(result.exceptions["Email"]) == ["françois@example.com"]
    assert list(result.exceptions["Course Code"]) == ["€-1"]
    assert list(result.outcomes["row"]) == [1, 2, 3]


def test_bom_does_not_stick_to_the_first_column_name(tmp_path):
    path = write_csv_file(tmp_path / "x.csv", [["Email", "b"], ["a@x", "1"]], bom=True)
    info, mapping, rows = load(path, {"learner": "Email"})
    assert info.columns == ("Email", "b")
    assert mapping == {"learner": "c0"}  # the first column, under its DuckDB name
    assert rows == [(1, "a@x", "1")]


def test_cp1252_fallback_keeps_accents_euro_and_smart_quotes(tmp_path):
    text = [["Name", "Note"], ["Renée Dubois", "paid €40 \u201cin full\u201d \u2013 ok"]]
    path = write_csv_file(tmp_path / "x.csv", text, encoding="cp1252", delimiter=";")
    info, _, rows = load(path)
    assert info.encoding == "cp1252"
    assert rows == [(1, "Renée Dubois", "paid €40 \u201cin full\u201d \u2013 ok")]


def test_quoted_fields_with_delimiters_quotes_and_newlines(reconcile_case):
    rows = [
        {**ext(completed="2026-01-15"), "Note": 'Smith, John; "JJ"\nsecond line'},
        {**ext("bob@example.com", status="Passed"), "Note": "a,b\r\nc"},
        {**ext("cy@example.com", status="Nope"), "Note": "plain"},
    ]
    for newline in ("\n", "\r\n"):
        result = reconcile_case(rows, newline=newline)
        assert outcomes_of(result) == [oc.MISSING_COMPLETION, oc.UNKNOWN_STATUS, oc.UNKNOWN_STATUS]
        assert list(result.exceptions["row"]) == [2, 3]
        assert result.exceptions["Note"].iloc[1] == "plain"


def test_row_numbers_are_1_based_data_rows(reconcile_case):
    rows = [ext(status=f"word{i}") for i in range(1, 8)]
    result = reconcile_case(rows)
    assert list(result.outcomes["row"]) == list(range(1, 8))
    # row n is the n-th data row of the file, header not counted
    assert list(result.exceptions["Status"]) == [f"word{i}" for i in range(1, 8)]
    assert list(result.exceptions["row"]) == list(range(1, 8))


def test_all_columns_are_text_leading_zeros_kept(reconcile_case):
    users = [{"email": "007", "userId": "0042"}]
    paths = [{"externalCode": "0012", "learningPathId": "000123"}]
    rows = [
        ext("007", "0012", completed="2026-01-15"),
        ext("7", "0012", completed="2026-01-15"),
        ext("007", "12", completed="2026-01-15"),
    ]
    result = reconcile_case(rows, users=users, paths=paths)
    assert outcomes_of(result) == [oc.MISSING_COMPLETION, oc.UNKNOWN_LEARNER, oc.UNKNOWN_PATH]
    assert bodies_of(result)[0]["userId"] == "0042"
    assert bodies_of(result)[0]["learningPathId"] == "000123"
    assert list(result.exceptions["Email"]) == ["7", "007"]


def test_numbers_and_booleans_in_csv_stay_as_written(tmp_path):
    path = write_csv_file(
        tmp_path / "x.csv", [["a", "b", "c", "d"], ["1.50", "TRUE", "2026-01-15", "1e3"]]
    )
    _, _, rows = load(path)
    assert rows == [(1, "1.50", "TRUE", "2026-01-15", "1e3")]


def test_short_and_long_rows_are_kept(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n", encoding="utf-8")
    info, _, rows = load(path)
    assert info.rows == 3
    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[1][1:3] == ("4", "5")


# --- XLSX ------------------------------------------------------------------------------


def test_xlsx_first_sheet_with_real_date_cells(reconcile_case):
    rows = [
        ext(completed=datetime(2026, 1, 15, 9, 30)),
        ext("bob@example.com", status="In Progress", activity=datetime(2026, 3, 1)),
        ext("cy@example.com", completed=date(2026, 2, 2), activity="not a date"),
    ]
    result = reconcile_case(rows, fmt="xlsx")
    assert outcomes_of(result) == [oc.MISSING_COMPLETION, oc.MISSING_PROGRESS, oc.BAD_DATE]
    assert bodies_of(result)[0]["completionDate"] == "2026-01-15T09:30:00.000Z"
    assert bodies_of(result)[1]["timeStampDate"] == "2026-03-01T00:00:00.000Z"
    assert result.inputs["external"].rows == 3


def test_xlsx_date_cells_are_in_the_configured_timezone(reconcile_case):
    result = reconcile_case(
        [ext(completed=datetime(2026, 5, 15, 12, 0))],
        fmt="xlsx",
        config={"external": {"timezone": "Europe/Berlin"}},
    )
    assert bodies_of(result)[0]["completionDate"] == "2026-05-15T10:00:00.000Z"


def test_xlsx_text_dates_follow_the_date_rules(reconcile_case):
    rows = [ext(completed="01/15/2026"), ext("bob@example.com", completed="2026-01-16T08:00Z")]
    result = reconcile_case(rows, fmt="xlsx")
    assert [b["completionDate"] for b in bodies_of(result)] == [
        "2026-01-15T00:00:00.000Z",
        "2026-01-16T08:00:00.000Z",
    ]


def test_xlsx_named_sheet(reconcile_case):
    result = reconcile_case([ext(completed=datetime(2026, 1, 15))], fmt="xlsx", sheet="Data")
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]


def test_xlsx_missing_sheet_is_an_error_listing_the_sheets(write_case):
    config = write_case(
        [ext(completed=datetime(2026, 1, 15))],
        fmt="xlsx",
        sheet="Data",
        config={"external": {"sheet": "Results"}},
    )
    with pytest.raises(InputError) as err:
        reconcile(config)
    assert "Results" in str(err.value) and "Data" in str(err.value)
    assert "external.xlsx" in str(err.value)


def test_xlsx_text_cells_keep_leading_zeros_and_numbers_read_as_shown(tmp_path):
    path = write_xlsx_file(
        tmp_path / "x.xlsx", [["code", "n", "f", "blank"], ["007", 12, 1.5, None]]
    )
    info, _, rows = load(path)
    assert info.columns == ("code", "n", "f", "blank")
    assert rows == [(1, "007", "12", "1.5", None)]


def test_xlsx_blank_rows_in_the_middle_keep_row_numbers_trailing_ones_dropped(reconcile_case):
    rows = [
        list(HEADERS["external"]),
        ["ann@example.com", "SAFE-101", "Completed", datetime(2026, 1, 15), None],
        [None, None, None, None, None],
        ["bob@example.com", "SAFE-101", "Bogus", None, None],
        [None, None, None, None, None],
    ]
    result = reconcile_case(rows, fmt="xlsx")
    assert outcomes_of(result) == [oc.MISSING_COMPLETION, oc.UNKNOWN_STATUS, oc.UNKNOWN_STATUS]
    assert list(result.exceptions["Status"].fillna("")) == ["", "Bogus"]


def test_xlsx_configured_column_entirely_empty(reconcile_case):
    rows = [ext(completed=datetime(2026, 1, 15), activity=None)]
    result = reconcile_case(rows, fmt="xlsx")
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]


# --- errors ----------------------------------------------------------------------------


def test_missing_file(write_case):
    config = write_case([ext()])
    (config.parent / "progress.csv").unlink()
    with pytest.raises(InputError) as err:
        reconcile(config)
    assert "progress.csv" in str(err.value)
    assert err.value.file.endswith("progress.csv")


@pytest.mark.parametrize("content", [b"", b"\n\n", b"   \r\n", b"\xef\xbb\xbf"])
def test_empty_file(write_case, content):
    config = write_case([ext()])
    (config.parent / "users.csv").write_bytes(content)
    with pytest.raises(InputError) as err:
        reconcile(config)
    assert "users.csv" in str(err.value) and "empty" in str(err.value)


def test_header_only_external_is_an_error(write_case):
    config = write_case([])
    with pytest.raises(InputError) as err:
        reconcile(config)
    assert "external.csv" in str(err.value)


def test_header_only_progress_is_fine(reconcile_case):
    result = reconcile_case([ext(completed="2026-01-15")], [])
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]
    assert result.inputs["progress"].rows == 0


@pytest.mark.parametrize(
    ("role", "key", "column"),
    [
        ("external", "status", "Statut"),
        ("external", "activity_date", "Last Seen"),
        ("progress", "completion_date", "doneAt"),
        ("users", "email", "mail"),
        ("paths", "external_code", "sku"),
    ],
)
def test_missing_configured_column(write_case, role, key, column):
    config = write_case([ext()], config={role: {key: column}})
    with pytest.raises(InputError) as err:
        reconcile(config)
    message = str(err.value)
    assert f"{role}.csv" in message
    assert repr(column) in message
    for found in HEADERS[role]:
        assert repr(found) in message  # the columns found are listed
    assert err.value.column == column
    assert err.value.columns_found == HEADERS[role]


@pytest.mark.parametrize(
    ("name", "content"),
    [("external.xlsx", b"this is not a workbook"), ("external.xls", b"\xd0\xcf\x11\xe0")],
)
def test_unreadable_workbook(write_case, name, content):
    config = write_case([ext()])
    (config.parent / name).write_bytes(content)
    text = config.read_text().replace('"external.csv"', f'"{name}"')
    config.write_text(text)
    with pytest.raises(InputError) as err:
        reconcile(config)
    assert name in str(err.value)


def test_a_directory_instead_of_a_file(write_case):
    config = write_case([ext()])
    (config.parent / "paths.csv").unlink()
    (config.parent / "paths.csv").mkdir()
    with pytest.raises(InputError) as err:
        reconcile(config)
    assert "paths.csv" in str(err.value)
