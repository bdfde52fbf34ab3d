"""Accept once, remembered: suggestions, aliases and rejections in the ledger (issue 14).

An analyst accepts a suggestion (``recon resolve --accept ROW``, ``--accept-above SCORE``,
notebook 04): the provider's value becomes an *alias* of the chosen id (value -> id,
kind, who, when, how). Every later run looks values up in the aliases before the
directory and the mapping (:func:`engine_aliases`, passed to the engine as data). A
rejected suggestion is remembered and never offered again. Aliases are removed by
marking them so (the history stays).

Kept apart from :mod:`recon.ledger` so its storage merges cleanly: the tables come with
one migration script, :data:`MIGRATION`, appended to the ledger's list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import ReconError
from .suggest import LEARNER, PATH, SUGGESTION_COLUMNS

if TYPE_CHECKING:
    from .ledger import Ledger

# Appended to recon.ledger.MIGRATIONS (schema 5 once schema 4, payload storage, is in).
# IF NOT EXISTS: harmless should the two be merged in either order. No ';' in comments:
# the ledger splits scripts at them.
MIGRATION = """
    CREATE TABLE IF NOT EXISTS suggestions (
        run_id        INTEGER NOT NULL REFERENCES runs(id),
        row           INTEGER NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('learner', 'path')),
        value         TEXT NOT NULL,
        candidate     TEXT,
        candidate_id  TEXT,
        score         REAL,
        reason        TEXT,
        rank          INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS suggestions_run ON suggestions(run_id, row);
    CREATE TABLE IF NOT EXISTS aliases (
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL CHECK (kind IN ('learner', 'path')),
        value         TEXT NOT NULL,
        target_id     TEXT NOT NULL,
        candidate     TEXT,
        score         REAL,
        reason        TEXT,
        how           TEXT NOT NULL,
        by            TEXT,
        at            TEXT NOT NULL,
        run_id        INTEGER,
        row           INTEGER,
        removed_at    TEXT,
        removed_by    TEXT
    );
    CREATE TABLE IF NOT EXISTS suggestion_rejections (
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL,
        value         TEXT NOT NULL,
        candidate_id  TEXT NOT NULL,
        candidate     TEXT,
        by            TEXT,
        at            TEXT NOT NULL,
        run_id        INTEGER,
        row           INTEGER
    )
"""

ALIAS_COLUMNS = [
    "id",
    "kind",
    "value",
    "target_id",
    "candidate",
    "score",
    "how",
    "by",
    "at",
    "run_id",
    "row",
    "reason",
]
"""aliases.csv (``recon resolve --export-aliases``), a contract."""
HOW_ROW = "accepted row"
HOW_BULK = "accept-above {score:g}"


@dataclass
class Resolved:
    """What one resolve action did, for the terminal."""

    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    what: str = ""
    """For one row: what was accepted or rejected, in the analyst's words."""

    def describe(self) -> str:
        parts = []
        said = f": {self.what}" if self.what else ""
        if self.accepted:
            parts.append(f"accepted {self.accepted} suggestion(s) as aliases{said}")
        if self.rejected:
            parts.append(f"rejected {self.rejected} suggestion(s){said}")
        if self.skipped:
            parts.append(f"{self.skipped} row(s) left (no single candidate at that score)")
        return "; ".join(parts) or "nothing changed"


def _key(value: str) -> str:
    """Values are remembered as the engine compares them (trimmed, without case)."""
    from .engine import name_key

    return name_key(value.strip())


def record_suggestions(ledger: Ledger, run_id: int, found: pd.DataFrame) -> None:
    """Store suggestions for a run recorded without any, so ``recon resolve`` and
    notebook 04 can act on them (:meth:`Ledger.record_run` stores a run's own)."""
    ledger.record_suggestions(run_id, found)


def suggestions(ledger: Ledger, run: str | int | None = "latest") -> pd.DataFrame:
    """A run's suggestions (``SUGGESTION_COLUMNS`` + ``rank``) still open: the value has
    no alias yet and the candidate was not rejected."""
    run_id = ledger.resolve_run(run)
    frame = ledger._frame(
        "SELECT row, kind, value, candidate, candidate_id, score, reason, rank "
        "FROM suggestions WHERE run_id = ? ORDER BY row, kind, rank",
        (run_id,),
    )
    if frame.empty:
        return frame
    done = {(k, _key(v)) for k, v in active(ledger)[["kind", "value"]].itertuples(index=False)}
    turned_down = {(k, _key(v), c.lower()) for k, v, c in rejected(ledger)}
    keep = [
        (kind, _key(value)) not in done
        and (cid is None or (kind, _key(value), str(cid).lower()) not in turned_down)
        for kind, value, cid in zip(
            frame["kind"], frame["value"], frame["candidate_id"], strict=True
        )
    ]
    return frame[keep].reset_index(drop=True)


