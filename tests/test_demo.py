"""`recon demo`: the whole loop on the bundled sample, against the in-process sandbox.
The tests share one demo run (the ``demo_run`` fixture)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from recon import outcomes as oc
from recon.cli import main
from recon.demo import POLICY
from recon.ledger import Ledger


def test_demo_closes_the_gap_and_writes_the_report(demo_run: tuple[Any, str]) -> None:
    result, _ = demo_run
    before, after = result.before, result.after
    assert before.counts[oc.MISSING_COMPLETION] > 0 and before.counts[oc.MISSING_PROGRESS] > 0
    assert result.gap_closed
    assert after.counts[oc.MISSING_COMPLETION] == after.counts[oc.MISSING_PROGRESS] == 0
    assert result.submission.accepted == len(before.proposals)
    assert result.submission.exit_code == 0
    # What was accepted is now in sync; nothing else changed.
    moved = before.counts[oc.MISSING_COMPLETION] + before.counts[oc.MISSING_PROGRESS]
    assert after.counts[oc.IN_SYNC] == before.counts[oc.IN_SYNC] + moved
    for name in oc.PROBLEMS:
        assert after.counts[name] == before.counts[name]
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
