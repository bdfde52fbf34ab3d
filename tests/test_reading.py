"""Reading never loses or cuts a record (issue 9): the classes, mostly with hypothesis.

- every cell of every generated CSV reads exactly as Python's csv module reads it;
- a line not in UTF-8 is decoded alone, and named by row; UTF-16 is read;
- an XLSX's <dimension> tag neither hides rows nor blows up memory;
- a header may name columns anything (recon's own names, case variants);
- a row whose field count differs from the header's is a `bad-row`, never a crash;
- ids compare as the LMS's UUIDs do; look-alike characters never match;
- dates outside the years 1000..9999 (local or UTC) or offsets beyond +-14:00 are
  `bad-date`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from conftest import AS_OF, bodies_of, ext, lms, outcomes_of, write_case_in, write_xlsx_file
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from recon import outcomes as oc
from recon.config import load_config
from recon.engine import _connect, reconcile
from recon.errors import InputError
from recon.evidence import Evidence
from recon.inputs import MAX_COLUMNS, load_table, run
from recon.normalise import name_key

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def load(path: Path, wanted=None, **kwargs):
    """(info, mapping, rows as lists of text with None for an empty cell, bad details)."""
    con = duckdb.connect(config={"preserve_insertion_order": True})
    try:
        info, mapping = load_table(con, "t", "external", path, wanted or {}, **kwargs)
        cols = ", ".join(info.sql_columns)
        rows = run(con, f"SELECT __row, {cols}, __bad FROM t ORDER BY __row")
    finally:
        con.close()
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    return info, mapping, [list(r[1:-1]) for r in rows], [r[-1] for r in rows]


# --- 1. CSV: what recon reads is what Python's csv module reads --------------------------

cells = st.one_of(
    st.text(
        alphabet=st.sampled_from(list('ab #",;\t\r\n NUL\u00e9\u20ac\u00a0\u2028\ufeffé')),
        max_size=10,
    ),
    st.sampled_from(["", "NULL", "null", "#", "# x", "C# Fundamentals", "  x  ", '"', "N/A"]),
    st.text(max_size=6),
    st.just("long " * 700),
)


@st.composite
def csv_files(draw):
    width = draw(st.integers(1, 6))
    names = draw(
        st.lists(
            st.text(min_size=1, max_size=8).filter(
                lambda s: s.strip() and not {"\x00", "\ufeff"} & set(s)
            ),
            min_size=width,
            max_size=width,
            unique=True,
        )
    )
    # Half the files keep to LF or CRLF with no lone CR, which DuckDB reads itself; the
    # others go to the exact reader: both must agree with Python's csv module.
    clean = draw(st.booleans())
    cell = cells.filter(lambda c: "\r" not in c) if clean else cells
    rows = draw(st.lists(st.lists(cell, min_size=width, max_size=width), max_size=12))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n"] if clean else ["\n", "\r\n", "\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline, quoting=quoting)
    writer.writerow(names)
    blanks = [] if clean else draw(st.lists(st.integers(0, len(rows)), max_size=3))
    for i, row in enumerate(rows):
        if i in blanks:
            buf.write(newline)  # a blank line between rows
        writer.writerow(row)
    text = buf.getvalue()
    if draw(st.booleans()):
        text = text[: -len(newline)]  # no line end after the last row
    elif draw(st.booleans()):
        text += newline * draw(st.integers(1, 3))  # blank lines at the end
    bom = draw(st.booleans())
    return text.encode("utf-8"), delimiter, bom


def readme_names(header: list[str]) -> list[str]:
    """The README's rule: a repeated name is read as NAME_1 (and so on)."""
    names: list[str] = []
    for cell in header:
        name = cell if cell.strip() else f"column{len(names) + 1}"
        base, k = name, 0
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.append(name)
    return names


def python_reads(data: bytes, delimiter: str) -> tuple[list[str], list[list[str]], int]:
    """Header, rows and blank lines exactly as Python's csv module reads the bytes."""
    text = data.decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    blank = sum(1 for r in lines if not r)
    rows = [r for r in lines if r]
    return rows[0], rows[1:], blank