def active(ledger: Ledger) -> pd.DataFrame:
    """The aliases in use (``ALIAS_COLUMNS``), oldest first."""
    return ledger._frame(
        f"SELECT {', '.join(ALIAS_COLUMNS)} FROM aliases WHERE removed_at IS NULL ORDER BY id"
    )


def rejected(ledger: Ledger) -> list[tuple[str, str, str]]:
    """(kind, value, candidate_id) of every suggestion an analyst turned down."""
    rows = ledger._query("SELECT kind, value, candidate_id FROM suggestion_rejections")
    return [(r[0], r[1], r[2]) for r in rows]


def engine_aliases(ledger: Ledger) -> pd.DataFrame:
    """The aliases as the engine takes them: ``kind``, ``value``, ``id``, ``via`` (the
    words the outcome's detail carries)."""
    frame = active(ledger)
    return pd.DataFrame(
        {
            "kind": frame["kind"],
            "value": frame["value"],
            "id": frame["target_id"],
            "via": [
                f"{kind} resolved through an alias: '{value}' -> "
                f"{candidate or target} ({how} by {by or 'unknown'}, {str(at)[:10]})"
                for kind, value, target, candidate, how, by, at in zip(
                    frame["kind"],
                    frame["value"],
                    frame["target_id"],
                    frame["candidate"],
                    frame["how"],
                    frame["by"],
                    frame["at"],
                    strict=True,
                )
            ],
        },
        dtype=object,
    )


def _row_lines(ledger: Ledger, run_id: int, row: int, kind: str | None) -> pd.DataFrame:
    lines = ledger._frame(
        "SELECT row, kind, value, candidate, candidate_id, score, reason, rank "
        "FROM suggestions WHERE run_id = ? AND row = ? ORDER BY kind, rank",
        (run_id, row),
    )
    if kind is not None:
        lines = lines[lines["kind"] == kind]
    if lines.empty:
        raise ReconError(f"run {run_id} has no suggestion for row {row}")
    if lines["kind"].nunique() > 1:
        raise ReconError(
            f"row {row} has suggestions for its learner and its path: say which with --kind"
        )
    return lines


def _pick(lines: pd.DataFrame, candidate: str | None, row: int) -> dict:
    offered = lines[lines["candidate_id"].notna()]
    if offered.empty:
        raise ReconError(f"row {row} has no candidate to accept: {lines['reason'].iloc[0]}")
    if candidate is None:
        return dict(offered.iloc[0])
    chosen = offered[offered["candidate_id"].str.lower() == candidate.strip().lower()]
    if chosen.empty:
        listed = ", ".join(offered["candidate_id"])
        raise ReconError(f"row {row}: {candidate!r} is not one of its candidates ({listed})")
    return dict(chosen.iloc[0])


def accept(
    ledger: Ledger,
    row: int,
    *,
    run: str | int | None = "latest",
    kind: str | None = None,
    candidate: str | None = None,
    by: str | None = None,
) -> Resolved:
    """Make the row's best candidate (or ``candidate``, one of those offered) an alias."""
    run_id = ledger.resolve_run(run)
    line = _pick(_row_lines(ledger, run_id, row, kind), candidate, row)
    replaced = _add_aliases(ledger, [line], HOW_ROW, by, run_id)
    what = _said(line) + (f" (replaces alias {', '.join(map(str, replaced))})" if replaced else "")
    return Resolved(accepted=1, what=what)


def reject(
    ledger: Ledger,
    row: int,
    *,
    run: str | int | None = "latest",
    kind: str | None = None,
    candidate: str | None = None,
    by: str | None = None,
) -> Resolved:
    """Turn down the row's best candidate (or ``candidate``): never offered again."""
    from .ledger import now_iso

    run_id = ledger.resolve_run(run)
    line = _pick(_row_lines(ledger, run_id, row, kind), candidate, row)
    # Rejecting the candidate an alias in use already points at would leave the two
    # contradicting each other while the alias goes on resolving the value.
    for alias_id, value, target in active(ledger)[["id", "value", "target_id"]].itertuples(
        index=False
    ):
        same_value = _key(value) == _key(line["value"])
        if same_value and str(target).lower() == str(line["candidate_id"]).lower():
            raise ReconError(
                f"row {row}: {line['kind']} '{line['value']}' is resolved through alias "
                f"{alias_id} (-> {line['candidate'] or target}); to stop using it: "
                f"`recon resolve --remove-alias {alias_id}`"
            )
    with ledger._tx("recording a rejected suggestion") as db:
        db.execute(
            "INSERT INTO suggestion_rejections (kind, value, candidate_id, candidate, by, at, "
            "run_id, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                line["kind"],
                line["value"],
                line["candidate_id"],
                line["candidate"],
                by,
                now_iso(),
                run_id,
                int(line["row"]),
            ),
        )
    return Resolved(rejected=1, what=_said(line))


