"""Issue 11: course codes where a person reads or types, counts per run, and the report's
"To review" and whole-loop tiles."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import AS_OF, ext, lms, write_case_in

from recon import ledger as lg
from recon.cli import main
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.report import render_report
from recon.status import render_status
from recon.target import Target

PRACTICE = Target("http://127.0.0.1:9", practice=True)
EXTERNAL = [
    ext("ann@example.com", "SAFE-101", "Completed", "2026-01-10"),
    ext("bob@example.com", "safe-101", "Completed", "2026-01-11"),
    ext("cy@example.com", "Safe-101", "Completed", "2026-01-12"),
    ext("ann@example.com", "DATA-200", "In Progress", "", "2026-02-01"),
    ext("bob@example.com", "LEAD-300", "Completed", "2026-03-05"),
]
PROGRESS = [lms("u-bob", "lp-lead", "completed", "2026-03-01T12:00:00Z")]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_case_in(tmp_path / "case", EXTERNAL, PROGRESS)


def test_path_takes_the_providers_course_code(config: Path, tmp_path: Path, capsys) -> None:
    ledger = tmp_path / "l.db"
    with Ledger(ledger) as opened:
        reconcile_run(config, as_of=AS_OF, ledger=opened)
    assert main(["approve", "--ledger", str(ledger), "--path", "SAFE-101", "--by", "t"]) == 0
    assert "approved 3 proposal(s) of run 1" in capsys.readouterr().out
    assert main(["reject", "--ledger", str(ledger), "--path", "data-200", "--by", "t"]) == 0
    with Ledger(ledger) as opened:
        decided = opened.proposals().set_index("learningPathId")["decision"]
    assert set(decided["lp-safe"]) == {"approved"} and decided["lp-data"] == "rejected"
    # The LMS id still works, in any case.
    assert main(["approve", "--ledger", str(ledger), "--path", "LP-DATA", "--override"]) == 0
    # A code the run does not have: the error lists the codes it has, one spelling each.
    assert main(["approve", "--ledger", str(ledger), "--path", "SAFE-102"]) == 2
    err = capsys.readouterr().err
    assert "no proposal with learning path 'SAFE-102'" in err
    assert "its course codes: DATA-200, SAFE-101" in err, err


def test_a_decision_and_an_acceptance_count_in_their_own_run(config: Path, tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        first = reconcile_run(config, as_of=AS_OF, ledger=ledger)
        data = first.proposals[first.proposals["learningPathId"] == "lp-data"]["key"].iloc[0]
        safe = first.proposals[first.proposals["learningPathId"] == "lp-safe"]["key"].tolist()
        ledger.decide(safe, "approved", run=1, by="t")
        attempt = ledger.begin_attempt(safe[0], 1, PRACTICE)
        ledger.finish_attempt(attempt, lg.ACCEPTED, http_status=200)
        # Run 2 proposes the same corrections again (the practice acceptance does not
        # count for an LMS); a new decision is made during it.
        reconcile_run(config, as_of=AS_OF, ledger=ledger)
        ledger.decide([data], "rejected", run=2, by="t")
        activity = ledger.runs_by_activity(PRACTICE).set_index("run_id")
        assert activity.loc[1, ["approved", "declined", "accepted"]].tolist() == [3, 0, 1]
        assert activity.loc[2, ["approved", "declined", "accepted"]].tolist() == [0, 1, 0]
        # The older view counts the carried-over decisions again in run 2.
        old = ledger.runs(PRACTICE).set_index("run_id")
        assert old.loc[2, "approved"] >= 2
        # recon status reads the same counts (its target: the practice sandbox used last).
        lines = {
            line.split()[0]: line.split()
            for line in render_status(ledger).splitlines()
            if line.strip()[:1].isdigit()
        }
        assert lines["1"][-5:-1] == ["3", "0", "1", "0"], (
            lines
        )  # approved declined accepted refused
        assert lines["2"][-5:-1] == ["0", "1", "0", "0"], lines


def test_report_lists_what_to_review_and_the_whole_loop(tmp_path: Path) -> None:
    config = write_case_in(
        tmp_path / "case",
        [ext("ann@example.com", "SAFE-101", "Completed", "2026-01-31T22:30:00")],
        [lms("u-ann", "lp-safe", "completed", "2026-01-31T17:00:00Z")],
        config={"external": {"timezone": "America/New_York"}},
    )
    with Ledger(tmp_path / "l.db") as ledger:
        reconcile_run(config, as_of=AS_OF, ledger=ledger)
        page = render_report(ledger.result(), ledger)
    section = page.split("<h2>To review</h2>", 1)[1].split("<h2>", 1)[0]
    assert "1 row(s) where both say completed" in section
    assert "ann@example.com" in section and "SAFE-101" in section
    assert "the same day in America/New_York" in section
    assert '<div class="l">to review</div>' in page
    assert "all runs</div>" in page
