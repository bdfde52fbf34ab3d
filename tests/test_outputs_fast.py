"""outputs.csv's Arrow writer, review.csv's detail built for all rows at once, and the
engine's own learner/path in outcomes.csv (issue 12): the same bytes as the slow ways."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from conftest import AS_OF, ext, lms, read_rows, starts_a_formula, write_case_in
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import outcomes as oc
from recon.engine import reconcile
from recon.outputs import _copy_rows, _write_rows_arrow, why_differ, write_csv, write_result

# Cells that decide quoting and escaping, in DuckDB's writer and in a spreadsheet.
SPECIAL = ["=", "+", "-", "@", "\t", "\r", "\n", ",", '"', "#", " ", "'", "5", ".", "e", "é"]
CELL = st.one_of(
    st.none(),
    st.text(st.sampled_from(SPECIAL), max_size=6),
    st.text(max_size=8),
    st.sampled_from(["-5", "+3.2", "1e5", "-.5", "=1+1", "@SUM(A1)", "#VALUE!", "", "a,b"]),
)


def duckdb_bytes(frame: pd.DataFrame, folder: Path) -> bytes:
    """The rows as DuckDB's COPY writes them (:func:`_copy_rows`): the oracle."""
    data = folder / "copy.rows"
    _copy_rows(frame, str(data))
    return data.read_bytes()


def arrow_bytes(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    assert _write_rows_arrow(frame, out) is True  # the Arrow path is the one tested
    return out.getvalue()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(CELL, CELL, st.integers(-(2**62), 2**62)), min_size=0, max_size=40))
def test_arrow_writer_writes_what_duckdb_writes(tmp_path_factory, rows):
    # Text (plain or categorical) and integers go through Arrow; DuckDB's COPY, the
    # writer for every other kind of column, is the oracle: the bytes must agree.
    folder = tmp_path_factory.mktemp("csv")
    text = pd.DataFrame(
        {
            "n": pd.Series([r[2] for r in rows], dtype="int64"),
            "a": pd.Series([r[0] for r in rows], dtype=object),
            "b": pd.Series([r[1] for r in rows], dtype=object),
        }
    )
    coded = text.assign(a=text["a"].astype("category"), b=text["b"].astype("category"))
    expected = duckdb_bytes(text, folder)
    assert arrow_bytes(text) == expected
    assert arrow_bytes(coded) == expected
    assert arrow_bytes(text.assign(b=text["b"].astype("string"))) == expected
    header = b"n,a,b\n"
    assert write_csv(coded, folder / "fast.csv").read_bytes() == header + expected
    assert write_csv(text, folder / "slow.csv").read_bytes() == header + expected


def test_columns_arrow_does_not_write_go_to_duckdb(tmp_path):
    # Floats, booleans and objects that are not all text are DuckDB's to render.
    others = {
        "float": pd.Series([1.5, None, 2.0]),
        "bool": pd.Series([True, False, True]),
        "mixed": pd.Series(["a", 3, None], dtype=object),
    }
    for name, column in others.items():
        frame = pd.DataFrame({"row": [1, 2, 3], name: column})
        assert _write_rows_arrow(frame, io.BytesIO()) is False, name
        written = write_csv(frame, tmp_path / f"{name}.csv").read_bytes()
        assert written == f"row,{name}\n".encode() + duckdb_bytes(frame, tmp_path)
    blank = pd.DataFrame({"row": [1, 2], "v": pd.Series([None, None], dtype=object)})
    assert arrow_bytes(blank) == duckdb_bytes(blank, tmp_path) == b"1,\n2,\n"


def test_arrow_writer_across_chunks(tmp_path):
    # More rows than one chunk: the chunks follow each other, nothing lost or repeated.
    n = 140_001  # one chunk is 131,072 rows
    values = pd.Series(["=x", "a,b", None, "plain", '"q"'] * (n // 5) + ["end"])
    text = pd.DataFrame({"row": range(1, n + 1), "v": values.astype(object)})
    coded = text.assign(v=values.astype("category"))
    expected = duckdb_bytes(text, tmp_path)
    assert arrow_bytes(coded) == expected
    assert arrow_bytes(text) == expected
    assert expected.count(b"\n") == n


def _why_one(local_p, utc_p, local_l, utc_l, zone: str) -> str:
    """The per-row rule review.csv's detail followed before it was built for all rows
    at once: the oracle."""
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


# Zones with DST (both hemispheres, a 30-minute one), half-hour and far offsets.
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
]
# Around 2026's DST changes and midnights, and far from them.
INSTANT = st.one_of(
    st.none(),
    st.integers(1_773_000_000, 1_775_000_000),  # March-April 2026
    st.integers(1_790_000_000, 1_793_000_000),  # October-November 2026
    st.integers(0, 4_102_444_800),  # 1970-2100
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ZONES), st.lists(st.tuples(INSTANT, INSTANT), max_size=25))
def test_review_detail_for_all_rows_is_the_per_row_rule(zone, pairs):
    def instants(seconds):
        return pd.Series(
            pd.to_datetime([None if s is None else s * 1_000_000_000 for s in seconds], utc=True)
        )

    utc_p, utc_l = instants([p for p, _ in pairs]), instants([q for _, q in pairs])
    local_p, local_l = utc_p.dt.tz_convert(zone), utc_l.dt.tz_convert(zone)
    found = list(why_differ(utc_p, local_p, utc_l, local_l, zone))
    expected = [
        _why_one(lp, up, ll, ul, zone)
        for lp, up, ll, ul in zip(local_p, utc_p, local_l, utc_l, strict=True)
    ]
    assert found == expected


