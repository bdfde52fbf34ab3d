"""Formula escaping: no CSV cell recon writes starts a spreadsheet formula."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import AS_OF, ext, read_rows, starts_a_formula

from recon import outcomes as oc
from recon.outputs import escape_cell, write_csv, write_result

FORMULAS = ["=1+1", "+SUM(A1)", "-2+3", "@SUM(A1)", "=cmd|' /C calc'!A0", "-", "+", "=", "@"]
NUMBERS = ["-5", "+3.2", "1e5", "-1.5e-3", "+7", "-.5", "-0", "42"]
PLAIN = ["ann@example.com", "a=b", "1+1", "", "text - with dash", " =space first"]


@pytest.mark.parametrize("value", FORMULAS)
def test_formula_cells_are_escaped(value):
    assert escape_cell(value) == "'" + value


@pytest.mark.parametrize("value", NUMBERS + PLAIN)
def test_numbers_and_plain_text_are_left_alone(value):
    assert escape_cell(value) == value


def test_non_text_values_are_left_alone():
    assert escape_cell(-5) == -5
    assert escape_cell(None) is None


def test_write_csv_escapes_every_text_cell(tmp_path):
    values = FORMULAS + NUMBERS + PLAIN
    frame = pd.DataFrame(
        {"n": range(len(values)), "value": values, "again": list(reversed(values))}
    )
    rows = read_rows(write_csv(frame, tmp_path / "x.csv"))
    assert rows[0] == ["n", "value", "again"]
    assert [r[1] for r in rows[1:]] == [str(escape_cell(v)) for v in values]
    assert [r[2] for r in rows[1:]] == [str(escape_cell(v)) for v in reversed(values)]
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(len(values))]


def test_write_csv_escapes_header_cells(tmp_path):
    frame = pd.DataFrame({"=HYPERLINK(1)": ["x"], "ok": ["y"]})
    rows = read_rows(write_csv(frame, tmp_path / "x.csv"))
    assert rows[0] == ["'=HYPERLINK(1)", "ok"]


def test_write_csv_quotes_delimiters_quotes_and_newlines(tmp_path):
    values = ["a,b", 'say "hi"', "two\nlines", "=x,y"]
    rows = read_rows(write_csv(pd.DataFrame({"v": values}), tmp_path / "x.csv"))
    assert [r[0] for r in rows[1:]] == ["a,b", 'say "hi"', "two\nlines", "'=x,y"]


HOSTILE = {
    "Email": '=HYPERLINK("http://evil","x")',
    "Course Code": "@SUM(1+1)",
    "Status": "+cmd",
    "Completed On": "-2026-01-01",
    "Last Activity": "=1",
}


def test_every_csv_written_is_escaped(reconcile_case, tmp_path):
    users = [
        {"email": "ann@example.com", "userId": "-u-ann"},
        {"email": "bob@example.com", "userId": "@u-bob"},
    ]
    paths = [{"externalCode": "SAFE-101", "learningPathId": "=lp-safe"}]
    rows = [
        HOSTILE,
        ext(completed="2026-01-15"),
        ext("bob@example.com", status="Passed -5"),
        ext("bob@example.com", status="In Progress", activity="-5"),
        {**ext("=evil@example.com"), "Note": "-5"},
        {**ext(completed="2026-01-16"), "Note": "+3.2"},
    ]
    result = reconcile_case(rows, users=users, paths=paths)
    assert list(result.outcomes["outcome"]) == [
        oc.UNKNOWN_STATUS,
        oc.MISSING_COMPLETION,
        oc.UNKNOWN_STATUS,
        oc.BAD_DATE,
        oc.UNKNOWN_LEARNER,
        oc.DUPLICATE,
    ]
    out = tmp_path / "out"
    write_result(result, out)

    csvs = sorted(out.glob("*.csv"))
    assert [p.name for p in csvs] == [
        "exceptions.csv",
        "outcomes.csv",
        "proposals.csv",
        "review.csv",
        "suggestions.csv",
    ]
    for path in csvs:
        for row in read_rows(path):
            for cell in row:
                assert not starts_a_formula(cell), (path.name, cell)

    exceptions = read_rows(out / "exceptions.csv")
    found = [dict(zip(exceptions[0], r, strict=True)) for r in exceptions[1:]]
    first = found[0]
    assert first["row"] == "1"
    for column, value in HOSTILE.items():
        assert first[column] == "'" + value  # the original value, shown as text
    # numbers are not touched, wherever they are
    assert found[2]["Last Activity"] == "-5"
    assert found[3]["Note"] == "-5"

    proposals = read_rows(out / "proposals.csv")
    assert [r[1:3] for r in proposals[1:]] == [["'-u-ann", "'=lp-safe"]]
    outcomes = read_rows(out / "outcomes.csv")
    assert outcomes[2][2:4] == ["'-u-ann", "'=lp-safe"]


def test_a_result_written_twice_is_the_same(reconcile_case, tmp_path):
    result = reconcile_case([HOSTILE, ext(completed="2026-01-15")], as_of=AS_OF)
    write_result(result, tmp_path / "a")
    write_result(result, tmp_path / "b")
    for name in ("outcomes.csv", "proposals.csv", "exceptions.csv", "review.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(
    "values",
    [
        FORMULAS + NUMBERS + PLAIN + [None],
        ["=a", "'=a", "=a", None, "b"],  # escaping would make two categories equal
    ],
)
def test_categorical_columns_are_escaped_as_text_columns_are(tmp_path, values):
    # Categories are escaped once each (the outcomes' ids and details), text cells one
    # by one: the two ways must write the same bytes.
    as_text = pd.DataFrame({"n": range(len(values)), "v": pd.Series(values, dtype=object)})
    as_category = as_text.assign(v=as_text["v"].astype("category"))
    text_file = write_csv(as_text, tmp_path / "text.csv")
    category_file = write_csv(as_category, tmp_path / "category.csv")
    assert category_file.read_bytes() == text_file.read_bytes()
    assert [r[1] for r in read_rows(category_file)[1:]] == [
        "" if v is None else str(escape_cell(v)) for v in values
    ]
