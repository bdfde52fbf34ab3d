"""DuckDB helpers every stage shares: run a statement, quote a name or a value, fetch a
query as a DataFrame.

Nothing here knows a rule or a file format: the rules are in :mod:`recon.engine` (and
the cell normalisation in :mod:`recon.normalise`), reading in :mod:`recon.inputs`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import pandas as pd


def run(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    """Execute one statement and fetch all of it (DuckDB refuses new work while a result
    is pending on the connection)."""
    return con.execute(sql, params).fetchall()


def quote(name: str) -> str:
    """``name`` as a SQL identifier: a column may be called anything."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """``value`` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def frame(
    con: duckdb.DuckDBPyConnection, sql: str, categorical: Iterable[str] = ()
) -> pd.DataFrame:
    """A query's rows as a DataFrame, through Arrow (about three times faster than
    ``.df()`` for a million text rows). Columns with few distinct values become
    categoricals: a million outcome names then cost a million bytes, not 30 MB."""
    # Streamed in batches: a materialised result would have to fit DuckDB's memory limit,
    # while a streamed sort spills to disk like every other step.
    table = con.sql(sql).to_arrow_reader(200_000).read_all()
    for name in categorical:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(name).dictionary_encode())
    return table.to_pandas()
