"""xAPI statements read as provider rows: shapes, learners, verbs, dates, voiding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recon.errors import InputError
from recon.xapi import COLUMNS, COMPLETION_WORD, VERB_STATUSES, VERBS, read_statements

COURSE = "https://lms.example.com/courses/wri-101"


def statement(
    sid: str,
    verb: str = "completed",
    *,
    actor: dict | None = None,
    obj: dict | None = None,
    timestamp: str | None = "2026-03-01T10:00:00Z",
    stored: str | None = None,
    result: dict | None = None,
) -> dict:
    doc: dict = {
        "id": sid,
        "actor": actor if actor is not None else {"mbox": "mailto:ana@example.com"},
        "verb": {"id": VERBS + verb},
        "object": obj if obj is not None else {"id": COURSE, "objectType": "Activity"},
    }
    if timestamp is not None:
        doc["timestamp"] = timestamp
    if stored is not None:
        doc["stored"] = stored
    if result is not None:
        doc["result"] = result
    return doc


def write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    if name.endswith(".jsonl"):
        assert isinstance(content, list)
        path.write_text("\n".join(json.dumps(s) for s in content) + "\n", encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "name, shape",
    [
        ("a.json", lambda s: s),
        ("b.json", lambda s: {"statements": s, "more": ""}),
        ("c.jsonl", lambda s: s),
    ],
)
def test_every_file_shape_gives_one_row_per_statement_in_order(tmp_path, name, shape):
    statements = [statement("s1"), statement("s2", "progressed"), statement("s3", "failed")]
    frame = read_statements(write(tmp_path, name, shape(statements)))
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["statement_id"]) == ["s1", "s2", "s3"]
    assert list(frame["verb"]) == [VERBS + "completed", VERBS + "progressed", VERBS + "failed"]


def test_learners_from_mbox_and_account_and_the_reason_for_others(tmp_path):
    statements = [
        statement("m", actor={"mbox": "mailto:Ana@Example.com"}),
        statement("a", actor={"account": {"homePage": "https://lms", "name": "u-42"}}),
        statement("h", actor={"mbox_sha1sum": "ab" * 20}),
        statement("o", actor={"openid": "https://id.example.com/ana"}),
        statement("g", actor={"objectType": "Group", "member": []}),
        statement("x", actor={"mbox": "ana@example.com"}),
    ]
    frame = read_statements(write(tmp_path, "s.json", statements)).set_index("statement_id")
    assert frame.loc["m", "learner"] == "Ana@Example.com"
    assert frame.loc["m", "learner_source"] == "mbox"
    assert frame.loc["a", "learner"] == "u-42"
    assert frame.loc["a", "learner_source"] == "account"
    for sid in ("h", "o", "g", "x"):
        assert frame.loc[sid, "learner"] is None
        assert frame.loc[sid, "learner_note"]
    assert "mbox_sha1sum" in frame.loc["h", "learner_note"]
    assert "mailto" in frame.loc["x", "learner_note"]


def test_result_completion_true_is_completed_whatever_the_verb(tmp_path):
    frame = read_statements(
        write(tmp_path, "s.json", [statement("p", "progressed", result={"completion": True})])
    )
    assert frame.loc[0, "verb"] == COMPLETION_WORD
    assert VERB_STATUSES[COMPLETION_WORD] == "completed"


def test_timestamp_then_stored(tmp_path):
    statements = [
        statement("t", timestamp="2026-01-02T03:04:05Z", stored="2026-02-01T00:00:00Z"),
        statement("s", timestamp=None, stored="2026-02-01T00:00:00Z"),
        statement("n", timestamp=None),
    ]
    frame = read_statements(write(tmp_path, "s.json", statements)).set_index("statement_id")
    assert (frame.loc["t", "timestamp"], frame.loc["t", "timestamp_source"]) == (
        "2026-01-02T03:04:05Z",
        "timestamp",
    )
    assert (frame.loc["s", "timestamp"], frame.loc["s", "timestamp_source"]) == (
        "2026-02-01T00:00:00Z",
        "stored",
    )
    assert frame.loc["n", "timestamp"] is None


def test_voided_statement_and_its_voiding_statement_both_say_so(tmp_path):
    statements = [
        statement("keep"),
        statement("gone"),
        statement(
            "voider",
            "voided",
            obj={"objectType": "StatementRef", "id": "gone"},
        ),
        statement("elsewhere", "voided", obj={"objectType": "StatementRef", "id": "absent"}),
    ]
    frame = read_statements(write(tmp_path, "s.json", statements)).set_index("statement_id")
    assert frame.loc["keep", "voided"] is None
    assert frame.loc["gone", "voided"] == "voided by statement voider"
    assert frame.loc["voider", "voided"] == "voids statement gone"
    assert frame.loc["elsewhere", "voided"] == "voids statement absent"
    assert frame.loc["voider", "activity"] is None


def test_a_broken_line_is_named(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(statement("ok")) + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3"):
        read_statements(path)


def test_not_statements_is_refused(tmp_path):
    with pytest.raises(InputError, match="statement"):
        read_statements(write(tmp_path, "s.json", [1, 2]))
    with pytest.raises(InputError, match="statement array"):
        read_statements(write(tmp_path, "t.json", "text"))
