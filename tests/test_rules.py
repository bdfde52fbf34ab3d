"""The reconciliation rules of issue 2, one small explicit case at a time."""

from __future__ import annotations

import pytest
from conftest import bodies_of, ext, lms, outcomes_of

from recon import outcomes as oc
from recon.engine import proposal_key
from recon.validation import MSG_INVALID_STATUS, WIRE_DATE

LATER = "2030-01-01T00:00:00Z"  # an as-of after every date used below


def detail(result, row: int) -> str:
    return str(result.outcomes.set_index("row").loc[row, "detail"])


# --- normalisation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    ["ann@example.com", "ANN@EXAMPLE.COM", "  Ann@Example.com\t", " ann@example.com\u00a0"],
)
def test_learner_emails_are_trimmed_and_case_insensitive(reconcile_case, email):
    result = reconcile_case([ext(email, completed="2026-01-15")])
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]
    assert bodies_of(result)[0]["userId"] == "u-ann"


def test_directory_emails_are_normalised_too(reconcile_case):
    users = [{"email": "  ANN@Example.COM ", "userId": " u-ann "}]
    result = reconcile_case([ext("ann@example.com", completed="2026-01-15")], users=users)
    assert bodies_of(result)[0]["userId"] == "u-ann"


@pytest.mark.parametrize("code", ["SAFE-101", "safe-101", "  Safe-101  "])
def test_path_codes_are_trimmed_and_case_insensitive(reconcile_case, code):
    result = reconcile_case([ext(code=code, completed="2026-01-15")])
    assert bodies_of(result)[0]["learningPathId"] == "lp-safe"


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("Completed", "completed"),
        ("  completed  ", "completed"),
        ("IN PROGRESS", "started"),
        (" in progress", "started"),
        ("failed", "not-completed"),
        ("Registered ", "not-started"),
        # the four LMS names are always accepted as themselves
        ("not-started", "not-started"),
        ("started", "started"),
        ("Not-Completed", "not-completed"),
        ("COMPLETED", "completed"),
    ],
)
def test_status_words(reconcile_case, word, status):
    result = reconcile_case([ext(status=word, completed="2026-01-15")])
    assert list(result.outcomes["status"]) == [status]


def test_lms_names_accepted_without_any_mapping(reconcile_case):
    rows = [ext(status=s, completed="2026-01-15") for s in ("started", "completed")]
    rows[1]["Email"] = "bob@example.com"
    result = reconcile_case(rows, statuses={})
    assert list(result.outcomes["status"]) == ["started", "completed"]


def test_status_mapping_keys_are_matched_trimmed_and_case_insensitive(reconcile_case):
    result = reconcile_case(
        [ext(status="done ok", completed="2026-01-15")], statuses={"  Done OK ": "completed"}
    )
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]


# --- row problems, in the documented order -------------------------------------------

ROW_PROBLEM_CASES = {
    # outcome: (row, what the detail mentions)
    "blank status": (oc.UNKNOWN_STATUS, ext(status="  "), "blank"),
    "unmapped status": (oc.UNKNOWN_STATUS, ext(status="Passed"), "'Passed'"),
    "blank learner": (oc.UNKNOWN_LEARNER, ext(email=" ", completed="2026-01-15"), "blank"),
    "unknown learner": (
        oc.UNKNOWN_LEARNER,
        ext(email="zed@example.com", completed="2026-01-15"),
        "zed@example.com",
    ),
    "blank path": (oc.UNKNOWN_PATH, ext(code="", completed="2026-01-15"), "blank"),
    "unknown path": (oc.UNKNOWN_PATH, ext(code="NOPE-1", completed="2026-01-15"), "NOPE-1"),
    "bad completion date": (oc.BAD_DATE, ext(completed="2026-02-30"), "2026-02-30"),
    "bad activity date": (
        oc.BAD_DATE,
        ext(completed="2026-01-15", activity="last week"),
        "last week",
    ),
    # a date cell present but unreadable is bad even where the status does not need it
    "bad completion date on a started row": (
        oc.BAD_DATE,
        ext(status="In Progress", completed="soon"),
        "soon",
    ),
    "completed without a date": (oc.MISSING_COMPLETION_DATE, ext(completed=""), "completed"),
    "completed, date blank but spaces": (oc.MISSING_COMPLETION_DATE, ext(completed="   "), ""),
    "future completion": (oc.FUTURE_DATE, ext(completed="2026-06-02"), "2026-06-02"),
    "future activity": (
        oc.FUTURE_DATE,
        ext(status="In Progress", activity="2026-06-01T00:00:01Z"),
        "2026-06-01T00:00:01.000Z",
    ),
}


