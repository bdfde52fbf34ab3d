"""The review model without any widget, and the shared formatting helpers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from conftest import AS_OF, ext, write_case_in
from hypothesis import given
from hypothesis import strategies as st

from recon.errors import ReconError
from recon.fmt import code_spellings, duration, esc, path_label
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.review_model import Filters, ReviewModel

USERS = [{"email": f"user{i:02d}@example.com", "userId": f"u{i:02d}"} for i in range(12)]
EXTERNAL = [
    ext(u["email"], "SAFE-101", "Completed", f"2026-0{1 + i % 3}-0{1 + i % 9}")
    for i, u in enumerate(USERS)
] + [ext(u["email"], "DATA-200", "In Progress", "", "2026-02-03") for u in USERS[:5]]


@pytest.fixture
def model(tmp_path: Path) -> Iterator[ReviewModel]:
    config = write_case_in(tmp_path / "case", EXTERNAL, [], users=USERS)
    with Ledger(tmp_path / "ledger.db") as ledger:
        reconcile_run(config, as_of=AS_OF, ledger=ledger)
        yield ReviewModel(ledger, by="tester", page_size=5)


def test_filters_use_the_ledgers_own_selection(model: ReviewModel) -> None:
    assert model.matching_count == 17 and model.page_count == 4
    assert model.set_filters(kind="missing-progress") == 5
    expected = model.ledger.select(model.run_id, categories=["missing-progress"])
    assert model.matching()["key"].tolist() == expected
    path = model.matching()["learningPathId"].iloc[0]
    # The ledger compares path ids without case: so does the model, through it.
    assert model.set_filters(kind="", path=path.upper()) == 5
    assert model.set_filters(path="", learner="USER11") == 1
    assert model.set_filters(learner="", date_from=date(2026, 2, 1), date_to=date(2026, 2, 28)) > 0
    assert all(d.month == 2 for d in model.matching()["day"])
    with pytest.raises(TypeError):
        model.set_filters(colour="blue")


def test_describe_names_the_path_by_its_code(model: ReviewModel) -> None:
    path = model.frame.loc[model.frame["path"] == "DATA-200", "learningPathId"].iloc[0]
    model.set_filters(path=path, decision="undecided")
    assert model.describe_filters().startswith("path DATA-200 (")
    assert "decision undecided" in model.describe_filters()
    assert Filters().describe() == "no filter"


def test_paging_clamps(model: ReviewModel) -> None:
    assert model.go_to(99) == 3 and len(model.page_frame()) == 2
    assert model.go_to(-4) == 0 and len(model.page_frame()) == 5


def test_decide_and_bulk_leave_decided_ones(model: ReviewModel) -> None:
    first = model.frame["key"].iloc[0]
    model.decide([first], "rejected", note="left the company")
    model.set_filters(kind="missing-completion")
    decided, words = model.decide_matching("approved", note="provider confirmed")
    assert words == "kind missing-completion"
    assert first in decided.left and len(decided.changed) == 11
    assert model.counts() == {"undecided": 5, "approved": 11, "rejected": 1}
    held = model.ledger.decisions_of(first)
    assert held["note"].tolist() == ["left the company"]
    # What the model shows is what the ledger holds.
    fresh = ReviewModel(model.ledger)
    assert fresh.counts() == model.counts()
    with pytest.raises(ReconError, match="no proposal with key"):
        model.decide(["nope"], "approved")


@given(st.floats(min_value=0, max_value=10 * 86400, allow_nan=False))
def test_one_duration_spelling(seconds: float) -> None:
    text = duration(seconds)
    assert text.endswith((" s", " min"))
    assert not any(c + "s" in text or c + "m" in text for c in "0123456789")


def test_escape_and_labels() -> None:
    assert esc(None) == "" and esc(float("nan")) == "" and esc("<b>") == "&lt;b&gt;"
    uuid = "40e6e947-0931-4553-90a6-c78472039f7f"
    assert path_label("SAFE-101", uuid) == "SAFE-101 (40e6e947…)"
    assert path_label(None, uuid) == uuid
    import pandas as pd

    frame = pd.DataFrame(
        {"learningPathId": [uuid, uuid.upper(), uuid], "path": ["safe-101", "SAFE-101", "SAFE-101"]}
    )
    assert code_spellings(frame) == {uuid: "SAFE-101"}
