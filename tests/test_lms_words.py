"""The LMS's own words, dates and time zone (issue 8, case 2).

An LMS export may spell statuses its own way ("In Progress") and write dates without
an offset. recon reads them through [progress.statuses], [progress] timezone and
date_formats; a word or date it cannot read stops every proposal for that learner and
path (`unknown-lms-status`, `bad-lms-date`) instead of being silently dropped.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import pytest
from conftest import AS_OF, USERS, bodies_of, ext, lms, outcomes_of, write_case_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon import outcomes as oc
from recon.cli import main
from recon.config import load_config
from recon.engine import reconcile
from recon.errors import ConfigError
from recon.pipeline import reconcile_run
from recon.result import PLACEHOLDER, status_line

ANN_SAFE = ("u-ann", "lp-safe")


def detail(result, row: int) -> str:
    return str(result.outcomes.set_index("row").loc[row, "detail"])


def progress_words(words: dict[str, str]) -> dict[str, dict[str, object]]:
    return {"progress": {"statuses": words}}


# --- case 2 ------------------------------------------------------------------------------


def test_case_2_unmapped_lms_words_give_unknown_lms_status_never_a_downgrade(reconcile_case):
    rows = [
        # the LMS has ann as completed in its own word: recon used to propose "started"
        ext(status="In Progress", activity="2026-03-01"),
        ext("bob@example.com", status="In Progress", activity="2026-03-01"),
        ext("cy@example.com", status="In Progress", activity="2026-03-01"),
    ]
    progress = [
        lms("u-ann", "lp-safe", "Complete", "2026-02-01"),
        lms("u-bob", "lp-safe", "In Progress"),
        # an API word in another case is the API word: no mapping needed
        lms("u-cy", "lp-safe", "Completed", "2026-02-01"),
    ]
    result = reconcile_case(rows, progress)
    assert outcomes_of(result) == [oc.UNKNOWN_LMS_STATUS, oc.UNKNOWN_LMS_STATUS, oc.LMS_AHEAD]
    assert result.proposals.empty
    assert "'Complete'" in detail(result, 1) and "[progress.statuses]" in detail(result, 1)
    assert "'In Progress'" in detail(result, 2)
    assert list(result.exceptions["outcome"]) == [oc.UNKNOWN_LMS_STATUS] * 2
    assert result.exit_code == 1
    assert result.lms_words_unknown == {"Complete": 1, "In Progress": 1}


def test_case_2_mapped_lms_words_give_the_right_outcomes(reconcile_case):
    rows = [
        ext(status="In Progress", activity="2026-03-01"),
        ext("bob@example.com", status="In Progress", activity="2026-03-01"),
        ext("cy@example.com", completed="2026-01-15"),
    ]
    progress = [
        lms("u-ann", "lp-safe", "Complete", "2026-02-01"),
        lms("u-bob", "lp-safe", " in progress "),
        lms("u-cy", "lp-safe", "Not Started"),
    ]
    words = {"Complete": "completed", "In Progress": "started", "NOT STARTED": "not-started"}
    result = reconcile_case(rows, progress, config=progress_words(words))
    assert outcomes_of(result) == [oc.LMS_AHEAD, oc.IN_SYNC, oc.MISSING_COMPLETION]
    assert bodies_of(result) == [
        {
            "userId": "u-cy",
            "learningPathId": "lp-safe",
            "status": "completed",
            "completionDate": "2026-01-15T00:00:00.000Z",
        }
    ]
    assert result.lms_words_unknown == {}


def test_case_2_lms_dates_without_offset_are_read_in_the_progress_timezone(reconcile_case):
    # 05:00 in UTC is 2026-01-15; read in Tokyo (the provider's zone) it would be the 14th
    rows = [ext(completed="2026-01-15T12:00:00Z")]
    progress = [lms("u-ann", "lp-safe", "completed", "2026-01-15 05:00")]
    tokyo = {"external": {"timezone": "Asia/Tokyo"}}
    assert outcomes_of(reconcile_case(rows, progress, config=tokyo)) == [oc.IN_SYNC]
    # in New York, 2026-01-14 23:30 is 04:30 UTC on the 15th
    late = [lms("u-ann", "lp-safe", "completed", "2026-01-14 23:30")]
    new_york = {"progress": {"timezone": "America/New_York"}}
    assert outcomes_of(reconcile_case(rows, late, config=new_york)) == [oc.IN_SYNC]
    differs = reconcile_case(rows, late)  # read in UTC: the 14th
    assert outcomes_of(differs) == [oc.COMPLETION_DATE_DIFFERS]
    assert "LMS 2026-01-14" in detail(differs, 1)


# --- bad-lms-date ------------------------------------------------------------------------


def test_an_unreadable_completion_date_on_a_completed_lms_row_is_bad_lms_date(reconcile_case):
    rows = [
        ext(status="In Progress", activity="2026-03-01"),
        ext("bob@example.com", completed="2026-01-15"),
        ext("cy@example.com", completed="2026-01-15"),
    ]
    progress = [
        lms("u-ann", "lp-safe", "completed", "31/31/2026"),
        lms("u-bob", "lp-safe", "completed", "15.01.2026"),
        # only a completion's date is read: another status's date does not matter
        lms("u-cy", "lp-safe", "started", "whenever"),
    ]
    result = reconcile_case(rows, progress)
    assert outcomes_of(result) == [oc.BAD_LMS_DATE, oc.BAD_LMS_DATE, oc.MISSING_COMPLETION]
    assert "'31/31/2026'" in detail(result, 1)
    assert [b["userId"] for b in bodies_of(result)] == ["u-cy"]
    assert list(result.exceptions["outcome"]) == [oc.BAD_LMS_DATE] * 2
    # with its format in [progress] date_formats the date reads
    fixed = reconcile_case(rows, progress, config={"progress": {"date_formats": ["%d.%m.%Y"]}})
    assert outcomes_of(fixed)[1] == oc.IN_SYNC


def test_progress_date_formats_are_the_lms_own_not_the_providers(reconcile_case):
    rows = [ext(completed="15.01.2026")]
    progress = [lms("u-ann", "lp-safe", "completed", "01/15/2026")]
    config = {"external": {"date_formats": ["%d.%m.%Y"]}}
    assert outcomes_of(reconcile_case(rows, progress, config=config)) == [oc.IN_SYNC]


# --- order, duplicates, blanks -----------------------------------------------------------


def test_order_row_problems_then_unknown_lms_status_then_bad_lms_date(reconcile_case):
    rows = [
        ext(completed="garbage"),  # a row problem: the pair's LMS rows do not matter
        ext("bob@example.com", completed="2026-01-15"),
        ext("bob@example.com", completed="2026-01-20"),  # a duplicate stays a duplicate
        ext("cy@example.com", completed="2026-01-15"),
    ]
    progress = [
        lms("u-ann", "lp-safe", "Archived"),
        lms("u-bob", "lp-safe", "completed", "not a date"),
        lms("u-bob", "lp-safe", "Archived"),
        lms("u-cy", "lp-safe", "completed", "not a date"),
    ]
    result = reconcile_case(rows, progress)
    assert outcomes_of(result) == [
        oc.BAD_DATE,
        oc.UNKNOWN_LMS_STATUS,
        oc.DUPLICATE,
        oc.BAD_LMS_DATE,
    ]
    assert detail(result, 3) == "duplicate of row 2"
    assert list(result.exceptions["row"]) == [1, 2, 4]
    # the provider's own columns travel with the exception
    assert list(result.exceptions["Email"]) == [
        "ann@example.com",
        "bob@example.com",
        "cy@example.com",
    ]


def test_an_unknown_word_beside_a_known_one_still_stops_the_pair(reconcile_case):
    progress = [lms("u-ann", "lp-safe", "started"), lms("u-ann", "lp-safe", "Passed")]
    result = reconcile_case([ext(completed="2026-01-15")], progress)
    assert outcomes_of(result) == [oc.UNKNOWN_LMS_STATUS]
    assert result.proposals.empty


def test_a_blank_lms_status_is_not_understood_and_can_be_mapped(reconcile_case):
    rows = [ext(status="In Progress", activity="2026-03-01")]
    progress = [lms("u-ann", "lp-safe", " ")]
    result = reconcile_case(rows, progress)
    assert outcomes_of(result) == [oc.UNKNOWN_LMS_STATUS]
    assert "blank status" in detail(result, 1)
    assert result.lms_words_unknown == {"": 1}
    assert "(blank)" in result.render()
    mapped = reconcile_case(rows, progress, config=progress_words({"": "not-started"}))
    assert outcomes_of(mapped) == [oc.MISSING_PROGRESS]


def test_rows_with_a_blank_id_are_ignored_and_counted(reconcile_case):
    progress = [
        lms("", "lp-safe", "completed", "2026-01-15"),
        lms("u-ann", " ", "Archived"),
        lms("u-ann", "lp-safe", "started"),
    ]
    result = reconcile_case([ext(completed="2026-01-15")], progress)
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]
    assert result.progress_ignored == 2
    assert result.lms_words_unknown == {}  # a row without ids is ignored, word and all
    assert (
        "LMS progress rows ignored (blank id, or fields not lining up with the header): 2"
        in result.render()
    )
    assert result.to_dict()["progress_rows_ignored"] == 2


def test_learners_the_directory_does_not_know_still_have_their_words_listed(reconcile_case):
    progress = [lms("u-zed", "lp-safe", "Archived"), lms("u-ann", "lp-nope", "archived ")]
    result = reconcile_case([ext(completed="2026-01-15")], progress)
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]
    assert list(result.lms_words_unknown.values()) == [2]


# --- the words list and the line that maps each ------------------------------------------


@pytest.mark.parametrize(
    ("word", "line"),
    [
        ("In Progress", '"In Progress" = "started"'),
        ("in-progress", '"in-progress" = "started"'),
        ("Not Started", '"Not Started" = "not-started"'),
        ("not_completed", '"not_completed" = "not-completed"'),
        ("Complete", '"Complete" = "completed"'),
        ("Incomplete", '"Incomplete" = "not-completed"'),
    ],
)
def test_an_obvious_word_gets_its_status(word, line):
    assert status_line(word) == line


@pytest.mark.parametrize("word", ["Archived", "Passed", "", 'Say "hi"', "Enrolled\\"])
def test_any_other_word_gets_a_marked_placeholder(tmp_path, word):
    line = status_line(word)
    assert f'= "{PLACEHOLDER}"' in line and "# fill in:" in line
    # the line is valid TOML naming the word exactly, and the config refuses it as it is
    write_case_in(tmp_path, [ext(completed="2026-01-15")])
    config = tmp_path / "recon.toml"
    config.write_text(config.read_text() + "\n[progress.statuses]\n" + line + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert "must mean one of" in str(err.value)


def test_the_summary_lists_each_word_and_its_line_and_pasting_the_lines_works(write_case, tmp_path):
    rows = [
        ext(status="In Progress", activity="2026-03-01"),
        ext("bob@example.com", completed="2026-01-15"),
        ext("cy@example.com", status="Registered"),
    ]
    progress = [
        lms("u-ann", "lp-safe", "In Progress"),
        lms("u-ann", "lp-data", "in progress"),
        lms("u-bob", "lp-safe", "Complete", "2026-01-15"),
        lms("u-cy", "lp-safe", "Not Started"),
    ]
    config = write_case(rows, progress)
    out = tmp_path / "out"
    code = main(["reconcile", "--config", str(config), "--out", str(out), "--as-of", AS_OF])
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lms_words_not_understood"] == [
        {"word": "In Progress", "rows": 2, "config_line": '"In Progress" = "started"'},
        {"word": "Complete", "rows": 1, "config_line": '"Complete" = "completed"'},
        {"word": "Not Started", "rows": 1, "config_line": '"Not Started" = "not-started"'},
    ]
    assert summary["counts"][oc.UNKNOWN_LMS_STATUS] == 3
    result = reconcile(config, as_of=AS_OF)
    printed = result.render()
    for entry in summary["lms_words_not_understood"]:
        assert entry["config_line"] in printed

    # the analyst pastes the suggested lines: every word is understood, nothing unknown
    lines = [e["config_line"] for e in summary["lms_words_not_understood"]]
    config.write_text(config.read_text() + "\n[progress.statuses]\n" + "\n".join(lines) + "\n")
    again = reconcile(config, as_of=AS_OF)
    assert outcomes_of(again) == [oc.IN_SYNC, oc.IN_SYNC, oc.IN_SYNC]
    assert again.lms_words_unknown == {} and "not understood" not in again.render()


# --- every place outcomes are listed -----------------------------------------------------


def _both_outcomes(write_case):
    rows = [ext(completed="2026-01-15"), ext("bob@example.com", completed="2026-01-15")]
    progress = [lms("u-ann", "lp-safe", "Archived"), lms("u-bob", "lp-safe", "completed", "?")]
    return write_case(rows, progress)


def test_the_new_outcomes_in_the_csv_outputs_and_summary(write_case, tmp_path, capsys):
    config = _both_outcomes(write_case)
    out = tmp_path / "out"
    assert main(["reconcile", "--config", str(config), "--out", str(out), "--as-of", AS_OF]) == 1
    printed = capsys.readouterr().out
    with (out / "outcomes.csv").open(newline="") as fh:
        outcomes = [r[:2] for r in csv.reader(fh)][1:]
    assert outcomes == [["1", oc.UNKNOWN_LMS_STATUS], ["2", oc.BAD_LMS_DATE]]
    with (out / "exceptions.csv").open(newline="") as fh:
        exceptions = list(csv.DictReader(fh))
    assert [(e["row"], e["outcome"], e["Email"]) for e in exceptions] == [
        ("1", oc.UNKNOWN_LMS_STATUS, "ann@example.com"),
        ("2", oc.BAD_LMS_DATE, "bob@example.com"),
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"][oc.UNKNOWN_LMS_STATUS] == 1
    assert summary["counts"][oc.BAD_LMS_DATE] == 1
    assert summary["problems"] == 2 and summary["exit_code"] == 1
    # printed under "to fix at the source", after the row problems
    fix = printed.split("to fix at the source:")[1].split("settled:")[0]
    assert oc.UNKNOWN_LMS_STATUS in fix and oc.BAD_LMS_DATE in fix
    assert list(oc.PROBLEMS).index(oc.UNKNOWN_LMS_STATUS) > list(oc.PROBLEMS).index(oc.FUTURE_DATE)
    assert fix.index(oc.UNKNOWN_LMS_STATUS) < fix.index(oc.BAD_LMS_DATE)


def test_the_new_outcomes_in_the_report_charts_and_notebook(write_case, tmp_path):
    from recon import charts
    from recon import notebook as rn
    from recon.ledger import Ledger
    from recon.report import write_report

    config = _both_outcomes(write_case)
    with Ledger(tmp_path / "l.db") as ledger:
        result = reconcile_run(config, as_of=AS_OF, ledger=ledger)
        page = write_report(ledger, tmp_path / "r.html").read_text()
    for name in oc.LMS_PROBLEMS:
        assert name in page and oc.ADVICE[name].split(":")[0] in page
    ax = charts.outcomes_by_kind(result)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert oc.UNKNOWN_LMS_STATUS in labels and oc.BAD_LMS_DATE in labels
    table = rn.problems(result)
    assert table.loc[oc.UNKNOWN_LMS_STATUS, "rows"] == 1
    assert "'Archived'" in table.loc[oc.UNKNOWN_LMS_STATUS, "examples"]
    assert table.loc[oc.BAD_LMS_DATE, "rows"] == 1
    assert set(rn.exceptions_by_kind(result)) == {oc.UNKNOWN_LMS_STATUS, oc.BAD_LMS_DATE}
    words = rn.lms_words(result)
    assert list(words["word"]) == ["Archived"]
    assert list(words["rows"]) == [1]
    assert list(words["line for [progress.statuses]"]) == [status_line("Archived")]
    assert rn.input_quality(result).loc["progress", "rows unusable"] == 2


def test_every_outcome_has_advice_and_a_group():
    assert set(oc.ADVICE) == set(oc.ALL)
    assert len(oc.ALL) == len(set(oc.ALL))
    assert set(oc.LMS_PROBLEMS) <= set(oc.PROBLEMS)


# --- the class: whatever the LMS says, nothing is proposed against an unread state --------

WORDS = ["completed", " Started ", "In Progress", "Complete", "Archived", "", "not-started"]
MAPPED = {"In Progress": "started"}


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    progress=st.lists(
        st.fixed_dictionaries(
            {
                "userId": st.sampled_from(["u-ann", "u-bob", ""]),
                "learningPathId": st.just("lp-safe"),
                "status": st.sampled_from(WORDS),
                "completionDate": st.sampled_from(["", "2026-01-15", "bad", "2026-01-20Z"]),
            }
        ),
        max_size=6,
    ),
    statuses=st.lists(st.sampled_from(["Completed", "In Progress", "Registered"]), min_size=2),
)
def test_no_proposal_against_an_lms_state_recon_could_not_read(progress, statuses):
    rows = [ext(status=statuses[0], completed="2026-01-15", activity="2026-03-01")]
    rows.append(ext("bob@example.com", status=statuses[1], completed="2026-01-15"))
    with tempfile.TemporaryDirectory() as folder:
        config = write_case_in(Path(folder), rows, progress, USERS, config=progress_words(MAPPED))
        result = reconcile(config, as_of=AS_OF)
    known = {"completed", "started", "in progress", "not-started"}
    for user, row in (("u-ann", 1), ("u-bob", 2)):
        mine = [p for p in progress if p["userId"] == user]
        words_ok = all(p["status"].strip().lower() in known for p in mine)
        dates_ok = all(
            p["completionDate"] in ("", "2026-01-15")
            for p in mine
            if p["status"].strip().lower() == "completed"
        )
        outcome = outcomes_of(result)[row - 1]
        proposed = user in set(result.proposals["userId"])
        if not words_ok:
            assert outcome == oc.UNKNOWN_LMS_STATUS and not proposed
        elif not dates_ok:
            assert outcome == oc.BAD_LMS_DATE and not proposed
        else:
            assert outcome not in oc.LMS_PROBLEMS
    unknown = [
        p["status"].strip()
        for p in progress
        if p["userId"] and p["status"].strip().lower() not in known
    ]
    assert sum(result.lms_words_unknown.values()) == len(unknown)


@settings(max_examples=300, deadline=None)
@given(word=st.text(min_size=1, max_size=12))
def test_the_suggested_line_is_toml_that_maps_exactly_that_word(word: str) -> None:
    # The line is pasted into recon.toml: it must parse back to the very word, and show
    # nothing that acts on a terminal or reorders the text (bidi controls, separators).
    import tomllib
    import unicodedata

    line = status_line(word)
    key = line.split("  #", 1)[0].rsplit(" = ", 1)[0]
    assert list(tomllib.loads(f'{key} = "started"')) == [word]
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in line)