@pytest.mark.parametrize(
    ("outcome", "row", "mention"),
    list(ROW_PROBLEM_CASES.values()),
    ids=list(ROW_PROBLEM_CASES),
)
def test_each_row_problem(reconcile_case, outcome, row, mention):
    result = reconcile_case([row])
    assert outcomes_of(result) == [outcome]
    assert mention in detail(result, 1)
    assert result.proposals.empty
    assert list(result.exceptions["row"]) == [1]
    assert result.exit_code == 1


def test_a_date_exactly_at_as_of_is_not_future(reconcile_case):
    result = reconcile_case([ext(completed="2026-06-01T00:00:00Z")])
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]


TWO_PROBLEMS = {
    "status before learner": (ext(email="zed@example.com", status="Passed"), oc.UNKNOWN_STATUS),
    "learner before path": (
        ext(email="zed@example.com", code="NOPE", completed="2026-01-15"),
        oc.UNKNOWN_LEARNER,
    ),
    "path before date": (ext(code="NOPE", completed="garbage"), oc.UNKNOWN_PATH),
    "bad date before missing completion date": (
        ext(completed="", activity="garbage"),
        oc.BAD_DATE,
    ),
    "bad date before future date": (
        ext(completed="2099-01-01", activity="garbage"),
        oc.BAD_DATE,
    ),
    "missing completion date before future date": (
        ext(completed="", activity="2099-01-01"),
        oc.MISSING_COMPLETION_DATE,
    ),
    "blank status before everything": (
        ext(email="", code="", status="", completed="x", activity="2099-01-01"),
        oc.UNKNOWN_STATUS,
    ),
}


@pytest.mark.parametrize(("row", "outcome"), list(TWO_PROBLEMS.values()), ids=list(TWO_PROBLEMS))
def test_a_row_with_two_problems_gets_the_first(reconcile_case, row, outcome):
    assert outcomes_of(reconcile_case([row])) == [outcome]


# --- dates ----------------------------------------------------------------------------

DATE_CASES = [
    # (value, [external] extras, completionDate sent)
    ("2026-01-15", {}, "2026-01-15T00:00:00.000Z"),
    ("2026-01-15T10:20:30", {}, "2026-01-15T10:20:30.000Z"),
    ("2026-01-15 10:20", {}, "2026-01-15T10:20:00.000Z"),
    ("2026-01-15T10:20:30Z", {}, "2026-01-15T10:20:30.000Z"),
    ("2026-01-15T10:20:30.5+02:00", {}, "2026-01-15T08:20:30.500Z"),
    ("2026-01-15T10:20:30.123456Z", {}, "2026-01-15T10:20:30.123Z"),
    ("2026-01-15T10:20:30-0530", {}, "2026-01-15T15:50:30.000Z"),
    ("2026-01-15T10:20+02", {}, "2026-01-15T08:20:00.000Z"),
    ("2026-01-15T01:00:00+02:00", {}, "2026-01-14T23:00:00.000Z"),
    # the default date_formats, after ISO 8601
    ("01/15/2026", {}, "2026-01-15T00:00:00.000Z"),
    ("15 Jan 2026", {}, "2026-01-15T00:00:00.000Z"),
    # each date_formats entry, in order
    ("01/02/2026", {"date_formats": ["%d/%m/%Y", "%m/%d/%Y"]}, "2026-02-01T00:00:00.000Z"),
    ("01/02/2026", {"date_formats": ["%m/%d/%Y", "%d/%m/%Y"]}, "2026-01-02T00:00:00.000Z"),
    ("31/01/2026", {"date_formats": ["%m/%d/%Y", "%d/%m/%Y"]}, "2026-01-31T00:00:00.000Z"),
    ("2026.01.15 14:30", {"date_formats": ["%Y.%m.%d %H:%M"]}, "2026-01-15T14:30:00.000Z"),
    # ISO 8601 is tried first, whatever the formats say
    ("2026-01-02", {"date_formats": ["%Y-%d-%m"]}, "2026-01-02T00:00:00.000Z"),
    # values without an offset are in `timezone`, DST included
    ("2026-01-15", {"timezone": "Europe/Berlin"}, "2026-01-14T23:00:00.000Z"),
    ("2026-07-15T12:00:00", {"timezone": "Europe/Berlin"}, "2026-07-15T10:00:00.000Z"),
    ("07/15/2026", {"timezone": "Europe/Berlin"}, "2026-07-14T22:00:00.000Z"),
    ("2026-03-29T12:00", {"timezone": "Europe/Berlin"}, "2026-03-29T10:00:00.000Z"),
    ("2026-10-25T12:00", {"timezone": "Europe/Berlin"}, "2026-10-25T11:00:00.000Z"),
    ("2026-03-07T12:00", {"timezone": "America/New_York"}, "2026-03-07T17:00:00.000Z"),
    ("2026-03-09T12:00", {"timezone": "America/New_York"}, "2026-03-09T16:00:00.000Z"),
    # ... but a value with an offset or Z keeps it
    ("2026-07-15T12:00:00Z", {"timezone": "Europe/Berlin"}, "2026-07-15T12:00:00.000Z"),
    ("2026-07-15T12:00:00+05:00", {"timezone": "Europe/Berlin"}, "2026-07-15T07:00:00.000Z"),
]


