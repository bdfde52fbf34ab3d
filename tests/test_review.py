"""The review widget, driven from Python: set filters, click buttons, assert the ledger.

Submissions go to an in-process sandbox over real loopback HTTP.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import ipywidgets as widgets
import pytest
from conftest import AS_OF, ext, write_case_in
from sandbox_inspect import accepted, requests_log, status_counts

from recon.client import Answer, ApiClient
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.review import ReviewWidget
from recon.sandbox import Sandbox
from recon.submit import Pace

KEY = "review-test-key-not-for-display"
FAST = Pace(rate=200, burst=200, concurrency=4, max_tries=2, backoff_base=0.01)
USERS = [{"email": f"user{i:02d}@example.com", "userId": f"u{i:02d}"} for i in range(60)]
# 60 completions of SAFE-101 (January for users 00-29, March for 30-59) and 60 learners
# in progress on DATA-200 (February): 120 proposals, 3 pages of 50.
EXTERNAL = [
    ext(u["email"], "SAFE-101", "Completed", f"2026-{1 if i < 30 else 3:02d}-{1 + i % 28:02d}")
    for i, u in enumerate(USERS)
] + [
    ext(u["email"], "DATA-200", "In Progress", "", f"2026-02-{1 + i % 28:02d}")
    for i, u in enumerate(USERS)
]


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger holding one run of ``EXTERNAL``, made once: each test gets a copy."""
    folder = tmp_path_factory.mktemp("review")
    config = write_case_in(folder / "case", EXTERNAL, [], users=USERS)
    with Ledger(folder / "template.db") as template:
        reconcile_run(config, as_of=AS_OF, ledger=template)
    return folder / "template.db"


@pytest.fixture
def ledger(reconciled: Path, tmp_path: Path) -> Iterator[Ledger]:
    path = tmp_path / "ledger.db"
    shutil.copyfile(reconciled, path)  # closed above, so the WAL is checkpointed into it
    with Ledger(path) as opened:
        yield opened


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(key=KEY, rate=FAST.rate, burst=FAST.burst) as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[ApiClient]:
    api = ApiClient(sandbox.url, KEY)
    yield api
    api.close()


@pytest.fixture
def widget(ledger: Ledger, client: ApiClient) -> ReviewWidget:
    return ReviewWidget(ledger, client, by="tester", pace=FAST)


def decisions(ledger: Ledger) -> dict[str, str]:
    """Latest decision per key of the latest run, as the ledger holds it."""
    frame = ledger.proposals()
    return dict(zip(frame["key"], frame["decision"], strict=True))


def visible_rows(widget: ReviewWidget) -> int:
    return sum(1 for row in widget.rows if row.box.layout.display != "none")


def walk(widget: widgets.Widget) -> Iterator[widgets.Widget]:
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def by_class(root: ReviewWidget, css: str) -> list[widgets.Widget]:
    return [w for w in walk(root) if css in getattr(w, "_dom_classes", ())]


# -- the UI contract the browser test relies on ----------------------------------------------


CONTRACT = [
    ("recon-filter-kind", widgets.Dropdown, None),
    ("recon-filter-path", widgets.Dropdown, None),
    ("recon-filter-learner", widgets.Text, None),
    ("recon-filter-from", widgets.DatePicker, None),
    ("recon-filter-to", widgets.DatePicker, None),
    ("recon-filter-decision", widgets.Dropdown, None),
    ("recon-approve-matching", widgets.Button, "Approve all matching"),
    ("recon-reject-matching", widgets.Button, "Reject all matching"),
    ("recon-prev", widgets.Button, None),
    ("recon-next", widgets.Button, None),
    ("recon-dry-run", widgets.Button, "Dry run"),
    ("recon-submit", widgets.Button, "Submit approved"),
    ("recon-counters", widgets.HTML, None),
    ("recon-table", widgets.Box, None),
    ("recon-progress", widgets.IntProgress, None),
    ("recon-summary", widgets.HTML, None),
]


