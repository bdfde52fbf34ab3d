"""Notebook 04's resolve widget, driven from Python as an analyst clicks: the provider's
row beside each candidate; accept, reject and pick another, each saved in the ledger at
the click (through recon.aliases) and used by the next run."""

from __future__ import annotations

import pytest
from test_resolve import ROWS, outcomes, reconcile

from recon import aliases as al
from recon import outcomes as oc
from recon.ledger import Ledger
from recon.resolve_view import Item, ResolveModel, ResolveWidget

pytest.importorskip("ipywidgets")


@pytest.fixture
def case(write_case, tmp_path):
    from conftest import USERS, lms

    # bobb@ is one letter from bob@ and from bobby@: a row with two candidates
    users = [*USERS, {"email": "bobby@example.com", "userId": "u-bobby"}]
    done = [lms("u-ann", "lp-safe", "completed", "2026-01-15T00:00:00Z")]
    config = write_case(ROWS, done, users)
    ledger = tmp_path / "ledger.db"
    assert reconcile(config, tmp_path / "run1", ledger) == 1
    return config, ledger, tmp_path


def _go_to(widget: ResolveWidget, item: Item) -> None:
    while widget.model.current != item:
        widget.next.click()


def test_the_widget_shows_the_rows_evidence_beside_its_candidates(case):
    _, ledger, _ = case
    with Ledger(ledger) as opened:
        widget = ResolveWidget(ResolveModel(opened, by="ana"))
        items = widget.model.items
        assert Item(2, "learner") in items and Item(4, "path") in items
        assert all(i.row != 5 for i in items)  # truly absent: nothing offered
        _go_to(widget, Item(2, "learner"))
        # the provider's cells as the file had them, and the row's outcome
        assert "an@example.com" in widget.evidence.value
        assert "LEAD-300" in widget.evidence.value
        assert oc.UNKNOWN_LEARNER in widget.evidence.value
        shown = " ".join(getattr(c, "value", "") for c in _labels(widget))
        assert "ann@example.com" in shown and "u-ann" in shown
        assert len(widget.accept_buttons) == len(widget.reject_buttons) >= 1


def _labels(widget):
    for box in widget.choices.children:
        yield from getattr(box, "children", [box])


def test_accept_by_click_is_saved_at_once_and_used_by_the_next_run(case):
    config, ledger, tmp = case
    with Ledger(ledger) as opened:
        widget = ResolveWidget(ResolveModel(opened, by="ana"))
        _go_to(widget, Item(2, "learner"))
        widget.accept_buttons[0].click()
        assert "saved in the ledger" in widget.message.value
        assert Item(2, "learner") not in widget.model.items  # resolved: not open any more
    # saved at the click: another connection sees it
    with Ledger(ledger) as other:
        stored = al.active(other)
        assert list(stored["value"]) == ["an@example.com"]
        assert list(stored["target_id"]) == ["u-ann"] and list(stored["by"]) == ["ana"]
    assert reconcile(config, tmp / "run2", ledger) == 1
    row = outcomes(tmp / "run2")[2]
    assert row["userId"] == "u-ann" and "resolved through an alias" in row["detail"]


def test_reject_by_click_is_never_offered_again(case):
    config, ledger, tmp = case
    with Ledger(ledger) as opened:
        widget = ResolveWidget(ResolveModel(opened, by="ana"))
        _go_to(widget, Item(3, "learner"))
        before = list(widget.model.candidates(Item(3, "learner"))["candidate_id"])
        widget.reject_buttons[0].click()
        assert "rejected 1" in widget.message.value
        assert before[0] in al.rejected(opened)[0]
        after = widget.model.candidates(Item(3, "learner"))
        assert before[0] not in set(after["candidate_id"])


def test_pick_another_accepts_the_candidate_clicked(case):
    _, ledger, _ = case
    with Ledger(ledger) as opened:
        model = ResolveModel(opened, by="ana")
        item = next(
            i for i in model.items if model.candidates(i)["candidate_id"].notna().sum() >= 2
        )
        second = model.candidates(item)["candidate_id"].dropna().iloc[1]
        widget = ResolveWidget(model)
        _go_to(widget, item)
        widget.accept_buttons[1].click()
        stored = al.active(opened)
        assert list(stored["target_id"]) == [second]


def _text(markup: str) -> str:
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def test_each_candidate_reads_in_the_analysts_words_the_id_as_detail(case):
    """The email or course code leads, with "score N.NN" and the reason; the LMS id is
    grey detail after them (the widget once led with the id, unlabelled score beside)."""
    _, ledger, _ = case
    with Ledger(ledger) as opened:
        widget = ResolveWidget(ResolveModel(opened, by="ana"))
        for item in widget.model.items:
            _go_to(widget, item)
            lines = widget.model.candidates(item).to_dict("records")
            labels = [
                b.children[0] if hasattr(b, "children") else b for b in widget.choices.children[1:]
            ]
            assert len(labels) == len(lines)
            for line, label in zip(lines, labels, strict=True):
                text = " ".join(_text(label.value).split())
                assert (
                    "(no guess)" in text
                    if not line["candidate"]
                    else text.startswith(line["candidate"])
                ), text
                if isinstance(line["candidate_id"], str):
                    assert f"score {line['score']:.2f}" in text, text
                    # the id after the words, in grey
                    assert text.index(line["candidate_id"]) > text.index(line["reason"])
                    assert "color:#757575" in label.value
            # the provider's column names never wrap ("Provider Ref" on one line)
            assert "white-space:nowrap" in widget.evidence.value


def test_notebook_tables_put_the_analysts_words_first_and_ids_last(case):
    import recon.notebook as rn

    _, ledger, _ = case
    with Ledger(ledger) as opened:
        model = ResolveModel(opened, by="ana")
        model.accept(model.items[0])
        for frame in (model.open.drop(columns=["rank"]), al.active(opened)):
            shown = rn.resolve_table(frame).data
            assert set(shown.columns) == set(frame.columns), "every column is kept"
            ids = [c for c in shown.columns if c in ("candidate_id", "target_id", "run_id")]
            assert ids and list(shown.columns[-len(ids) :]) == ids
            assert all(s == "" or len(s.split(".")[1]) == 2 for s in shown["score"]), shown
            if "at" in shown.columns:
                assert all(v.endswith(" UTC") and len(v) == 20 for v in shown["at"]), shown