@pytest.mark.parametrize(("value", "extra", "sent"), DATE_CASES)
def test_completion_dates(reconcile_case, value, extra, sent):
    result = reconcile_case([ext(completed=value)], config={"external": extra}, as_of=LATER)
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]
    [body] = bodies_of(result)
    assert body["completionDate"] == sent
    assert WIRE_DATE.match(body["completionDate"])


@pytest.mark.parametrize(("value", "extra", "sent"), DATE_CASES[:12])
def test_activity_dates_follow_the_same_rules(reconcile_case, value, extra, sent):
    row = ext(status="In Progress", activity=value)
    result = reconcile_case([row], config={"external": extra}, as_of=LATER)
    assert bodies_of(result)[0]["timeStampDate"] == sent


@pytest.mark.parametrize(
    ("value", "extra"),
    [
        ("2026-02-30", {}),
        ("2026-13-01", {}),
        ("2026-01-15T25:00", {}),
        ("15/01/2026", {}),  # not %m/%d/%Y
        ("tomorrow", {}),
        ("15 Jan 2026", {"date_formats": ["%m/%d/%Y"]}),
        ("01/15/2026", {"date_formats": []}),
        ("2026-1-5", {"date_formats": []}),
    ],
)
def test_unreadable_dates(reconcile_case, value, extra):
    result = reconcile_case([ext(completed=value)], config={"external": extra}, as_of=LATER)
    assert outcomes_of(result) == [oc.BAD_DATE]


def test_future_is_judged_in_utc(reconcile_case):
    # 2026-06-01T01:30 in Berlin is 2026-05-31T23:30Z: before the as-of time
    result = reconcile_case(
        [ext(completed="2026-06-01T01:30")], config={"external": {"timezone": "Europe/Berlin"}}
    )
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]


# --- collapse per (userId, learningPathId) -------------------------------------------

COLLAPSE_CASES = {
    "completed beats any other status": (
        [
            ext(status="In Progress", activity="2026-05-01"),
            ext(completed="2026-01-15", activity="2026-01-15"),
            ext(status="Failed", activity="2026-05-20"),
        ],
        2,
    ),
    "earliest completion date wins": (
        [
            ext(completed="2026-02-01"),
            ext(completed="2026-01-15T12:00:00Z"),
            ext(completed="2026-01-15T13:00:00Z"),
        ],
        2,
    ),
    "earliest completion by instant, not by text": (
        [ext(completed="2026-01-15T10:00:00+05:00"), ext(completed="2026-01-15T08:00:00Z")],
        1,
    ),
    "latest activity date wins": (
        [
            ext(status="In Progress", activity="2026-03-01"),
            ext(status="In Progress", activity="03/05/2026"),
            ext(status="In Progress", activity="2026-03-02"),
        ],
        2,
    ),
    "activity date before status": (
        [
            ext(status="Failed", activity="2026-03-01"),
            ext(status="In Progress", activity="2026-03-05"),
        ],
        2,
    ),
    "a dated row beats an undated one": (
        [ext(status="Failed"), ext(status="In Progress", activity="2026-03-05")],
        2,
    ),
    "then the higher status": (
        [ext(status="Registered"), ext(status="Failed"), ext(status="In Progress")],
        2,
    ),
    "then the higher status, same activity date": (
        [
            ext(status="In Progress", activity="2026-03-05"),
            ext(status="Failed", activity="2026-03-05"),
        ],
        2,
    ),
    "then the first row": (
        [
            ext(status="In Progress", activity="2026-03-05"),
            ext(status=" in progress ", activity="2026-03-05T00:00:00Z"),
        ],
        1,
    ),
    "same completion date: the first row": (
        [ext(completed="2026-01-15"), ext(completed="01/15/2026")],
        1,
    ),
    "learners and codes are grouped normalised": (
        [
            ext("ann@example.com", "SAFE-101", "In Progress", activity="2026-03-01"),
            ext(" ANN@example.com", "safe-101 ", "In Progress", activity="2026-03-09"),
        ],
        2,
    ),
}


