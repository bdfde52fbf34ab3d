"""`recon demo`: the whole loop on the bundled sample, against the in-process sandbox.
The tests share one demo run (the ``demo_run`` fixture)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from recon import aliases
from recon import outcomes as oc
from recon.cli import main
from recon.demo import ACCEPT_ABOVE, POLICY, THROUGH_ALIAS
from recon.ledger import Ledger


def test_demo_closes_the_gap_and_writes_the_report(demo_run: tuple[Any, str]) -> None:
    result, _ = demo_run
    before, after = result.before, result.after
    assert before.counts[oc.MISSING_COMPLETION] > 0 and before.counts[oc.MISSING_PROGRESS] > 0
    assert result.gap_closed
    assert after.counts[oc.MISSING_COMPLETION] == after.counts[oc.MISSING_PROGRESS] == 0
    assert result.submission.accepted == len(before.proposals)
    assert result.submission.exit_code == 0
    # What was accepted is now in sync, and so are the rows resolved through the aliases
    # the demo accepted (the sample's near misses are in sync in the LMS); nothing else
    # changed.
    moved = before.counts[oc.MISSING_COMPLETION] + before.counts[oc.MISSING_PROGRESS]
    through = result.through_aliases
    assert set(through["outcome"].astype(str)) == {oc.IN_SYNC}
    was = before.outcomes.set_index("row").loc[through["row"], "outcome"].astype(str)
    assert after.counts[oc.IN_SYNC] == before.counts[oc.IN_SYNC] + moved + len(through)
    for name in oc.PROBLEMS:
        assert after.counts[name] == before.counts[name] - (was == name).sum(), name
    page = result.report.read_text(encoding="utf-8")
    assert "Trend over runs" in page and "data:image/png;base64," in page
    for run in ("run-1", "run-2"):
        summary = json.loads((result.out / run / "summary.json").read_text())
        assert summary["rows_read"] == 2000
    with Ledger(result.out / "ledger" / "recon-ledger.db") as ledger:
        assert ledger.runs()["run_id"].tolist() == [1, 2]
        decisions = ledger.decisions()
        assert set(decisions["policy"]) == {POLICY}
        assert set(decisions["by"]) == {"recon demo"}


def test_demo_command_runs_again_in_a_folder_that_holds_a_demo(
    demo_run: tuple[Any, str], tmp_path: Path, capsys
) -> None:
    result, first = demo_run
    assert "the gap is closed" in first
    out = tmp_path / "again"
    shutil.copytree(result.out, out)
    assert main(["demo", "--out", str(out)]) == 0  # a rerun starts its ledger afresh
    text = capsys.readouterr().out
    assert "the gap is closed" in text
    assert "notebooks" in text and "report.html" in text
    with Ledger(out / "ledger" / "recon-ledger.db") as ledger:
        assert ledger.runs()["run_id"].tolist() == [1, 2]  # afresh: not runs 3 and 4


def test_demo_accepts_the_suggestions_above_its_score_as_a_recorded_choice(
    demo_run: tuple[Any, str],
) -> None:
    # Issue 14: the demo accepts the suggestions at or above a stated score as an explicit
    # bulk choice, recorded as such, and the rerun resolves exactly those rows through
    # the aliases; the rows scoring less stay open for an analyst.
    result, printed = demo_run
    how = f"accept-above {ACCEPT_ABOVE:g}"
    assert f"scoring {ACCEPT_ABOVE:g} or more" in printed and f"'{how}'" in printed
    with Ledger(result.out / "ledger" / "recon-ledger.db") as ledger:
        kept = aliases.active(ledger)
        offered = ledger._frame(
            "SELECT row, kind, value, candidate_id, score, rank FROM suggestions WHERE run_id = 1"
        )
        still_open = aliases.suggestions(ledger, 1)
    assert len(kept) == result.resolved.accepted >= 4  # learners and codes, in the sample
    assert set(kept["kind"]) == {"learner", "path"}
    assert set(kept["how"]) == {how} and set(kept["by"]) == {"recon demo"}
    assert set(kept["run_id"]) == {1} and (kept["score"] >= ACCEPT_ABOVE).all()
    # Exactly the rows whose best candidate scored enough were taken, with that candidate.
    best = offered[offered["rank"] == 1]
    taken = best[best["score"] >= ACCEPT_ABOVE]
    assert sorted(zip(kept["row"], kept["target_id"], strict=True)) == sorted(
        zip(taken["row"], taken["candidate_id"], strict=True)
    )
    left = still_open[still_open["rank"] == 1]
    assert len(left) == result.resolved.skipped > 0 and (left["score"] < ACCEPT_ABOVE).all()
    # The rerun: those rows, and only those, resolved through an alias, to the chosen id.
    through = result.through_aliases
    assert sorted(through["row"]) == sorted(kept["row"])
    assert f"{len(through)} row(s) {THROUGH_ALIAS} on this run" in printed
    for row, kind, target in zip(kept["row"], kept["kind"], kept["target_id"], strict=True):
        line = through[through["row"] == row].iloc[0]
        assert line["userId" if kind == "learner" else "learningPathId"] == target
        assert (
            f"{kind} {THROUGH_ALIAS}" in line["detail"]
            and f"({how} by recon demo" in line["detail"]
        )
    assert result.gap_closed