@settings(FAST, max_examples=250)
@given(case=csv_files())
def test_every_cell_reads_as_pythons_csv_module_reads_it(tmp_path, case):
    data, delimiter, bom = case
    header, rows, blank = python_reads(data, delimiter)
    # the delimiter is chosen from the header: the generated header must not leave
    # another one ahead (that is a different, documented rule)
    assume(header and any(len(r) == len(header) for r in rows) or not rows)
    path = tmp_path / "x.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    try:
        info, _, got, bad = load(path, allow_no_rows=True)
    except InputError:
        assume(False)  # e.g. a header that is only blanks
        raise
    if info.delimiter != delimiter:
        assume(False)
    assert list(info.columns) == readme_names(header)
    width = len(header)
    expected = [(r + [""] * width)[:width] for r in rows]
    assert [[c if c is not None else "" for c in r] for r in got] == expected
    assert info.rows == len(rows)
    assert info.blank_lines == blank
    # the line a spreadsheet shows: each record's place, blank lines included
    records = list(
        csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter)
    )
    shown = [i + 1 for i, r in enumerate(records) if r][1:]
    assert [info.spreadsheet_line(n) for n in range(1, len(rows) + 1)] == shown
    # a row is flagged exactly when its field count differs from the header's
    assert [i + 1 for i, r in enumerate(rows) if len(r) != width] == list(info.bad_rows)
    assert [b is not None for b in bad] == [len(r) != width for r in rows]


def test_a_hash_line_is_data_not_a_comment(tmp_path):
    # DuckDB's sniffer took "#" for a comment character here: row 3 vanished, row 1 was
    # cut to "C" (issue 9)
    path = tmp_path / "x.csv"
    path.write_text(
        "Email,Course,Status\n"
        "ann@example.com,C# Fundamentals,Completed\n"
        "# exported by LMS\n"
        "#bob@example.com,SAFE-101,Completed\n",
        encoding="utf-8",
    )
    info, _, rows, bad = load(path)
    assert rows == [
        ["ann@example.com", "C# Fundamentals", "Completed"],
        ["# exported by LMS", None, None],
        ["#bob@example.com", "SAFE-101", "Completed"],
    ]
    assert info.bad_rows == (2,) and bad[1] == "row has 1 fields, the header 3"


