"""The one result object of a reconciliation, read by every report.

The CSV writer, summary.json, the CLI table, the HTML report, the charts, the review
widget and the ledger all read a :class:`Result`; none of them recomputes a rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from . import outcomes as oc
from .config import toml_string
from .inputs import InputInfo

OUTCOME_COLUMNS = ["row", "outcome", "userId", "learningPathId", "status", "detail"]
PROPOSAL_COLUMNS = [
    "key",
    "userId",
    "learningPathId",
    "status",
    "completionDate",
    "timeStampDate",
    "category",
    "rows",
]
SOURCE_COLUMNS = ["learner", "path"]
"""After the contract columns: the learner and path as the provider wrote them."""
PAYLOAD_FIELDS = ("userId", "learningPathId", "status", "completionDate", "timeStampDate")
SUGGESTION_COLUMNS = ["row", "kind", "value", "candidate", "candidate_id", "score", "reason"]
"""suggestions.csv, a contract (see :mod:`recon.suggest`)."""


def no_suggestions() -> pd.DataFrame:
    """An empty suggestions frame: a run without unknown learners or paths, or one read
    back from the ledger."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in SUGGESTION_COLUMNS})


# LMS words whose meaning is obvious: the suggested [progress.statuses] line maps them.
# Compared lower case, with hyphens, underscores and repeated blanks read as one space.
_OBVIOUS_WORDS = {
    "complete": "completed",
    "completed": "completed",
    "in progress": "started",
    "started": "started",
    "not started": "not-started",
    "not completed": "not-completed",
    "incomplete": "not-completed",
}
PLACEHOLDER = "?"
"""The status a suggested line carries when the word's meaning is not obvious: the
config refuses it until the analyst writes one of the four LMS statuses."""


def status_line(word: str) -> str:
    """The `[progress.statuses]` line that would map the LMS word ``word``.

    The likely LMS status when it is obvious ("In Progress" -> "started"); otherwise a
    placeholder the analyst must fill in, marked by a comment (recon.toml refuses it
    as it is).
    """
    key = toml_string(word)
    folded = re.sub(r"[\s_-]+", " ", word.strip().lower())
    meaning = _OBVIOUS_WORDS.get(folded)
    if meaning is not None:
        return f'{key} = "{meaning}"'
    return f'{key} = "{PLACEHOLDER}"  # fill in: not-started, started, not-completed or completed'


def payload(proposal: Any) -> dict[str, str]:
    """The request body for one proposal (a row of ``Result.proposals`` or a mapping).

    Only the fields that have a value: the endpoint must never see ``null``.
    """
    body: dict[str, str] = {}
    for name in PAYLOAD_FIELDS:
        value = proposal[name]
        if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
            continue
        body[name] = str(value)
    return body


