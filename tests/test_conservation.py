"""Every external row gets exactly one outcome, whatever the inputs look like (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from conftest import AS_OF, USERS, write_case_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon import outcomes as oc
from recon.engine import proposal_key, reconcile
from recon.result import payload
from recon.validation import WIRE_DATE, validate_activity

# Text a provider's export may hold: delimiters, quotes, line breaks, formula starts,
# accents; no control characters other than tab and line breaks.
junk = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), whitelist_characters=",;\t\n\"'=+-@ "
    ),
    max_size=12,
)
emails = st.one_of(
    st.sampled_from(
        [
            "ann@example.com",
            " ANN@Example.com ",
            "bob@example.com",
            "cy@example.com",
            "nobody@example.com",
            "\tbob@example.com\u00a0",
            "",
            "   ",
            "=HYPERLINK(1)",
        ]
    ),
    junk,
)
codes = st.one_of(
    st.sampled_from(["SAFE-101", "safe-101 ", "DATA-200", "LEAD-300", "AMBIG", "NOPE", ""]),
    junk,
)
statuses = st.one_of(
    st.sampled_from(
        [
            "Completed",
            " completed ",
            "In Progress",
            "FAILED",
            "Registered",
            "started",
            "not-started",
            "not-completed",
            "Done",
            "Passed",
            "",
            "-1",
        ]
    ),
    junk,
)
dates = st.one_of(
    st.sampled_from(
        [
            "",
            "2026-01-15",
            "2026-01-15T10:00:00+02:00",
            "2026-03-01T08:00:00Z",
            "01/15/2026",
            "15 Jan 2026",
            "2026-02-30",
            "13/45/2026",
            "garbage",
            "2099-01-01",
            "2026-06-01",
            "  ",
            "2026-01-16 23:59",
        ]
    ),
    junk,
)
external_row = st.fixed_dictionaries(
    {
        "Email": emails,
        "Course Code": codes,
        "Status": statuses,
        "Completed On": dates,
        "Last Activity": dates,
    }
)
lms_row = st.fixed_dictionaries(
    {
        "userId": st.sampled_from(["u-ann", "u-bob", "u-cy", "", "u-x"]),
        "learningPathId": st.sampled_from(["lp-safe", "lp-data", "lp-lead", ""]),
        "status": st.sampled_from(
            ["completed", "started", "not-started", "not-completed", "Completed ", "archived", ""]
        ),
        "completionDate": st.sampled_from(["", "2026-01-15T00:00:00.000Z", "2026-01-20", "x"]),
    }
)
PATHS = [
    {"externalCode": "SAFE-101", "learningPathId": "lp-safe"},
    {"externalCode": "DATA-200", "learningPathId": "lp-data"},
    {"externalCode": "LEAD-300", "learningPathId": "lp-lead"},
    {"externalCode": "AMBIG", "learningPathId": "lp-a"},
    {"externalCode": "ambig", "learningPathId": "lp-b"},
]
STATUS_MAP = {
    "Completed": "completed",
    "In Progress": "started",
    "Failed": "not-completed",
    "Registered": "not-started",
    "Done": "finished",  # the endpoint refuses it: invalid-payload
}


@settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis folder in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    rows=st.lists(external_row, min_size=1, max_size=25),
    progress=st.lists(lms_row, max_size=10),
    delimiter=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
)
def test_every_row_gets_exactly_one_outcome(rows, progress, delimiter, newline, bom):
    with tempfile.TemporaryDirectory() as folder:
        config = write_case_in(
            Path(folder),
            rows,
            progress,
            USERS,
            PATHS,
            statuses=STATUS_MAP,
            delimiter=delimiter,
            newline=newline,
            bom=bom,
        )
        result = reconcile(config, as_of=AS_OF)

    n = len(rows)
    outcomes = result.outcomes
    assert result.inputs["external"].rows == n
    assert sorted(outcomes["row"]) == list(range(1, n + 1))
    assert set(outcomes["outcome"]) <= set(oc.ALL)
    assert sum(result.counts.values()) == n == result.rows_read
    assert result.counts == {name: int((outcomes["outcome"] == name).sum()) for name in oc.ALL}

    proposed = outcomes[outcomes["outcome"].isin(oc.PROPOSED)]
    proposals = result.proposals
    assert len(proposals) == len(proposed)
    pairs = list(zip(proposals["userId"], proposals["learningPathId"], strict=True))
    assert len(pairs) == len(set(pairs))
    assert proposals["key"].is_unique
    for record in proposals.to_dict("records"):
        body = payload(record)
        assert validate_activity(body) == []
        assert record["key"] == proposal_key(body)
        for field in ("completionDate", "timeStampDate"):
            if field in body:
                assert WIRE_DATE.match(body[field])

    problems = outcomes[outcomes["outcome"].isin(oc.PROBLEMS)]
    assert list(result.exceptions["row"]) == sorted(problems["row"])