# Evening completions (the next UTC day), a DST night, days apart, one LMS date unread.
EXTERNAL = [
    ext("ann@example.com", "SAFE-101", "Completed", "2026-01-31T22:30:00"),
    ext("bob@example.com", "safe-101", "Completed", "03/10/2026"),
    ext("cy@example.com", "SAFE-101", "Completed", "2026-03-08T01:30:00"),
    ext("ann@example.com", "DATA-200", "Completed", "2026-11-01T01:30:00"),
]
PROGRESS = [
    lms("u-ann", "lp-safe", "completed", "2026-01-31T17:00:00Z"),
    lms("u-bob", "lp-safe", "completed", "2026-03-01T12:00:00Z"),
    lms("u-cy", "lp-safe", "completed", "2026-03-09T06:59:00Z"),
    lms("u-ann", "lp-data", "completed", "2026-10-30T23:59:00Z"),
]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
def test_review_csv_detail_and_local_days_in_each_zone(tmp_path: Path, zone: str) -> None:
    config = write_case_in(
        tmp_path / "case", EXTERNAL, PROGRESS, config={"external": {"timezone": zone}}
    )
    result = reconcile(config, as_of=AS_OF)
    rows = list(csv.DictReader(write_result(result, tmp_path / "out")["review"].open()))
    differs = result.outcomes[result.outcomes["outcome"] == oc.COMPLETION_DATE_DIFFERS]
    assert [int(r["row"]) for r in rows] == list(differs["row"])
    assert rows, "the case has rows to review in every zone"
    for line in rows:
        utc_p = pd.Timestamp(line["provider_completion_date"])
        utc_l = pd.Timestamp(line["lms_completion_date"])
        local_p, local_l = utc_p.tz_convert(zone), utc_l.tz_convert(zone)
        assert line["provider_completion_date_local"] == f"{local_p:%Y-%m-%d}"
        assert line["lms_completion_date_local"] == f"{local_l:%Y-%m-%d}"
        assert line["detail"] == _why_one(local_p, utc_p, local_l, utc_l, zone)
        written = EXTERNAL[int(line["row"]) - 1]
        assert (line["learner"], line["path"]) == (written["Email"], written["Course Code"])


def test_outcomes_csv_learner_and_path_of_duplicates_and_problems(tmp_path: Path) -> None:
    external = [
        ext(" ANN@example.com ", "SAFE-101", "Completed", "2026-01-10"),
        ext("ann@example.com", "safe-101", "Completed", "2026-01-12"),  # duplicate
        ext("=evil@example.com", "SAFE-101", "Completed", "2026-01-10"),  # unknown learner
        ext("bob@example.com", "@NOPE-1", "Completed", "2026-01-10"),  # unknown path
        ext("bob@example.com", "DATA-200", "Completed", "not a date"),  # bad date
        ext(None, "LEAD-300", "In Progress", "", "2026-01-10"),  # no learner
        ext("cy@example.com", "LEAD-300", "Completed", "2026-01-10"),
        ext("cy@example.com", "LEAD-300", "Completed", "2026-01-11"),  # duplicate
    ]
    config = write_case_in(tmp_path / "case", external)
    result = reconcile(config, as_of=AS_OF)
    outcomes = list(result.outcomes["outcome"])
    assert outcomes.count(oc.DUPLICATE) == 2
    assert {oc.UNKNOWN_LEARNER, oc.UNKNOWN_PATH, oc.BAD_DATE} <= set(outcomes)
    lines = list(csv.DictReader(write_result(result, tmp_path / "out")["outcomes"].open()))
    assert [line["outcome"] for line in lines] == outcomes
    shown = [(line["learner"], line["path"]) for line in lines]
    assert shown == [
        ("ANN@example.com", "SAFE-101"),  # trimmed, as written otherwise
        ("ann@example.com", "safe-101"),
        ("'=evil@example.com", "SAFE-101"),  # a formula is text in a spreadsheet
        ("bob@example.com", "'@NOPE-1"),
        ("bob@example.com", "DATA-200"),
        ("", "LEAD-300"),
        ("cy@example.com", "LEAD-300"),
        ("cy@example.com", "LEAD-300"),
    ]
    # Result.outcomes stays a frame of categoricals, categories in order of appearance.
    for name in ("outcome", "status", "detail", "learner", "path"):
        column = result.outcomes[name]
        assert isinstance(column.dtype, pd.CategoricalDtype), name
        assert list(column.cat.categories) == list(dict.fromkeys(column.dropna())), name


def test_every_output_file_escapes_its_header_and_cells(tmp_path: Path) -> None:
    # The provider's own column names are exceptions.csv's header: a formula there too.
    external = [
        {**ext("=evil@example.com", completed="2026-01-10"), "=SUM(A1)": "@x", "-Note": "-5"},
        {**ext("ann@example.com", completed="2026-01-10"), "=SUM(A1)": "+y", "-Note": "+z"},
    ]
    config = write_case_in(tmp_path / "case", external)
    written = write_result(reconcile(config, as_of=AS_OF), tmp_path / "out")
    for kind, path in written.items():
        if kind == "summary":
            continue
        for row in read_rows(path):
            for cell in row:
                assert not starts_a_formula(cell), (kind, cell)
    header = read_rows(written["exceptions"])[0]
    assert "'=SUM(A1)" in header and "'-Note" in header
    cells = read_rows(written["exceptions"])[1]
    assert cells[header.index("'=SUM(A1)")] == "'@x"
    assert cells[header.index("'-Note")] == "-5"  # a number is left alone