@dataclass
class Result:
    """What a reconciliation found.

    ``outcomes``: one row per external data row (``OUTCOME_COLUMNS``; ids, outcome, status
    and detail are categoricals, so a million rows fit in a few dozen MB).
    ``proposals``: one corrective activity per
    learner and path (``PROPOSAL_COLUMNS`` plus ``learner`` and ``path``).
    ``exceptions``: the rows whose outcome is a problem, with the file's original values.
    ``completions``: completions per month as the provider and the LMS see them.
    ``lms_words_unknown``: each status word of the LMS export recon did not understand
    ('' for a blank status), with its number of rows, most frequent first;
    ``lms_bad_dates``: LMS rows marked completed whose completion date cannot be read.

    ``counts``: rows per outcome, every known outcome listed (zeros included), in report
    order; ``rows_read`` is their sum.
    ``review_instants``: per ``completion-date-differs`` row, the provider's and the LMS's
    completion instants the rule compared (``row``, ``provider_completion_date``,
    ``lms_completion_date``, wire format); with it, ``outcomes`` also carries each row's
    ``learner`` and ``path`` as written. None for a Result not made by the engine.
    ``suggestions``: candidates for the unknown learners and paths (``SUGGESTION_COLUMNS``;
    :mod:`recon.suggest`), filled by :func:`recon.pipeline.reconcile_run`, never applied.
    ``lms_pulls``: the ``recon lms pull`` each role read (``users``, ``paths``, or
    ``suggestions`` for the catalog's sku and slug), see :mod:`recon.lms_pull`;
    ``warnings``: what the analyst must know about the run (a pull older than
    ``[lms] pull_max_age_days``), in summary.json and on the terminal.
    ``run_id``: the ledger run this result is recorded as; None until
    :meth:`recon.ledger.Ledger.record_run` records it (:func:`recon.pipeline.reconcile_run`).

    One shape, wherever it comes from: :func:`recon.engine.reconcile` fills every field;
    a Result read back from the ledger (:meth:`recon.ledger.Ledger.result`) has its run's
    counts and an empty ``outcomes`` frame (the ledger keeps counts, proposals and
    exceptions, not every row), and its ``run_id``.
    """

    outcomes: pd.DataFrame
    proposals: pd.DataFrame
    exceptions: pd.DataFrame
    completions: pd.DataFrame
    inputs: dict[str, InputInfo]
    as_of: datetime
    counts: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    progress_ignored: int = 0
    lms_words_unknown: dict[str, int] = field(default_factory=dict)
    lms_bad_dates: int = 0
    suggestions: pd.DataFrame = field(default_factory=no_suggestions)
    review_instants: pd.DataFrame | None = None
    lms_pulls: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    run_id: int | None = None
    config_path: str | None = None

    def __post_init__(self) -> None:
        # Every known outcome listed, in report order, whoever made the counts.
        self.counts = {name: int(self.counts.get(name, 0)) for name in oc.ALL}

    @property
    def rows_read(self) -> int:
        return sum(self.counts.values())

    @property
    def problems(self) -> int:
        return sum(self.counts[name] for name in oc.PROBLEMS)

    @property
    def exit_code(self) -> int:
        """0: nothing to propose and no exception; 1: something to do."""
        return 1 if len(self.proposals) or self.problems else 0

    def gap_by_path(self, top: int = 20) -> pd.DataFrame:
        """Open proposals per learning path and category, the largest ``top`` paths."""
        if self.proposals.empty:
            return pd.DataFrame(columns=list(oc.PROPOSED))
        table = (
            self.proposals.groupby(["learningPathId", "category"], observed=True)
            .size()
            .unstack(fill_value=0)
            .reindex(columns=list(oc.PROPOSED), fill_value=0)
        )
        order = table.sum(axis=1).sort_values(ascending=False).index[:top]
        return table.loc[order]

    def to_dict(self) -> dict[str, Any]:
        """The content of summary.json."""
        return {
            "as_of": self.as_of.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "config": self.config_path,
            "run_id": self.run_id,
            "rows_read": self.rows_read,
            "counts": self.counts,
            "proposals": {
                "total": len(self.proposals),
                **{c: int((self.proposals["category"] == c).sum()) for c in oc.PROPOSED},
            },
            "problems": self.problems,
            "progress_rows_ignored": self.progress_ignored,
            "lms_words_not_understood": [
                {"word": word, "rows": rows, "config_line": status_line(word)}
                for word, rows in self.lms_words_unknown.items()
            ],
            "lms_completion_dates_not_readable": self.lms_bad_dates,
            "inputs": {role: info.to_dict() for role, info in self.inputs.items()},
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "lms_pulls": self.lms_pulls,
            "warnings": self.warnings,
            "exit_code": self.exit_code,
        }

    def render(self) -> str:
        """A plain-text summary table for the terminal."""
        counts = self.counts
        width = max(len(n) for n in counts)
        lines = [f"recon: {self.rows_read} external rows, as of {self.to_dict()['as_of']}"]
        groups = (
            ("to propose", oc.PROPOSED),
            ("to review", oc.REVIEW),
            ("to fix at the source", oc.PROBLEMS),
            ("settled", oc.SETTLED),
        )
        for title, names in groups:
            lines.append(f"  {title}:")
            for name in names:
                if counts[name] or title != "to fix at the source":
                    lines.append(f"    {name:<{width}}  {counts[name]:>9,}")
        lines.append(f"  {'total':<{width + 2}}  {sum(counts.values()):>9,}")
        lines.append(f"  proposals: {len(self.proposals):,}")
        for info in self.inputs.values():
            lines.extend(f"  {note}" for note in info.notes())
        if self.progress_ignored:
            lines.append(
                "  LMS progress rows ignored (blank id, or fields not lining up with the "
                f"header): {self.progress_ignored:,}"
            )
        lines += self.render_lms_words()
        if self.lms_pulls:
            from .lms_pull import describe_pulls

            lines += [f"  {line}" for line in describe_pulls(self.lms_pulls)]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.lms_bad_dates:
            lines.append(
                f"  LMS completion dates not readable: {self.lms_bad_dates:,} row(s) "
                "(add their format to [progress] date_formats)"
            )
        return "\n".join(lines)

    def render_lms_words(self) -> list[str]:
        """The LMS's status words recon did not understand, with the line that maps each."""
        if not self.lms_words_unknown:
            return []
        lines = [
            "  LMS status words not understood (nothing is proposed for their learners and "
            "paths); add to [progress.statuses]:"
        ]
        for word, rows in self.lms_words_unknown.items():
            shown = repr(word) if word else "(blank)"
            lines.append(f"    {shown}: {rows:,} row(s)  ->  {status_line(word)}")
        return lines
