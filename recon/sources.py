"""The provider's own words for the outputs that name them: each row's learner and path as
written, and the instants behind a ``completion-date-differs`` row.

The engine's :class:`~recon.result.Result` keeps ids and outcomes, not every cell; these
are read again from the run's files with the engine's own readers and date rule
(:func:`recon.inputs.load_table`, :func:`recon.normalise.define_date_rule`,
:func:`recon.engine.lms_rows_sql`), so they are read exactly as the run read them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd

from .config import Config
from .engine import lms_macros, lms_rows_sql, load_progress
from .inputs import ROW, load_table, run
from .normalise import define_date_rule
from .result import Result

__all__ = ["SourceRows", "read_sources", "sources_of"]

_WIRE = "%Y-%m-%dT%H:%M:%S.%gZ"


class SourceRows:
    """``provider``: per provider data row ``row``, ``learner`` and ``path`` as written
    (trimmed; None when blank) and ``completion`` (UTC wire format, None when blank or
    unreadable). ``lms``: per lower-cased (user id, path id) pair the LMS's earliest
    readable completion of a completed row (UTC wire format), the one the rules compare.

    Built when first read: a caller that turns out not to need them (the engine's own
    Result has them, see :func:`recon.outputs.review_frame`) reads no file and copies
    no million rows."""

    def __init__(self, load: Callable[[], tuple[pd.DataFrame, pd.DataFrame]]) -> None:
        self._load = load
        self._rows: tuple[pd.DataFrame, pd.DataFrame] | None = None

    def _loaded(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._rows is None:
            self._rows = self._load()
        return self._rows

    @property
    def provider(self) -> pd.DataFrame:
        return self._loaded()[0]

    @property
    def lms(self) -> pd.DataFrame:
        return self._loaded()[1]


def read_sources(config: Config) -> SourceRows:
    """The rows as the run's files hold them, read again (when first used)."""
    return SourceRows(lambda: _read(config))


def _read(config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    ext, prog = config.external, config.progress
    con = duckdb.connect(config={"preserve_insertion_order": True})
    try:
        run(con, "SET enable_progress_bar = false")
        _, cols = load_table(
            con,
            "ext",
            "external",
            Path(ext.file),
            {"learner": ext.learner, "path": ext.path, "completion": ext.completion_date},
            sheet=ext.sheet,
        )
        _, lcols = load_progress(con, prog)
        lms_macros(con, prog, config.source)  # also recon_trim and the date helpers
        lms = con.sql(
            f"SELECT lower(user_id) || chr(0) || lower(path_id) AS pair, "
            f"strftime(timezone('UTC', min(completion_ts)), '{_WIRE}') AS lms_completion "
            f"FROM ({lms_rows_sql('progress', lcols)}) "
            "WHERE user_id IS NOT NULL AND path_id IS NOT NULL AND status = 'completed' "
            "GROUP BY 1"
        ).df()
        define_date_rule(con, "recon_provider_date", ext.date_formats)
        run(con, "SET TimeZone = '" + ext.timezone.replace("'", "''") + "'")
        provider = con.sql(
            f"SELECT {ROW} AS row, "
            f"nullif(recon_trim({cols['learner']}), '') AS learner, "
            f"nullif(recon_trim({cols['path']}), '') AS path, "
            f"strftime(timezone('UTC', recon_provider_date("
            f"nullif(recon_trim({cols['completion']}), ''))), '{_WIRE}') AS completion "
            f"FROM ext ORDER BY {ROW}"
        ).df()
    finally:
        con.close()
    return provider, lms.set_index("pair")


def sources_of(result: Result) -> SourceRows | None:
    """The same rows from what the engine already holds (no file read again): the
    outcomes' ``learner`` and ``path``, and the instants of the rows to review. None for a
    Result the engine did not make."""
    if result.review_instants is None:
        return None
    return SourceRows(lambda: _of(result))


def _of(result: Result) -> tuple[pd.DataFrame, pd.DataFrame]:
    assert result.review_instants is not None
    outcomes = result.outcomes
    provider = pd.DataFrame(
        {
            "row": outcomes["row"].to_numpy(),
            "learner": outcomes["learner"].astype(object).to_numpy(),
            "path": outcomes["path"].astype(object).to_numpy(),
        }
    )
    instants = result.review_instants.set_index("row")
    provider["completion"] = (
        instants["provider_completion_date"].reindex(provider["row"]).to_numpy()
    )
    differs = outcomes[outcomes["row"].isin(instants.index)]
    pair = differs["userId"].astype(str).str.lower() + "\x00"
    pair += differs["learningPathId"].astype(str).str.lower()
    lms = pd.DataFrame(
        {
            "pair": pair.to_numpy(),
            "lms_completion": instants["lms_completion_date"].reindex(differs["row"]).to_numpy(),
        }
    ).drop_duplicates("pair")
    return provider, lms.set_index("pair")