def test_types_are_never_guessed_and_null_words_stay_text(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n007,NULL,2026-01-15\n1e3,,TRUE\n", encoding="utf-8")
    _, _, rows, _ = load(path)
    assert rows == [["007", "NULL", "2026-01-15"], ["1e3", None, "TRUE"]]


def test_blank_lines_are_counted_and_shown(write_case, tmp_path):
    config = write_case(
        [ext(completed="2026-01-15"), ext("bob@example.com", completed="2026-01-15")]
    )
    path = config.parent / "external.csv"
    lines = path.read_text(encoding="utf-8").split("\n")
    path.write_text("\n".join([lines[0], "", lines[1], "", "", lines[2], "", ""]), encoding="utf-8")
    result = reconcile(config, as_of=AS_OF)
    assert list(result.outcomes["row"]) == [1, 2]  # blank lines are no data rows
    info = result.inputs["external"]
    assert info.blank_lines == 4
    assert info.to_dict()["blank_lines"] == 4
    assert "4 blank line(s) skipped" in result.render()
    # a spreadsheet shows the blank lines: row 1 on line 3, row 2 on line 6
    assert [info.spreadsheet_line(r) for r in (1, 2)] == [3, 6]
    with Evidence(config) as evidence:
        assert [evidence.spreadsheet_line(r) for r in (1, 2)] == [3, 6]


# --- 2. XLSX: the <dimension> tag is not trusted ----------------------------------------


def _forge_dimension(path: Path, ref: str) -> None:
    """Rewrite the first sheet's <dimension ref="..."> inside the zip."""
    with zipfile.ZipFile(path) as src:
        items = {name: src.read(name) for name in src.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    xml = items[sheet].decode("utf-8")
    if "<dimension" in xml:
        xml = re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>', xml)
    else:
        xml = xml.replace("<sheetViews>", f'<dimension ref="{ref}"/><sheetViews>', 1)
    assert f'ref="{ref}"' in xml
    items[sheet] = xml.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, body in items.items():
            dst.writestr(name, body)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ref", ["A1:H2", "A1:XFD1048576", "C3:D4", "A1"])
def test_xlsx_reads_every_row_whatever_the_dimension_tag_says(write_case, ref):
    rows = [ext(f"user{i}@example.com", completed=datetime(2026, 1, 15)) for i in range(50)]
    config = write_case(rows, fmt="xlsx")
    path = config.parent / "external.xlsx"
    _forge_dimension(path, ref)
    result = reconcile(config, as_of=AS_OF)
    assert result.inputs["external"].rows == 50
    assert len(result.outcomes) == 50
    assert result.inputs["external"].columns == (
        "Email",
        "Course Code",
        "Status",
        "Completed On",
        "Last Activity",
    )


def test_xlsx_values_right_of_the_header_make_a_bad_row(tmp_path):
    path = write_xlsx_file(
        tmp_path / "x.xlsx", [["a", "b"], ["1", "2"], ["3", "4", "stray"], ["5", None, None]]
    )
    info, _, rows, bad = load(path)
    assert rows == [["1", "2"], ["3", "4"], ["5", None]]
    assert info.bad_rows == (2,)
    assert bad[1] is not None and "'stray'" in bad[1]


# --- 3. encodings -------------------------------------------------------------------------

utf8_values = st.text(
    alphabet=st.sampled_from(list("abcxyz josé müller ZOË ñ ç 漢字 😀")), min_size=1, max_size=8
)
cp1252_values = st.text(
    alphabet=st.sampled_from(list("abc é è ü € “ ” – ß Ñ")), min_size=1, max_size=8
)


@settings(FAST, max_examples=120)
@given(
    lines=st.lists(
        st.tuples(st.booleans(), st.one_of(utf8_values, cp1252_values), utf8_values),
        min_size=1,
        max_size=15,
    ),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_mixed_utf8_and_cp1252_lines_are_decoded_line_by_line(tmp_path, lines, newline):
    data = b"name,note" + newline.encode()
    expected = []
    not_utf8 = []
    for i, (legacy, name, note) in enumerate(lines, start=1):
        if legacy:
            try:
                raw = f"{name},x".encode("cp1252")
            except UnicodeEncodeError:
                assume(False)
                raise
            try:
                raw.decode("utf-8")
                is_utf8 = True  # cp1252 bytes that happen to be UTF-8 too (plain ASCII)
            except UnicodeDecodeError:
                is_utf8 = False
            if not is_utf8:
                not_utf8.append(i)
            expected.append([name if not is_utf8 else raw.decode("utf-8")[:-2], "x"])
        else:
            raw = f"{name},{note}".encode()
            expected.append([name, note])
        data += raw + newline.encode()
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    info, _, rows, _ = load(path)
    assert rows == expected  # no valid line is harmed by another's encoding
    assert list(info.not_utf8_rows) == not_utf8
    assert info.to_dict()["not_utf8_rows"] == not_utf8
    if not_utf8:
        assert info.encoding in ("cp1252", "utf-8+cp1252")
    else:
        assert info.encoding == "utf-8"


def test_one_cp1252_byte_does_not_mangle_the_utf8_rows(reconcile_case):
    users = [
        {"email": "josé@example.com", "userId": "u-jose"},
        {"email": "renée@example.com", "userId": "u-renee"},
    ]
    result = reconcile_case(
        [ext("josé@example.com", completed="2026-01-15")],
        users=users,
    )
    config = Path(result.inputs["external"].path)
    raw = config.read_bytes() + "renée@example.com,SAFE-101,Completed,2026-01-15,\n".encode(
        "cp1252"
    )
    config.write_bytes(raw)
    again = reconcile(Path(config).parent / "recon.toml", as_of=AS_OF)
    assert outcomes_of(again) == [oc.MISSING_COMPLETION, oc.MISSING_COMPLETION]
    assert [b["userId"] for b in bodies_of(again)] == ["u-jose", "u-renee"]
    info = again.inputs["external"]
    assert info.not_utf8_rows == (2,)
    assert "row 2" in again.render() and "not in UTF-8" in again.render()
    assert json.loads(json.dumps(again.to_dict()))["inputs"]["external"]["not_utf8_rows"] == [2]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_utf16_files_are_read(tmp_path, encoding, newline):
    text = newline.join(["Email;Note", "josé@example.com;€ 5", "zoë@example.com;漢字", ""])
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode(encoding))
    info, _, rows, _ = load(path)
    assert info.encoding == "utf-16"
    assert info.columns == ("Email", "Note")
    assert rows == [["josé@example.com", "€ 5"], ["zoë@example.com", "漢字"]]


# --- 4. header names: anything, recon's own included --------------------------------------

header_names = st.one_of(
    st.sampled_from(
        [
            "rowid",
            "ROWID",
            "RowId",
            "__row",
            "__ROW",
            "__bad",
            "row",
            "Row",
            "detail",
            "outcome",
            "c0",
            "C1",
            "c2",
            "email",
            "Email",
            "EMAIL",
            "column1",
            "Email_1",
            "",
        ]
    ),
    # No bare line break: Python's csv writer (lineterminator "\n") leaves a CR unquoted,
    # which every reader, Python's own included, takes for the end of the header line.
    # Line breaks inside quoted cells are the CSV comparison test's business.
    st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=6),
)


@settings(FAST, max_examples=60)
@given(extra=st.lists(header_names, max_size=6), at=st.integers(0, 5))
def test_any_header_names_are_safe(extra, at):
    header = ["Email", "Course Code", "Status", "Completed On"]
    header[at % 5 : at % 5] = []  # keep the configured ones; insert the others around
    names = header[: at % 5] + extra + header[at % 5 :]
    rows = [names]
    for i, email in enumerate(["ann@example.com", "bob@example.com", "nobody@example.com"]):
        row = {
            "Email": email,
            "Course Code": "SAFE-101",
            "Status": "Completed",
            "Completed On": f"2026-01-1{i}",
        }
        rows.append([row.get(n, f"v{j}") for j, n in enumerate(names)])
    with tempfile.TemporaryDirectory() as tmp:
        config = write_case_in(
            Path(tmp),
            rows,
            [
                {
                    "userId": "u-bob",
                    "learningPathId": "lp-safe",
                    "status": "completed",
                    "completionDate": "2026-01-11",
                    "rowid": "1",
                    "__row": "x",
                }
            ],
            config={"external": {"activity_date": None}},
        )
        try:
            result = reconcile(config, as_of=AS_OF)
        except InputError as err:
            # only an ambiguous case-insensitive match may stop the run, never a crash
            assert "several match it" in str(err) or "not found" in str(err)
            return
    assert outcomes_of(result) == [oc.MISSING_COMPLETION, oc.IN_SYNC, oc.UNKNOWN_LEARNER]
    assert list(result.outcomes["row"]) == [1, 2, 3]
    exc = result.exceptions
    assert len(exc) == 1 and exc["row"].tolist() == [3]


def test_the_exact_header_name_wins_over_a_case_variant(reconcile_case):
    rows = [
        ["email", "Email", "Course Code", "Status", "Completed On"],
        ["bob@example.com", "ann@example.com", "SAFE-101", "Completed", "2026-01-15"],
    ]
    result = reconcile_case(rows, config={"external": {"activity_date": None}})
    assert bodies_of(result)[0]["userId"] == "u-ann"  # the column named exactly "Email"
    result = reconcile_case(rows, config={"external": {"learner": "email", "activity_date": None}})
    assert bodies_of(result)[0]["userId"] == "u-bob"


# --- 8. a row that does not line up: an outcome, never a crash ---------------------------


def test_rows_with_too_many_or_too_few_fields_are_bad_rows(write_case):
    config = write_case(
        [
            ext(completed="2026-01-15"),
            ext("bob@example.com", completed="2026-01-15"),
            ext("cy@example.com", completed="2026-01-15"),
        ]
    )
    path = config.parent / "external.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = "bob@example.com,SAFE-101,Completed,2026-01-15,,surplus"
    lines[3] = "cy@example.com,SAFE-101"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = reconcile(config, as_of=AS_OF)
    assert outcomes_of(result) == [oc.MISSING_COMPLETION, oc.BAD_ROW, oc.BAD_ROW]
    details = result.outcomes.sort_values("row")["detail"].astype(str).tolist()
    assert details[1] == "row has 6 fields, the header 5; extra fields: 'surplus'"
    assert details[2] == "row has 2 fields, the header 5"
    assert result.exceptions["row"].tolist() == [2, 3]
    assert result.exceptions["Email"].tolist() == ["bob@example.com", "cy@example.com"]
    assert result.inputs["external"].bad_rows == (2, 3)
    assert "bad-row" in result.render()


def test_bad_rows_of_the_lms_and_the_directory_are_not_used_but_counted(write_case):
    config = write_case(
        [ext(completed="2026-01-15"), ext("bob@example.com", completed="2026-01-15")],
        [lms("u-ann", "lp-safe", "completed", "2026-01-15")],
    )
    progress = config.parent / "progress.csv"
    progress.write_text(progress.read_text() + "u-bob,lp-safe,completed,2026-01-15,extra\n")
    users = config.parent / "users.csv"
    users.write_text(users.read_text() + "zed@example.com\n")
    result = reconcile(config, as_of=AS_OF)
    assert outcomes_of(result) == [oc.IN_SYNC, oc.MISSING_COMPLETION]
    assert result.progress_ignored == 1
    assert result.inputs["progress"].bad_rows == (2,)
    assert result.inputs["users"].bad_rows == (4,)


def test_a_huge_cell_is_read_whole(tmp_path):
    path = tmp_path / "x.csv"
    big = "x" * 5_000_000
    path.write_text(f"a,b\n1,{big}\n2,3\n", encoding="utf-8")
    info, _, rows, _ = load(path)
    assert rows == [["1", big], ["2", "3"]]


def test_a_too_wide_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(",".join(f"h{i}" for i in range(MAX_COLUMNS + 1)) + "\n" + "1\n")
    with pytest.raises(InputError) as err:
        load(path)
    assert "\n" not in str(err.value) and "16,385 columns" in str(err.value)


def test_an_unterminated_quote_reads_to_the_end_and_is_a_bad_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('a,b\n1,2\n"3,4\n5,6\n', encoding="utf-8")
    info, _, rows, bad = load(path)
    assert rows[0] == ["1", "2"]
    assert rows[1] == ["3,4\n5,6\n", None]  # as Python's csv module reads it
    assert info.bad_rows == (2,)


# --- 5. ids: compared as the LMS does (UUIDs have no case) --------------------------------


def test_an_upper_cased_directory_and_progress_match_lower_case_ids(reconcile_case):
    uid = "3f2b5c1e-9a7d-4e2b-8c1f-0a1b2c3d4e5f"
    pid = "40e6e947-0931-4553-90a6-c78472039f7f"
    users = [{"email": "ann@example.com", "userId": uid.upper()}]
    paths = [{"externalCode": "SAFE-101", "learningPathId": pid.upper()}]
    progress = [lms(uid, pid, "completed", "2026-01-15")]
    result = reconcile_case([ext(completed="2026-01-15")], progress, users=users, paths=paths)
    assert outcomes_of(result) == [oc.IN_SYNC]
    result = reconcile_case([ext(status="In Progress")], progress, users=users, paths=paths)
    assert outcomes_of(result) == [oc.LMS_AHEAD]


def test_ids_given_as_ids_compare_case_insensitively_and_send_the_lms_spelling(reconcile_case):
    uid = "3f2b5c1e-9a7d-4e2b-8c1f-0a1b2c3d4e5f"
    users = [{"email": "ann@example.com", "userId": uid}]
    rows = [ext(uid.upper(), "lp-safe", completed="2026-01-15")]
    result = reconcile_case(rows, users=users, learner_kind="user_id", path_kind="learning_path_id")
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]
    assert bodies_of(result)[0]["userId"] == uid
    # and without a directory the provider's ids are compared the same way
    progress = [lms(uid, "lp-safe", "completed", "2026-01-15")]
    result = reconcile_case(
        rows, progress, users=None, paths=None, learner_kind="user_id", path_kind="learning_path_id"
    )
    assert outcomes_of(result) == [oc.IN_SYNC]


