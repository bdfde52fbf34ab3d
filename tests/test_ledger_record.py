"""Recording a run (Ledger.record_run): whatever mix of new keys and keys stored by earlier
runs a list holds, in whatever order, every run reads back exactly as it was recorded,
each key is stored once with its first proposal, and a run stores only what it saw
differently; recording takes no SQL statement per reference to a new key."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.engine import reconcile
from recon.ledger import Ledger
from recon.result import PROPOSAL_COLUMNS, SOURCE_COLUMNS, payload

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "recon.toml"
COLUMNS = [*PROPOSAL_COLUMNS, *SOURCE_COLUMNS, "payload"]
# what a run may see differently from a key's first proposal (None: nothing)
EDITS = {
    "learner": st.sampled_from([None, "Someone Else", "é ü"]),
    "rows": st.sampled_from([None, "9999;1", "7"]),
    "path": st.sampled_from([None, "ANOTHER-CODE", "P-1"]),
    "category": st.sampled_from(["missing-progress", "missing-completion"]),
}


@pytest.fixture(scope="module")
def sample_result() -> Any:
    result = reconcile(SAMPLE, as_of="2026-06-01T00:00:00Z")
    assert len(result.proposals) >= 6
    return result


def _as_read(ledger: Ledger, run_id: int) -> pd.DataFrame:
    frame = ledger.proposals(run_id)[COLUMNS]
    return frame.astype(object).where(frame.notna(), None).reset_index(drop=True)


def _as_recorded(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype(object).where(frame.notna(), None).reset_index(drop=True)
    frame["payload"] = pd.Series(
        [json.dumps(payload(r), separators=(",", ":")) for r in frame.to_dict("records")],
        dtype=object,
    )
    return frame[COLUMNS]


@st.composite
def runs(draw: st.DrawFn, pool: int) -> list[tuple[list[int], list[dict[str, Any]]]]:
    """1-4 runs, each some of the pool's proposals in some order, each with edits."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        picked = draw(st.permutations(range(pool)))[: draw(st.integers(1, pool))]
        edits = [
            draw(st.fixed_dictionaries({}, optional=EDITS)) for _ in picked
        ]  # one dict per picked proposal
        out.append((list(picked), edits))
    return out


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_run_reads_back_as_recorded_whatever_keys_came_before(
    sample_result: Any, data: st.DataObject
) -> None:
    pool = sample_result.proposals.head(12).reset_index(drop=True)
    plan = data.draw(runs(len(pool)))
    first: dict[str, dict[str, Any]] = {}
    recorded = []
    with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "l.db") as ledger:
        for picked, edits in plan:
            frame = pool.iloc[picked].astype(object).reset_index(drop=True)
            frame = frame.where(frame.notna(), None)
            for at, edit in enumerate(edits):
                for column, value in edit.items():
                    frame.at[at, column] = value
            run_id = ledger.record_run(dataclasses.replace(sample_result, proposals=frame))
            recorded.append((run_id, frame, edits))
            for row in frame.to_dict("records"):
                first.setdefault(row["key"], row)
        for run_id, frame, _ in recorded:
            pd.testing.assert_frame_equal(_as_read(ledger, run_id), _as_recorded(frame))
            # the view's rowid: the place in the run's list, from 1 (as the table had it)
            order = ledger._query(
                "SELECT rowid FROM proposals WHERE run_id = ? ORDER BY rowid", (run_id,)
            )
            assert [row[0] for row in order] == list(range(1, len(frame) + 1))
        # each key once, with the fields it was first proposed with
        stored = {
            key: (rows, learner)
            for key, rows, learner in ledger._query("SELECT key, rows, learner FROM corrections")
        }
        assert stored == {k: (r["rows"], r["learner"]) for k, r in first.items()}
        # a run stores only what it saw differently from a key's first proposal
        for run_id, frame, _ in recorded:
            differing = sum(
                any(row[c] != first[row["key"]][c] for c in ("category", "rows", "learner", "path"))
                for row in frame.to_dict("records")
            )
            overrides = ledger._query(
                "SELECT count(*) FROM run_proposals WHERE run_id = ? AND (category IS NOT NULL "
                "OR rows IS NOT NULL OR learner IS NOT NULL OR path IS NOT NULL)",
                (run_id,),
            )[0][0]
            assert overrides == differing


def _statements(ledger: Ledger, action: Any) -> list[str]:
    """The SQL statements SQLite ran during ``action()`` (one per row of an executemany)."""
    ran: list[str] = []
    ledger._db.set_trace_callback(ran.append)
    try:
        action()
    finally:
        ledger._db.set_trace_callback(None)
    return ran


def test_a_new_list_takes_one_statement_per_new_key_and_none_per_reference(
    sample_result: Any, tmp_path: Path
) -> None:
    props = sample_result.proposals
    many = pd.concat([props] * 40, ignore_index=True)
    many["key"] = [f"{i:020x}" for i in range(len(many))]
    result = dataclasses.replace(sample_result, proposals=many)
    with Ledger(tmp_path / "l.db") as ledger:
        ran = _statements(ledger, lambda: ledger.record_run(result))
        inserts = [s for s in ran if s.lstrip().startswith("INSERT INTO corrections")]
        assert len(inserts) == len(many)
        assert len([s for s in ran if "INTO proposal_lists" in s]) == 1
        # else a handful, two per distinct word (paths, statuses, categories, codes) and
        # one per suggestion and per month of completions
        words = set(many[["learningPathId", "status", "category", "path"]].stack())
        few = len(result.suggestions) + len(result.completions)
        assert len(ran) - len(inserts) < 30 + 2 * len(words) + few
        # the same keys again, in another order with another learner for a few: one
        # reference each, no correction again
        again = many.iloc[::-1].reset_index(drop=True)
        again.loc[:4, "learner"] = "Someone Else"
        rerun = dataclasses.replace(result, proposals=again)
        ran = _statements(ledger, lambda: ledger.record_run(rerun))
        assert not [s for s in ran if "INTO corrections" in s]
        refs = [s for s in ran if s.lstrip().startswith("INSERT INTO proposal_lists")]
        assert len([s for s in refs if "VALUES" in s]) == len(again)
        assert ledger.proposals(2)["learner"].head(5).tolist() == ["Someone Else"] * 5
