"""The sandbox speaks a config's [progress]: seeded from the analyst's own LMS export
(its columns, words, timezone and date formats), exported back in that shape, so the
README's loop closes the gap with files whose columns are not the defaults."""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import AS_OF, USERS, ext, outcomes_of, write_case_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon import outcomes as oc
from recon.cli import main
from recon.config import ProgressSpec, load_config
from recon.engine import reconcile
from recon.errors import InputError, ReconError
from recon.sandbox import Sandbox, export_progress, seed_progress

pytestmark = pytest.mark.timeout(120)

# The analyst's own LMS export: its own column names and words, local dates.
LMS_COLUMNS = {
    "user_id": "Learner ID",
    "path_id": "Path ID",
    "status": "Progress",
    "completion_date": "Finished",
}
LMS_WORDS = {"Done": "completed", "In Progress": "started", "Enrolled": "not-started"}
PROGRESS_TABLE: dict[str, Any] = {
    **LMS_COLUMNS,
    "timezone": "America/New_York",
    "date_formats": ["%d.%m.%Y %H:%M"],
    "statuses": LMS_WORDS,
}


def own_lms(*rows: tuple[str, str, str, str]) -> list[list[str]]:
    """An LMS export with the analyst's own header (and maybe no data rows)."""
    return [list(LMS_COLUMNS.values()), *(list(row) for row in rows)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def pointed_at(config: Path, progress: Path) -> Path:
    """A copy of ``config`` whose [progress] file is ``progress`` (next month's export)."""
    text = config.read_text(encoding="utf-8").replace('"progress.csv"', f'"{progress}"')
    copy = config.with_name("after.toml")
    copy.write_text(text, encoding="utf-8")
    return copy


# --- seeding and export read the export as the engine does -------------------------------


def test_seeding_reads_the_configs_words_timezone_and_formats(write_case):
    config = write_case(
        [ext(completed="2026-01-15")],
        own_lms(
            ("u-ann", "lp-safe", "In Progress", ""),
            ("u-ann", "lp-safe", " done ", "14.01.2026 23:30"),  # New York: the 15th in UTC
            ("u-bob", "lp-safe", "Enrolled", ""),
            ("u-cy", "lp-safe", "Archived", ""),  # not understood: kept as the LMS says
            ("u-cy", "lp-data", "Done", "someday"),  # unreadable: kept as written
            ("", "lp-safe", "Done", "14.01.2026 23:30"),  # a blank id: ignored
        ),
        config={"progress": PROGRESS_TABLE},
    )
    spec = load_config(config).progress
    with Sandbox(key="k", seed_progress=spec) as sandbox:
        view = sandbox.progress()
    rows = {(r["userId"], r["learningPathId"]): r for r in view.to_dict("records")}
    assert set(rows) == {("u-ann", "lp-safe"), ("u-bob", "lp-safe"), ("u-cy", "lp-safe"),
                         ("u-cy", "lp-data")}  # fmt: skip
    assert rows["u-ann", "lp-safe"]["status"] == "completed"
    assert rows["u-ann", "lp-safe"]["completionDate"] == "2026-01-15T04:30:00.000Z"
    assert rows["u-bob", "lp-safe"]["status"] == "not-started"
    assert rows["u-cy", "lp-safe"]["status"] == "Archived"
    assert rows["u-cy", "lp-data"]["completionDate"] == "someday"


def test_export_in_the_configs_shape_is_read_back_the_same(write_case, tmp_path):
    config = write_case(
        [ext(status="In Progress", activity="2026-03-01")],
        own_lms(("u-ann", "lp-safe", "In Progress", ""), ("u-bob", "lp-safe", "Done", "")),
        config={"progress": PROGRESS_TABLE},
    )
    spec = load_config(config).progress
    db = tmp_path / "lms.db"
    seed_progress(db, spec)
    out = tmp_path / "after.csv"
    export_progress(db, out, spec)
    assert read_csv(out) == [
        {"Learner ID": "u-ann", "Path ID": "lp-safe", "Progress": "In Progress", "Finished": ""},
        {"Learner ID": "u-bob", "Path ID": "lp-safe", "Progress": "Done", "Finished": ""},
    ]
    # the API words are written for a status no word of the config means
    plain = ProgressSpec(file=spec.file, **LMS_COLUMNS)
    export_progress(db, out, plain)
    assert [r["Progress"] for r in read_csv(out)] == ["started", "completed"]
    # and without a config, the sandbox's own columns as before
    export_progress(db, out)
    assert list(read_csv(out)[0]) == ["userId", "learningPathId", "status", "completionDate"]


def test_the_sandbox_compares_ids_as_the_lms_does(write_case, tmp_path):
    """Ids have no case (recon reads `U-ANN` and `u-ann` as one learner): a seed that
    spells a pair two ways, and a post in a third spelling, are one pair in the
    sandbox's view, spelled as it first saw it, as recon folds them."""
    config = write_case(
        [ext(status="In Progress", activity="2026-03-01")],
        own_lms(
            ("U-ANN", "LP-SAFE", "In Progress", ""),
            ("u-ann", "lp-safe", "Enrolled", ""),
            ("u-bob", "lp-safe", "Enrolled", ""),
        ),
        config={"progress": PROGRESS_TABLE},
    )
    spec = load_config(config).progress
    db = tmp_path / "lms.db"
    seed_progress(db, spec)
    out = tmp_path / "after.csv"
    export_progress(db, out, spec)
    assert read_csv(out) == [
        {"Learner ID": "U-ANN", "Path ID": "LP-SAFE", "Progress": "In Progress", "Finished": ""},
        {"Learner ID": "u-bob", "Path ID": "lp-safe", "Progress": "Enrolled", "Finished": ""},
    ]
    with Sandbox(key="sandbox-key-1", db=db) as sb:
        import requests

        answer = requests.post(
            f"{sb.url}/incoming/v2/learningPathExternalActivity",
            json={
                "userId": "u-Ann",
                "learningPathId": "Lp-Safe",
                "status": "completed",
                "completionDate": "2026-03-02T00:00:00.000Z",
            },
            headers={"Authorization": "Bearer sandbox-key-1"},
            timeout=10,
        )
        assert answer.status_code == 200
    export_progress(db, out, spec)
    assert read_csv(out) == [
        {
            "Learner ID": "U-ANN",
            "Path ID": "LP-SAFE",
            "Progress": "Done",
            "Finished": "2026-03-02T00:00:00.000Z",
        },
        {"Learner ID": "u-bob", "Path ID": "lp-safe", "Progress": "Enrolled", "Finished": ""},
    ]


LMS_ROW = st.tuples(
    st.sampled_from(["u-ann", "u-bob", "u-cy", "u-zed", ""]),
    st.sampled_from(["lp-safe", "lp-data"]),
    st.sampled_from(["Done", " in progress", "Enrolled", "completed", "Archived", "", "STARTED"]),
    st.sampled_from(["", "14.01.2026 23:30", "2026-01-15T10:00:00Z", "2026-01-15", "nope"]),
)


@pytest.mark.timeout(600)  # two reconciles and a seeding per example, on a busy machine
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(lms_rows=st.lists(LMS_ROW, max_size=8))
def test_reconciling_the_sandboxs_export_gives_what_the_original_export_gave(lms_rows):
    """The sandbox's fold and the engine's fold agree: before anything is posted, the
    LMS's view exported in the config's shape reconciles exactly as the export it was
    seeded from."""
    rows = [
        ext(completed="2026-01-15"),
        ext("bob@example.com", status="In Progress", activity="2026-03-01"),
        ext("cy@example.com", code="DATA-200", status="Registered"),
        ext("cy@example.com", completed="2026-01-14"),
    ]
    with tempfile.TemporaryDirectory() as folder:
        config = write_case_in(
            Path(folder), rows, own_lms(*lms_rows), USERS, config={"progress": PROGRESS_TABLE}
        )
        before = reconcile(config, as_of=AS_OF)
        spec = load_config(config).progress
        db = Path(folder) / "lms.db"
        seed_progress(db, spec)
        exported = Path(folder) / "exported.csv"
        export_progress(db, exported, spec)
        after = reconcile(pointed_at(config, exported), as_of=AS_OF)
    assert outcomes_of(after) == outcomes_of(before)
    assert list(after.proposals["key"]) == list(before.proposals["key"])
    # the view holds one status a pair: a pair with two unknown words keeps one of them
    assert set(after.lms_words_unknown) <= set(before.lms_words_unknown)
    assert bool(after.lms_words_unknown) == bool(before.lms_words_unknown)


# --- a failed start leaves nothing behind ------------------------------------------------


def test_a_port_in_use_leaves_no_database(tmp_path, write_case):
    spec = load_config(write_case([ext()], config={"progress": {"file": "progress.csv"}})).progress
    db = tmp_path / "new" / "folder" / "lms.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ReconError, match="cannot listen"):
            Sandbox(key="k", db=db, port=port, seed_progress=spec).start()
    assert not (tmp_path / "new").exists()


def test_an_unreadable_seed_leaves_no_database(tmp_path):
    db = tmp_path / "lms.db"
    with pytest.raises(InputError, match="not found"):
        Sandbox(key="k", db=db, seed_progress=tmp_path / "missing.csv").start()
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\nx,y\n", encoding="utf-8")
    with pytest.raises(InputError, match="userId"):
        Sandbox(key="k", db=db, seed_progress=bad).start()
    with pytest.raises(InputError):
        seed_progress(db, bad)
    assert list(tmp_path.iterdir()) == [bad]


def test_a_failed_start_keeps_an_existing_database_as_it_was(tmp_path):
    seed = tmp_path / "seed.csv"
    seed.write_text("userId,learningPathId,status\nu1,p1,started\n", encoding="utf-8")
    db = tmp_path / "lms.db"
    with Sandbox(key="k", db=db, seed_progress=seed):
        pass
    other = tmp_path / "other.csv"
    other.write_text("userId,learningPathId,status\nu2,p2,completed\n", encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ReconError):
            Sandbox(key="k", db=db, port=taken.getsockname()[1], seed_progress=other).start()
    out = tmp_path / "view.csv"
    export_progress(db, out)
    assert [(r["userId"], r["status"]) for r in read_csv(out)] == [("u1", "started")]


@pytest.mark.parametrize(
    ("problem", "mention"),
    [("typo", "did you mean 'user_id'"), ("no file", "progress file not found")],
)
def test_cli_serve_with_a_bad_config_exits_2_and_leaves_no_database(
    write_case, tmp_path, capsys, problem, mention
):
    config = write_case([ext()])
    text = config.read_text(encoding="utf-8")
    if problem == "typo":
        config.write_text(text.replace('"user_id"', '"usr_id"'), encoding="utf-8")
    else:
        (config.parent / "progress.csv").unlink()
    db = tmp_path / "lms.db"
    args = ["sandbox", "serve", "--port", "0", "--db", str(db), "--config", str(config)]
    assert main(args) == 2
    assert mention in capsys.readouterr().err
    assert not db.exists()
    both = [*args, "--seed-progress", str(config)]
    assert main(both) == 2 and "not both" in capsys.readouterr().err


# --- the README's loop, end to end, with the analyst's own columns and words -------------


def test_the_sandbox_loop_closes_the_gap_with_the_analysts_own_files(
    write_case, tmp_path, monkeypatch, capsys
):
    rows = [
        ext(completed="2026-01-15"),
        ext("bob@example.com", status="In Progress", activity="2026-03-01"),
        ext("cy@example.com", code="DATA-200", completed="2026-02-01"),
        ext("cy@example.com", status="In Progress", activity="2026-03-01"),
    ]
    progress = own_lms(
        ("u-ann", "lp-safe", "In Progress", ""),
        ("u-bob", "lp-safe", "Enrolled", ""),
        ("u-cy", "lp-data", "Done", "01.02.2026 10:00"),
        ("u-cy", "lp-safe", "Archived", ""),  # a word nobody mapped: nothing proposed
    )
    config = write_case(rows, progress, config={"progress": PROGRESS_TABLE})
    ledger = tmp_path / "ledger.db"
    db = tmp_path / "lms.db"
    key = "loop-key-3b7a"
    env = {**os.environ, "TI_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    serve = ["sandbox", "serve", "--port", "0", "--db", str(db), "--config", str(config)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "recon.cli", *serve],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", first)
        assert match, first + (proc.stderr.read() if proc.stderr else "")
        url = match.group(1)

        run_1 = tmp_path / "run-1"
        base = ["--config", str(config), "--ledger", str(ledger)]
        assert main(["reconcile", *base, "--out", str(run_1), "--as-of", AS_OF]) == 1
        first_run = read_csv(run_1 / "outcomes.csv")
        assert [r["outcome"] for r in first_run] == [
            oc.MISSING_COMPLETION,
            oc.MISSING_PROGRESS,
            oc.IN_SYNC,
            oc.UNKNOWN_LMS_STATUS,
        ]
        assert main(["approve", *base, "--all"]) == 0
        monkeypatch.setenv("TI_API_KEY", key)
        assert main(["submit", *base, "--base-url", url]) == 0

        after = tmp_path / "after.csv"
        assert main(["sandbox", "export-progress", "--db", str(db), "--out", str(after),
                     "--config", str(config)]) == 0  # fmt: skip
        exported = read_csv(after)
        assert list(exported[0]) == list(LMS_COLUMNS.values())
        assert {r["Progress"] for r in exported} == {"Done", "In Progress", "Archived"}

        run_2 = tmp_path / "run-2"
        again = ["--config", str(pointed_at(config, after)), "--ledger", str(ledger)]
        main(["reconcile", *again, "--out", str(run_2), "--as-of", AS_OF])
        second = [r["outcome"] for r in read_csv(run_2 / "outcomes.csv")]
        assert second == [oc.IN_SYNC, oc.IN_SYNC, oc.IN_SYNC, oc.UNKNOWN_LMS_STATUS]
        assert read_csv(run_2 / "proposals.csv") == []
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert key not in first + stdout + stderr + capsys.readouterr().out
