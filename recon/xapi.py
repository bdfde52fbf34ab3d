"""xAPI 1.0.3 statements as a provider export: one statement, one row.

An LRS gives an analyst statements, not a table. This module turns a file of them into the
same shape as a CSV export (every cell text, file order kept), so the rules treat them like
any other provider row. It decides nothing about identities or statuses: that stays with
the engine and recon.toml, where the ``xapi`` preset maps the ADL verbs to LMS statuses.

Accepted files: ``.json`` holding a statement array, one statement, or an LRS answer
(``{"statements": [...], "more": ...}``); ``.jsonl``, one statement per line (blank lines
skipped, still counted in the line numbers). A statement's row number is its 1-based
position among the statements of the file.

Columns written (names are a contract, used by the ``xapi`` preset):

* ``statement_id``: the statement's ``id`` as written.
* ``learner``: the email of ``actor.mbox`` (without ``mailto:``), else
  ``actor.account.name`` (a user id); blank for any other identifier, with the reason in
  ``learner_note``.
* ``learner_source``: ``mbox``, ``account`` or what the actor had instead.
* ``activity``: ``object.id`` (the activity IRI), looked up in ``[paths]`` like a code.
* ``verb``: ``verb.id`` (the IRI), the word the status mapping reads; when
  ``result.completion`` is true the word is ``result.completion=true`` instead, which the
  preset maps to ``completed`` whatever the verb said.
* ``timestamp``: ``timestamp``, else ``stored`` (``timestamp_source`` says which).
* ``voided``: why this statement does not count, when a ``voided`` statement in the same
  file voids it, or it is itself a voiding statement; blank otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError

VERBS = "http://adlnet.gov/expapi/verbs/"
VOIDED_VERB = VERBS + "voided"
COMPLETION_WORD = "result.completion=true"

COLUMNS = (
    "statement_id",
    "learner",
    "learner_source",
    "learner_note",
    "activity",
    "verb",
    "timestamp",
    "timestamp_source",
    "voided",
)

VERB_STATUSES: dict[str, str] = {
    VERBS + "completed": "completed",
    VERBS + "passed": "completed",
    VERBS + "failed": "not-completed",
    VERBS + "progressed": "started",
    VERBS + "attempted": "started",
    VERBS + "launched": "started",
    VERBS + "initialized": "started",
    VERBS + "resumed": "started",
    VERBS + "experienced": "started",
    VERBS + "registered": "not-started",
    COMPLETION_WORD: "completed",
}
"""The ADL verbs' LMS statuses (issue 13's table); any other verb is ``unknown-status``."""


def is_xapi_file(path: Path) -> bool:
    """True for the file names recon reads as xAPI statements."""
    return path.suffix.lower() in (".json", ".jsonl")


def _statements(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, statement) in file order; raises InputError on a file that is not
    statements, naming the line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: xAPI statements must be UTF-8 JSON ({exc})", file=path) from None
    if path.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}: line {number} is not a JSON statement: {exc.msg}", file=path
                ) from None
        return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", file=path
        ) from None
    if isinstance(doc, dict) and "statements" in doc:
        doc = doc["statements"]
    elif isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise InputError(
            f"{path}: expected a statement array or an LRS answer with 'statements'", file=path
        )
    for item in doc:
        yield 0, item


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    return json.dumps(value, sort_keys=True)


def _learner(actor: Any) -> tuple[str | None, str, str | None]:
    """(learner, source, note) of an actor."""
    if not isinstance(actor, dict):
        return None, "none", "the statement has no actor"
    mbox = actor.get("mbox")
    if isinstance(mbox, str) and mbox.strip():
        value = mbox.strip()
        if value.lower().startswith("mailto:"):
            email = value[len("mailto:") :].strip()
            if email:
                return email, "mbox", None
        return None, "mbox", f"actor.mbox {value!r} is not a mailto: address"
    account = actor.get("account")
    if isinstance(account, dict):
        name = _text(account.get("name"))
        if name:
            return name, "account", None
        return None, "account", "actor.account has no name"
    for other in ("mbox_sha1sum", "openid"):
        if actor.get(other):
            return None, other, f"actor is identified by {other}, which names no LMS learner"
    if actor.get("objectType") == "Group":
        return None, "group", "actor is a group, not one learner"
    return None, "none", "actor has no mbox, account, mbox_sha1sum or openid"


def read_statements(path: str | Path) -> pd.DataFrame:
    """The statements of ``path`` as a text frame with :data:`COLUMNS`, in file order.

    Voiding is resolved within the file: a statement whose ``id`` is the target of a
    ``voided`` statement, and that voiding statement, both carry the reason in ``voided``,
    so each keeps exactly one outcome (``voided``) instead of disappearing.
    """
    path = Path(path)
    rows: list[dict[str, str | None]] = []
    voids: dict[str, str] = {}  # voided statement id -> voiding statement id
    for line, statement in _statements(path):
        where = f"line {line}" if line else f"statement {len(rows) + 1}"
        if not isinstance(statement, dict):
            raise InputError(f"{path}: {where} is not a statement object", file=path)
        verb = statement.get("verb")
        verb_id = _text(verb.get("id")) if isinstance(verb, dict) else None
        obj = statement.get("object")
        obj = obj if isinstance(obj, dict) else {}
        result = statement.get("result")
        result = result if isinstance(result, dict) else {}
        learner, source, note = _learner(statement.get("actor"))
        timestamp = _text(statement.get("timestamp"))
        stamp_source = "timestamp" if timestamp else None
        if timestamp is None:
            timestamp = _text(statement.get("stored"))
            stamp_source = "stored" if timestamp else None
        word = COMPLETION_WORD if result.get("completion") is True else verb_id
        statement_id = _text(statement.get("id"))
        voided = None
        if verb_id == VOIDED_VERB:
            target = _text(obj.get("id")) if obj.get("objectType") == "StatementRef" else None
            if target:
                voids[target] = statement_id or f"#{len(rows) + 1}"
            voided = (
                f"voids statement {target}"
                if target
                else "a voiding statement with no StatementRef"
            )
        rows.append(
            {
                "statement_id": statement_id,
                "learner": learner,
                "learner_source": source,
                "learner_note": note,
                "activity": None if verb_id == VOIDED_VERB else _text(obj.get("id")),
                "verb": word,
                "timestamp": timestamp,
                "timestamp_source": stamp_source,
                "voided": voided,
            }
        )
    for row in rows:
        by = voids.get(row["statement_id"] or "")
        if by is not None and row["voided"] is None:
            row["voided"] = f"voided by statement {by}"
    return pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