@pytest.mark.parametrize(
    ("rows", "survivor"), list(COLLAPSE_CASES.values()), ids=list(COLLAPSE_CASES)
)
def test_collapse(reconcile_case, rows, survivor):
    result = reconcile_case(rows)
    got = outcomes_of(result)
    assert got[survivor - 1] in oc.PROPOSED
    others = [o for i, o in enumerate(got, 1) if i != survivor]
    assert others == [oc.DUPLICATE] * len(others)
    for row in range(1, len(rows) + 1):
        if row != survivor:
            assert str(survivor) in detail(result, row)
    [proposal] = result.proposals.to_dict("records")
    assert sorted(int(r) for r in str(proposal["rows"]).split(";")) == list(range(1, len(rows) + 1))


def test_collapse_picks_the_earliest_completion_date_for_the_proposal(reconcile_case):
    result = reconcile_case([ext(completed="2026-02-01"), ext(completed="2026-01-15")])
    assert bodies_of(result)[0]["completionDate"] == "2026-01-15T00:00:00.000Z"


def test_rows_with_a_problem_take_no_part_in_the_collapse(reconcile_case):
    rows = [ext(completed="2099-01-01"), ext(status="In Progress", activity="2026-03-01")]
    result = reconcile_case(rows)
    assert outcomes_of(result) == [oc.FUTURE_DATE, oc.MISSING_PROGRESS]


def test_different_pairs_do_not_collapse(reconcile_case):
    rows = [
        ext("ann@example.com", "SAFE-101", completed="2026-01-15"),
        ext("ann@example.com", "DATA-200", completed="2026-01-15"),
        ext("bob@example.com", "SAFE-101", completed="2026-01-15"),
    ]
    result = reconcile_case(rows)
    assert outcomes_of(result) == [oc.MISSING_COMPLETION] * 3


# --- comparison with the LMS ----------------------------------------------------------

