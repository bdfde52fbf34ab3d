"""Formatting shared by everything a person reads: HTML escaping, durations, path labels.

One place, so the widget, the report, the CLI and the charts never disagree on how a
duration or a learning path is written.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import pandas as pd

__all__ = ["code_spellings", "duration", "esc", "path_label", "short_id"]


def esc(value: Any) -> str:
    """``value`` as HTML text; None and NaN/NaT are the empty string."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return html.escape(str(value))


def duration(seconds: float) -> str:
    """``4.2 s``, ``3 min 05 s``, ``1 h 02 min``: how long something takes or took."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def short_id(text: str) -> str:
    """The start of a long id (a UUID): enough to tell two apart, short enough to read."""
    return text if len(text) <= 10 else text[:8] + "…"


def path_label(code: Any, path_id: Any) -> str:
    """A learning path as analysts know it: the provider's course code, then the start of
    the LMS id so two codes for one path stay apart; the id alone when there is no code."""
    text = "" if path_id is None else str(path_id)
    if isinstance(code, str) and code and code != text:
        return f"{code} ({short_id(text)})" if text else code
    return text


def code_spellings(
    frame: pd.DataFrame,
    id_column: str = "learningPathId",
    code_column: str = "path",
    weight_column: str | None = None,
) -> dict[str, str]:
    """One spelling per learning path's code: lower-cased id -> the code as the provider
    wrote it most often (ties: the first in sorted order), whatever case single rows used.

    Ids are compared case-insensitively, as everywhere in recon. ``weight_column``: how
    many rows each row of ``frame`` stands for (default: one each), so a caller holding
    distinct (id, code) pairs with their counts gets the same answer as with every row.
    """
    if frame.empty or code_column not in frame.columns:
        return {}
    pairs = pd.DataFrame(
        {
            "id": frame[id_column].astype("string").str.lower(),
            "code": frame[code_column].astype("string").str.strip(),
            "n": frame[weight_column] if weight_column else 1,
        }
    ).dropna()
    pairs = pairs[pairs["code"] != ""]
    if pairs.empty:
        return {}
    counts = pairs.groupby(["id", "code"], observed=True)["n"].sum().reset_index(name="n")
    counts = counts.sort_values(["id", "n", "code"], ascending=[True, False, True])
    first = counts.drop_duplicates("id")
    return dict(zip(first["id"].astype(str), first["code"].astype(str), strict=True))


def labels_for(path_ids: Iterable[Any], spellings: dict[str, str]) -> list[str]:
    """:func:`path_label` for each id, the code from :func:`code_spellings`."""
    return [path_label(spellings.get(str(p).lower()), p) for p in path_ids]
