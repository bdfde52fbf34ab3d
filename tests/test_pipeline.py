"""The one path from the inputs to a recorded run (recon.pipeline): reconcile -> write the
outputs -> record. A failed write records nothing, loses nothing and says why; what the
engine needs from the ledger comes in as data; the README names each rule as the engine
does."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from conftest import AS_OF, ext, lms, reconcile_into

from recon import engine
from recon import outcomes as oc
from recon.errors import ReconError
from recon.ledger import Ledger
from recon.outputs import OUTPUT_FILES
from recon.pipeline import RUN_FOLDER, reconcile_run, run_folder

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
ROWS = [
    ext(completed="2026-01-15"),
    ext("bob@example.com", "DATA-200", "In Progress", activity="2026-02-01"),
    ext("nobody@example.com"),
]


@pytest.fixture
def config(write_case) -> Path:
    return write_case(ROWS, [lms("u-cy", "lp-lead", "completed", "2026-03-06")])


def _in_the_way(out: Path) -> None:
    """A folder where outcomes.csv belongs, holding a file: no write can replace it."""
    (out / "outcomes.csv").mkdir(parents=True)
    (out / "outcomes.csv" / "keep.txt").write_text("mine")


def test_a_write_failure_after_reconcile_records_no_run_and_says_why(
    config: Path, tmp_path: Path, capsys
) -> None:
    ledger = tmp_path / "l.db"
    assert reconcile_into(config, tmp_path / "first", ledger) == 1
    with Ledger(ledger) as opened:
        keys = opened.select(everything=True)
        opened.decide(keys[:1], "approved", by="ana", note="checked")
    capsys.readouterr()
    out = tmp_path / "second"
    _in_the_way(out)
    assert reconcile_into(config, out, ledger) == 2
    shown = capsys.readouterr()
    # One clear line on stderr naming the folder; the terminal never says "recorded".
    assert shown.err.startswith("recon: error: cannot write the outputs into")
    assert str(out) in shown.err and len(shown.err.strip().splitlines()) == 1
    assert "recorded as run" not in shown.out
    # The ledger is as it was: one run, its proposals and the decision; nothing lost.
    with Ledger(ledger) as opened:
        assert opened.runs()["run_id"].tolist() == [1]
        assert len(opened.proposals(1)) == len(keys)
        assert opened.decisions()["note"].tolist() == ["checked"]
    # Nothing of the analyst's is touched, and no half-written file is left behind.
    assert (out / "outcomes.csv" / "keep.txt").read_text() == "mine"
    assert not list(out.glob(".*.tmp"))
    # Once the way is clear, the same command records run 2.
    (out / "outcomes.csv" / "keep.txt").unlink()
    (out / "outcomes.csv").rmdir()
    assert reconcile_into(config, out, ledger) == 1
    with Ledger(ledger) as opened:
        assert opened.runs()["run_id"].tolist() == [1, 2]


def test_reconcile_run_records_only_after_writing(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _in_the_way(out)
    with Ledger(tmp_path / "l.db") as ledger:
        with pytest.raises(ReconError, match="cannot write the outputs"):
            reconcile_run(config, out=out, ledger=ledger, as_of=AS_OF)
        assert ledger.runs().empty
        result = reconcile_run(config, out=tmp_path / "ok", ledger=ledger, as_of=AS_OF)
        assert result.run_id == 1 and ledger.runs()["run_id"].tolist() == [1]


def test_the_summary_names_its_run_and_no_ledger_names_none(config: Path, tmp_path: Path) -> None:
    recorded = reconcile_run(config, out=tmp_path / "a", ledger=tmp_path / "l.db", as_of=AS_OF)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text(encoding="utf-8"))
    assert summary["run_id"] == recorded.run_id == 1
    assert summary["counts"] == recorded.counts and summary["rows_read"] == len(ROWS)
    alone = reconcile_run(config, out=tmp_path / "b", as_of=AS_OF)
    summary = json.loads((tmp_path / "b" / "summary.json").read_text(encoding="utf-8"))
    assert alone.run_id is None and summary["run_id"] is None
    assert summary["counts"] == recorded.counts


def test_run_folder_beside_the_ledger(config: Path, tmp_path: Path) -> None:
    """Notebook 01's way: run-N/ beside the ledger, written before the run is recorded."""
    ledger = tmp_path / "work" / "recon-ledger.db"
    ledger.parent.mkdir()
    for expected in (1, 2):
        result = reconcile_run(config, out=RUN_FOLDER, ledger=ledger, as_of=AS_OF)
        assert result.run_id == expected
        folder = run_folder(ledger, expected)
        assert sorted(p.name for p in folder.iterdir()) == sorted(OUTPUT_FILES.values())
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        assert summary["run_id"] == expected
    # The staging folders are gone: only the ledger's files and the run folders remain.
    assert not list(ledger.parent.glob(".run-pending-*"))