C = "2026-01-15T09:00:00Z"
COMPARE_CASES = {
    # (external row, LMS rows, outcome, body sent or None)
    "completed, LMS absent": (
        ext(completed=C),
        [],
        oc.MISSING_COMPLETION,
        {"status": "completed", "completionDate": "2026-01-15T09:00:00.000Z"},
    ),
    "completed, LMS not-started": (
        ext(completed=C),
        [lms("u-ann", "lp-safe", "not-started")],
        oc.MISSING_COMPLETION,
        {"status": "completed", "completionDate": "2026-01-15T09:00:00.000Z"},
    ),
    "completed, LMS started": (
        ext(completed=C, activity="2026-01-10"),
        [lms("u-ann", "lp-safe", "started")],
        oc.MISSING_COMPLETION,
        {"status": "completed", "completionDate": "2026-01-15T09:00:00.000Z"},
    ),
    "completed, LMS not-completed": (
        ext(completed=C),
        [lms("u-ann", "lp-safe", "not-completed")],
        oc.MISSING_COMPLETION,
        {"status": "completed", "completionDate": "2026-01-15T09:00:00.000Z"},
    ),
    "completed, LMS completed same day": (
        ext(completed="2026-01-15T23:59:00Z"),
        [lms("u-ann", "lp-safe", "completed", "2026-01-15T00:00:00.000Z")],
        oc.IN_SYNC,
        None,
    ),
    "completed, LMS completed same UTC day across offsets": (
        ext(completed="2026-01-15T21:00:00-05:00"),  # 2026-01-16T02:00Z
        [lms("u-ann", "lp-safe", "completed", "2026-01-16T00:00:00.000Z")],
        oc.IN_SYNC,
        None,
    ),
    "completed, LMS completed without a date": (
        ext(completed=C),
        [lms("u-ann", "lp-safe", "completed", "")],
        oc.IN_SYNC,
        None,
    ),
    "completed, LMS completed another day": (
        ext(completed=C),
        [lms("u-ann", "lp-safe", "completed", "2026-01-16T00:00:00.000Z")],
        oc.COMPLETION_DATE_DIFFERS,
        None,
    ),
    "completed, LMS completed another UTC day across offsets": (
        ext(completed="2026-01-15T21:00:00-05:00"),  # 2026-01-16T02:00Z
        [lms("u-ann", "lp-safe", "completed", "2026-01-15T12:00:00.000Z")],
        oc.COMPLETION_DATE_DIFFERS,
        None,
    ),
    "started, LMS absent, with activity date": (
        ext(status="In Progress", activity="2026-03-04T10:00:00Z"),
        [],
        oc.MISSING_PROGRESS,
        {"status": "started", "timeStampDate": "2026-03-04T10:00:00.000Z"},
    ),
    "started, LMS absent, no activity date": (
        ext(status="In Progress"),
        [],
        oc.MISSING_PROGRESS,
        {"status": "started"},
    ),
    "started, LMS not-started": (
        ext(status="In Progress", activity="2026-03-04"),
        [lms("u-ann", "lp-safe", "not-started")],
        oc.MISSING_PROGRESS,
        {"status": "started", "timeStampDate": "2026-03-04T00:00:00.000Z"},
    ),
    "not-completed, LMS started": (
        ext(status="Failed", activity="2026-03-04"),
        [lms("u-ann", "lp-safe", "started")],
        oc.MISSING_PROGRESS,
        {"status": "not-completed", "timeStampDate": "2026-03-04T00:00:00.000Z"},
    ),
    "not-completed with a completion date sends no completionDate": (
        ext(status="Failed", completed="2026-03-01"),
        [],
        oc.MISSING_PROGRESS,
        {"status": "not-completed"},
    ),
    "not-started, LMS absent": (ext(status="Registered"), [], oc.IN_SYNC, None),
    "not-started with activity, LMS absent": (
        ext(status="Registered", activity="2026-03-04"),
        [],
        oc.IN_SYNC,
        None,
    ),
    "not-started, LMS not-started": (
        ext(status="Registered"),
        [lms("u-ann", "lp-safe", "not-started")],
        oc.IN_SYNC,
        None,
    ),
    "not-started, LMS started": (
        ext(status="Registered"),
        [lms("u-ann", "lp-safe", "started")],
        oc.LMS_AHEAD,
        None,
    ),
    "started, LMS started": (
        ext(status="In Progress", activity="2026-03-04"),
        [lms("u-ann", "lp-safe", "started")],
        oc.IN_SYNC,
        None,
    ),
    "not-completed, LMS not-completed": (
        ext(status="Failed"),
        [lms("u-ann", "lp-safe", "not-completed")],
        oc.IN_SYNC,
        None,
    ),
    "started, LMS not-completed": (
        ext(status="In Progress"),
        [lms("u-ann", "lp-safe", "not-completed")],
        oc.LMS_AHEAD,
        None,
    ),
    "started, LMS completed": (
        ext(status="In Progress"),
        [lms("u-ann", "lp-safe", "completed", "2026-01-01")],
        oc.LMS_AHEAD,
        None,
    ),
    "not-completed, LMS completed": (
        ext(status="Failed"),
        [lms("u-ann", "lp-safe", "completed")],
        oc.LMS_AHEAD,
        None,
    ),
    "LMS status words are trimmed and case-insensitive": (
        ext(status="In Progress"),
        [lms(" u-ann ", " lp-safe ", " Started ")],
        oc.IN_SYNC,
        None,
    ),
    "the LMS's furthest status counts": (
        ext(status="Failed"),
        [lms("u-ann", "lp-safe", "started"), lms("u-ann", "lp-safe", "completed")],
        oc.LMS_AHEAD,
        None,
    ),
    "another learner's LMS record does not count": (
        ext(completed=C),
        [lms("u-bob", "lp-safe", "completed", C), lms("u-ann", "lp-data", "completed", C)],
        oc.MISSING_COMPLETION,
        {"status": "completed", "completionDate": "2026-01-15T09:00:00.000Z"},
    ),
}


@pytest.mark.parametrize(
    ("row", "progress", "outcome", "sent"),
    list(COMPARE_CASES.values()),
    ids=list(COMPARE_CASES),
)
def test_comparison(reconcile_case, row, progress, outcome, sent):
    result = reconcile_case([row], progress)
    assert outcomes_of(result) == [outcome]
    if sent is None:
        assert result.proposals.empty
    else:
        assert bodies_of(result) == [{"userId": "u-ann", "learningPathId": "lp-safe", **sent}]
        assert list(result.proposals["category"]) == [outcome]
        assert list(result.proposals["rows"].astype(str)) == ["1"]


def test_exit_code_is_0_when_everything_is_settled(reconcile_case):
    rows = [ext(status="Registered"), ext(completed="2026-01-15"), ext(completed="2026-01-15")]
    progress = [lms("u-ann", "lp-safe", "completed", "2026-01-15")]
    result = reconcile_case(rows[1:] + [ext("bob@example.com", status="Registered")], progress)
    assert outcomes_of(result) == [oc.IN_SYNC, oc.DUPLICATE, oc.IN_SYNC]
    assert result.exit_code == 0


