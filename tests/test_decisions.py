"""Decisions (issue 8 case 3, issue 9): a bulk decision never overrides one made earlier
unless asked to, a decision by key or by row is always written, and nobody's decision is
lost to another's stale copy of the run.

The rule lives in one place (``Ledger.decide(..., only_undecided=True)``); the CLI and the
review widget are both tested against a real SQLite ledger, the widget with two instances
on one ledger file as two analysts would have them.
"""

from __future__ import annotations

import getpass
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AS_OF, ext, reconcile_into, write_case_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.cli import main
from recon.ledger import ANALYST_ENV, Decided, Ledger, default_analyst
from recon.pipeline import reconcile_run
from recon.review import ReviewWidget

NOTE = "learner left the company"
USERS = [{"email": f"user{i:02d}@example.com", "userId": f"u{i:02d}"} for i in range(8)]
# 8 completions of SAFE-101 (missing-completion) and 4 learners in progress on DATA-200
# (missing-progress): 12 proposals.
EXTERNAL = [
    ext(u["email"], "SAFE-101", "Completed", f"2026-01-{1 + i:02d}") for i, u in enumerate(USERS)
] + [
    ext(u["email"], "DATA-200", "In Progress", "", f"2026-02-{1 + i:02d}")
    for i, u in enumerate(USERS[:4])
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger holding one run of ``EXTERNAL`` (made once; tests work on copies)."""
    folder = tmp_path_factory.mktemp("decisions")
    config = write_case_in(folder / "case", EXTERNAL, [], users=USERS)
    with Ledger(folder / "template.db") as ledger:
        reconcile_run(config, as_of=AS_OF, ledger=ledger)
    return folder / "template.db"


@pytest.fixture
def path(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "recon-ledger.db"
    shutil.copyfile(template, copy)
    return copy


@pytest.fixture
def ledger(path: Path) -> Iterator[Ledger]:
    with Ledger(path) as opened:
        yield opened


def latest(ledger: Ledger) -> dict[str, tuple[str, str | None, str | None]]:
    """key -> (decision, by, note) as the ledger holds it now."""
    frame = ledger.proposals()
    return {r["key"]: (r["decision"], r["decided_by"], r["note"]) for r in frame.to_dict("records")}


def key_of(ledger: Ledger, user: str, category: str = "missing-completion") -> str:
    frame = ledger.proposals()
    rows = frame[(frame["userId"] == user) & (frame["category"] == category)]
    assert len(rows) == 1
    return str(rows["key"].iloc[0])


# -- the ledger's rule ---------------------------------------------------------------------


def test_a_bulk_decision_leaves_decided_proposals_and_counts_them(ledger: Ledger) -> None:
    rejected = key_of(ledger, "u03")
    assert ledger.decide([rejected], "rejected", note=NOTE) == Decided("rejected", (rejected,))
    everything = ledger.select(everything=True)
    decided = ledger.decide(everything, "approved", only_undecided=True)
    assert decided.left == (rejected,)
    assert set(decided.changed) == set(everything) - {rejected}
    assert decided.describe() == "approved 11; 1 already decided, left as it was"
    assert latest(ledger)[rejected] == ("rejected", None, NOTE)
    # By key (the default): written whatever the proposal had.
    flipped = ledger.decide([rejected], "approved", by="ana")
    assert flipped.changed == (rejected,) and flipped.left == ()
    assert latest(ledger)[rejected] == ("approved", "ana", None)


def test_describe_counts_several_left() -> None:
    decided = Decided("rejected", ("a",), ("b", "c"))
    assert decided.describe(" proposal(s)", "use --override") == (
        "rejected 1 proposal(s); 2 already decided, left as they were (use --override)"
    )
    assert Decided("approved", ("a", "b")).describe(" x") == "approved 2 x"


def test_a_bulk_decision_respects_a_decision_another_process_just_made(path: Path) -> None:
    with Ledger(path) as mine, Ledger(path) as theirs:
        keys = mine.select(everything=True)  # read while everything was undecided
        theirs.decide(keys[:2], "rejected", by="ben", note=NOTE)
        decided = mine.decide(keys, "approved", by="ana", only_undecided=True)
        assert decided.left == tuple(keys[:2])
        held = latest(theirs)
    assert [held[k] for k in keys[:2]] == [("rejected", "ben", NOTE)] * 2
    assert {held[k][0] for k in keys[2:]} == {"approved"}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    earlier=st.dictionaries(
        st.integers(0, 11), st.sampled_from(["approved", "rejected"]), max_size=12
    ),
    bulk=st.sets(st.integers(0, 11)),
    decision=st.sampled_from(["approved", "rejected"]),
    override=st.booleans(),
)
def test_bulk_rule_for_any_earlier_decisions(
    template: Path,
    tmp_path: Path,
    earlier: dict[int, str],
    bulk: set[int],
    decision: str,
    override: bool,
) -> None:
    path = tmp_path / f"l{len(list(tmp_path.iterdir()))}.db"
    shutil.copyfile(template, path)
    with Ledger(path) as ledger:
        keys = ledger.select(everything=True)
        for i, word in earlier.items():
            ledger.decide([keys[i]], word)
        chosen = [keys[i] for i in sorted(bulk)]
        decided = ledger.decide(chosen, decision, only_undecided=not override)
        held = latest(ledger)
    assert len(decided.changed) + len(decided.left) == len(chosen)
    for i, key in enumerate(keys):
        if i in bulk and (override or i not in earlier):
            assert held[key][0] == decision and key in decided.changed
        elif i in earlier:
            assert held[key][0] == earlier[i]
            assert (key in decided.left) == (i in bulk)
        else:
            assert held[key][0] == "undecided"


# -- who decides -----------------------------------------------------------------------------


def test_default_analyst_is_recon_analyst_else_the_login_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ANALYST_ENV, "  Dana Analyst ")
    assert default_analyst() == "Dana Analyst"
    monkeypatch.delenv(ANALYST_ENV)
    assert default_analyst() == getpass.getuser()


@pytest.mark.parametrize("named", ["Dana Analyst", None])
def test_cli_and_widget_record_the_same_person_by_default(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys, named: str | None
) -> None:
    if named is None:
        monkeypatch.delenv(ANALYST_ENV, raising=False)
    else:
        monkeypatch.setenv(ANALYST_ENV, named)
    expected = named or getpass.getuser()
    with Ledger(path) as ledger:
        first, second = ledger.select(everything=True)[:2]
    assert main(["approve", "--ledger", str(path), "--key", first]) == 0
    with Ledger(path) as ledger:
        widget = ReviewWidget(ledger, None)
        widget.approve([second])
        held = latest(ledger)
    assert held[first][1] == held[second][1] == expected


# -- case 3 on the command line ---------------------------------------------------------------


@pytest.fixture
def cli_case(write_case, tmp_path: Path) -> tuple[str, str]:
    """A reconciled ledger and the key of one missing-completion proposal."""
    config = write_case(EXTERNAL, [], users=USERS)
    ledger = tmp_path / "cli.db"
    assert reconcile_into(config, tmp_path / "out", ledger) == 1
    with Ledger(ledger) as opened:
        return str(ledger), key_of(opened, "u03")


@pytest.mark.parametrize(
    "bulk",
    [
        ["--category", "missing-completion"],
        ["--all"],
        ["--path", "lp-safe"],
        ["--all", "--run", "1"],
    ],
)
def test_cli_bulk_approval_keeps_an_individual_rejection(
    cli_case: tuple[str, str], capsys, bulk: list[str]
) -> None:
    ledger, key = cli_case
    assert main(["reject", "--ledger", ledger, "--key", key, "--note", NOTE, "--by", "ana"]) == 0
    assert "rejected 1 proposal(s) of run 1" in capsys.readouterr().out
    assert main(["approve", "--ledger", ledger, *bulk, "--by", "ben"]) == 0
    out = capsys.readouterr().out
    assert "; 1 already decided, left as it was (--override to change decided ones)" in out
    with Ledger(ledger) as opened:
        held = latest(opened)
        sendable = set(opened.to_send()["key"])
    assert held[key] == ("rejected", "ana", NOTE)
    assert key not in sendable
    assert len(sendable) == (11 if "--all" in bulk else 7)
    # Asked for explicitly: the rejection flips.
    assert main(["approve", "--ledger", ledger, *bulk, "--override", "--by", "ben"]) == 0
    out = capsys.readouterr().out
    assert "already decided" not in out
    with Ledger(ledger) as opened:
        assert latest(opened)[key] == ("approved", "ben", None)
        assert key in set(opened.to_send()["key"])


def test_cli_path_filter_compares_ids_as_the_engine_does(cli_case: tuple[str, str], capsys):
    """Ids are compared case-insensitively everywhere: `--path` given in another case
    (as the LMS or the mapping may spell it) selects the same proposals."""
    ledger, _ = cli_case
    with Ledger(ledger) as opened:
        expected = set(opened.select(paths=["lp-safe"]))
    assert expected
    assert main(["approve", "--ledger", ledger, "--path", "LP-Safe", "--by", "ana"]) == 0
    assert f"approved {len(expected)} proposal(s) of run 1" in capsys.readouterr().out
    with Ledger(ledger) as opened:
        assert set(opened.select(paths=["LP-SAFE"])) == expected
        approved = {k for k, (d, _, _) in latest(opened).items() if d == "approved"}
    assert approved == expected


def test_cli_decision_by_key_changes_it_whatever_it_was(cli_case: tuple[str, str], capsys) -> None:
    ledger, key = cli_case
    assert main(["approve", "--ledger", ledger, "--all"]) == 0
    assert main(["reject", "--ledger", ledger, "--key", key, "--note", NOTE]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "rejected 1 proposal(s) of run 1"
    with Ledger(ledger) as opened:
        assert latest(opened)[key][0::2] == ("rejected", NOTE)


def test_cli_reports_a_bulk_decision_that_changed_nothing(
    cli_case: tuple[str, str], capsys
) -> None:
    ledger, _ = cli_case
    assert main(["reject", "--ledger", ledger, "--all"]) == 0
    assert main(["approve", "--ledger", ledger, "--all"]) == 0
    out = capsys.readouterr().out.splitlines()[-1]
    assert out == (
        "approved 0 proposal(s) of run 1; 12 already decided, left as they were "
        "(--override to change decided ones)"
    )


# -- case 3 in the review widget ---------------------------------------------------------------


def test_widget_approve_all_matching_keeps_an_individual_rejection(ledger: Ledger) -> None:
    widget = ReviewWidget(ledger, None, by="ana")
    row = next(r for r in widget.rows if r.key == key_of(ledger, "u03"))
    widget.note.value = NOTE
    row.toggle.value = "rejected"
    widget.note.value = ""
    widget.kind.value = "missing-completion"
    assert widget.approve_matching() == 7
    assert "approved 7 proposal(s) matching kind missing-completion" in widget.summary.value
    assert "1 already decided, left as it was" in widget.summary.value
    assert latest(ledger)[row.key] == ("rejected", "ana", NOTE)
    assert widget.counts() == {"undecided": 4, "approved": 7, "rejected": 1}
    assert row.toggle.value == "rejected"
    # "Approve all matching" with the checkbox ticked flips it, once.
    widget.override.value = True
    widget.note.value = "provider re-sent the record"
    widget.approve_button.click()
    widget.confirm_button.click()  # the button asks first
    assert latest(ledger)[row.key] == ("approved", "ana", "provider re-sent the record")
    assert "already decided" not in widget.summary.value
    assert widget.override.value is False
    assert row.toggle.value == "approved"
    frame = ledger.proposals().set_index("key")
    assert frame.loc[row.key, "policy"] == (
        "all matching: kind missing-completion; overriding earlier decisions"
    )
    # The checkbox went back: the next bulk action leaves decided ones again.
    assert widget.reject_matching() == 0
    assert latest(ledger)[row.key][0] == "approved"


def test_widget_records_the_note_with_each_decision(ledger: Ledger) -> None:
    widget = ReviewWidget(ledger, None, by="ana")
    widget.note.value = "  checked with the provider  "
    widget.kind.value = "missing-progress"
    widget.reject_matching()
    frame = ledger.decisions()
    assert len(frame) == 4 and set(frame["note"]) == {"checked with the provider"}
    assert set(widget.frame.loc[widget.frame["decision"] == "rejected", "note"]) == {
        "checked with the provider"
    }


def test_an_explicit_click_is_written_over_a_stale_copy(path: Path) -> None:
    """Issue 9: another person's rejection in between made an explicit approval write
    nothing while the screen said "approved"."""
    with Ledger(path) as mine, Ledger(path) as theirs:
        me = ReviewWidget(mine, None, by="ana")
        other = ReviewWidget(theirs, None, by="ben")
        key = me.rows[0].key
        assert key is not None
        me.approve([key])
        other.reject([key])  # my copy still says approved
        assert me.approve([key]) == 1
        assert latest(theirs)[key][:2] == ("approved", "ana")
        # The row toggle goes through the same path.
        me.rows[0].toggle.value = "rejected"
        other.approve([key])
        me.rows[0].toggle.value = "approved"
        assert latest(theirs)[key][:2] == ("approved", "ana")
        assert len(mine.decisions()) == 6


def test_a_bulk_action_respects_a_decision_made_elsewhere_meanwhile(path: Path) -> None:
    with Ledger(path) as mine, Ledger(path) as theirs:
        me = ReviewWidget(mine, None, by="ana")
        other = ReviewWidget(theirs, None, by="ben")
        key = me.rows[2].key
        assert key is not None
        other.note.value = NOTE
        other.reject([key])
        assert me.frame.set_index("key").loc[key, "decision"] == "undecided"  # stale
        assert me.approve_matching() == 11
        assert "1 already decided, left as it was" in me.summary.value
        assert latest(mine)[key] == ("rejected", "ben", NOTE)
        # The screen now shows the ledger's decision, not the stale copy's.
        assert me.rows[2].toggle.value == "rejected"
        assert me.counts() == {"undecided": 0, "approved": 11, "rejected": 1}