def test_run_folder_in_the_way_keeps_the_outputs_and_says_where(
    config: Path, tmp_path: Path
) -> None:
    """The run is recorded (its outputs were written), but run-1 is a file: the outputs
    stay where they were written, and the error names both places."""
    ledger = tmp_path / "recon-ledger.db"
    run_folder(ledger, 1).write_text("in the way")
    with pytest.raises(ReconError, match="the run is recorded, but its outputs") as error:
        reconcile_run(config, out=RUN_FOLDER, ledger=ledger, as_of=AS_OF)
    [staging] = tmp_path.glob(".run-pending-*")
    assert str(staging) in str(error.value) and "run-1" in str(error.value)
    assert sorted(p.name for p in staging.iterdir()) == sorted(OUTPUT_FILES.values())
    with Ledger(ledger) as opened:
        assert opened.runs()["run_id"].tolist() == [1]


def test_the_engine_gets_accepted_keys_as_data(write_case) -> None:
    """Pure: the engine takes what the ledger knows as data, and opens no ledger."""
    config = write_case(ROWS)
    first = engine.reconcile(config, as_of=AS_OF)
    key = first.proposals["key"].iloc[0]
    again = engine.reconcile(config, as_of=AS_OF, accepted_keys=[key])
    assert again.counts[oc.ALREADY_SUBMITTED] == 1
    assert key not in set(again.proposals["key"])
    assert first.run_id is None and again.run_id is None
    with pytest.raises(TypeError):
        engine.reconcile(config, as_of=AS_OF, ledger=config.parent / "l.db")  # type: ignore[call-arg]
    assert not (config.parent / "l.db").exists()


# --- the README names each rule as the engine does -----------------------------------


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("words", ["never downgrade", "earliest completion wins"])
def test_a_newcomer_finds_the_rules_by_their_readme_words(words: str) -> None:
    assert words in _plain(README)
    assert words in _plain((ROOT / "recon" / "engine.py").read_text(encoding="utf-8"))


def test_each_row_problem_rule_quotes_the_readme() -> None:
    rules = engine.row_rules("email", "course code", "'2026-06-01T00:00:00+00:00'")
    assert [r.outcome for r in rules if r.outcome != oc.VOIDED] == list(oc.ROW_PROBLEMS)
    outcomes_table = {
        m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z-]+)` \| ([^|]+) \|", README, re.M)
    }
    for rule in rules:
        assert outcomes_table[rule.outcome].strip() == rule.readme, rule.outcome


def test_each_verdict_quote_is_in_the_readme() -> None:
    source = (ROOT / "recon" / "engine.py").read_text(encoding="utf-8")
    quotes = [re.sub(r"\s*\n\s*--\s*", " ", q) for q in re.findall(r'-- README: "([^"]+)"', source)]
    assert len(quotes) >= 10
    for quote in quotes:
        assert _plain(quote.replace(" ...", "")) in _plain(README) or all(
            part.strip() in _plain(README) for part in quote.split("...")
        ), quote


def test_the_engine_imports_no_ledger_output_or_network() -> None:
    """Pure: the engine reads inputs and returns a Result; recording, writing and sending
    are other modules' (CONTRIBUTING.md's import table)."""
    tree = ast.parse((ROOT / "recon" / "engine.py").read_text(encoding="utf-8"))
    imported = {
        (node.module or "").split(".")[-1]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is None
        for name in (a.name for a in node.names)
    }
    assert imported, "the engine imports something"
    forbidden = {"ledger", "outputs", "pipeline", "client", "submit", "report", "sandbox"}
    assert not imported & forbidden


def test_the_api_documentation_the_code_cites_is_in_the_repository() -> None:
    cited = set()
    for path in (ROOT / "recon").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in re.findall(r"[\w./-]*(?:\.seed\.txt|lms-api-facts\.md)", text):
            cited.add((path.name, name))
    assert cited, "the code cites the endpoint's documentation"
    for module, name in cited:
        assert name.startswith("docs/api/"), (module, name)
        assert (ROOT / name).is_file(), (module, name)
