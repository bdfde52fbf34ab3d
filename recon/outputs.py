"""Writing what a reconciliation found: CSVs a spreadsheet can open safely, summary.json.

Every CSV recon writes goes through :func:`write_csv`, which escapes cells a spreadsheet
would run as formulas.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

from .errors import ReconError
from .inputs import run
from .result import OUTCOME_COLUMNS, PROPOSAL_COLUMNS, SOURCE_COLUMNS, Result

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Sheets
# (tab and carriage return too, per OWASP); numbers such as -5 or +3.2 are left alone.
_FORMULA_START = r"^[=+\-@\t\r]"
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def escape_cell(value: object) -> object:
    """Prefix a formula-like text cell with ``'`` so a spreadsheet shows it as text."""
    if isinstance(value, str) and re.match(_FORMULA_START, value) and not _NUMBER.match(value):
        return "'" + value
    return value


def _escaped_select(frame: pd.DataFrame) -> str:
    parts = []
    for name in frame.columns:
        col = '"' + str(name).replace('"', '""') + '"'
        # Header cells are cells too: exceptions.csv repeats the provider's column names.
        alias = '"' + str(escape_cell(str(name))).replace('"', '""') + '"'
        if pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name]):
            parts.append(f"{col} AS {alias}")
        else:
            parts.append(
                f"CASE WHEN regexp_matches({col}::VARCHAR, '{_FORMULA_START}') AND NOT "
                f"regexp_full_match({col}::VARCHAR, '{_NUMBER.pattern}') "
                f"THEN '''' || {col}::VARCHAR ELSE {col}::VARCHAR END AS {alias}"
            )
    return ", ".join(parts) if parts else "*"


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV with a header, formula-like cells escaped.

    Written to a temporary file first and moved into place, so a reader never sees half a
    file and a failure leaves the old one intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".recon-", suffix=".csv", dir=path.parent)
    os.close(fd)
    target = "'" + tmp.replace("'", "''") + "'"  # a folder may be named O'Brien
    con = duckdb.connect()
    run(con, "SET enable_progress_bar = false")
    try:
        con.register("frame", frame)
        run(
            con,
            f"COPY (SELECT {_escaped_select(frame)} FROM frame) TO {target} "
            "(HEADER, DELIMITER ',', QUOTE '\"')",
        )
        os.replace(tmp, path)
    finally:
        con.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(data: object, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_result(result: Result, out_dir: str | Path) -> dict[str, Path]:
    """Write outcomes.csv, proposals.csv, exceptions.csv and summary.json into ``out_dir``.

    Raises :class:`ReconError` when the folder cannot be written (the CLI's exit 2).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        return {
            "outcomes": write_csv(result.outcomes[OUTCOME_COLUMNS], out / "outcomes.csv"),
            "proposals": write_csv(
                result.proposals[PROPOSAL_COLUMNS + SOURCE_COLUMNS], out / "proposals.csv"
            ),
            "exceptions": write_csv(result.exceptions, out / "exceptions.csv"),
            "summary": write_json(result.to_dict(), out / "summary.json"),
        }
    except (OSError, duckdb.IOException) as exc:
        raise ReconError(f"cannot write the outputs into {out}: {exc}") from None
