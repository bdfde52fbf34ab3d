"""`recon report`: one self-contained HTML file about a run.

Everything is inline (CSS, charts as base64 PNG), so the file opens offline, from an
e-mail attachment or a shared drive. It reads the same :class:`Result` the CLI and the
notebooks use (loaded back from the ledger), plus the ledger's submissions and history.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import charts
from . import outcomes as oc
from .errors import ReconError
from .fmt import esc as _e
from .ledger import Ledger, now_iso, rejected_messages
from .result import Result
from .status import target_lines
from .target import PRACTICE_LABEL

MAX_TABLE_ROWS = 500

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1f2933; margin: 0; background: #f5f7fa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 24px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 2px solid #e4e7eb; padding-bottom: 4px; }
.meta { color: #616e7c; margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { flex: 1 1 140px; border: 1px solid #e4e7eb; border-radius: 6px; padding: 10px 14px; }
.card .n { font-size: 24px; font-weight: 600; }
.card .l { color: #616e7c; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card.todo .n { color: #c2410c; } .card.ok .n { color: #15803d; } .card.bad .n { color: #b91c1c; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e4e7eb;
         vertical-align: top; }
th { background: #f5f7fa; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.note { color: #616e7c; font-size: 12px; }
.wide { overflow-x: auto; }
code { font-size: 12px; background: #f5f7fa; padding: 1px 4px; border-radius: 3px; }
"""


