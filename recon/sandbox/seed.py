"""The sandbox's starting state: an LMS progress export, read and folded as recon does.

A seed is read by the engine's own SQL (:func:`recon.engine.lms_rows_sql`) and folded
per learner and path by the engine's own fold (:func:`recon.engine.lms_fold_sql`), so
the sandbox's view before anything is posted is exactly what ``recon reconcile`` saw:
the furthest status, the earliest completion date, ids compared without letter case
(:func:`id_key`). What recon cannot read is kept as the LMS holds it, so that an
export of the view is read the same way again: a pair with a status word recon does not
understand takes that word as its status (the first in sort order, when it has several:
the view holds one status a pair), and an unreadable completion date stays as written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

from ..validation import STATUSES

if TYPE_CHECKING:
    from ..config import ProgressSpec

Seed = Union[str, Path, "ProgressSpec"]
"""An LMS progress export: a file with the sandbox's column names, or a config's
``[progress]`` table (its file, sheet, column names, words, timezone and date formats)."""

SeedRow = tuple[str, str, str, str | None]
"""One learner and path of a seed: userId, learningPathId, status, completionDate."""


def id_key(value: str) -> str:
    """A learner or path id as the LMS tells ids apart, and as the engine compares the
    LMS's ids (DuckDB's ``lower``): without letter case, so ``U-1`` and ``u-1`` are one
    learner. Character by character, as DuckDB does (Python's ``str.lower`` would make a
    final ``Σ`` a ``ς`` and ``İ`` two characters)."""
    return "".join("i" if c == "İ" else c.lower() for c in value)


# The fold's pair is the ids' DuckDB lower case: the same key as id_key, in SQL.
_SEED_SQL = """
WITH marked AS (
    SELECT r.row, r.user_id, r.path_id,
           lower(r.user_id) AS user_key, lower(r.path_id) AS path_key, {marks}
    FROM ({rows}) r
    -- a blank id: recon ignores the row, and so does the LMS's view
    WHERE r.user_id IS NOT NULL AND r.path_id IS NOT NULL
),
folded AS ({fold}),
-- each pair spelled as its first row spells it
spelled AS (
    SELECT user_key, path_key, arg_min(user_id, row) AS user_id,
           arg_min(path_id, row) AS path_id, min(row) AS first
    FROM marked GROUP BY user_key, path_key
)
SELECT s.user_id, s.path_id, f.rk, f.unknown_word, f.bad_date,
       strftime(timezone('UTC', f.completion_ts), '%Y-%m-%dT%H:%M:%S.%gZ')
FROM folded f JOIN spelled s USING (user_key, path_key)
ORDER BY s.first
"""


def read_seed(seed: Seed) -> list[SeedRow]:
    """The learners and paths of an LMS progress export (CSV or XLSX), one row each,
    read and folded exactly as ``recon reconcile`` reads and folds one (see the module's
    docstring), in the order each pair first appears."""
    import duckdb

    from ..config import ProgressSpec
    from ..engine import lms_fold_sql, lms_macros, lms_marks_sql, lms_rows_sql
    from ..inputs import load_table, resolve_columns, run

    if isinstance(seed, ProgressSpec):
        spec = seed
    else:
        spec = ProgressSpec(file=Path(seed), completion_date="completionDate")
    path = Path(spec.file)
    wanted = {"user": spec.user_id, "path": spec.path_id, "status": spec.status}
    con = duckdb.connect(config={"preserve_insertion_order": True})
    try:
        info, cols = load_table(
            con, "seed", "seed progress", path, wanted, sheet=spec.sheet, allow_no_rows=True
        )
        # The completion date is optional: an export of unfinished work may lack it.
        date_column = spec.completion_date
        if date_column is not None and any(
            c.strip().lower() == date_column.strip().lower() for c in info.columns
        ):
            found = resolve_columns(list(info.columns), {"completion": date_column}, path)
            cols["completion"] = info.sql_name(found["completion"])
        lms_macros(con, spec, None)
        sql = _SEED_SQL.format(
            marks=lms_marks_sql("r"),
            rows=lms_rows_sql("seed", cols),
            fold=lms_fold_sql("marked", "user_key, path_key"),
        )
        folded = run(con, sql)
    finally:
        con.close()
    out: list[SeedRow] = []
    for user, path_id, rank, unknown_word, bad_date, wire in folded:
        # What recon could not read stays as the LMS holds it (see the module docstring).
        status = unknown_word if unknown_word is not None else STATUSES[rank]
        out.append((user, path_id, status, bad_date if bad_date is not None else wire))
    return out