# --- 6. look-alike characters never match another person ----------------------------------

LOOKALIKES = {
    "k": ["\u212a"],  # Kelvin sign
    "a": ["\uff41", "\uff21"],  # fullwidth
    "s": ["\u017f"],  # long s
    "i": ["\u0130", "\u0131", "\u2170"],  # dotted capital I, dotless i, roman numeral one
    "f": ["\ufb00"],  # ligature ff (for "ff")
    "o": ["\u1d52", "\u2092"],  # modifier / subscript o
    "m": ["\u217f"],  # roman numeral one thousand
}


@given(
    local=st.text(alphabet=st.sampled_from(list("aksifom.")), min_size=1, max_size=10),
    data=st.data(),
)
def test_a_lookalike_never_gives_the_key_of_a_different_address(local, data):
    address = f"{local}@example.com"
    positions = [i for i, c in enumerate(local) if c in LOOKALIKES]
    assume(positions)
    i = data.draw(st.sampled_from(positions))
    fake = data.draw(st.sampled_from(LOOKALIKES[local[i]]))
    variant = local[:i] + fake + local[i + 1 :] + "@example.com"
    assert name_key(variant) != name_key(address)
    assert name_key(variant) != name_key(address.upper())


@given(st.text(max_size=12), st.text(max_size=12))
def test_equal_keys_mean_equal_text_up_to_case(a, b):
    if name_key(a) == name_key(b):
        import unicodedata

        assert unicodedata.normalize("NFC", a).lower() == unicodedata.normalize("NFC", b).lower()
        assert unicodedata.normalize("NFKC", a) == unicodedata.normalize("NFC", a) or a == b


