"""Ledger storage (schema 4): a proposal's payload once per key, runs referring to keys,
a run's exceptions as one blob; the migration from schema 3 loses nothing."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ledger_inspect import raw_rows as _raw
from ledger_inspect import used_bytes as _size

from recon import ledger as lg
from recon.cli import main
from recon.devtools.synth import AS_OF as SYNTH_AS_OF
from recon.devtools.synth import generate
from recon.engine import reconcile
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.result import PAYLOAD_FIELDS, payload
from recon.target import Target

FIXTURE = Path(__file__).parent / "fixtures" / "ledger-schema3.db"
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "recon.toml"
REAL = Target("https://lms.example.com:443", practice=False)
PRACTICE = Target("http://127.0.0.1:8765", practice=True)
COLUMNS = [
    "run_id",
    "key",
    "userId",
    "learningPathId",
    "status",
    "completionDate",
    "timeStampDate",
    "category",
    "rows",
    "learner",
    "path",
    "payload",
]


@pytest.fixture
def old_ledger(tmp_path: Path) -> Path:
    """A copy of the schema-3 ledger today's recon (b13b362) wrote: two runs of the
    bundled sample, decisions, attempts to a practice sandbox and to a real LMS (bound),
    one attempt never answered (see tests/fixtures/make_ledger_schema3.py)."""
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    assert _raw(path, "PRAGMA user_version") == [(3,)]
    return path


def test_a_schema_3_ledger_migrates_with_nothing_lost(old_ledger: Path) -> None:
    cols = ", ".join(COLUMNS)
    before = {
        "proposals": _raw(old_ledger, f"SELECT {cols} FROM proposals ORDER BY run_id, rowid"),
        "decisions": _raw(old_ledger, "SELECT * FROM decisions ORDER BY id"),
        "attempts": _raw(old_ledger, "SELECT * FROM attempts ORDER BY id"),
        "runs": _raw(old_ledger, "SELECT * FROM runs ORDER BY id"),
        "exceptions": _raw(old_ledger, "SELECT * FROM run_exceptions ORDER BY run_id, row"),
        "completions": _raw(old_ledger, "SELECT * FROM run_completions ORDER BY rowid"),
        "lms": _raw(old_ledger, "SELECT * FROM lms"),
    }
    assert len(before["proposals"]) > 300 and before["decisions"] and before["attempts"]
    with Ledger(old_ledger) as ledger:
        assert ledger.schema_version == len(lg.MIGRATIONS) >= 4
        # The proposals view gives back every row of the old table, byte for byte.
        after = ledger._query(f"SELECT {cols} FROM proposals ORDER BY run_id, rowid")
        assert [tuple(r) for r in after] == before["proposals"]
        for run_id in (1, 2):
            frame = ledger.proposals(run_id)
            old = [r for r in before["proposals"] if r[0] == run_id]
            assert (
                frame[COLUMNS]
                .astype(object)
                .where(frame[COLUMNS].notna(), None)
                .apply(tuple, axis=1)
                .tolist()
                == old
            )
        # Payloads are stored once per key.
        keys = {r[1] for r in before["proposals"]}
        assert _raw(old_ledger, "SELECT count(*) FROM corrections") == [(len(keys),)]
    # Decisions, attempts, runs, exceptions, completions and the binding: untouched.
    for table, sql in (
        ("decisions", "SELECT * FROM decisions ORDER BY id"),
        ("attempts", "SELECT * FROM attempts ORDER BY id"),
        ("exceptions", "SELECT * FROM run_exceptions ORDER BY run_id, row"),
        ("completions", "SELECT * FROM run_completions ORDER BY rowid"),
        ("lms", "SELECT * FROM lms"),
    ):
        assert _raw(old_ledger, sql) == before[table], table
    # runs: every old column as it was; the new ones say "recorded before": no
    # exceptions blob (schema 4), their own lists without a digest (schema 7)
    old_columns = [r[1] for r in _raw(FIXTURE, "PRAGMA table_info(runs)")]
    cols = ", ".join(old_columns)
    assert _raw(old_ledger, f"SELECT {cols} FROM runs ORDER BY id") == before["runs"]
    added = _raw(
        old_ledger,
        "SELECT exceptions, proposal_list = id, proposals_sha256, suggestion_list = id, "
        "suggestions_sha256 FROM runs ORDER BY id",
    )
    assert added == [(None, 1, None, 1, None)] * len(before["runs"])


def test_every_ledger_feature_works_on_a_migrated_ledger(old_ledger: Path, tmp_path: Path) -> None:
    raw_decisions = _raw(old_ledger, "SELECT key, decision FROM decisions ORDER BY id")
    latest = dict(raw_decisions)
    old_exceptions = _raw(
        old_ledger, "SELECT row, outcome, detail, original FROM run_exceptions WHERE run_id = 1"
    )
    with Ledger(old_ledger) as ledger:
        # history
        runs = ledger.runs()
        assert runs["run_id"].tolist() == [1, 2]
        assert runs["accepted"].tolist() == [2, 0]  # per the bound LMS
        assert runs["approved"].sum() == sum(
            1
            for run_id in (1, 2)
            for k in ledger.proposals(run_id)["key"]
            if latest.get(k) == "approved"
        )
        # decisions: the latest per key, carried to every run proposing it
        for run_id in (1, 2):
            frame = ledger.proposals(run_id)
            want = [latest.get(k, "undecided") for k in frame["key"]]
            assert frame["decision"].tolist() == want
        # attempts, per target
        assert ledger.accepted_keys(REAL) == {
            r[0] for r in _raw(old_ledger, "SELECT key FROM attempts WHERE practice = 0")
        }
        assert len(ledger.accepted_keys(PRACTICE)) == 3
        states = ledger.proposals(1, PRACTICE).set_index("key")["submission"]
        assert sorted(states[states != "not-sent"].tolist()) == [
            "accepted",
            "accepted",
            "accepted",
            "rejected",
            "unknown",
        ]
        # report of an old run: its exceptions as recorded, no input read
        result = ledger.result(1)
        assert len(result.exceptions) == len(old_exceptions)
        first = result.exceptions.iloc[0]
        row, outcome, detail, original = sorted(old_exceptions)[0]
        assert (int(first["row"]), first["outcome"], first["detail"]) == (row, outcome, detail)
        cells = {k: None if pd.isna(first[k]) else first[k] for k in json.loads(original)}
        assert cells == json.loads(original)
        # select and decide still find a run's keys
        keys = ledger.select(run=2, everything=True)
        assert len(keys) == len(ledger.proposals(2))
        done = ledger.decide(keys, "rejected", run=2, only_undecided=True)
        assert set(done.changed) == {k for k in keys if k not in latest}
        to_send = ledger.to_send(1)
        assert set(to_send["key"]) == {
            k for k in ledger.proposals(1)["key"] if latest.get(k) == "approved"
        } - ledger.accepted_keys(REAL)
        # already-submitted: a new run on the same inputs knows what the LMS accepted
        rerun = reconcile_run(SAMPLE, as_of="2026-06-01T00:00:00Z", ledger=ledger)
        assert rerun.counts["already-submitted"] >= len(ledger.accepted_keys(REAL)) == 2
        assert rerun.run_id == 3
        assert not set(rerun.proposals["key"]) & ledger.accepted_keys(REAL)
    # the commands: status and a report of the old run
    assert main(["status", "--ledger", str(old_ledger)]) == 0
    report = tmp_path / "run1.html"
    assert main(["report", "--ledger", str(old_ledger), "--run", "1", "--out", str(report)]) == 0
    assert report.stat().st_size > 1000


def _frame_of(ledger: Ledger, run_id: int) -> pd.DataFrame:
    frame = ledger.proposals(run_id)[COLUMNS[1:]]
    return frame.astype(object).where(frame.notna(), None)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype(object).where(frame.notna(), None).reset_index(drop=True)
    frame["payload"] = pd.Series(
        [json.dumps(payload(r), separators=(",", ":")) for r in frame.to_dict("records")],
        dtype=object,
    )
    return frame[COLUMNS[1:]]


def test_runs_keep_what_each_saw_when_a_key_comes_again(tmp_path: Path) -> None:
    result = reconcile(SAMPLE, as_of="2026-06-01T00:00:00Z")
    first = result.proposals.copy()
    second = first.iloc[::-1].copy()  # another order
    second.iloc[0, second.columns.get_loc("learner")] = "Someone Else"
    second.iloc[1, second.columns.get_loc("learner")] = None
    second.iloc[2, second.columns.get_loc("path")] = None
    second.iloc[3, second.columns.get_loc("path")] = "ANOTHER-CODE"
    second.iloc[4, second.columns.get_loc("rows")] = "9999;1"
    second.iloc[5, second.columns.get_loc("category")] = "missing-progress"
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.record_run(result)
        result.proposals = second
        ledger.record_run(result)
        pd.testing.assert_frame_equal(_frame_of(ledger, 1), _plain(first))
        pd.testing.assert_frame_equal(_frame_of(ledger, 2), _plain(second))
        assert ledger._query("SELECT count(*) FROM corrections")[0][0] == len(first)


ODD = st.text(st.characters(codec="utf-8"), max_size=12)


@pytest.fixture(scope="module")
def sample_result() -> Any:
    return reconcile(SAMPLE, as_of="2026-06-01T00:00:00Z")


@pytest.fixture(scope="module")
def payload_ledger(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with Ledger(tmp_path_factory.mktemp("payloads") / "l.db") as ledger:
        yield ledger


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(ODD, ODD, ODD, st.none() | ODD, st.none() | ODD), min_size=1, max_size=8))
@example([("nul\x00here", "p", "completed", None, None), ("u", "p", "s", "", "d\x7f")])
@example([("plain", "p", "started", "2026-01-01", None), ("é", 'q"', "a\\b", None, "\n")])
def test_payloads_come_back_exactly_as_json_dumps_gives(
    payload_ledger: Ledger, sample_result: Any, rows: list[tuple[Any, ...]]
) -> None:
    props = pd.DataFrame(rows, columns=list(PAYLOAD_FIELDS), dtype=object)
    props["key"] = [uuid.uuid4().hex[:20] for _ in rows]
    props["category"] = "missing-progress"
    result = dataclasses.replace(sample_result, proposals=props)
    run_id = payload_ledger.record_run(result)
    stored = payload_ledger.proposals(run_id)
    want = [json.dumps(payload(r), separators=(",", ":")) for r in props.to_dict("records")]
    assert stored["key"].tolist() == props["key"].tolist()
    assert stored["payload"].tolist() == want
    # the ledger keeps a text exactly where the view could not build it (SQL's test of
    # "plain" is _PLAIN's)
    kept = dict(
        payload_ledger._query(
            "SELECT c.key, c.payload IS NOT NULL FROM corrections c JOIN run_proposals r "
            "ON r.correction = c.id WHERE r.run_id = ?",
            (run_id,),
        )
    )
    plain = re.compile(lg._PLAIN)
    for record in props.to_dict("records"):
        simple = all(
            (record[f] is None and f in ("completionDate", "timeStampDate"))
            or (record[f] is not None and plain.fullmatch(record[f]) is not None)
            for f in PAYLOAD_FIELDS
        )
        assert kept[record["key"]] == (not simple), record


def test_odd_payloads_go_through_the_ledger_as_sent(tmp_path: Path) -> None:
    result = reconcile(SAMPLE, as_of="2026-06-01T00:00:00Z")
    props = result.proposals.head(6).copy()
    props["userId"] = ["plain-id", "é-ü", 'quo"te', "back\\slash", "tab\there", "\u2028x"]
    props.iloc[0, props.columns.get_loc("completionDate")] = ""
    props["key"] = [f"k{i}" for i in range(len(props))]
    result.proposals = props
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.record_run(result)
        stored = ledger.proposals()["payload"].tolist()
    want = [json.dumps(payload(r), separators=(",", ":")) for r in props.to_dict("records")]
    assert stored == want


def test_a_second_run_on_the_same_inputs_adds_little(tmp_path: Path) -> None:
    config = generate(tmp_path / "in", 20_000)
    result = reconcile(config, as_of=SYNTH_AS_OF)
    assert len(result.proposals) > 1000 and len(result.exceptions) > 500
    path = tmp_path / "l.db"
    with Ledger(path) as ledger:
        empty = _size(path)
        ledger.record_run(result)
        one = _size(path)
        ledger.record_run(result)
        two = _size(path)
        assert ledger.result(2).exceptions.shape == result.exceptions.shape
    first, second = one - empty, two - one
    # a run's own rows: a few bytes per proposal; payloads and exceptions not again
    assert second < 0.15 * first, (first, second)
    assert second < 20 * len(result.proposals), (first, second)


def test_exceptions_come_back_as_recorded_whatever_the_column_names(tmp_path: Path) -> None:
    result = reconcile(SAMPLE, as_of="2026-06-01T00:00:00Z")
    # a provider's columns may be named like recon's own (row, detail), and cells empty
    result.exceptions = pd.DataFrame(
        [[3, "bad-row", "why", "a", None, "q"], [5, "unknown-learner", None, "b", "é", None]],
        columns=["row", "outcome", "detail", "detail", "Email", "row"],
    )
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.record_run(result)
        back = ledger.result().exceptions
    assert list(back.columns) == list(result.exceptions.columns)

    def cells(frame: pd.DataFrame) -> list[list[Any]]:
        return [[None if pd.isna(v) else v for v in row] for row in frame.values.tolist()]

    assert cells(back) == cells(result.exceptions)
