"""Ledger storage (schema 7): a run's list of proposals and its suggestions are stored
once per distinct content, a run proposing what an earlier run did refers to that run's
lists; the migration from schema 6 loses nothing and every ledger feature still works."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest
from ledger_inspect import raw_rows as _raw
from ledger_inspect import used_bytes as _size

from recon import aliases
from recon import ledger as lg
from recon.cli import main
from recon.devtools.synth import AS_OF as SYNTH_AS_OF
from recon.devtools.synth import generate
from recon.errors import LedgerError
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.target import Target

FIXTURE = Path(__file__).parent / "fixtures" / "ledger-schema6.db"
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "recon.toml"
REAL = Target("https://lms.example.com:443", practice=False)
PRACTICE = Target("http://127.0.0.1:8765", practice=True)

# What a schema-6 ledger holds, read with plain SQL before and after the migration.
SNAPSHOT = {
    "proposals": "SELECT * FROM proposals ORDER BY run_id, rowid",
    "run_proposals": "SELECT * FROM run_proposals ORDER BY run_id, seq",
    "suggestions": "SELECT * FROM suggestions ORDER BY run_id, row, kind, rank",
    "corrections": "SELECT * FROM corrections ORDER BY id",
    "words": "SELECT * FROM words ORDER BY id",
    "aliases": "SELECT * FROM aliases ORDER BY id",
    "suggestion_rejections": "SELECT * FROM suggestion_rejections ORDER BY id",
    "decisions": "SELECT * FROM decisions ORDER BY id",
    "attempts": "SELECT * FROM attempts ORDER BY id",
    "blobs": "SELECT * FROM blobs ORDER BY id",
    "run_completions": "SELECT * FROM run_completions ORDER BY rowid",
    "run_exceptions": "SELECT * FROM run_exceptions ORDER BY run_id, row",
    "run_pulls": "SELECT * FROM run_pulls ORDER BY rowid",
    "lms": "SELECT * FROM lms",
}


@pytest.fixture
def old_ledger(tmp_path: Path) -> Path:
    """A copy of the schema-6 ledger recon 8fa68c3 wrote: three runs of the bundled
    sample (the first two on the same inputs), suggestions, an alias, a rejected
    suggestion, decisions, attempts to a practice sandbox and to a real LMS (bound), one
    attempt never answered (see tests/fixtures/make_ledger_schema6.py)."""
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    assert _raw(path, "PRAGMA user_version") == [(6,)]
    return path


def test_a_schema_6_ledger_migrates_with_nothing_lost(old_ledger: Path) -> None:
    before = {name: _raw(old_ledger, sql) for name, sql in SNAPSHOT.items()}
    for name in ("proposals", "suggestions", "aliases", "suggestion_rejections", "decisions"):
        assert before[name], name  # the fixture holds some of each
    assert {r[0] for r in before["suggestions"]} == {1, 2, 3}
    runs_before = _raw(old_ledger, "SELECT * FROM runs ORDER BY id")
    with Ledger(old_ledger) as ledger:
        assert ledger.schema_version == len(lg.MIGRATIONS) == 7
    # every table and view a schema-6 query reads gives back the same rows, in order
    for name, sql in SNAPSHOT.items():
        assert _raw(old_ledger, sql) == before[name], name
    old_columns = [r[1] for r in _raw(FIXTURE, "PRAGMA table_info(runs)")]
    cols = ", ".join(old_columns)
    assert _raw(old_ledger, f"SELECT {cols} FROM runs ORDER BY id") == runs_before
    # each old run keeps its own lists (no digest: a later run never refers to them)
    assert _raw(
        old_ledger,
        "SELECT id, proposal_list, proposals_sha256, suggestion_list, suggestions_sha256 "
        "FROM runs ORDER BY id",
    ) == [(r, r, None, r, None) for r in (1, 2, 3)]
    kinds = dict(_raw(old_ledger, "SELECT name, type FROM sqlite_master"))
    assert kinds["run_proposals"] == kinds["suggestions"] == kinds["proposals"] == "view"
    assert kinds["proposal_lists"] == kinds["suggestion_lists"] == "table"


def test_every_ledger_feature_works_on_a_migrated_schema_6_ledger(
    old_ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latest = dict(_raw(old_ledger, "SELECT key, decision FROM decisions ORDER BY id"))
    offered = _raw(
        old_ledger,
        "SELECT row, kind, value, candidate_id FROM suggestions WHERE run_id = 1 "
        "ORDER BY row, kind, rank",
    )
    alias = _raw(old_ledger, "SELECT kind, value, target_id FROM aliases")
    turned_down = _raw(old_ledger, "SELECT kind, value, candidate_id FROM suggestion_rejections")
    blob_1 = _raw(old_ledger, "SELECT b.data FROM runs r JOIN blobs b ON b.id = r.exceptions")
    with Ledger(old_ledger) as ledger:
        # history: runs with what became of their proposals, per the bound LMS
        runs = ledger.runs()
        assert runs["run_id"].tolist() == [1, 2, 3]
        assert runs["accepted"].tolist() == [2, 0, 0]
        assert runs["approved"].tolist() == [
            sum(latest.get(k) == "approved" for k in ledger.proposals(r)["key"]) for r in (1, 2, 3)
        ]
        # decisions: the latest per key, in every run proposing it
        for run_id in (1, 2, 3):
            frame = ledger.proposals(run_id)
            assert frame["decision"].tolist() == [latest.get(k, "undecided") for k in frame["key"]]
        # attempts, per target
        assert ledger.accepted_keys(REAL) == {
            r[0] for r in _raw(old_ledger, "SELECT key FROM attempts WHERE practice = 0")
        }
        states = ledger.proposals(1, PRACTICE)["submission"]
        assert sorted(states[states != "not-sent"]) == [
            "accepted",
            "accepted",
            "accepted",
            "rejected",
            "unknown",
        ]
        # a report of an old run: its exceptions as recorded, no input read
        exceptions = ledger.result(1).exceptions
        assert len(exceptions) > 0
        pd.testing.assert_frame_equal(exceptions, lg._exceptions_frame(blob_1[0][0]))
        # suggestions: open ones are those neither resolved by the alias nor rejected
        open_1 = aliases.suggestions(ledger, 1)
        gone = {(k, v.lower()) for k, v, _ in alias}
        assert len(open_1) < len(offered)
        pairs = zip(open_1["kind"], open_1["value"], open_1["candidate_id"], strict=True)
        for kind, value, candidate in pairs:
            assert (kind, value.lower()) not in gone
            assert (kind, value, candidate) not in turned_down
        # resolve still acts on an old run's suggestions
        row = int(open_1.loc[open_1["candidate_id"].notna(), "row"].iloc[0])
        assert aliases.accept(ledger, row, run=1, by="dee").accepted == 1
        # already-submitted: a new run knows what the LMS accepted, and uses the aliases
        fourth = reconcile_run(SAMPLE, as_of="2026-07-01T00:00:00Z", ledger=ledger)
        assert fourth.run_id == 4
        assert fourth.counts["already-submitted"] >= 2
        assert not set(fourth.proposals["key"]) & ledger.accepted_keys(REAL)
        # the same inputs again: run 5 refers to run 4's lists and reads the same
        fifth = reconcile_run(SAMPLE, as_of="2026-07-01T00:00:00Z", ledger=ledger)
        lists = ledger._query("SELECT proposal_list, suggestion_list FROM runs WHERE id = 5")
        assert tuple(lists[0]) == (4, 4)
        same = ["key", "payload", "category", "rows", "learner", "path", "decision"]
        pd.testing.assert_frame_equal(ledger.proposals(5)[same], ledger.proposals(4)[same])
        pd.testing.assert_frame_equal(
            aliases.suggestions(ledger, 5), aliases.suggestions(ledger, 4)
        )
        assert len(aliases.suggestions(ledger, 5)) == len(fifth.suggestions) > 0
        # decisions by key and by run work on a run that refers to another's list
        keys = ledger.select(run=5, everything=True)
        done = ledger.decide(keys, "rejected", run=5, only_undecided=True)
        assert set(done.changed) == {k for k in keys if k not in latest}
        assert set(ledger.proposals(4)["decision"]) <= {"approved", "rejected"}
    # the commands: status, a report of an old run, resolve listing a run's suggestions
    assert main(["status", "--ledger", str(old_ledger)]) == 0
    assert "5" in capsys.readouterr().out
    report = tmp_path / "run1.html"
    assert main(["report", "--ledger", str(old_ledger), "--run", "1", "--out", str(report)]) == 0
    assert report.stat().st_size > 1000
    capsys.readouterr()
    assert main(["resolve", "--ledger", str(old_ledger), "--run", "5"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("run 5: open suggestions")
    assert listed.count("\n  row ") == len(fifth.suggestions)


def test_a_second_run_on_the_same_inputs_stores_no_list_again(tmp_path: Path) -> None:
    config = generate(tmp_path / "in", 20_000)
    path = tmp_path / "l.db"
    with Ledger(path) as ledger:
        empty = _size(path)
        first = reconcile_run(config, as_of=SYNTH_AS_OF, ledger=ledger)
        one = _size(path)
        second = reconcile_run(config, as_of=SYNTH_AS_OF, ledger=ledger)
        two = _size(path)
        assert len(first.proposals) > 1000 and len(first.suggestions) > 10
        lists = ledger._query("SELECT id, proposal_list, suggestion_list FROM runs ORDER BY id")
        assert [tuple(r) for r in lists] == [(1, 1, 1), (2, 1, 1)]
        for name in ("proposal_lists", "suggestion_lists"):
            assert ledger._query(f"SELECT DISTINCT list_id FROM {name}")[0][0] == 1
        pd.testing.assert_frame_equal(
            ledger.proposals(2).drop(columns="run_id"), ledger.proposals(1).drop(columns="run_id")
        )
        assert len(aliases.suggestions(ledger, 2)) == len(second.suggestions)
    # the run's own line and its completions: a page or two, whatever the proposals
    assert two - one <= 4 * 4096 and two - one < 0.03 * (one - empty), (one - empty, two - one)


def test_a_run_refers_only_to_a_list_exactly_like_its_own(tmp_path: Path) -> None:
    result = reconcile_run(SAMPLE, as_of="2026-06-01T00:00:00Z")  # with suggestions
    assert len(result.proposals) > 10 and len(result.suggestions) > 1
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.record_run(result)
        # one proposal seen differently (its learner): a list of its own
        other = result.proposals.copy()
        other.iloc[7, other.columns.get_loc("learner")] = "Someone Else"
        ledger.record_run(dataclasses.replace(result, proposals=other))
        # one proposal fewer: a list of its own
        ledger.record_run(dataclasses.replace(result, proposals=result.proposals.iloc[1:]))
        # another order: a list of its own
        ledger.record_run(dataclasses.replace(result, proposals=result.proposals.iloc[::-1]))
        # the same proposals, other suggestions: the first run's proposals, its own suggestions
        fewer = result.suggestions.iloc[1:]
        ledger.record_run(dataclasses.replace(result, suggestions=fewer))
        lists = [tuple(r) for r in ledger._query("SELECT proposal_list FROM runs ORDER BY id")]
        assert lists == [(1,), (2,), (3,), (4,), (1,)]
        assert ledger.proposals(2)["learner"].iloc[7] == "Someone Else"
        assert len(ledger.proposals(3)) == len(result.proposals) - 1
        assert ledger.proposals(4)["key"].tolist() == result.proposals["key"].tolist()[::-1]
        assert ledger._query("SELECT suggestion_list FROM runs WHERE id = 5")[0][0] == 5
        assert len(ledger._query("SELECT * FROM suggestions WHERE run_id = 5")) == len(fewer)


def test_suggestions_recorded_for_a_run_recorded_without_any(tmp_path: Path) -> None:
    result = reconcile_run(SAMPLE, as_of="2026-06-01T00:00:00Z")
    found = result.suggestions
    assert len(found) > 0
    with Ledger(tmp_path / "l.db") as ledger:
        none = dataclasses.replace(result, suggestions=found.iloc[0:0])
        run_id = ledger.record_run(none)
        other = ledger.record_run(none)  # no suggestions either: must not see run_id's
        assert aliases.suggestions(ledger, run_id).empty
        aliases.record_suggestions(ledger, run_id, found)
        back = aliases.suggestions(ledger, run_id)
        assert (
            back[list(found.columns)]
            .astype(object)
            .where(back.notna(), None)
            .equals(found.reset_index(drop=True).astype(object).where(found.notna(), None))
        )
        assert aliases.suggestions(ledger, other).empty
        with pytest.raises(LedgerError, match="recorded already"):
            aliases.record_suggestions(ledger, run_id, found)
