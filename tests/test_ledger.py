"""The ledger: runs, proposals, decisions, attempts, and what survives a crash."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import AS_OF, ext, lms

from recon import ledger as lg
from recon.client import ApiClient
from recon.errors import LedgerBusyError, LedgerError
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.sandbox import Sandbox
from recon.submit import Pace, SubmitReport, submit
from recon.target import Target

EXTERNAL = [
    ext("ann@example.com", "SAFE-101", "Completed", "2026-01-10"),
    ext("bob@example.com", "SAFE-101", "In Progress", "", "2026-02-01"),
    ext("cy@example.com", "DATA-200", "Completed", "2026-03-05"),
    ext("cy@example.com", "LEAD-300", "Completed", "2026-03-06"),
]
PROGRESS = [lms("u-cy", "lp-lead", "completed", "2026-03-06")]

LMS = Target.real("https://lms.example.com")  # a real LMS; nothing is sent to it here


@pytest.fixture
def case(write_case) -> Path:
    return write_case(EXTERNAL, PROGRESS)


@pytest.fixture
def ledger(tmp_path: Path):
    with Ledger(tmp_path / "ledger.db") as opened:
        yield opened


def test_new_ledger_is_migrated_to_the_latest_schema_in_wal_mode(ledger: Ledger) -> None:
    assert ledger.schema_version == len(lg.MIGRATIONS)
    mode = sqlite3.connect(ledger.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_ledger_from_a_newer_recon_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    sqlite3.connect(path).execute("PRAGMA user_version = 99")
    with pytest.raises(LedgerError, match="newer recon"):
        Ledger(path)


def test_reconcile_records_the_run_and_its_proposals(case: Path, ledger: Ledger) -> None:
    result = reconcile_run(case, as_of=AS_OF, ledger=ledger)
    assert result.run_id == 1
    runs = ledger.runs()
    assert runs["run_id"].tolist() == [1]
    assert runs["rows_read"].iloc[0] == 4
    assert runs["counts"].iloc[0]["missing-completion"] == 2
    assert runs["inputs"].iloc[0]["external"]["sha256"] == result.inputs["external"].sha256
    props = ledger.proposals()
    assert sorted(props["key"]) == sorted(result.proposals["key"])
    assert set(props["decision"]) == {"undecided"}
    assert set(props["submission"]) == {"not-sent"}
    body = props.loc[props["userId"] == "u-bob", "payload"].iloc[0]
    assert body == (
        '{"userId":"u-bob","learningPathId":"lp-safe","status":"started",'
        '"timeStampDate":"2026-02-01T00:00:00.000Z"}'
    )


def test_select_filters_combine_and_decisions_are_latest_wins(case: Path, ledger: Ledger) -> None:
    reconcile_run(case, as_of=AS_OF, ledger=ledger)
    with pytest.raises(LedgerError, match="say which"):
        ledger.select()
    completions = ledger.select(categories=["missing-completion"])
    assert len(completions) == 2
    only_safe = ledger.select(categories=["missing-completion"], paths=["lp-safe"])
    assert len(only_safe) == 1
    ledger.decide(completions, "approved", by="ana", note="provider is the source of truth")
    ledger.decide(only_safe, "rejected", by="ben")
    props = ledger.proposals().set_index("key")
    assert props.loc[only_safe[0], "decision"] == "rejected"
    assert props.loc[only_safe[0], "decided_by"] == "ben"
    other = next(k for k in completions if k != only_safe[0])
    assert props.loc[other, "decision"] == "approved"
    assert props.loc[other, "note"] == "provider is the source of truth"
    assert ledger.to_send()["key"].tolist() == [other]


def test_decide_refuses_unknown_keys_and_words(case: Path, ledger: Ledger) -> None:
    reconcile_run(case, as_of=AS_OF, ledger=ledger)
    with pytest.raises(LedgerError, match="no proposal with key"):
        ledger.decide(["nope"], "approved")
    with pytest.raises(LedgerError, match="approved"):
        ledger.decide(ledger.select(everything=True), "maybe")


def test_no_runs_and_unknown_run_are_clear_errors(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no runs yet"):
        ledger.resolve_run("latest")
    with pytest.raises(LedgerError, match="'latest' or a run id"):
        ledger.resolve_run("yesterday")


def test_submission_state_is_derived_from_attempts(case: Path, ledger: Ledger) -> None:
    reconcile_run(case, as_of=AS_OF, ledger=ledger)
    keys = ledger.select(everything=True)
    ledger.decide(keys, "approved")
    accepted, refused, crashed = keys
    a = ledger.begin_attempt(accepted, 1, LMS)
    ledger.finish_attempt(a, lg.ACCEPTED, http_status=200, latency_ms=12.5)
    r = ledger.begin_attempt(refused, 1, LMS)
    ledger.finish_attempt(r, lg.REJECTED, http_status=400, errors=["invalid status"])
    ledger.begin_attempt(crashed, 1, LMS)  # the process died before the answer was recorded
    state = ledger.proposals().set_index("key")["submission"]
    assert state[accepted] == "accepted"
    assert state[refused] == "rejected"
    assert state[crashed] == "unknown"
    # Accepted and API-rejected are final; the unknown one is sent again.
    assert ledger.to_send()["key"].tolist() == [crashed]
    assert ledger.accepted_keys() == {accepted}


def test_accepted_correction_is_already_submitted_on_the_next_run(
    case: Path, ledger: Ledger
) -> None:
    first = reconcile_run(case, as_of=AS_OF, ledger=ledger)
    key = first.proposals["key"].iloc[0]
    ledger.decide([key], "approved")
    attempt = ledger.begin_attempt(key, first.run_id, LMS)
    ledger.finish_attempt(attempt, lg.ACCEPTED, http_status=200)
    # The LMS export has not caught up: same inputs again.
    second = reconcile_run(case, as_of=AS_OF, ledger=ledger)
    assert key not in set(second.proposals["key"])
    assert second.counts["already-submitted"] == 1
    assert len(second.proposals) == len(first.proposals) - 1
    assert second.run_id == 2


def test_decisions_carry_over_to_a_later_run_with_the_same_correction(
    case: Path, ledger: Ledger
) -> None:
    reconcile_run(case, as_of=AS_OF, ledger=ledger)
    ledger.decide(ledger.select(categories=["missing-progress"]), "rejected", note="stale")
    reconcile_run(case, as_of=AS_OF, ledger=ledger)
    props = ledger.proposals("latest")
    assert props.loc[props["category"] == "missing-progress", "decision"].tolist() == ["rejected"]


def test_decisions_survive_a_reopen(case: Path, tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as first:
        reconcile_run(case, as_of=AS_OF, ledger=first)
        first.decide(first.select(everything=True), "approved", by="ana")
    with Ledger(path) as again:
        assert set(again.proposals()["decision"]) == {"approved"}


def test_only_one_submission_lock_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as one, Ledger(path) as two:
        with (
            one.submission_lock(),
            pytest.raises(LedgerBusyError, match="another `recon submit`"),
            two.submission_lock(),
        ):
            pass
        with two.submission_lock():  # released when the first one ended
            pass


def test_reconcile_with_a_ledger_path_records_too(case: Path, tmp_path: Path) -> None:
    path = tmp_path / "by-path.db"
    result = reconcile_run(case, as_of=AS_OF, ledger=path)
    assert result.run_id == 1
    with Ledger(path) as opened:
        assert len(opened.proposals()) == len(result.proposals)


def test_a_version_1_ledger_is_migrated_and_keeps_its_data(case: Path, tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(lg.MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    db.execute(
        "INSERT INTO runs (created_at, as_of, inputs, counts, rows_read, proposals, problems) "
        "VALUES ('2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00Z', '{}', '{}', 0, 0, 0)"
    )
    db.commit()
    db.close()
    with Ledger(path) as opened:
        assert opened.schema_version == len(lg.MIGRATIONS) >= 2
        assert opened.runs()["run_id"].tolist() == [1]
        reconcile_run(case, as_of=AS_OF, ledger=opened)
        assert opened.runs()["run_id"].tolist() == [1, 2]


def test_a_run_reads_back_as_the_same_result(case: Path, ledger: Ledger, write_case) -> None:
    messy = write_case(
        [*EXTERNAL, ext("nobody@example.com", "SAFE-101", "Completed", "2026-01-01")], PROGRESS
    )
    fresh = reconcile_run(messy, as_of=AS_OF, ledger=ledger)
    back = ledger.result(fresh.run_id)
    assert back.counts == fresh.counts
    assert back.rows_read == fresh.rows_read == 5
    assert back.as_of == fresh.as_of
    assert back.exceptions[["row", "outcome", "detail"]].values.tolist() == (
        fresh.exceptions[["row", "outcome", "detail"]].values.tolist()
    )
    assert back.exceptions["Email"].tolist() == ["nobody@example.com"]
    assert sorted(back.proposals["key"]) == sorted(fresh.proposals["key"])
    assert back.completions["completions"].sum() == fresh.completions["completions"].sum()
    assert back.inputs["external"].sha256 == fresh.inputs["external"].sha256


# -- a busy, damaged or crowded ledger (issue 9) -------------------------------------------


def approved_case(write_case, tmp_path: Path, learners: int = 12) -> tuple[Path, list[str]]:
    users = [{"email": f"l{i}@example.com", "userId": f"u-{i:04d}"} for i in range(learners)]
    external = [
        ext(f"l{i}@example.com", "SAFE-101", "Completed", "2026-03-01") for i in range(learners)
    ]
    config = write_case(external, (), users)
    path = tmp_path / "busy.db"
    with Ledger(path) as ledger:
        reconcile_run(config, as_of=AS_OF, ledger=ledger)
        keys = ledger.select(everything=True)
        ledger.decide(keys, "approved", by="ana")
    return path, keys


def hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another program holding the ledger's write lock for ``seconds``."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_an_answer_is_recorded_though_the_ledger_stays_locked_longer_than_sqlite_waits(
    write_case, tmp_path: Path
) -> None:
    path, keys = approved_case(write_case, tmp_path)
    held: list[threading.Thread] = []

    def lock_it_once(report: SubmitReport) -> None:
        if report.accepted == 3 and not held:
            # Far longer than SQLite's own wait (0.1 s here, 30 s before the fix).
            held.append(hold_write_lock(path, 1.5))

    with (
        Ledger(path, busy_timeout=0.1) as ledger,
        Sandbox(key="ledger-test-key", rate=1000, burst=1000) as sb,
    ):
        pace = Pace(rate=500, burst=500, concurrency=2)
        report = submit(
            ledger,
            ApiClient(sb.url, "ledger-test-key"),
            pace=pace,
            progress=False,
            on_progress=lock_it_once,
        )
        held[0].join()
        assert report.exit_code == 0 and report.accepted == len(keys)
        assert set(ledger.proposals()["submission"]) == {"accepted"}
        assert ledger.attempts()["result"].tolist() == [lg.ACCEPTED] * len(keys)


def test_a_lock_held_past_the_budget_is_a_clear_error(write_case, tmp_path: Path) -> None:
    path, keys = approved_case(write_case, tmp_path, learners=2)
    with Ledger(path, write_budget=0.5, busy_timeout=0.1) as ledger:
        holder = hold_write_lock(path, 2.0)
        started = time.monotonic()
        with pytest.raises(LedgerError, match="stayed locked by another program for 0.5 s"):
            ledger.decide(keys, "rejected", by="ben")
        assert 0.4 < time.monotonic() - started < 1.9
        holder.join()
        assert set(ledger.proposals()["decision"]) == {"approved"}  # nothing half-written


CRASH_AFTER_WAL_DELETED = """
import os, sys
from recon import ledger as lg
from recon.errors import LedgerError
from recon.client import ApiClient
from recon.ledger import Ledger
from recon.sandbox import Sandbox
from recon.submit import Pace, SubmitReport, submit
from recon.target import Target

