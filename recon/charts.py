"""Charts for the analyst notebooks, drawn from the one result object and the ledger.

Every function takes ``ax=None`` (a new figure sized for its content when None) and
returns the :class:`~matplotlib.axes.Axes` it drew on. None of them calls ``plt.show()``:
the notebook shows a figure when its cell ends, a test inspects the Axes.

Reconciliation (a :class:`~recon.result.Result`):

* :func:`outcomes_by_kind` - rows per outcome, coloured by what to do about them.
* :func:`gap_by_path` - open proposals per learning path and category (stacked, top 20).
* :func:`completions_over_time` - completions per month as the provider and the LMS see
  them.

History (frames from :class:`~recon.ledger.Ledger`):

* :func:`gap_per_run` - proposals per run over time (``Ledger.runs()``).
* :func:`funnel` - proposed, approved, accepted for one run (``Ledger.runs()``).
* :func:`rejection_reasons` - the API's messages on rejected records
  (``Ledger.attempts()``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from . import outcomes as oc
from .fmt import code_spellings, labels_for

if TYPE_CHECKING:
    from .result import Result

__all__ = [
    "FUNNEL_STAGES",
    "GROUP_COLOURS",
    "completions_over_time",
    "funnel",
    "gap_by_path",
    "gap_per_run",
    "outcomes_by_kind",
    "rejection_reasons",
]

# One colour per kind of action, so the same meaning has the same colour on every chart.
GROUP_COLOURS = {
    "to propose": "#1f77b4",
    "to review": "#ff7f0e",
    "to fix at the source": "#d62728",
    "settled": "#2ca02c",
}
_GROUPS = (
    ("to propose", oc.PROPOSED),
    ("to review", oc.REVIEW),
    ("to fix at the source", oc.PROBLEMS),
    ("settled", oc.SETTLED),
)
_CATEGORY_COLOURS = {oc.MISSING_COMPLETION: "#1f77b4", oc.MISSING_PROGRESS: "#9ecae1"}
_SOURCE_COLOURS = {"provider": "#1f77b4", "LMS": "#ff7f0e"}


def _axes(ax: Axes | None, width: float = 8.0, height: float = 4.5) -> Axes:
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=(width, height), layout="constrained")
    return new


def _nothing(ax: Axes, title: str, message: str) -> Axes:
    """An empty chart still says what it would show and why it is empty."""
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _label_bars(ax: Axes, bars: Any, values: list[int]) -> None:
    ax.bar_label(bars, labels=[f"{v:,}" if v else "" for v in values], padding=3, fontsize=8)


def outcomes_by_kind(result: Result, ax: Axes | None = None) -> Axes:
    """Rows per outcome (every outcome listed, zeros too), one bar each.

    Horizontal bars in report order, coloured by group (to propose, to review, to fix
    at the source, settled) so the eye finds the problems first.
    """
    counts = result.counts
    names = list(oc.ALL)
    values = [counts[n] for n in names]
    colours = []
    for name in names:
        group = next(g for g, members in _GROUPS if name in members)
        colours.append(GROUP_COLOURS[group])
    ax = _axes(ax, 8.0, 0.32 * len(names) + 1.5)
    bars = ax.barh(names, values, color=colours)
    _label_bars(ax, bars, values)
    ax.invert_yaxis()  # report order reads top to bottom
    ax.set_title(f"Outcomes by kind ({result.rows_read:,} provider rows)")
    ax.set_xlabel("provider rows")
    ax.set_ylabel("outcome")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(x=0.12)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in GROUP_COLOURS.values()]
    ax.legend(handles, list(GROUP_COLOURS), loc="lower right", fontsize=8)
    return ax


def gap_by_path(result: Result, top: int = 20, ax: Axes | None = None) -> Axes:
    """Open proposals per learning path, stacked by category, the ``top`` largest.

    Horizontal so long learning path ids stay readable; the largest gap is on top. The
    title says how many paths are left out.
    """
    table = result.gap_by_path(top=top)
    total_paths = (
        int(result.proposals["learningPathId"].nunique()) if not result.proposals.empty else 0
    )
    title = "Open gap per learning path"
    if total_paths > len(table):
        title += f" (top {len(table)} of {total_paths})"
    ax = _axes(ax, 8.0, 0.3 * max(len(table), 3) + 1.5)
    if table.empty:
        return _nothing(ax, title, "no proposals: the LMS has every record")
    labels = _path_labels(result.proposals, table.index)
    left = pd.Series(0, index=table.index)
    for category in table.columns:
        values = table[category]
        ax.barh(
            labels,
            values,
            left=left,
            label=category,
            color=_CATEGORY_COLOURS.get(str(category)),
        )
        left = left + values
    totals = [int(v) for v in left]
    for y, total in enumerate(totals):
        ax.text(total, y, f" {total:,}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel("proposals (learner and path pairs the LMS lacks)")
    ax.set_ylabel("learning path")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(x=0.1)
    ax.legend(title="category", fontsize=8, loc="lower right")
    return ax


def _path_labels(proposals: pd.DataFrame, path_ids: pd.Index) -> list[str]:
    """The provider's course code first (what analysts know a path by, one spelling per
    code), then the start of the LMS id so two codes for one path stay apart."""
    return labels_for(path_ids, code_spellings(proposals))


def completions_over_time(result: Result, ax: Axes | None = None) -> Axes:
    """Completions per month as the provider reports them and as the LMS holds them.

    Where the provider's line is above the LMS's, the LMS holds fewer completions that
    month than the provider reports (not told yet, or dated differently); where it is
    below, the LMS holds more (completions recorded there alone, or dated differently).
    """
    title = "Completion dates: provider vs LMS"
    ax = _axes(ax, 9.0, 4.0)
    frame = result.completions
    if frame.empty:
        return _nothing(ax, title, "no completion dates in either source")
    table = (
        frame.assign(month=pd.to_datetime(frame["month"]))
        .pivot_table(index="month", columns="source", values="completions", aggfunc="sum")
        .sort_index()
    )
    # Every month in the span, so a month without completions shows as 0 instead of a
    # line drawn straight across it.
    months = pd.date_range(table.index.min(), table.index.max(), freq="MS")
    table = table.reindex(months).fillna(0)
    for source in ("provider", "LMS"):
        if source in table.columns:
            ax.plot(
                table.index,
                table[source],
                marker="o",
                markersize=3,
                label=source,
                color=_SOURCE_COLOURS[source],
            )
    ax.set_title(title)
    ax.set_xlabel("month of completion")
    ax.set_ylabel("completions")
    _counts_over_x(ax)
    # Rotate this Axes' dates only (Figure.autofmt_xdate would touch every subplot).
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    return ax


def _counts_over_x(ax: Axes) -> None:
    """The finish of a line chart of counts: whole numbers from zero, a light grid."""
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _run_labels(runs: pd.DataFrame) -> list[str]:
    return [f"#{r}\n{str(a)[:10]}" for r, a in zip(runs["run_id"], runs["as_of"], strict=True)]


def gap_per_run(runs: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """The open gap (proposals) at each run, by category, oldest run first.

    ``runs`` is :meth:`Ledger.runs`. The x axis is the run, labelled with its number and
    as-of date: runs are events, and two runs on one day must not overlap.
    """
    title = "Open gap per run"
    ax = _axes(ax, 9.0, 4.0)
    if runs.empty:
        return _nothing(ax, title, "the ledger has no runs yet")
    runs = runs.sort_values("run_id")
    x = list(range(len(runs)))
    ax.plot(x, runs["proposals"], marker="o", label="proposals (total)", color="black")
    for category in oc.PROPOSED:
        values = [int(c.get(category, 0)) for c in runs["counts"]]
        ax.plot(
            x,
            values,
            marker=".",
            linestyle="--",
            label=category,
            color=_CATEGORY_COLOURS[category],
        )
    problems = runs["problems"].astype(int).tolist()
    ax.plot(x, problems, marker=".", linestyle=":", label="to fix at the source", color="#d62728")
    ax.set_xticks(x, _run_labels(runs), fontsize=8)
    if len(x) > 15:
        # Beyond a dozen or so runs every label would collide: keep every n-th.
        step = -(-len(x) // 15)
        for i, label in enumerate(ax.get_xticklabels()):
            label.set_visible(i % step == 0)
    ax.set_title(title)
    ax.set_xlabel("run (as of)")
    ax.set_ylabel("proposals / problem rows")
    _counts_over_x(ax)
    return ax


FUNNEL_STAGES = ("proposed", "approved", "accepted")


def funnel(runs: pd.DataFrame, run_id: int | None = None, ax: Axes | None = None) -> Axes:
    """Proposed -> approved -> accepted by the API, for one run (default: the latest).

    ``runs`` is :meth:`Ledger.runs_by_activity` (approved and accepted during the run) or
    :meth:`Ledger.runs`. Each bar says its count and its share of proposed.
    """
    ax = _axes(ax, 8.0, 3.0)
    if runs.empty:
        return _nothing(ax, "Proposed → approved → accepted", "the ledger has no runs yet")
    row = runs.iloc[-1] if run_id is None else runs.loc[runs["run_id"] == run_id].iloc[0]
    values = [int(row["proposals"]), int(row["approved"]), int(row["accepted"])]
    bars = ax.barh(list(FUNNEL_STAGES), values, color=["#9ecae1", "#4292c6", "#08519c"])
    base = values[0] or 1
    ax.bar_label(
        bars,
        labels=[f"{v:,} ({v / base:.0%})" for v in values],
        padding=3,
        fontsize=9,
    )
    ax.invert_yaxis()
    ax.set_title(f"Proposed → approved → accepted (run #{int(row['run_id'])})")
    ax.set_xlabel("proposals")
    ax.set_ylabel("stage")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(x=0.2)
    return ax


def rejection_reasons(attempts: pd.DataFrame, top: int = 15, ax: Axes | None = None) -> Axes:
    """Records the API rejected, per message (the ``top`` most frequent).

    ``attempts`` is :meth:`Ledger.attempts`; only final rejections count (a record
    throttled, then accepted, is not a rejection).
    """
    title = "Rejection reasons (API messages)"
    reasons: Counter[str] = Counter()
    if not attempts.empty:
        rejected = attempts.loc[attempts["result"] == "rejected", "errors"].dropna()
        for text in rejected:
            for message in json.loads(text) or ["(no message)"]:
                reasons[str(message)] += 1
    common = reasons.most_common(top)
    ax = _axes(ax, 9.0, 0.35 * max(len(common), 3) + 1.5)
    if not common:
        return _nothing(ax, title, "the API has rejected nothing")
    labels = [_shorten(m) for m, _ in common]
    values = [n for _, n in common]
    bars = ax.barh(labels, values, color="#d62728")
    _label_bars(ax, bars, values)
    ax.invert_yaxis()
    if len(reasons) > top:
        title += f" (top {top} of {len(reasons)})"
    ax.set_title(title)
    ax.set_xlabel("records rejected")
    ax.set_ylabel("message")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(x=0.12)
    return ax


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
