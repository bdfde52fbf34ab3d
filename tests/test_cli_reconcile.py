"""`recon reconcile --config --out [--as-of]`: exit codes, the outputs, summary.json."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import AS_OF, ext, lms

from recon import outcomes as oc
from recon.cli import main

# The columns, in its order; proposals.csv then adds the learner and path as the
# provider wrote them, so an analyst reviewing it can tell who it is about.
SOURCE_COLUMNS = ["learner", "path"]
OUTCOMES_HEADER = [
    "row",
    "outcome",
    "userId",
    "learningPathId",
    "status",
    "detail",
    "learner",
    "path",
]
PROPOSALS_HEADER = [
    "key",
    "userId",
    "learningPathId",
    "status",
    "completionDate",
    "timeStampDate",
    "category",
    "rows",
    *SOURCE_COLUMNS,
]
OUTPUTS = {
    "outcomes.csv",
    "proposals.csv",
    "exceptions.csv",
    "review.csv",
    "summary.json",
    "suggestions.csv",  # issue 14: candidates for unknown learners and paths
}

IN_SYNC_ROWS = [ext(completed="2026-01-15"), ext("bob@example.com", status="Registered")]
IN_SYNC_PROGRESS = [lms("u-ann", "lp-safe", "completed", "2026-01-15T08:00:00.000Z")]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def reconcile_cli(config: Path, out: Path, *extra: str) -> int:
    return main(["reconcile", "--config", str(config), "--out", str(out), *extra])


def test_all_in_sync_exits_0(write_case, tmp_path, capsys):
    config = write_case(IN_SYNC_ROWS, IN_SYNC_PROGRESS)
    out = tmp_path / "out"
    assert reconcile_cli(config, out, "--as-of", AS_OF) == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS
    assert read_csv(out / "proposals.csv") == [PROPOSALS_HEADER]
    assert read_csv(out / "exceptions.csv")[1:] == []
    printed = capsys.readouterr().out
    assert oc.IN_SYNC in printed and "total" in printed


def test_something_to_propose_exits_1(write_case, tmp_path):
    config = write_case([ext(completed="2026-01-15")])
    assert reconcile_cli(config, tmp_path / "out", "--as-of", AS_OF) == 1


def test_an_exception_alone_exits_1(write_case, tmp_path):
    config = write_case(IN_SYNC_ROWS + [ext("zed@example.com")], IN_SYNC_PROGRESS)
    out = tmp_path / "out"
    assert reconcile_cli(config, out, "--as-of", AS_OF) == 1
    assert read_csv(out / "proposals.csv") == [PROPOSALS_HEADER]
    assert [r[:2] for r in read_csv(out / "exceptions.csv")[1:]] == [["3", oc.UNKNOWN_LEARNER]]


def test_the_four_outputs(write_case, tmp_path):
    rows = [
        ext(completed="2026-01-15T10:00:00+02:00"),
        ext("bob@example.com", "DATA-200", "In Progress", activity="03/01/2026"),
        ext("bob@example.com", "DATA-200", "Registered"),
        ext("zed@example.com", "SAFE-101", "Completed", completed="2026-01-15"),
        ext("cy@example.com", status="Passed"),
    ]
    config = write_case(rows, IN_SYNC_PROGRESS[:0])
    out = tmp_path / "out"
    assert reconcile_cli(config, out, "--as-of", AS_OF) == 1

    outcomes = read_csv(out / "outcomes.csv")
    assert outcomes[0] == OUTCOMES_HEADER
    assert [r[:2] for r in outcomes[1:]] == [
        ["1", oc.MISSING_COMPLETION],
        ["2", oc.MISSING_PROGRESS],
        ["3", oc.DUPLICATE],
        ["4", oc.UNKNOWN_LEARNER],
        ["5", oc.UNKNOWN_STATUS],
    ]
    assert outcomes[1][2:5] == ["u-ann", "lp-safe", "completed"]

    proposals = read_csv(out / "proposals.csv")
    assert proposals[0] == PROPOSALS_HEADER
    by_user = {r[1]: dict(zip(PROPOSALS_HEADER, r, strict=True)) for r in proposals[1:]}
    assert by_user["u-ann"]["completionDate"] == "2026-01-15T08:00:00.000Z"
    assert by_user["u-ann"]["timeStampDate"] == ""  # absent: an empty cell
    assert by_user["u-ann"]["category"] == oc.MISSING_COMPLETION
    assert by_user["u-ann"]["rows"] == "1"
    assert by_user["u-bob"]["completionDate"] == ""
    assert by_user["u-bob"]["timeStampDate"] == "2026-03-01T00:00:00.000Z"
    assert by_user["u-bob"]["status"] == "started"
    assert sorted(by_user["u-bob"]["rows"].split(";")) == ["2", "3"]
    assert all(len(r[0]) >= 16 for r in proposals[1:])

    exceptions = read_csv(out / "exceptions.csv")
    header = exceptions[0]
    assert {"row", "outcome"} <= set(header)
    for column in ("Email", "Course Code", "Status", "Completed On", "Last Activity"):
        assert column in header
    found = [dict(zip(header, r, strict=True)) for r in exceptions[1:]]
    assert [(r["row"], r["outcome"], r["Email"], r["Status"]) for r in found] == [
        ("4", oc.UNKNOWN_LEARNER, "zed@example.com", "Completed"),
        ("5", oc.UNKNOWN_STATUS, "cy@example.com", "Passed"),
    ]


def test_summary_json(write_case, tmp_path):
    rows = [ext(completed="2026-01-15"), ext("zed@example.com"), ext(status="Registered")]
    config = write_case(rows)
    out = tmp_path / "out"
    reconcile_cli(config, out, "--as-of", "2026-06-01T02:00:00+02:00")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))

    # as-of is in UTC, whatever offset it was given with
    assert summary["as_of"].endswith("Z")
    as_of = datetime.fromisoformat(summary["as_of"].replace("Z", "+00:00"))
    assert as_of == datetime(2026, 6, 1, tzinfo=UTC)
    assert set(summary["counts"]) == set(oc.ALL)
    assert summary["counts"][oc.MISSING_COMPLETION] == 1
    assert summary["counts"][oc.UNKNOWN_LEARNER] == 1
    assert summary["counts"][oc.DUPLICATE] == 1
    assert sum(summary["counts"].values()) == 3
    folder = config.parent
    expected_rows = {"external": 3, "progress": 0, "users": 3, "paths": 3}
    assert set(summary["inputs"]) == set(expected_rows)
    for role, info in summary["inputs"].items():
        path = folder / f"{role}.csv"
        assert Path(info["path"]) == path.resolve()
        assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert info["rows"] == expected_rows[role]
    timings = summary["timings_s"]
    assert timings and all(isinstance(v, int | float) and v >= 0 for v in timings.values())


def test_as_of_defaults_to_now(write_case, tmp_path):
    config = write_case(
        [ext(completed="2099-01-01"), ext("bob@example.com", completed="2001-01-01")]
    )
    out = tmp_path / "out"
    assert reconcile_cli(config, out) == 1
    outcomes = read_csv(out / "outcomes.csv")
    assert [r[1] for r in outcomes[1:]] == [oc.FUTURE_DATE, oc.MISSING_COMPLETION]
    assert reconcile_cli(config, tmp_path / "later", "--as-of", "2100-01-01") == 1
    later = read_csv(tmp_path / "later" / "outcomes.csv")
    assert [r[1] for r in later[1:]] == [oc.MISSING_COMPLETION, oc.MISSING_COMPLETION]


# --- errors: exit 2, nothing written -------------------------------------------------


def _break_config(config: Path) -> None:
    config.write_text(config.read_text().replace("[external]", "[externals]"))


def _break_column(config: Path) -> None:
    config.write_text(config.read_text().replace('"Course Code"', '"Course"'))


def _break_file(config: Path) -> None:
    (config.parent / "external.csv").unlink()


def _break_encoding(config: Path) -> None:
    (config.parent / "external.csv").write_bytes(b"")


def _break_workbook(config: Path) -> None:
    (config.parent / "users.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    config.write_text(config.read_text().replace('"users.csv"', '"users.xlsx"'))


@pytest.mark.parametrize(
    ("breaking", "mention"),
    [
        (_break_config, "[external]"),
        (_break_column, "'Course'"),
        (_break_file, "external.csv"),
        (_break_encoding, "external.csv"),
        (_break_workbook, "users.xlsx"),
    ],
    ids=["bad config", "missing column", "missing file", "empty file", "unreadable file"],
)
def test_errors_exit_2_and_write_nothing(write_case, tmp_path, capsys, breaking, mention):
    config = write_case([ext(completed="2026-01-15")])
    breaking(config)
    out = tmp_path / "out"
    assert reconcile_cli(config, out, "--as-of", AS_OF) == 2
    assert not out.exists() or not any(out.iterdir())
    err = capsys.readouterr().err
    assert mention in err
    assert "Traceback" not in err


def test_missing_column_message_lists_the_columns_found(write_case, tmp_path, capsys):
    config = write_case([ext(completed="2026-01-15")])
    _break_column(config)
    assert reconcile_cli(config, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "external.csv" in err and "'Course'" in err
    assert "'Course Code'" in err and "'Last Activity'" in err


def test_bad_as_of_exits_2(write_case, tmp_path):
    config = write_case([ext(completed="2026-01-15")])
    out = tmp_path / "out"
    assert reconcile_cli(config, out, "--as-of", "next tuesday") == 2
    assert not out.exists() or not any(out.iterdir())


def test_missing_config_file_exits_2(tmp_path):
    out = tmp_path / "out"
    assert reconcile_cli(tmp_path / "nope.toml", out) == 2
    assert not out.exists()


def test_an_out_path_that_is_a_file_exits_2(write_case, tmp_path):
    config = write_case([ext(completed="2026-01-15")])
    out = tmp_path / "taken"
    out.write_text("not a folder")
    assert reconcile_cli(config, out, "--as-of", AS_OF) == 2


def test_an_out_folder_with_a_quote_in_its_name(write_case, tmp_path):
    config = write_case([ext(completed="2026-01-15")])
    out = tmp_path / "O'Brien's outputs"
    assert reconcile_cli(config, out, "--as-of", AS_OF) == 1
    assert {p.name for p in out.iterdir()} == OUTPUTS


# --- the console script, as a user runs it -------------------------------------------


def test_console_script(write_case, tmp_path):
    script = Path(sys.executable).parent / "recon"
    config = write_case(IN_SYNC_ROWS, IN_SYNC_PROGRESS)
    out = tmp_path / "out"
    done = subprocess.run(
        [str(script), "reconcile", "--config", str(config), "--out", str(out), "--as-of", AS_OF],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert oc.IN_SYNC in done.stdout
    assert {p.name for p in out.iterdir()} == OUTPUTS

    _break_column(config)
    failed = subprocess.run(
        [str(script), "reconcile", "--config", str(config), "--out", str(tmp_path / "o2")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2
    assert "'Course'" in failed.stderr and "Traceback" not in failed.stderr
    assert not (tmp_path / "o2").exists()


def test_a_naive_as_of_is_in_the_configured_timezone(write_case, tmp_path):
    config = write_case(
        [ext(completed="2026-01-15")], config={"external": {"timezone": "Europe/Berlin"}}
    )
    out = tmp_path / "out"
    reconcile_cli(config, out, "--as-of", "2026-06-01T00:00:00")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    as_of = datetime.fromisoformat(summary["as_of"].replace("Z", "+00:00"))
    assert as_of == datetime(2026, 5, 31, 22, tzinfo=UTC)


def test_the_library_call(write_case):
    """The same is available as `recon.reconcile(config) -> Result`."""
    import recon
    from recon.result import Result

    result = recon.reconcile(write_case([ext(completed="2026-01-15")]), as_of=AS_OF)
    assert isinstance(result, Result)
    assert list(result.outcomes["outcome"]) == [oc.MISSING_COMPLETION]


def test_review_and_settled_outcomes_alone_exit_0(write_case, tmp_path):
    rows = [
        ext(completed="2026-01-15"),  # LMS has another date: for review, no proposal
        ext(completed="2026-01-20"),  # duplicate
        ext("bob@example.com", status="In Progress"),  # LMS ahead
    ]
    progress = [
        lms("u-ann", "lp-safe", "completed", "2026-02-01"),
        lms("u-bob", "lp-safe", "completed", "2026-02-01"),
    ]
    out = tmp_path / "out"
    assert reconcile_cli(write_case(rows, progress), out, "--as-of", AS_OF) == 0
    outcomes = read_csv(out / "outcomes.csv")
    assert [r[1] for r in outcomes[1:]] == [oc.COMPLETION_DATE_DIFFERS, oc.DUPLICATE, oc.LMS_AHEAD]


def test_status_says_none_rather_than_leaving_a_blank(write_case, tmp_path, capsys) -> None:
    # A run with proposals nobody decided or sent, then a run with no proposal at all:
    # every line of `recon status` says something.
    from conftest import ext, reconcile_into

    from recon.cli import main

    ledger = tmp_path / "recon-ledger.db"
    proposing = write_case([ext(completed="2026-01-15")])
    assert reconcile_into(proposing, tmp_path / "a", ledger) == 1
    capsys.readouterr()
    assert main(["status", "--ledger", str(ledger)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "  decisions: undecided 1" in shown and "  submissions: not-sent 1" in shown
    assert not any(line.rstrip().endswith(":") and line.startswith("  ") for line in shown)
    empty = write_case([ext(status="Registered")])
    reconcile_into(empty, tmp_path / "b", ledger)
    capsys.readouterr()
    assert main(["status", "--ledger", str(ledger)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "run 2: 0 proposal(s)" in shown
    assert "  decisions: none (the run has no proposal)" in shown
    assert "  submissions: none (the run has no proposal)" in shown
