"""Accept once, remembered (issue 14): `recon resolve` accepts or rejects suggestions;
an accepted one is an alias the next run uses before the directory and the mapping and
says so in the outcome's detail; a rejected one is never offered again; aliases are
listed, exported and removed; --accept-above is recorded as the bulk choice it is."""

from __future__ import annotations

import csv
import sqlite3

import pytest
from conftest import AS_OF, ext, lms

from recon import aliases as al
from recon import outcomes as oc
from recon.cli import main
from recon.ledger import Ledger

ROWS = [
    ext("ann@example.com", completed="2026-01-15"),  # 1: known
    ext("an@example.com", "LEAD-300", completed="2026-01-15"),  # 2: one letter from ann
    ext("bobb@example.com", "DATA-200", "In Progress", activity="2026-02-01"),  # 3: bob
    ext("cy@example.com", "safe_0101", completed="2026-01-15"),  # 4: SAFE-101
    ext("zed@elsewhere.org", completed="2026-01-15"),  # 5: nobody
    ext("AN@example.com ", "DATA-200", completed="2026-01-20"),  # 6: the same value as 2
]


def reconcile(config, out, ledger):
    return main(
        [
            "reconcile",
            "--config",
            str(config),
            "--out",
            str(out),
            "--as-of",
            AS_OF,
            "--ledger",
            str(ledger),
        ]
    )


def outcomes(out):
    with (out / "outcomes.csv").open(newline="", encoding="utf-8") as fh:
        return {int(r["row"]): r for r in csv.DictReader(fh)}


def resolve(ledger, *args):
    return main(["resolve", "--ledger", str(ledger), "--by", "ana", *args])


@pytest.fixture
def case(write_case, tmp_path):
    config = write_case(ROWS, [lms("u-ann", "lp-safe", "completed", "2026-01-15T00:00:00Z")])
    ledger = tmp_path / "ledger.db"
    assert reconcile(config, tmp_path / "run1", ledger) == 1
    return config, ledger, tmp_path


def test_accept_a_row_then_the_next_run_uses_the_alias(case, capsys):
    config, ledger, tmp = case
    first = outcomes(tmp / "run1")
    assert first[2]["outcome"] == oc.UNKNOWN_LEARNER
    assert first[6]["outcome"] == oc.UNKNOWN_LEARNER
    capsys.readouterr()
    assert resolve(ledger) == 0
    listed = capsys.readouterr().out
    assert "an@example.com" in listed and "u-ann" in listed
    assert "zed@elsewhere.org" not in listed  # truly absent: nothing offered

    assert resolve(ledger, "--accept", "2") == 0
    assert "accepted 1" in capsys.readouterr().out
    assert reconcile(config, tmp / "run2", ledger) == 1
    second = outcomes(tmp / "run2")
    # row 2 and row 6 (the same value, other case and a blank) now resolve to u-ann
    for row in (2, 6):
        assert second[row]["userId"] == "u-ann"
        assert "resolved through an alias" in second[row]["detail"]
        assert "accepted row by ana" in second[row]["detail"]
    assert second[2]["outcome"] == second[6]["outcome"] == oc.MISSING_COMPLETION
    # (a duplicate's detail names the row used, whose detail says so: not repeated)
    # the row the directory resolves says nothing about aliases
    assert "alias" not in second[1]["detail"]
    with Ledger(ledger) as opened:
        stored = al.active(opened)
        assert list(stored["value"]) == ["an@example.com"]
        assert list(stored["how"]) == ["accepted row"] and list(stored["by"]) == ["ana"]
        # what is resolved is not offered again
        assert 2 not in set(al.suggestions(opened)["row"])


def test_reject_is_not_offered_again(case, capsys):
    config, ledger, tmp = case
    assert resolve(ledger, "--reject", "3") == 0
    assert reconcile(config, tmp / "run2", ledger) == 1
    with (tmp / "run2" / "suggestions.csv").open(newline="", encoding="utf-8") as fh:
        lines = list(csv.DictReader(fh))
    assert not any(r["row"] == "3" and r["candidate_id"] == "u-bob" for r in lines)
    assert outcomes(tmp / "run2")[3]["outcome"] == oc.UNKNOWN_LEARNER  # still never guessed


def test_accept_above_is_a_recorded_bulk_choice(case, capsys):
    config, ledger, tmp = case
    assert resolve(ledger, "--accept-above", "0.9") == 0
    said = capsys.readouterr().out
    with Ledger(ledger) as opened:
        stored = al.active(opened)
    assert set(stored["how"]) == {"accept-above 0.9"}
    assert (stored["score"] >= 0.9).all()
    # safe_0101 -> SAFE-101 scores 0.95: accepted; an/ann (one letter) is below 0.9: not
    assert "safe_0101" in set(stored["value"]) and "an@example.com" not in set(stored["value"])
    assert "left" in said
    assert reconcile(config, tmp / "run2", ledger) == 1
    assert outcomes(tmp / "run2")[4]["learningPathId"] == "lp-safe"
    assert "accept-above 0.9 by ana" in outcomes(tmp / "run2")[4]["detail"]