path, keys = sys.argv[1], sys.argv[2:]
ledger = Ledger(path)
sandbox = Target("http://127.0.0.1:1", practice=True)
for key in keys[:5]:
    ledger.finish_attempt(ledger.begin_attempt(key, 1, sandbox), lg.ACCEPTED, http_status=200)
os.unlink(path + "-wal")  # a clean-up job
for key in keys[5:]:
    try:
        ledger.finish_attempt(ledger.begin_attempt(key, 1, sandbox), lg.ACCEPTED, http_status=200)
    except LedgerError as exc:
        print("REFUSED:", exc, flush=True)
os._exit(0)  # then a crash: no clean close
"""


def test_a_deleted_wal_stops_the_writes_and_loses_nothing_committed(
    write_case, tmp_path: Path
) -> None:
    path, keys = approved_case(write_case, tmp_path, learners=8)
    done = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_WAL_DELETED, str(path), *keys],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    refusals = [line for line in done.stdout.splitlines() if line.startswith("REFUSED:")]
    assert len(refusals) == 3  # every later write refused, not one silently lost
    assert "-wal of the ledger" in refusals[0] and "deleted or replaced" in refusals[0]
    assert "copied what it had written into the ledger file" in refusals[0]
    with Ledger(path) as ledger:
        attempts = ledger.attempts()
        assert attempts["result"].tolist() == [lg.ACCEPTED] * 5
        assert set(attempts["key"]) == set(keys[:5])


def test_a_deleted_wal_during_a_submit_stops_it(write_case, tmp_path: Path) -> None:
    path, keys = approved_case(write_case, tmp_path)

    def clean_up(report: SubmitReport) -> None:
        if report.accepted == 4:
            Path(str(path) + "-wal").unlink(missing_ok=True)

    with Ledger(path) as ledger, Sandbox(key="ledger-test-key", rate=1000, burst=1000) as sb:
        pace = Pace(rate=500, burst=500, concurrency=1)
        report = submit(
            ledger,
            ApiClient(sb.url, "ledger-test-key"),
            pace=pace,
            progress=False,
            on_progress=clean_up,
        )
        assert report.exit_code == 2 and "deleted or replaced" in (report.fatal or "")
        assert report.accepted < len(keys)
    with Ledger(path) as ledger:
        recorded = ledger.attempts()
        # Every answer recorded before the deletion was noticed is still there.
        assert (recorded["result"] == lg.ACCEPTED).sum() >= report.accepted


def _open_at_once(path: str, barrier: Any) -> None:
    barrier.wait()
    with Ledger(path) as ledger:
        assert ledger.schema_version == len(lg.MIGRATIONS)


def test_many_processes_opening_a_new_ledger_at_once_all_succeed(tmp_path: Path) -> None:
    path = str(tmp_path / "crowded.db")
    ctx = multiprocessing.get_context("fork")
    count = 40
    barrier = ctx.Barrier(count)
    procs = [ctx.Process(target=_open_at_once, args=(path, barrier)) for _ in range(count)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [p.exitcode for p in procs] == [0] * count
    with Ledger(path) as ledger:
        assert ledger.schema_version == len(lg.MIGRATIONS)
        tables = {
            r[0]
            for r in ledger._query("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        }
        assert {"runs", "proposals", "decisions", "attempts", "lms", "run_exceptions"} <= tables
        assert {"corrections", "run_proposals", "words", "blobs"} <= tables
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = {r[1] for r in db.execute("PRAGMA table_info(attempts)")}
    assert {"target", "practice"} <= columns  # each migration ran once, none twice