def test_completion_date_differs_asks_for_review_but_proposes_nothing(reconcile_case):
    progress = [lms("u-ann", "lp-safe", "completed", "2026-02-01")]
    result = reconcile_case([ext(completed="2026-01-15")], progress)
    assert outcomes_of(result) == [oc.COMPLETION_DATE_DIFFERS]
    assert "2026-01-15" in detail(result, 1) and "2026-02-01" in detail(result, 1)
    assert result.proposals.empty


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
@pytest.mark.parametrize(
    ("provider", "outcome"),
    [
        ("2026-01-10", oc.IN_SYNC),  # the LMS's earliest completion is the 10th
        ("2026-02-20", oc.COMPLETION_DATE_DIFFERS),  # the latest LMS date is no match
        ("2026-03-01", oc.COMPLETION_DATE_DIFFERS),
    ],
)
def test_the_lms_earliest_of_repeated_completions_wins(reconcile_case, order, provider, outcome):
    """README: the LMS "may list a pair more than once: its furthest status counts, and
    the earliest completion wins", in whatever order its rows come."""
    listed = [
        lms("u-ann", "lp-safe", "completed", "2026-02-20"),
        lms("u-ann", "lp-safe", "completed", "2026-01-10"),
        lms("u-ann", "lp-safe", "completed", "2026-03-01"),
    ]
    result = reconcile_case([ext(completed=provider)], [listed[i] for i in order])
    assert outcomes_of(result) == [outcome]
    if outcome == oc.COMPLETION_DATE_DIFFERS:
        assert detail(result, 1) == f"provider {provider}, LMS 2026-01-10"
    assert result.proposals.empty


def test_the_lms_earliest_completion_counts_beside_other_statuses(reconcile_case):
    """A started row between two completions changes neither the furthest status nor the
    earliest completion date (README: both hold together)."""
    listed = [
        lms("u-ann", "lp-safe", "completed", "2026-04-02"),
        lms("u-ann", "lp-safe", "started"),
        lms("u-ann", "lp-safe", "completed", "2026-04-01T23:30:00+00:00"),
    ]
    result = reconcile_case([ext(completed="2026-04-02")], listed)
    assert outcomes_of(result) == [oc.COMPLETION_DATE_DIFFERS]
    assert detail(result, 1) == "provider 2026-04-02, LMS 2026-04-01"


# --- invalid-payload -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapped", "row"),
    [
        ("finished", ext(status="Done", completed="2026-01-15")),
        ("passed", ext(status="Done", activity="2026-03-01")),
        ("in-progress", ext(status="Done")),
    ],
)
def test_a_status_the_endpoint_refuses_is_invalid_payload(reconcile_case, mapped, row):
    statuses = {"Done": mapped, "Completed": "completed"}
    result = reconcile_case(
        [row, ext("bob@example.com", completed="2026-01-15")], statuses=statuses
    )
    assert outcomes_of(result) == [oc.INVALID_PAYLOAD, oc.MISSING_COMPLETION]
    # the endpoint's own message, exactly (docs/api/learningPathExternalActivity.seed.txt)
    assert detail(result, 1) == "invalid status" == MSG_INVALID_STATUS
    assert [b["userId"] for b in bodies_of(result)] == ["u-bob"]
    assert list(result.exceptions["row"]) == [1]
    assert list(result.exceptions["outcome"]) == [oc.INVALID_PAYLOAD]


# --- already-submitted ---------------------------------------------------------------


def test_accepted_keys_become_already_submitted(reconcile_case, write_case):
    from recon.engine import reconcile

    rows = [
        ext(completed="2026-01-15"),
        ext("bob@example.com", status="In Progress", activity="2026-03-01"),
        ext(completed="2026-02-15"),
    ]
    config = write_case(rows)
    first = reconcile(config, as_of="2026-06-01T00:00:00Z")
    assert outcomes_of(first) == [oc.MISSING_COMPLETION, oc.MISSING_PROGRESS, oc.DUPLICATE]
    ann_key = first.proposals["key"].iloc[0]

    again = reconcile(config, as_of="2026-06-01T00:00:00Z", accepted_keys={ann_key, "other"})
    assert outcomes_of(again) == [oc.ALREADY_SUBMITTED, oc.MISSING_PROGRESS, oc.DUPLICATE]
    assert ann_key in detail(again, 1)
    assert list(again.proposals["userId"]) == ["u-bob"]
    assert again.exit_code == 1

    settled = reconcile(config, as_of="2026-06-01", accepted_keys=list(first.proposals["key"]))
    assert outcomes_of(settled)[:2] == [oc.ALREADY_SUBMITTED] * 2
    assert settled.proposals.empty
    assert settled.exit_code == 0


