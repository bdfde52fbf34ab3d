"""review.csv and outcomes.csv's learner/path, written by reconcile (issue 11)."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import AS_OF, ext, lms, write_case_in

from recon.engine import reconcile
from recon.outputs import REVIEW_COLUMNS, write_result

EXTERNAL = [
    # An evening completion in New York is the next day in UTC: the LMS has the local day.
    ext("ann@example.com", "SAFE-101", "Completed", "2026-01-31T22:30:00"),
    # A real difference of days.
    ext("bob@example.com", "safe-101", "Completed", "03/10/2026"),
    ext("=HYPERLINK(1)", "DATA-200", "Completed", "2026-02-02"),  # unknown learner
    ext(" cy@example.com ", "LEAD-300", "In Progress", "", "2026-02-03"),
]
PROGRESS = [
    lms("u-ann", "lp-safe", "completed", "2026-01-31T17:00:00Z"),
    lms("u-bob", "lp-safe", "completed", "2026-03-01T12:00:00Z"),
    lms("u-bob", "LP-SAFE", "completed", "2026-03-05T12:00:00Z"),
]


def read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_review_csv_lists_each_date_difference_in_utc_and_local_terms(tmp_path: Path) -> None:
    config = write_case_in(
        tmp_path / "case", EXTERNAL, PROGRESS, config={"external": {"timezone": "America/New_York"}}
    )
    result = reconcile(config, as_of=AS_OF)
    assert result.counts["completion-date-differs"] == 2
    written = write_result(result, tmp_path / "out")
    rows = read(written["review"])
    assert list(rows[0]) == REVIEW_COLUMNS
    ann, bob = rows
    assert (ann["row"], ann["learner"], ann["path"], ann["userId"]) == (
        "1",
        "ann@example.com",
        "SAFE-101",
        "u-ann",
    )
    assert ann["provider_completion_date"] == "2026-02-01T03:30:00.000Z"
    assert ann["lms_completion_date"] == "2026-01-31T17:00:00.000Z"
    assert ann["provider_completion_date_local"] == ann["lms_completion_date_local"] == "2026-01-31"
    assert "the same day in America/New_York" in ann["detail"]
    assert "2026-01-31 22:30 in America/New_York" in ann["detail"]
    # The LMS's earliest completion of the pair counts, whatever the ids' case.
    assert bob["lms_completion_date"] == "2026-03-01T12:00:00.000Z"
    assert bob["path"] == "safe-101"
    assert "9 day(s) apart in America/New_York" in bob["detail"]


def test_outcomes_csv_carries_learner_and_path_as_written(tmp_path: Path) -> None:
    config = write_case_in(tmp_path / "case", EXTERNAL, PROGRESS)
    written = write_result(reconcile(config, as_of=AS_OF), tmp_path / "out")
    rows = read(written["outcomes"])
    assert list(rows[0])[-2:] == ["learner", "path"]
    assert list(rows[0])[:6] == ["row", "outcome", "userId", "learningPathId", "status", "detail"]
    assert [(r["learner"], r["path"]) for r in rows] == [
        ("ann@example.com", "SAFE-101"),
        ("bob@example.com", "safe-101"),
        ("'=HYPERLINK(1)", "DATA-200"),  # a formula is text in a spreadsheet
        ("cy@example.com", "LEAD-300"),
    ]


def test_no_difference_no_review_line(tmp_path: Path) -> None:
    config = write_case_in(tmp_path / "case", EXTERNAL[2:], [])
    written = write_result(reconcile(config, as_of=AS_OF), tmp_path / "out")
    assert read(written["review"]) == []
    assert written["review"].read_text(encoding="utf-8").startswith("row,learner,path,")