def test_aliases_listed_exported_removed(case, capsys):
    config, ledger, tmp = case
    resolve(ledger, "--accept", "2")
    resolve(ledger, "--accept", "4")
    capsys.readouterr()
    assert resolve(ledger, "--aliases") == 0
    listed = capsys.readouterr().out
    assert "an@example.com" in listed and "safe_0101" in listed
    target = tmp / "aliases.csv"
    assert resolve(ledger, "--export-aliases", str(target)) == 0
    with target.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == al.ALIAS_COLUMNS and len(rows) == 3
    with Ledger(ledger) as opened:
        first = int(al.active(opened)["id"].iloc[0])
    assert resolve(ledger, "--remove-alias", str(first)) == 0
    assert resolve(ledger, "--remove-alias", str(first)) == 2  # already removed: said so
    assert reconcile(config, tmp / "run2", ledger) == 1
    assert outcomes(tmp / "run2")[2]["outcome"] == oc.UNKNOWN_LEARNER
    # the history stays
    db = sqlite3.connect(ledger)
    assert db.execute("SELECT count(*) FROM aliases WHERE removed_at IS NOT NULL").fetchone() == (
        1,
    )


def test_accepting_what_cannot_be_accepted_is_an_error(case, capsys):
    config, ledger, tmp = case
    assert resolve(ledger, "--accept", "5") == 2  # zed: no suggestion
    assert "no suggestion for row 5" in capsys.readouterr().err
    assert resolve(ledger, "--accept", "2", "--candidate", "u-cy") == 2
    assert "not one of its candidates" in capsys.readouterr().err
    assert resolve(ledger, "--accept-above", "1.5") == 2


def test_an_alias_to_another_id_wins_over_the_directory(write_case, tmp_path):
    # an alias is used before the directory: even for a value the directory knows
    config = write_case([ext("ann@example.com", completed="2026-01-15")])
    import pandas as pd

    from recon.engine import reconcile as run

    aliases = pd.DataFrame(
        {"kind": ["learner"], "value": [" ANN@example.com"], "id": ["u-bob"], "via": ["via x"]}
    )
    result = run(config, as_of=AS_OF, aliases=aliases)
    assert list(result.outcomes["userId"].astype(str)) == ["u-bob"]
    assert "via x" in str(result.outcomes["detail"].iloc[0])


def test_accept_and_reject_say_what_they_did(case, capsys):
    """The terminal names the row, its value and the candidate, and an alias replaced."""
    config, ledger, tmp = case
    capsys.readouterr()
    assert resolve(ledger, "--accept", "2") == 0
    said = capsys.readouterr().out
    assert "row 2: learner 'an@example.com' -> " in said and "u-ann" in said
    assert resolve(ledger, "--accept", "2") == 0
    assert "(replaces alias 1)" in capsys.readouterr().out
    assert resolve(ledger, "--reject", "3") == 0
    said = capsys.readouterr().out
    assert "rejected 1 suggestion(s): row 3: learner 'bobb@example.com' -> " in said


def test_rejecting_what_an_alias_in_use_resolves_is_refused(case, capsys):
    """Else the rejection and the alias contradict each other, and the alias goes on
    resolving the value while the terminal said 'rejected'."""
    config, ledger, tmp = case
    assert resolve(ledger, "--accept", "2") == 0
    capsys.readouterr()
    assert resolve(ledger, "--reject", "2") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--remove-alias 1" in err
    with Ledger(ledger) as opened:
        assert al.rejected(opened) == [] and len(al.active(opened)) == 1
    assert resolve(ledger, "--remove-alias", "1") == 0
    assert resolve(ledger, "--reject", "2") == 0  # once removed, a rejection is recorded


def test_a_csv_asked_into_a_folder_is_one_clear_line(case, capsys):
    """Every CSV written to a path the analyst gives (--export-aliases; sandbox
    export-progress --out shares write_csv) refuses a folder in one line naming it, and
    leaves nothing in the folder's parent."""
    from recon.outputs import write_csv

    config, ledger, tmp = case
    folder = tmp / "a-folder"
    folder.mkdir()
    capsys.readouterr()
    assert resolve(ledger, "--export-aliases", str(folder)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"recon: error: {folder} is a folder; give the CSV file to write"
    with Ledger(ledger) as opened, pytest.raises(IsADirectoryError, match="is a folder"):
        write_csv(al.active(opened), folder)
    assert not list(tmp.glob(".recon-*")) and not list(folder.iterdir())