def test_plain_accents_and_case_still_match(reconcile_case):
    users = [{"email": "zoë.müller@example.com", "userId": "u-zoe"}]
    decomposed = "zoe\u0308.mu\u0308ller@example.com"  # the same letters, NFD
    rows = [
        ext("ZOË.MÜLLER@example.com", completed="2026-01-15"),
        ext(decomposed, completed="2026-01-15"),
    ]
    result = reconcile_case(rows, users=users)
    assert outcomes_of(result) == [oc.MISSING_COMPLETION, oc.DUPLICATE]


def test_the_kelvin_sign_is_an_unknown_learner_with_the_reason(reconcile_case):
    users = [{"email": "kim@example.com", "userId": "u-kim"}]
    rows = [
        ext("\u212aim@example.com", completed="2026-01-15"),
        ext("KIM@example.com", completed="2026-01-15"),
    ]
    result = reconcile_case(rows, users=users)
    assert outcomes_of(result) == [oc.UNKNOWN_LEARNER, oc.MISSING_COMPLETION]
    detail = str(result.outcomes.sort_values("row")["detail"].iloc[0])
    assert "look-alike" in detail
    # nor does a directory entry with a look-alike catch a plain address
    users = [{"email": "\uff4bim@example.com", "userId": "u-fake"}]
    result = reconcile_case([ext("kim@example.com", completed="2026-01-15")], users=users)
    assert outcomes_of(result) == [oc.UNKNOWN_LEARNER]