def test_every_control_carries_its_css_class_once(widget: ReviewWidget) -> None:
    for css, kind, description in CONTRACT:
        found = by_class(widget, css)
        assert len(found) == 1, css
        assert isinstance(found[0], kind), css
        if description is not None:
            assert found[0].description == description


# -- counters, paging, filters ---------------------------------------------------------------


def test_opens_on_the_first_page_of_everything(widget: ReviewWidget) -> None:
    assert len(widget.frame) == 120
    assert len(widget.matching()) == 120
    assert widget.page_count == 3
    assert visible_rows(widget) == 50
    assert widget.counters.value == "<b>undecided 120 · approved 0 · rejected 0</b>"
    assert "page 1 of 3" in widget.status.value
    assert widget.prev_button.disabled and not widget.next_button.disabled


def test_next_and_previous_walk_the_pages(widget: ReviewWidget) -> None:
    first = widget.page_frame()["key"].tolist()
    widget.next_button.click()
    assert widget.page == 1
    second = widget.page_frame()["key"].tolist()
    assert not set(first) & set(second)
    widget.next_button.click()
    assert widget.page == 2 and visible_rows(widget) == 20
    assert widget.next_button.disabled
    assert [r.key for r in widget.rows[20:]] == [None] * 30
    widget.next_button.click()  # already on the last page
    assert widget.page == 2
    widget.prev_button.click()
    assert widget.page_frame()["key"].tolist() == second


def test_a_filter_goes_back_to_the_first_page(widget: ReviewWidget) -> None:
    widget.next_page()
    widget.kind.value = "missing-completion"
    assert widget.page == 0
    assert len(widget.matching()) == 60
    assert set(widget.page_frame()["category"]) == {"missing-completion"}
    assert "of 60 matching" in widget.status.value


def test_filters_combine(widget: ReviewWidget) -> None:
    widget.kind.value = "missing-completion"
    widget.learner.value = "USER0"  # case-insensitive, email or user id
    assert sorted(widget.matching()["userId"]) == [f"u0{i}" for i in range(10)]
    widget.learner.value = "u05"
    assert widget.matching()["userId"].tolist() == ["u05"]


def test_date_range_uses_the_completion_or_activity_date(widget: ReviewWidget) -> None:
    widget.date_from.value = date(2026, 2, 1)
    widget.date_to.value = date(2026, 2, 28)
    assert set(widget.matching()["category"]) == {"missing-progress"}
    assert len(widget.matching()) == 60
    widget.date_to.value = date(2026, 3, 31)
    assert len(widget.matching()) == 90  # plus the March completions


def test_path_filter_lists_paths_by_course_code(widget: ReviewWidget) -> None:
    labels = [label for label, _ in widget.path.options]
    assert labels == ["all paths", "DATA-200 (lp-data) · 60", "SAFE-101 (lp-safe) · 60"]
    widget.path.value = "lp-safe"
    assert set(widget.matching()["learningPathId"]) == {"lp-safe"}


# -- decisions --------------------------------------------------------------------------------


def test_approve_all_matching_writes_every_matching_decision(
    widget: ReviewWidget, ledger: Ledger
) -> None:
    widget.kind.value = "missing-completion"
    widget.approve_button.click()
    widget.confirm_button.click()  # the button asks first
    held = decisions(ledger)
    frame = ledger.proposals()
    completion = set(frame.loc[frame["category"] == "missing-completion", "key"])
    assert {k for k, d in held.items() if d == "approved"} == completion
    assert {k for k, d in held.items() if d == "undecided"} == set(frame["key"]) - completion
    assert set(frame.loc[frame["decision"] == "approved", "decided_by"]) == {"tester"}
    assert set(frame.loc[frame["decision"] == "approved", "policy"]) == {
        "all matching: kind missing-completion"
    }
    assert widget.counters.value == "<b>undecided 60 · approved 60 · rejected 0</b>"