def test_an_accepted_key_for_another_correction_does_not_count(write_case):
    from recon.engine import reconcile

    old = reconcile(write_case([ext(completed="2026-01-15")]), as_of="2026-06-01")
    # the provider now says another date: another correction, another key
    new_config = write_case([ext(completed="2026-01-20")])
    new = reconcile(new_config, as_of="2026-06-01", accepted_keys=set(old.proposals["key"]))
    assert outcomes_of(new) == [oc.MISSING_COMPLETION]


# --- proposal keys -------------------------------------------------------------------

KEY_ROWS = [
    ext(completed="2026-01-15"),
    ext("bob@example.com", "DATA-200", "In Progress", activity="2026-03-01T10:00:00Z"),
    ext("cy@example.com", "LEAD-300", "Failed"),
    ext("bob@example.com", "DATA-200", "Registered"),
]


def _keys(result) -> dict[tuple[str, str], str]:
    return {
        (p["userId"], p["learningPathId"]): p["key"] for p in result.proposals.to_dict("records")
    }


def test_keys_are_stable_across_runs_row_orders_and_as_of(reconcile_case):
    first = _keys(reconcile_case(KEY_ROWS))
    assert len(first) == 3 and len(set(first.values())) == 3
    assert _keys(reconcile_case(KEY_ROWS)) == first
    assert _keys(reconcile_case(list(reversed(KEY_ROWS)))) == first
    assert _keys(reconcile_case(KEY_ROWS, as_of="2029-01-01T00:00:00Z")) == first
    # the same correction written differently by the provider is the same correction
    respelled = [dict(KEY_ROWS[0], **{"Email": " ANN@example.com", "Completed On": "01/15/2026"})]
    assert (
        _keys(reconcile_case(respelled + KEY_ROWS[1:]))[("u-ann", "lp-safe")]
        == first[("u-ann", "lp-safe")]
    )


def test_a_different_correction_has_a_different_key(reconcile_case):
    base = _keys(reconcile_case([ext(completed="2026-01-15")]))
    other_date = _keys(reconcile_case([ext(completed="2026-01-16")]))
    other_path = _keys(reconcile_case([ext(code="DATA-200", completed="2026-01-15")]))
    assert len({*base.values(), *other_date.values(), *other_path.values()}) == 3


def test_sql_key_equals_proposal_key(reconcile_case):
    result = reconcile_case(KEY_ROWS)
    assert len(result.proposals) == 3
    for p, body in zip(result.proposals.to_dict("records"), bodies_of(result), strict=True):
        assert p["key"] == proposal_key(body)


# Keys live in ledgers across versions: a correction must keep its key forever, so a
# change of the key's recipe (fields, order, separator, length, hash) fails here.
GOLDEN_KEYS = [
    (
        ext(completed="2026-01-15"),
        {
            "userId": "u-ann",
            "learningPathId": "lp-safe",
            "status": "completed",
            "completionDate": "2026-01-15T00:00:00.000Z",
        },
        "0ecb09a64bf7d303fe19",
    ),
    (
        ext("bob@example.com", "DATA-200", "In Progress", activity="2026-02-01"),
        {
            "userId": "u-bob",
            "learningPathId": "lp-data",
            "status": "started",
            "timeStampDate": "2026-02-01T00:00:00.000Z",
        },
        "b412b6cf2a990c3fa9b1",
    ),
]


@pytest.mark.parametrize(("row", "body", "key"), GOLDEN_KEYS, ids=["completion", "progress"])
def test_golden_proposal_key(reconcile_case, row, body, key):
    assert proposal_key(body) == key
    result = reconcile_case([row])  # the SQL that computes keys in a run
    assert bodies_of(result) == [body]
    assert list(result.proposals["key"]) == [key]


# --- the directory and the path mapping ----------------------------------------------


def test_an_email_naming_two_user_ids_is_unknown_learner(reconcile_case):
    users = [
        {"email": "ann@example.com", "userId": "u-ann"},
        {"email": " ANN@example.com", "userId": "u-ann-2"},
        {"email": "bob@example.com", "userId": "u-bob"},
        {"email": "bob@example.com", "userId": "u-bob"},  # a repeated line is no ambiguity
    ]
    rows = [ext(completed="2026-01-15"), ext("bob@example.com", completed="2026-01-15")]
    result = reconcile_case(rows, users=users)
    assert outcomes_of(result) == [oc.UNKNOWN_LEARNER, oc.MISSING_COMPLETION]
    assert "2" in detail(result, 1)


