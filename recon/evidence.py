"""What lies behind a proposal, read from the run's input files: the provider's row(s) as
written, and what the LMS holds now for the learner and path.

The ledger keeps proposals, not every input row; the review widget's ``LMS now`` column
and its evidence panel read the config's files again through the engine's own readers
(:func:`recon.inputs.load_table`, :func:`recon.engine.lms_rows_sql`), so a file is never
read here differently from how ``recon reconcile`` read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from .config import Config, load_config
from .engine import lms_macros, lms_rows_sql
from .inputs import ROW, load_table, resolve_columns, run

__all__ = ["NO_RECORD", "Evidence", "LMS_RANK"]

NO_RECORD = "no record"
"""What ``LMS now`` says when the LMS export has no row for the learner and path."""
LMS_RANK = {"not-started": 0, "started": 1, "not-completed": 2, "completed": 3}
_WIRE = "%Y-%m-%dT%H:%M:%S.%gZ"


class Evidence:
    """The config's provider export and LMS progress export, ready to be asked about.

    ``lms``: every LMS row (``row``, ``userId``, ``learningPathId``, ``word``, ``status``
    (None when recon does not understand the word), ``completionDate`` (UTC wire format,
    completed rows with a readable date only), ``completion_raw``).
    ``provider_rows(rows)``: the provider's rows by row number, with their original cells.
    """

    def __init__(self, config: Config | str | Path) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        ext, prog = self.config.external, self.config.progress
        self.provider_zone = ext.timezone
        self.provider_file = Path(ext.file)
        self._con = duckdb.connect(config={"preserve_insertion_order": True})
        run(self._con, "SET enable_progress_bar = false")
        self.provider_info, _ = load_table(
            self._con, "ext", "external", Path(ext.file), {}, sheet=ext.sheet
        )
        info, cols = load_table(
            self._con,
            "progress",
            "progress",
            Path(prog.file),
            {"user": prog.user_id, "path": prog.path_id, "status": prog.status},
            sheet=prog.sheet,
            allow_no_rows=True,
        )
        # The completion date is optional in an LMS export (as the engine reads it).
        if prog.completion_date is not None and any(
            c.strip().lower() == prog.completion_date.strip().lower() for c in info.columns
        ):
            found = resolve_columns(
                list(info.columns), {"completion": prog.completion_date}, Path(prog.file)
            )
            cols["completion"] = info.sql_name(found["completion"])
        lms_macros(self._con, prog, self.config.source)
        self.lms = self._con.sql(
            "SELECT row, user_id AS userId, path_id AS learningPathId, word, status, "
            f"strftime(timezone('UTC', completion_ts), '{_WIRE}') AS completionDate, "
            f"completion_raw FROM ({lms_rows_sql('progress', cols)}) "
            "WHERE user_id IS NOT NULL AND path_id IS NOT NULL ORDER BY row"
        ).df()
        self.lms["pair"] = (
            self.lms["userId"].str.lower() + "\x00" + self.lms["learningPathId"].str.lower()
        )

    def close(self) -> None:
        self._con.close()

    def now(self) -> pd.DataFrame:
        """What the LMS holds per pair (index: ``pair``, lower-case user and path id),
        folded by the README's rule: the furthest status, the earliest completion date.

        ``lms_status``: the status, or the word as written (quoted) when recon does not
        understand it; ``lms_date``: the completion date (UTC wire format) or None.
        """
        rows = self.lms
        if rows.empty:
            return pd.DataFrame(columns=["lms_status", "lms_date"])
        rank = rows["status"].map(LMS_RANK)
        ordered = rows.assign(rank=rank).sort_values(["pair", "rank"], ascending=[True, False])
        best = ordered.groupby("pair", sort=False)["status"].first()
        unknown = rows[rows["status"].isna()].groupby("pair")["word"].first()
        status = best.astype(object)
        # A word recon does not understand is shown as written: nothing is hidden.
        status.loc[unknown.index] = [f"“{w}”" for w in unknown]
        dates = rows.dropna(subset=["completionDate"]).groupby("pair")["completionDate"].min()
        return pd.DataFrame({"lms_status": status, "lms_date": dates.reindex(status.index)})

    def lms_rows(self, user_id: str, path_id: str) -> pd.DataFrame:
        """Every LMS row for one learner and path, as the export has them."""
        pair = f"{user_id}".lower() + "\x00" + f"{path_id}".lower()
        return self.lms[self.lms["pair"] == pair].drop(columns=["pair"])

    def provider_rows(self, rows: list[int]) -> pd.DataFrame:
        """The provider's rows ``rows`` (1-based data rows) with their cells as written."""
        if not rows:
            return pd.DataFrame(columns=["row", *self.provider_info.columns])
        picked = ", ".join(self.provider_info.sql_columns)
        wanted = ", ".join(str(int(r)) for r in rows)
        frame = self._con.sql(
            f"SELECT {ROW} AS row{', ' + picked if picked else ''} FROM ext "
            f"WHERE {ROW} IN ({wanted}) ORDER BY {ROW}"
        ).df()
        frame.columns = ["row", *self.provider_info.columns]
        return frame

    def spreadsheet_line(self, row: int) -> int:
        """The line a spreadsheet shows for data row ``row``: the header is line 1."""
        return int(row) + 1

    def __enter__(self) -> Evidence:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