def _said(line: dict) -> str:
    return (
        f"row {line['row']}: {line['kind']} '{line['value']}' -> "
        f"{line['candidate'] or line['candidate_id']} ({line['candidate_id']})"
    )


def accept_above(
    ledger: Ledger,
    score: float,
    *,
    run: str | int | None = "latest",
    by: str | None = None,
) -> Resolved:
    """An explicit bulk choice: every open row whose best candidate scores ``score`` or
    more gets it as an alias, recorded as ``accept-above SCORE``. Rows with no candidate
    (ambiguous, or tied) are left and counted."""
    if not 0 < score <= 1:
        raise ReconError(f"--accept-above takes a score above 0 and at most 1, not {score:g}")
    run_id = ledger.resolve_run(run)
    open_ = suggestions(ledger, run_id)
    if open_.empty:
        return Resolved()
    firsts = open_.sort_values("rank").groupby(["row", "kind"], sort=True).head(1)
    chosen = firsts[firsts["score"].fillna(-1) >= score]
    skipped = len(firsts) - len(chosen)
    # one alias per value, however many rows carry it
    chosen = chosen.assign(_k=[_key(v) for v in chosen["value"]]).drop_duplicates(["kind", "_k"])
    _add_aliases(ledger, chosen.to_dict("records"), HOW_BULK.format(score=score), by, run_id)
    return Resolved(accepted=len(chosen), skipped=skipped)


def _add_aliases(
    ledger: Ledger, lines: Iterable[dict], how: str, by: str | None, run_id: int
) -> list[int]:
    """Record ``lines`` as aliases; returns the ids of the aliases they replace."""
    from .ledger import now_iso

    at = now_iso()
    replaced = []
    with ledger._tx("recording aliases") as db:
        for line in lines:
            # one alias in use per value: a newer choice replaces the older one
            current = db.execute(
                "SELECT id, value FROM aliases WHERE removed_at IS NULL AND kind = ?",
                (line["kind"],),
            ).fetchall()
            for alias_id, value in current:
                if _key(value) == _key(line["value"]):
                    replaced.append(alias_id)
                    db.execute(
                        "UPDATE aliases SET removed_at = ?, removed_by = ? WHERE id = ?",
                        (at, by, alias_id),
                    )
            db.execute(
                "INSERT INTO aliases (kind, value, target_id, candidate, score, reason, how, by, "
                "at, run_id, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    line["kind"],
                    str(line["value"]).strip(),
                    line["candidate_id"],
                    _text(line["candidate"]),
                    None if pd.isna(line["score"]) else float(line["score"]),
                    _text(line["reason"]),
                    how,
                    by,
                    at,
                    run_id,
                    int(line["row"]),
                ),
            )
    return replaced


def remove(ledger: Ledger, alias_id: int, *, by: str | None = None) -> dict:
    """Stop using an alias (it stays in the history, marked removed)."""
    from .ledger import now_iso

    with ledger._tx("removing an alias") as db:
        found = db.execute(
            "SELECT kind, value, target_id FROM aliases WHERE id = ? AND removed_at IS NULL",
            (alias_id,),
        ).fetchone()
        if found is None:
            raise ReconError(f"no alias {alias_id} in use (see `recon resolve --aliases`)")
        db.execute(
            "UPDATE aliases SET removed_at = ?, removed_by = ? WHERE id = ?",
            (now_iso(), by, alias_id),
        )
    return {"kind": found[0], "value": found[1], "target_id": found[2]}


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


__all__ = [
    "ALIAS_COLUMNS",
    "LEARNER",
    "MIGRATION",
    "PATH",
    "SUGGESTION_COLUMNS",
    "accept",
    "accept_above",
    "active",
    "engine_aliases",
    "record_suggestions",
    "reject",
    "rejected",
    "remove",
    "suggestions",
]
