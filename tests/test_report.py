"""`recon report`: one self-contained HTML file read from the ledger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import AS_OF, ext, lms

from recon import ledger as lg
from recon.cli import main
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.report import render_report, write_report
from recon.target import Target

EXTERNAL = [
    ext("ann@example.com", "SAFE-101", "Completed", "2026-01-10"),
    ext("bob@example.com", "SAFE-101", "In Progress", "", "2026-02-01"),
    ext("cy@example.com", "DATA-200", "Completed", "2026-03-05"),
    ext("<script>alert(1)</script>@example.com", "SAFE-101", "Completed", "2026-01-01"),
    ext("ann@example.com", "NOPE-1", "Completed", "2026-01-01"),
]

LMS = Target.real("https://lms.example.com")  # a real LMS; nothing is sent to it here


@pytest.fixture
def ledger(tmp_path: Path, write_case):
    config = write_case(EXTERNAL, [lms("u-cy", "lp-lead", "completed", "2026-03-06")])
    with Ledger(tmp_path / "ledger.db") as opened:
        first = reconcile_run(config, as_of=AS_OF, ledger=opened)
        keys = list(first.proposals["key"])
        opened.decide(keys, "approved", by="ana")
        accepted = opened.begin_attempt(keys[0], first.run_id, LMS)
        opened.finish_attempt(accepted, lg.ACCEPTED, http_status=200)
        refused = opened.begin_attempt(keys[1], first.run_id, LMS)
        opened.finish_attempt(
            refused, lg.REJECTED, http_status=400, errors=["learner is not enrolled"]
        )
        reconcile_run(config, as_of=AS_OF, ledger=opened)
        yield opened


def test_report_is_self_contained_with_its_sections(ledger: Ledger, tmp_path: Path) -> None:
    path = write_report(ledger, tmp_path / "report.html", run=1)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    for section in (
        "Outcomes",
        "Open gap per learning path",
        "Inputs",
        "Exceptions to fix at the source",
        "Submissions",
        "Trend over runs",
    ):
        assert f"<h2>{section}</h2>" in page, section
    # Charts are inline PNGs; nothing is fetched from anywhere.
    assert len(re.findall(r'<img alt="chart" src="data:image/png;base64,', page)) >= 3
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page and "<script" not in page
    # The API's message, grouped, and the hostile cell escaped.
    assert "learner is not enrolled" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@example.com" in page
    assert "unknown-path" in page and "unknown-learner" in page


def test_report_of_the_latest_run_says_where_earlier_submissions_are(ledger: Ledger) -> None:
    page = render_report(ledger.result("latest"), ledger)
    assert "recon report — run 2" in page
    # Run 1's accepted correction is already-submitted in run 2.
    assert "already-submitted" in page
    assert "Trend over runs" in page


def test_cli_report(ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "r.html"
    assert main(["report", "--ledger", str(ledger.path), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").count("<h2>") >= 5
    assert main(["report", "--ledger", str(ledger.path), "--run", "9", "--out", str(out)]) == 2