# --- 7. dates at the edges of the calendar --------------------------------------------------

ZONES = ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Etc/GMT-14", "America/New_York"]


def expected_wire(year, month, day, hour, minute, offset_min, zone):
    """The rule, in Python: None for bad-date, else the wire date."""
    if year < 1000 or year > 9999:
        return None
    if offset_min is not None and abs(offset_min) > 14 * 60:
        return None
    try:
        tz = ZoneInfo(zone) if offset_min is None else timezone(timedelta(minutes=offset_min))
        utc = datetime(year, month, day, hour, minute, tzinfo=tz).astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    if not 1000 <= utc.year <= 9999:
        return None
    return utc.strftime("%Y-%m-%dT%H:%M:%S.000Z").rjust(24, "0")


_CONNECTIONS: dict[str, duckdb.DuckDBPyConnection] = {}


def date_rule(zone: str) -> duckdb.DuckDBPyConnection:
    if zone not in _CONNECTIONS:
        folder = Path(tempfile.mkdtemp())
        config = write_case_in(folder, [ext()], config={"external": {"timezone": zone}})
        _CONNECTIONS[zone] = _connect(load_config(config), str(folder))
    return _CONNECTIONS[zone]


@settings(max_examples=300, deadline=None)
@given(
    year=st.one_of(st.integers(0, 1001), st.integers(9998, 9999), st.integers(1900, 2100)),
    month=st.sampled_from([1, 12]),
    day=st.sampled_from([1, 31]),
    hour=st.sampled_from([0, 12, 23]),
    minute=st.sampled_from([0, 30, 59]),
    offset=st.one_of(st.none(), st.integers(-24 * 60 + 1, 24 * 60 - 1)),
    zone=st.sampled_from(ZONES),
    form=st.sampled_from(["iso", "iso-hour-offset", "strptime"]),
)
def test_dates_at_the_edges_are_read_or_bad_date(
    year, month, day, hour, minute, offset, zone, form
):
    if form == "strptime":
        text = f"{month:02d}/{day:02d}/{year:04d}"
        expected = expected_wire(year, month, day, 0, 0, None, zone)
    else:
        if form == "iso-hour-offset" and offset is not None:
            offset = (abs(offset) // 60) * 60 * (1 if offset >= 0 else -1)
            suffix = f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}"
        elif offset is not None:
            suffix = f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
        else:
            suffix = ""
        text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}{suffix}"
        expected = expected_wire(year, month, day, hour, minute, offset, zone)
    con = date_rule(zone)
    [(got,)] = run(con, "SELECT recon_wire(recon_date(?))", [text])
    assert got == expected, text