def test_a_code_naming_two_paths_is_unknown_path(reconcile_case):
    paths = [
        {"externalCode": "SAFE-101", "learningPathId": "lp-safe"},
        {"externalCode": "safe-101", "learningPathId": "lp-safe-v2"},
        {"externalCode": "DATA-200", "learningPathId": "lp-data"},
    ]
    rows = [ext(completed="2026-01-15"), ext(code="DATA-200", completed="2026-01-15")]
    result = reconcile_case(rows, paths=paths)
    assert outcomes_of(result) == [oc.UNKNOWN_PATH, oc.MISSING_COMPLETION]


def test_blank_directory_lines_are_ignored(reconcile_case):
    users = [{"email": "", "userId": "u-x"}, {"email": "ann@example.com", "userId": ""}]
    result = reconcile_case([ext(completed="2026-01-15")], users=users)
    assert outcomes_of(result) == [oc.UNKNOWN_LEARNER]


def test_ids_given_as_ids_need_no_directory(reconcile_case):
    rows = [ext(" u-123 ", " lp-9 ", completed="2026-01-15"), ext("", "lp-9", status="started")]
    result = reconcile_case(
        rows, users=None, paths=None, learner_kind="user_id", path_kind="learning_path_id"
    )
    assert outcomes_of(result) == [oc.MISSING_COMPLETION, oc.UNKNOWN_LEARNER]
    assert bodies_of(result)[0]["userId"] == "u-123"
    assert bodies_of(result)[0]["learningPathId"] == "lp-9"


def test_ids_given_as_ids_are_vetted_by_a_directory_when_present(reconcile_case):
    users = [{"email": "a", "userId": "u-1"}, {"email": "b", "userId": "U-2"}]
    users += [{"email": "c", "userId": "u-2"}]  # one id spelled in two cases: the same id
    rows = [
        ext("u-1", "lp-9", completed="2026-01-15"),
        ext("u-404", "lp-9", completed="2026-01-15"),
        ext("u-2", "lp-9", completed="2026-01-15"),
    ]
    result = reconcile_case(
        rows, users=users, paths=None, learner_kind="user_id", path_kind="learning_path_id"
    )
    assert outcomes_of(result) == [
        oc.MISSING_COMPLETION,
        oc.UNKNOWN_LEARNER,
        oc.MISSING_COMPLETION,
    ]
    assert len(result.outcomes) == 3
    # the spelling sent is the directory's own
    assert [b["userId"] for b in bodies_of(result)] == ["u-1", "U-2"]


def test_path_ids_are_vetted_by_a_mapping_when_present(reconcile_case):
    rows = [ext(code="lp-safe", completed="2026-01-15"), ext(code="lp-x", completed="2026-01-15")]
    result = reconcile_case(rows, path_kind="learning_path_id")
    assert outcomes_of(result) == [oc.MISSING_COMPLETION, oc.UNKNOWN_PATH]


def test_exceptions_keep_the_original_values(reconcile_case):
    row = ext("  ZED@Example.com ", " safe-101", " Completed ", completed=" 2026-01-15 ")
    result = reconcile_case([row])
    assert outcomes_of(result) == [oc.UNKNOWN_LEARNER]
    [original] = result.exceptions.to_dict("records")
    assert original["Email"] == "  ZED@Example.com "
    assert original["Course Code"] == " safe-101"
    assert original["Status"] == " Completed "
    assert original["Completed On"] == " 2026-01-15 "


def test_lms_without_a_completion_date_column(reconcile_case):
    rows = [ext(completed="2026-01-15"), ext("bob@example.com", completed="2026-01-15")]
    progress = [{"userId": "u-ann", "learningPathId": "lp-safe", "status": "completed"}]
    result = reconcile_case(rows, progress, config={"progress": {"completion_date": None}})
    assert outcomes_of(result) == [oc.IN_SYNC, oc.MISSING_COMPLETION]


def test_a_two_digit_year_is_not_a_four_digit_one(reconcile_case) -> None:
    # DuckDB's %Y reads "26" as the year 26; Python's strptime, whose format language the
    # config uses, does not.
    result = reconcile_case([ext(completed="1/2/26")])
    assert result.outcomes["outcome"].tolist() == ["bad-date"]


def test_every_unicode_blank_is_trimmed_like_str_strip(reconcile_case) -> None:
    result = reconcile_case(
        [ext(status="Completed\u2003", completed="2026-01-02", email="\u3000ann@example.com")]
    )
    assert result.outcomes["outcome"].tolist() == ["missing-completion"]
