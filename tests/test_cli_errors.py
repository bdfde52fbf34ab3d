"""Bad input on the command line is a clear message and exit 2, never a traceback, and a
failed command leaves nothing half done."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import AS_OF, ext, reconcile_into

from recon.cli import main
from recon.ledger import Ledger

RECON = str(Path(sys.executable).with_name("recon"))


@pytest.fixture
def config(write_case) -> Path:
    return write_case(
        [
            ext("ann@example.com", "SAFE-101", "Completed", "2026-01-10"),
            ext("bob@example.com", "DATA-200", "In Progress", "", "2026-02-01"),
        ]
    )


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "--rate", "0", "--dry-run"],
        ["submit", "--burst", "0", "--dry-run"],
        ["submit", "--limit", "-1", "--dry-run"],
        ["submit", "--concurrency", "0", "--dry-run"],
        ["submit", "--rate", "nan", "--dry-run"],
        ["ping", "--timeout", "-1"],
        ["sandbox", "serve", "--port", "99999"],
        ["bench", "--rows", "0"],
    ],
)
def test_bad_numbers_are_refused_by_the_parser(args: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_reconcile_into_a_file_records_no_run(config: Path, tmp_path: Path, capsys) -> None:
    # A ledger that exists and holds a run, so "no new run" is something that can fail.
    ledger = tmp_path / "l.db"
    assert reconcile_into(config, tmp_path / "o", ledger) == 1
    capsys.readouterr()
    not_a_folder = tmp_path / "afile"
    not_a_folder.write_text("x")
    code = main(
        ["reconcile", "--config", str(config), "--out", str(not_a_folder), "--ledger", str(ledger)]
    )
    shown = capsys.readouterr()
    assert code == 2 and "is a file" in shown.err and "recorded as run" not in shown.out
    assert not_a_folder.read_text() == "x"
    with Ledger(ledger) as opened:
        assert opened.runs()["run_id"].tolist() == [1]


def test_approve_with_a_typo_is_an_error(config: Path, tmp_path: Path, capsys) -> None:
    ledger = str(tmp_path / "l.db")
    reconcile_into(config, tmp_path / "o", ledger)
    for typo in (["--key", "nope"], ["--category", "missing-completions"], ["--path", "lp-x"]):
        assert main(["approve", "--ledger", ledger, *typo]) == 2, typo
        assert "has no proposal with" in capsys.readouterr().err
    with Ledger(ledger) as opened:
        assert opened.decisions().empty


@pytest.mark.parametrize(
    "args",
    [
        ["report", "--out", "{folder}"],
        ["demo", "--out", "{file}"],
        ["ping", "--base-url", "http://[::1"],
        ["sandbox", "export-progress", "--db", "{file}", "--out", "{folder}/p.csv"],
    ],
)
def test_file_system_and_url_errors_exit_2(
    args: list[str], config: Path, tmp_path: Path, capsys
) -> None:
    ledger = tmp_path / "l.db"
    reconcile_into(config, tmp_path / "o", ledger)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("not a database")
    filled = [a.format(folder=tmp_path, file=a_file) for a in args]
    if filled[0] == "report":
        filled += ["--ledger", str(ledger)]
    env = {**os.environ, "TI_API_KEY": "k"}
    done = subprocess.run([RECON, *filled], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("recon: error:") and "Traceback" not in done.stderr
    assert not list(tmp_path.glob(".*.tmp"))


def test_provider_columns_named_like_recon_keep_their_values(write_case, tmp_path: Path) -> None:
    row = {**ext("nobody@example.com"), "Row": "A-17", "Detail": "note", "Outcome": "Pass"}
    config = write_case([row])
    assert (
        main(
            [
                "reconcile",
                "--config",
                str(config),
                "--out",
                str(tmp_path / "o"),
                "--no-ledger",
                "--as-of",
                AS_OF,
            ]
        )
        == 1
    )
    with (tmp_path / "o" / "exceptions.csv").open(encoding="utf-8") as fh:
        found = list(csv.DictReader(fh))
    assert found[0]["row"] == "1" and found[0]["outcome"] == "unknown-learner"
    assert found[0]["Row (provider)"] == "A-17"
    assert found[0]["Detail (provider)"] == "note"
    assert found[0]["Outcome (provider)"] == "Pass"