def test_an_early_iso_date_is_a_bad_date_not_a_proposal(reconcile_case):
    rows = [
        ext(completed="0999-12-31"),
        ext("bob@example.com", completed="0001-01-01T00:00+05:00"),
        ext("cy@example.com", completed="2026-01-15T00:00+15:00"),
    ]
    result = reconcile_case(rows)
    assert outcomes_of(result) == [oc.BAD_DATE, oc.BAD_DATE, oc.BAD_DATE]
    assert result.proposals.empty


def test_a_shift_across_a_zone_out_of_the_calendar_is_a_bad_date(reconcile_case):
    rows = [
        ext(completed="1000-01-01T00:00"),
        ext("bob@example.com", status="In Progress", activity="1000-01-01T05:00"),
    ]
    # Etc/GMT-14 is +14:00 all through history (Pacific/Kiritimati was -10:29 in 1000)
    result = reconcile_case(rows, config={"external": {"timezone": "Etc/GMT-14"}})
    assert outcomes_of(result) == [oc.BAD_DATE, oc.BAD_DATE]


def test_strptime_offsets_follow_the_same_limits(reconcile_case):
    formats = ["%m/%d/%Y", "%Y-%m-%d %H:%M %z"]
    rows = [
        ext(completed="2026-01-15 10:00 +0200"),
        ext("bob@example.com", completed="2026-01-15 10:00 +1400"),
        ext("cy@example.com", completed="2026-01-15 10:00 +2300"),
        ext("ann@example.com", "DATA-200", completed="01/15/2026"),
    ]
    result = reconcile_case(
        rows, config={"external": {"date_formats": formats, "timezone": "Etc/GMT-5"}}
    )
    assert outcomes_of(result) == [oc.MISSING_COMPLETION] * 2 + [oc.BAD_DATE, oc.MISSING_COMPLETION]
    assert [b["completionDate"] for b in bodies_of(result)] == [
        "2026-01-15T08:00:00.000Z",
        "2026-01-14T20:00:00.000Z",
        "2026-01-14T19:00:00.000Z",  # no offset: in the configured zone (+05:00)
    ]
