"""DuckDB helpers every stage shares: run a statement, quote a name or a value, fetch a
query as a DataFrame (in DuckDB's order, or in ``row`` order without a sort of its text).

Nothing here knows a rule or a file format: the rules are in :mod:`recon.engine` (and
the cell normalisation in :mod:`recon.normalise`), reading in :mod:`recon.inputs`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa


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
    # Arrow buffers freed column by column as pandas takes them over: not both at once.
    return _coded_table(con, sql, categorical).to_pandas(self_destruct=True, split_blocks=True)


def _coded_table(con: duckdb.DuckDBPyConnection, sql: str, categorical: Iterable[str]) -> pa.Table:
    """``sql``'s rows as Arrow, the ``categorical`` columns dictionary-encoded batch by
    batch as they arrive (one dictionary for all, in first-appearance order).

    Streamed: a materialised result would have to fit DuckDB's memory limit, while a
    streamed sort spills to disk like every other step. Encoded on the way: ten million
    rows' text held at once, before encoding, was gigabytes."""
    reader = con.sql(sql).to_arrow_reader(200_000)
    coded = set(categorical)
    schema = pa.schema(
        [
            pa.field(f.name, pa.dictionary(pa.int32(), f.type)) if f.name in coded else f
            for f in reader.schema
        ]
    )
    batches = []
    for batch in reader:
        columns = [
            column.dictionary_encode() if name in coded else column
            for name, column in zip(batch.schema.names, batch.columns, strict=True)
        ]
        batches.append(pa.RecordBatch.from_arrays(columns, schema=schema))
    return pa.Table.from_batches(batches, schema=schema).unify_dictionaries()


def frame_in_row_order(
    con: duckdb.DuckDBPyConnection, sql: str, categorical: Iterable[str]
) -> pd.DataFrame:
    """:func:`frame` of ``sql`` in ``row`` order, sorted here rather than
    by DuckDB: sorting a million rows' text costs more than sorting their row
    numbers and moving dictionary codes. The same frame as an ORDER BY would give,
    categories included in the same order (first appearance, row after row)."""
    table = _coded_table(con, sql, categorical)
    rows = table.column("row").to_numpy()
    # Row numbers are distinct: each one's place is found in one pass, no sort.
    low = int(rows.min()) if len(rows) else 0
    slots = np.full(int(rows.max()) - low + 1 if len(rows) else 0, -1, dtype=np.int64)
    slots[rows - low] = np.arange(len(rows))
    order = slots[slots >= 0]
    if len(order) != len(rows):  # a row twice would be lost: sort instead
        order = np.argsort(rows, kind="stable")
    # Each column replaced in turn, so a million rows' text is freed once coded.
    for i, name in enumerate(table.column_names):
        if name not in categorical:
            table = table.set_column(i, name, table.column(i).take(order))
            continue
        # One dictionary for every chunk (_coded_table), its codes moved into row order.
        coded = table.column(i).take(order).combine_chunks()
        raw = coded.indices.fill_null(-1).to_numpy()
        missing = raw < 0
        codes, first = pd.factorize(raw[~missing])
        ordered = np.full(len(raw), -1, dtype=np.int32)
        ordered[~missing] = codes
        table = table.set_column(
            i,
            name,
            pa.DictionaryArray.from_arrays(
                pa.array(ordered, mask=missing), coded.dictionary.take(pa.array(first))
            ),
        )
        del coded
    # Arrow buffers freed column by column as pandas takes them over: not both at once.
    return table.to_pandas(self_destruct=True, split_blocks=True)