def test_reject_all_matching_then_a_decision_filter(widget: ReviewWidget, ledger) -> None:
    widget.learner.value = "user1"
    widget.reject_button.click()
    widget.confirm_button.click()  # the button asks first
    assert widget.counts() == {"undecided": 100, "approved": 0, "rejected": 20}
    assert list(decisions(ledger).values()).count("rejected") == 20
    widget.learner.value = ""
    widget.decision.value = "undecided"
    assert len(widget.matching()) == 100
    widget.approve_button.click()
    widget.confirm_button.click()  # the button asks first
    assert widget.counts() == {"undecided": 0, "approved": 100, "rejected": 20}
    assert len(widget.matching()) == 0  # nothing undecided is left to show


def test_deciding_again_writes_only_what_changes(widget: ReviewWidget, ledger) -> None:
    assert widget.approve_matching() == 120
    assert widget.approve_matching() == 0
    widget.kind.value = "missing-progress"
    assert widget.reject_matching() == 0  # decided earlier: left as they were
    assert "60 already decided, left as they were" in widget.summary.value
    widget.override.value = True
    assert widget.reject_matching() == 60
    assert len(ledger.decisions()) == 180


def test_a_row_toggle_records_its_decision_at_once(widget: ReviewWidget, ledger) -> None:
    widget.next_page()
    row = widget.rows[3]
    row.toggle.value = "rejected"
    assert decisions(ledger)[row.key] == "rejected"
    row.toggle.value = "approved"
    assert decisions(ledger)[row.key] == "approved"
    assert widget.counters.value == "<b>undecided 119 · approved 1 · rejected 0</b>"
    assert "approved" in row.cells.value


def test_the_page_shows_decisions_made_elsewhere(widget: ReviewWidget, ledger) -> None:
    keys = widget.page_frame()["key"].tolist()
    ledger.decide(keys[:2], "approved", by="someone else")
    widget.reload()  # the Refresh button
    assert [r.toggle.value for r in widget.rows[:3]] == ["approved", "approved", None]
    assert widget.counts()["approved"] == 2


def test_a_second_analyst_and_a_restarted_kernel_see_each_decision(
    widget: ReviewWidget, ledger: Ledger
) -> None:
    widget.kind.value = "missing-progress"
    widget.approve_button.click()
    widget.confirm_button.click()  # the button asks first
    widget.rows[0].toggle.value = "rejected"
    with Ledger(ledger.path) as elsewhere:
        other = ReviewWidget(elsewhere, None, by="second analyst")
        assert other.counts() == {"undecided": 60, "approved": 59, "rejected": 1}
        other.kind.value = "missing-completion"
        other.reject_button.click()
        other.confirm_button.click()  # the button asks first
    widget.refresh_button.click()
    assert widget.counts() == {"undecided": 0, "approved": 59, "rejected": 61}


def test_payload_preview_shows_the_exact_body(widget: ReviewWidget) -> None:
    widget.rows[0].show.click()
    record = widget.page_frame().iloc[0]
    body = json.loads(record["payload"])
    assert widget.show_payload(0) == body
    assert json.dumps(body, indent=2).replace('"', "&quot;") in widget.preview.value
    assert record["key"] in widget.preview.value


# -- dry run and submission ----------------------------------------------------------------


def test_dry_run_sends_nothing(widget: ReviewWidget, ledger, sandbox: Sandbox) -> None:
    widget.kind.value = "missing-completion"
    widget.approve_button.click()
    widget.confirm_button.click()  # the button asks first
    widget.dry_run_button.click()
    assert "Dry run" in widget.summary.value
    assert "60 approved proposal(s) would be sent" in widget.summary.value
    assert "Nothing was sent" in widget.summary.value
    assert requests_log(sandbox) == []
    assert ledger.attempts().empty


