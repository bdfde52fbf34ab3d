"""Review with evidence (issue 11): the LMS now column, the evidence panel at its row,
notes with decisions, and the Confirm step, driven from Python over a real ledger and a
sandbox over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AS_OF, ext, lms, write_case_in

from recon.client import ApiClient
from recon.evidence import NO_RECORD
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.review import LMS_READING, LMS_UNREADABLE, ReviewWidget
from recon.sandbox import Sandbox
from recon.submit import Pace

KEY = "evidence-test-key-not-for-display"
FAST = Pace(rate=200, burst=200, concurrency=4, max_tries=2, backoff_base=0.01)
# ann: SAFE-101 completed (LMS: started) and DATA-200 in progress (LMS: no record);
# bob: SAFE-101 completed, twice (LMS: no record); cy: LEAD-300 completed in New York's
# evening (LMS: not-started, with a second row in another case of the ids).
EXTERNAL = [
    ext("ann@example.com", "SAFE-101", "Completed", "2026-03-02"),
    ext("ann@example.com", "data-200", "In Progress", "", "2026-02-10"),
    ext("bob@example.com", "SAFE-101", "Completed", "2026-04-05"),
    ext("BOB@example.com", "safe-101", "Completed", "2026-04-09"),
    ext("cy@example.com", "LEAD-300", "Completed", "2026-01-31T22:30:00"),
]
PROGRESS = [
    lms("u-ann", "lp-safe", "started"),
    lms("u-cy", "lp-lead", "not-started"),
    lms("U-CY", "LP-LEAD", "started"),
]


@pytest.fixture
def case(tmp_path: Path) -> Path:
    config = write_case_in(
        tmp_path / "case",
        EXTERNAL,
        PROGRESS,
        config={"external": {"timezone": "America/New_York"}},
    )
    return config


@pytest.fixture
def ledger(case: Path, tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.db") as opened:
        reconcile_run(case, as_of=AS_OF, ledger=opened)
        yield opened


@pytest.fixture
def client() -> Iterator[ApiClient]:
    with Sandbox(key=KEY, rate=FAST.rate, burst=FAST.burst) as sandbox:
        api = ApiClient(sandbox.url, KEY)
        yield api
        api.close()


def row_of(widget: ReviewWidget, learner: str, code: str) -> int:
    page = widget.page_frame().reset_index(drop=True)
    found = page.index[
        (page["learner"].str.lower() == learner) & (page["path_label"].str.startswith(code))
    ]
    return int(found[0])


def test_lms_now_column_says_no_record_or_what_the_lms_holds(ledger: Ledger, case: Path) -> None:
    widget = ReviewWidget(ledger, None, by="tester", config=case)
    frame = widget.frame.set_index("learner")
    assert frame.loc["ann@example.com"].set_index("path")["lms_status"].to_dict() == {
        "SAFE-101": "started",
        "data-200": NO_RECORD,
    }
    assert frame.loc["bob@example.com", "lms_status"] == NO_RECORD
    # Two LMS rows for cy, ids in two cases: one pair, its furthest status.
    assert frame.loc["cy@example.com", "lms_status"] == "started"
    header = widget.table.children[0].children[1].value
    assert "LMS now" in header and "provider says" in header and "will send" in header
    # The LMS export is read in the background: the page's cells are drawn again then.
    assert widget.wait_for_lms(30)
    cells = [r.cells.value for r in widget.rows if r.key is not None]
    assert not any(LMS_READING in c for c in cells)
    assert sum(NO_RECORD in c for c in cells) == 2
    # provider says: the provider's day in its own zone; will send: the UTC instant.
    cy = widget.rows[row_of(widget, "cy@example.com", "LEAD-300")].cells.value
    assert "2026-01-31" in cy and "2026-02-01" in cy and cy.count("completed") == 2
    # One spelling per code: bob wrote SAFE-101 and safe-101, ann SAFE-101.
    assert set(widget.frame.loc[widget.frame["path"].str.lower() == "safe-101", "path_label"]) == {
        "SAFE-101 (lp-safe)"
    }


def test_without_input_files_lms_now_is_unknown_never_no_record(ledger: Ledger) -> None:
    widget = ReviewWidget(ledger, None, by="tester")
    assert widget.frame["lms_status"].isna().all()
    assert not any(NO_RECORD in r.cells.value for r in widget.rows)


def test_evidence_opens_at_its_row_and_follows_the_filters(ledger: Ledger, case: Path) -> None:
    widget = ReviewWidget(ledger, None, by="tester", config=case)
    slot = row_of(widget, "bob@example.com", "SAFE-101")
    widget.note.value = "provider confirmed by mail"
    widget.rows[slot].toggle.value = "approved"
    widget.rows[slot].show.click()
    panel = widget.rows[slot].panel
    assert panel.layout.display == "block" and widget.preview is panel
    assert [r.panel.layout.display for r in widget.rows].count("block") == 1
    text = panel.value
    # Both provider rows behind the proposal, with their original cells and lines.
    assert "BOB@example.com" in text and "bob@example.com" in text
    assert "2026-04-09" in text and "spreadsheet line" in text
    assert f"{NO_RECORD} (the LMS export has no row for this pair)" in text
    body = json.loads(widget.page_frame().iloc[slot]["payload"])
    assert json.dumps(body, indent=2).replace('"', "&quot;") in text
    assert "provider confirmed by mail" in text and "tester" in text
    assert "not sent yet" in text
    # A filter that keeps the row keeps the panel, at the row's new place.
    widget.learner.value = "bob"
    assert widget.rows[0].panel.layout.display == "block"
    assert widget.rows[0].key == widget.open_key
    # A filter that drops the row closes it.
    widget.learner.value = "ann"
    assert widget.open_key is None
    assert all(r.panel.layout.display == "none" for r in widget.rows)
    # Clicking the eye of the open row closes it.
    widget.learner.value = ""
    widget.rows[0].show.click()
    widget.rows[0].show.click()
    assert widget.open_key is None


def test_evidence_shows_the_lms_rows_of_the_pair(ledger: Ledger, case: Path) -> None:
    widget = ReviewWidget(ledger, None, by="tester", config=case)
    found = widget.evidence(widget.frame.set_index("learner").loc["cy@example.com", "key"])
    assert sorted(found["lms"]["word"]) == ["not-started", "started"]
    assert found["provider"]["Completed On"].tolist() == ["2026-01-31T22:30:00"]


def test_bulk_actions_ask_first_with_the_count(ledger: Ledger, case: Path) -> None:
    widget = ReviewWidget(ledger, None, by="tester", config=case)
    widget.rows[0].toggle.value = "rejected"
    widget.approve_button.click()
    label = widget.confirm_button.description
    assert label.startswith("Confirm")
    assert "approve 3 undecided proposal(s) (1 decided stay as they are)" in label
    assert widget.counts()["approved"] == 0, "nothing is decided before Confirm"
    widget.cancel_button.click()
    assert widget.confirm_box.layout.display == "none"
    widget.approve_button.click()
    widget.learner.value = "bob"  # the count asked about no longer holds: withdrawn
    assert widget.confirm_box.layout.display == "none"
    widget.confirm_button.click()
    assert widget.counts()["approved"] == 0
    widget.approve_button.click()  # one matching proposal: no question
    assert widget.counts()["approved"] == 1 and widget.confirm_box.layout.display == "none"
    widget.learner.value = ""
    widget.note.value = "checked"
    widget.reject_button.click()
    assert "reject 2 undecided proposal(s) (2 decided stay as they are)" in (
        widget.confirm_button.description
    )
    widget.confirm_button.click()
    assert widget.counts() == {"undecided": 0, "approved": 1, "rejected": 3}
    rejected = ledger.decisions().query("decision == 'rejected'")
    assert rejected["note"].fillna("(none)").tolist() == ["(none)", "checked", "checked"]


def test_submit_asks_first_with_target_and_time(ledger: Ledger, case: Path, client) -> None:
    widget = ReviewWidget(ledger, client, by="tester", pace=FAST, config=case)
    widget.kind.value = "missing-completion"
    widget.approve_matching()
    widget.submit_button.click()
    label = widget.confirm_button.description
    assert label.startswith("Confirm: submit 3 approved proposal(s) to practice sandbox")
    assert "about " in label and label.endswith(" s")
    assert ledger.attempts().empty, "nothing is sent before Confirm"
    widget.confirm_button.click()
    report = widget.wait(timeout=30)
    assert report is not None and report.accepted == 3
    slot = row_of(widget, "cy@example.com", "LEAD-300")
    widget.show_payload(slot)
    text = widget.preview.value
    assert "practice" in text and "accepted" in text and "200" in text


def test_a_configured_lms_completion_column_the_file_lacks_is_an_error_everywhere(
    tmp_path: Path,
) -> None:
    """The engine, the review's evidence and a report's sources read the LMS export the
    same way: a configured completion column missing from the file is an error naming
    it, never a column silently left out (no completion dates shown as if there were
    none)."""
    import csv

    import pandas as pd

    from recon.config import load_config
    from recon.engine import reconcile
    from recon.errors import InputError
    from recon.evidence import Evidence
    from recon.sources import read_sources

    case = write_case_in(
        tmp_path / "case",
        [
            ext("ann@example.com", "SAFE-101", "Completed", "2026-03-01"),
            ext("bob@example.com", "DATA-200", "Completed", "2026-03-02"),
        ],
        [lms("u-ann", "lp-safe", "started", "")],
    )
    config = load_config(case)
    ledger = Ledger(tmp_path / "ledger.db")
    reconcile_run(case, as_of=AS_OF, ledger=ledger)  # while the export was whole
    progress = Path(config.progress.file)
    with progress.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with progress.open("w", newline="", encoding="utf-8") as fh:
        kept = [c for c in rows[0] if c != config.progress.completion_date]
        writer = csv.DictWriter(fh, kept, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    missing = f"column {config.progress.completion_date!r} not found"
    with pytest.raises(InputError, match=missing):
        reconcile(config, as_of=AS_OF)
    evidence = Evidence(config)  # reads nothing yet: each question raises it
    with pytest.raises(InputError, match=missing):
        evidence.lms  # noqa: B018  (read on first use)
    with pytest.raises(InputError, match=missing):
        evidence.now_for(pd.Series(["u-ann"]), pd.Series(["lp-safe"]))
    with pytest.raises(InputError, match=missing):
        read_sources(config).lms  # noqa: B018  (read on first use)
    # The review opens (the export is read in the background) and says it, in red, in
    # the message and in every row's LMS now; asking for the rows is the same error.
    widget = ReviewWidget(ledger, None, by="tester", config=case)
    assert widget.wait_for_lms(30)
    assert "#c62828" in widget.summary.value
    assert "could not be read" in widget.summary.value
    assert "not found" in widget.summary.value
    cells = [r.cells.value for r in widget.rows if r.key is not None]
    assert len(cells) == widget.model.proposal_count >= 1
    assert all(LMS_UNREADABLE in c and "not found" in c for c in cells)
    with pytest.raises(InputError, match=missing):
        widget.page_frame()
    # Said right above the table too (the summary sits below fifty rows), in the
    # analyst's words: what is lost, what still works, what to do.
    assert widget.lms_note.layout.display != "none"
    assert "#c62828" in widget.lms_note.value and "not found" in widget.lms_note.value
    assert "run this cell again" in widget.lms_note.value
    assert "Traceback" not in widget.lms_note.value
    widget.summary.value = ""
    # The eye still opens the evidence: the provider's row(s), the body, the decisions;
    # its LMS part says why it is not known.
    widget.rows[0].show.click()
    assert widget.open_key == widget.rows[0].key
    panel = widget.rows[0].panel.value
    assert widget.rows[0].panel.layout.display == "block"
    assert LMS_UNREADABLE in panel and "not found" in panel
    assert "Provider row(s)" in panel and "&quot;learningPathId&quot;" in panel
    assert "Decisions" in panel and widget.summary.value == ""
    # ... and, as the message says, deciding and the dry run do not need it.
    key = widget.rows[0].key
    assert widget.approve([key]) == 1
    assert "approved" in widget.rows[0].cells.value
    report = widget.dry_run()
    assert report.planned == 1 and report.fatal is None, report
    ledger.close()