def _figure(draw: Callable[[Any], Any], size: tuple[float, float] = (7.0, 3.6)) -> str:
    """Draw with ``draw(ax)`` and return an <img> with the PNG inline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=110)
    try:
        draw(ax)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{data}">'


def _table(
    frame: pd.DataFrame,
    columns: Sequence[str] | None = None,
    numeric: Iterable[str] = (),
    full_list: str = "exceptions.csv",
) -> str:
    columns = list(columns or frame.columns)
    numeric = set(numeric)
    head = "".join(f'<th class="{"n" if c in numeric else ""}">{_e(c)}</th>' for c in columns)
    body = []
    for row in frame[columns].head(MAX_TABLE_ROWS).itertuples(index=False):
        cells = "".join(
            f'<td class="{"n" if c in numeric else ""}">{_e(v)}</td>'
            for c, v in zip(columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    more = ""
    if len(frame) > MAX_TABLE_ROWS:
        more = (
            f'<p class="note">Showing the first {MAX_TABLE_ROWS:,} of {len(frame):,} rows; '
            f"the full list is in {full_list}.</p>"
        )
    # Provider exports can be wide: the table scrolls inside the page, not the page.
    return (
        f'<div class="wide"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def _card(label: str, value: int, kind: str = "") -> str:
    return (
        f'<div class="card {kind}"><div class="n">{value:,}</div>'
        f'<div class="l">{_e(label)}</div></div>'
    )


def _submissions(proposals: pd.DataFrame) -> tuple[dict[str, int], Counter[str]]:
    states = proposals["submission"].value_counts().to_dict() if len(proposals) else {}
    return {str(k): int(v) for k, v in states.items()}, rejected_messages(proposals)


def to_review(result: Result) -> tuple[pd.DataFrame | None, str]:
    """The run's rows to review (``completion-date-differs``), as review.csv lists them,
    and a sentence about them.

    The ledger keeps counts, not these rows: they are found again from the run's files
    (reconciled at the run's as-of time), only when every file is still the one the run
    read (same sha256); otherwise the sentence says so and points to review.csv.
    """
    from .config import load_config
    from .engine import reconcile
    from .outputs import review_frame, review_view
    from .sources import read_sources

    count = result.counts[oc.COMPLETION_DATE_DIFFERS]
    if not count:
        return None, "None: wherever both say completed, they agree on the day."
    if not result.config_path:
        return None, f"{count:,} row(s): listed in the run's review.csv."
    try:
        config = load_config(result.config_path)
        have = (result.outcomes["outcome"] == oc.COMPLETION_DATE_DIFFERS).sum()
        again = result
        if have != count:  # a run read back from the ledger: find the rows again
            changed = _changed_inputs(result.inputs)
            if changed:
                return None, (
                    f"{count:,} row(s): listed in the run's review.csv (the "
                    f"{', '.join(changed)} file changed since this run, so it is not read "
                    "again here)."
                )
            again = reconcile(config, as_of=result.as_of)
    except ReconError as exc:
        return None, f"{count:,} row(s): listed in the run's review.csv ({exc})."
    zone = config.external.timezone
    frame = review_frame(again, read_sources(config), zone)
    return review_view(frame, zone), (
        f"{count:,} row(s) where both say completed, on different dates: nothing is proposed "
        "(the LMS takes a completion date only when it creates the record); decide each by "
        "hand. The same list, with both instants in UTC, is review.csv."
    )


def _accepted_all_runs(ledger: Ledger | None) -> int:
    """Proposal keys the shown target (the ledger's LMS, else the practice sandbox used
    last) has accepted, in any run."""
    if ledger is None:
        return 0
    home = ledger.home_target()
    return len(ledger.accepted_keys(home)) if home is not None else 0


def _changed_inputs(inputs: dict[str, Any]) -> list[str]:
    """Roles whose file is gone or no longer has the sha256 the run recorded."""
    import hashlib

    changed = []
    for role, info in inputs.items():
        path = Path(info.path)
        if not path.is_file():
            changed.append(role)
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != info.sha256:
            changed.append(role)
    return changed


def render_report(result: Result, ledger: Ledger | None = None) -> str:
    """The HTML report of ``result``; with a ``ledger``, also submissions and history."""
    counts = result.counts
    proposals = result.proposals
    # A recorded run's submissions are in the ledger (a Result knows its run); a run not
    # recorded has sent nothing.
    sent = (
        ledger.proposals(result.run_id)
        if ledger is not None and result.run_id is not None
        else None
    )
    states, refused = _submissions(sent) if sent is not None else ({}, Counter())
    # Submission states are those of one target (the ledger's LMS, else the practice
    # sandbox used last): say which, and never call a practice acceptance the LMS's.
    shown = sent["target"].dropna() if sent is not None else pd.Series(dtype=object)
    home = ledger.home_target() if ledger is not None else None
    practice = (home is not None and home.practice) or (
        len(shown) > 0 and shown.iloc[0] == PRACTICE_LABEL
    )
    by = "the practice sandbox" if practice else "the LMS"
    title = f"recon report — run {result.run_id}" if result.run_id else "recon report"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta name='viewport' content='width=device-width'><title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">As of {_e(result.to_dict()["as_of"])} · config '
        f"<code>{_e(result.config_path)}</code> · written {_e(now_iso())}</p>",
        '<div class="cards">',
        _card("external rows", result.rows_read),
        _card("in sync", counts[oc.IN_SYNC], "ok"),
        _card("proposed", len(proposals), "todo"),
        _card("to fix at the source", result.problems, "bad" if result.problems else "ok"),
        _card("to review", counts[oc.COMPLETION_DATE_DIFFERS], "todo"),
        _card(f"accepted by {by}", states.get("accepted", 0), "ok"),
        _card(f"rejected by {by}", states.get("rejected", 0), "bad" if refused else ""),
        # The whole loop: what earlier runs got accepted is no proposal of this run any more.
        _card("already submitted", counts[oc.ALREADY_SUBMITTED], "ok"),
        _card(f"accepted by {by}, all runs", _accepted_all_runs(ledger), "ok"),
        "</div>",
        "<h2>Outcomes</h2>",
        '<div class="grid">',
        _figure(lambda ax: charts.outcomes_by_kind(result, ax=ax), (6.0, 4.2)),
        _table(
            pd.DataFrame(
                [
                    {"outcome": name, "rows": counts[name], "what to do": oc.ADVICE[name]}
                    for name in oc.ALL
                    if counts[name]
                ]
            ),
            numeric=["rows"],
        ),
        "</div>",
    ]
    if len(proposals):
        parts += [
            "<h2>Open gap per learning path</h2>",
            # About a third of an inch a path keeps twenty labels readable.
            _figure(
                lambda ax: charts.gap_by_path(result, ax=ax),
                (9.0, max(3.0, 1.2 + 0.32 * len(result.gap_by_path()))),
            ),
        ]
    if len(result.completions):
        parts += [
            "<h2>Completions over time: provider vs LMS</h2>",
            _figure(lambda ax: charts.completions_over_time(result, ax=ax), (9.0, 3.4)),
            '<p class="note">Where the provider\'s line is above, the LMS holds fewer '
            "completions that month than the provider reports (not told yet, or dated "
            "differently); where it is below, the LMS holds more (recorded there alone, or "
            "dated differently).</p>",
        ]
    parts.append("<h2>Inputs</h2>")
    parts.append(
        _table(
            pd.DataFrame(
                [
                    {"input": role, "file": i.path, "rows": i.rows, "sha256": i.sha256[:16] + "…"}
                    for role, i in result.inputs.items()
                ]
            ),
            numeric=["rows"],
        )
    )
    if result.progress_ignored:
        parts.append(
            f'<p class="note">{result.progress_ignored:,} LMS progress row(s) were ignored '
            "(a blank user or learning path id).</p>"
        )
    review, said = to_review(result)
    parts.append("<h2>To review</h2>")
    parts.append(f"<p>{_e(said)}</p>")
    if review is not None:
        parts.append(_table(review, numeric=["row"], full_list="review.csv"))
    parts.append("<h2>Exceptions to fix at the source</h2>")
    if result.exceptions.empty:
        parts.append("<p>None: every external row could be read and matched.</p>")
    else:
        kinds = result.exceptions["outcome"].value_counts()
        parts.append(
            _table(
                pd.DataFrame(
                    {
                        "outcome": kinds.index,
                        "rows": kinds.values,
                        "what to do": [oc.ADVICE[k] for k in kinds.index],
                    }
                ),
                numeric=["rows"],
            )
        )
        parts.append(_table(result.exceptions, numeric=["row"]))
    parts.append("<h2>Submissions</h2>")
    if ledger is not None:
        where = "".join(f"{_e(line)}<br>" for line in target_lines(ledger))
        parts.append(f'<p class="targets">{where}</p>')
    if len(shown):
        parts.append(f"<p>Submission states below: at {_e(shown.iloc[0])}.</p>")
    if not states:
        parts.append(
            "<p>No proposals in this run: nothing to send. What earlier runs sent and what "
            "the LMS accepted is in the trend below.</p>"
        )
    else:
        parts.append(
            _table(
                pd.DataFrame(
                    [{"submission": k, "proposals": v} for k, v in sorted(states.items())]
                ),
                numeric=["proposals"],
            )
        )
        parts.append(
            '<p class="note">accepted: the LMS took it · rejected: the LMS refused it (not '
            "retried) · failed: retries ran out, a later <code>recon submit</code> tries again "
            "· unknown: sent, answer lost; sent again next time · not-sent: undecided, "
            "declined, or approved and waiting.</p>"
        )
        if refused:
            parts.append("<h3>Rejected, by the API's message</h3>")
            parts.append(
                _table(
                    pd.DataFrame(refused.most_common(), columns=["message", "proposals"]),
                    numeric=["proposals"],
                )
            )
            assert sent is not None  # states come from it
            rejected = sent[sent["submission"] == "rejected"]
            parts.append(
                _table(
                    rejected,
                    [
                        "key",
                        "learner",
                        "path",
                        "status",
                        "category",
                        "api_errors",
                        "userId",
                        "learningPathId",
                    ],
                )
            )
    if ledger is not None:
        runs = ledger.runs_by_activity()
        if len(runs) > 1:
            parts.append("<h2>Trend over runs</h2>")
            parts.append(_figure(lambda ax: charts.gap_per_run(runs, ax=ax), (9.0, 3.4)))
        if len(runs):
            parts.append(
                _table(
                    runs,
                    [
                        "run_id",
                        "created_at",
                        "as_of",
                        "rows_read",
                        "proposals",
                        "approved",
                        "accepted",
                        "refused",
                        "problems",
                    ],
                    numeric=[
                        "run_id",
                        "rows_read",
                        "proposals",
                        "approved",
                        "accepted",
                        "refused",
                        "problems",
                    ],
                )
            )
    parts.append(
        '<p class="note">Made by recon. Outcome names and what to do about each are in the '
        "README.</p></main></body></html>"
    )
    return "\n".join(parts)


def write_report(ledger: Ledger, out: str | Path, run: str | int | None = "latest") -> Path:
    """Write the HTML report of a ledger run to ``out``; returns the path."""
    result = ledger.result(run)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_dir():
        raise ReconError(f"--out {out} is a folder; give the HTML file to write")
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(render_report(result, ledger), encoding="utf-8")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