def test_submit_approved_sends_them_over_http_and_records_the_answers(
    widget: ReviewWidget, ledger: Ledger, sandbox: Sandbox
) -> None:
    widget.learner.value = "user0"
    widget.approve_button.click()  # 10 learners x 2 paths
    widget.confirm_button.click()  # the button asks first
    widget.submit_button.click()
    widget.confirm_button.click()  # the button asks first
    report = widget.wait(timeout=30)
    assert report is not None and report.accepted == 20
    frame = ledger.proposals()
    assert (frame["submission"] == "accepted").sum() == 20
    assert set(frame.loc[frame["submission"] == "accepted", "decision"]) == {"approved"}
    assert len(accepted(sandbox)) == 20
    assert "accepted 20" in widget.summary.value
    assert "rejected 0" in widget.summary.value
    assert widget.progress.value == widget.progress.max == 20
    assert widget.progress.bar_style == "success"
    assert not widget.submit_button.disabled
    assert widget.submit_button.description == "Submit approved"
    # The page now shows what was sent, and accepted rows can no longer be decided.
    assert "accepted" in widget.status.value
    assert all(r.toggle.disabled for r in widget.rows[:20])


def test_submitting_again_sends_nothing_twice(widget: ReviewWidget, sandbox) -> None:
    widget.learner.value = "user00"
    widget.approve_matching()
    assert widget.submit().accepted == 2
    assert widget.submit().accepted == 0
    assert len(accepted(sandbox)) == 2
    assert "accepted 0" in widget.summary.value


class RefusingClient:
    """An API that rejects every record with a message (the sandbox accepts everything
    recon proposes, so a rejection needs a stand-in)."""

    base_url = "http://127.0.0.1:9"

    def ping(self) -> dict[str, bool]:
        return {"valid": True}  # a real LMS: no practice mark

    def redact(self, text: str) -> str:
        return text

    def post_activity(self, body: dict[str, str]) -> Answer:
        return Answer(status=400, errors=[f"learner {body['userId']} is not enrolled"])


def test_rejected_rows_are_listed_with_the_api_messages(ledger: Ledger) -> None:
    widget = ReviewWidget(ledger, RefusingClient(), by="tester", pace=FAST)  # type: ignore[arg-type]
    widget.learner.value = "user01"
    widget.approve_matching()
    report = widget.submit()
    assert report.rejected_total == 2
    assert "accepted 0 · rejected 2" in widget.summary.value
    assert "Rejected by the API (2)" in widget.summary.value
    assert "learner u01 is not enrolled" in widget.summary.value
    assert widget.progress.bar_style == "danger"
    frame = ledger.proposals()
    assert (frame["submission"] == "rejected").sum() == 2
    # Rejected by the API is final: neither kind of decision is recorded again.
    assert widget.reject_matching() == 0


def test_a_refused_key_stops_the_submission_with_a_clear_message(ledger, sandbox) -> None:
    wrong = ApiClient(sandbox.url, "a-wrong-key")
    widget = ReviewWidget(ledger, wrong, by="tester", pace=FAST)
    widget.approve_matching()
    report = widget.submit()
    assert report.fatal and report.accepted == 0
    assert "Stopped: the API key was refused" in widget.summary.value
    assert status_counts(sandbox)[401] <= FAST.concurrency


def test_feature_off_stops_the_submission(widget: ReviewWidget, sandbox: Sandbox) -> None:
    sandbox.settings.feature_on = False
    widget.approve_matching()
    widget.submit()
    assert "Stopped" in widget.summary.value
    assert "externalActivity feature is not enabled" in widget.summary.value


def test_without_a_client_only_dry_runs_work(ledger: Ledger) -> None:
    widget = ReviewWidget(ledger, None)
    widget.approve_matching()
    widget.dry_run_button.click()
    assert "120 approved proposal(s) would be sent" in widget.summary.value
    widget.submit_button.click()
    widget.confirm_button.click()  # the button asks first
    widget.wait(timeout=10)
    assert "no API client" in widget.summary.value


def test_the_api_key_is_never_shown(widget: ReviewWidget, sandbox: Sandbox) -> None:
    widget.approve_matching()
    widget.dry_run()
    texts = [repr(widget), widget.summary.value, widget.preview.value]
    widget.submit()
    widget.show_payload(0)
    texts += [widget.summary.value, widget.preview.value, widget.status.value]
    texts += [w.value for w in walk(widget) if isinstance(getattr(w, "value", None), str)]
    assert all(KEY not in text for text in texts)
    assert sandbox.url in widget.children[0].value  # where it sends is shown, not how
