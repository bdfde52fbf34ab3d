"""The ledger: runs, proposals, decisions, attempts, and what survives a crash."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import AS_OF, ext, lms

from recon import ledger as lg
from recon.engine import reconcile
from recon.errors import LedgerBusyError, LedgerError
from recon.ledger import Ledger
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
    result = reconcile(case, as_of=AS_OF, ledger=ledger)
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
    reconcile(case, as_of=AS_OF, ledger=ledger)
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
    reconcile(case, as_of=AS_OF, ledger=ledger)
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
    reconcile(case, as_of=AS_OF, ledger=ledger)
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
    first = reconcile(case, as_of=AS_OF, ledger=ledger)
    key = first.proposals["key"].iloc[0]
    ledger.decide([key], "approved")
    attempt = ledger.begin_attempt(key, first.run_id, LMS)
    ledger.finish_attempt(attempt, lg.ACCEPTED, http_status=200)
    # The LMS export has not caught up: same inputs again.
    second = reconcile(case, as_of=AS_OF, ledger=ledger)
    assert key not in set(second.proposals["key"])
    assert second.counts["already-submitted"] == 1
    assert len(second.proposals) == len(first.proposals) - 1
    assert second.run_id == 2


def test_decisions_carry_over_to_a_later_run_with_the_same_correction(
    case: Path, ledger: Ledger
) -> None:
    reconcile(case, as_of=AS_OF, ledger=ledger)
    ledger.decide(ledger.select(categories=["missing-progress"]), "rejected", note="stale")
    reconcile(case, as_of=AS_OF, ledger=ledger)
    props = ledger.proposals("latest")
    assert props.loc[props["category"] == "missing-progress", "decision"].tolist() == ["rejected"]


def test_decisions_survive_a_reopen(case: Path, tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as first:
        reconcile(case, as_of=AS_OF, ledger=first)
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
    result = reconcile(case, as_of=AS_OF, ledger=path)
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
        reconcile(case, as_of=AS_OF, ledger=opened)
        assert opened.runs()["run_id"].tolist() == [1, 2]


def test_a_run_reads_back_as_the_same_result(case: Path, ledger: Ledger, write_case) -> None:
    messy = write_case(
        [*EXTERNAL, ext("nobody@example.com", "SAFE-101", "Completed", "2026-01-01")], PROGRESS
    )
    fresh = reconcile(messy, as_of=AS_OF, ledger=ledger)
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
