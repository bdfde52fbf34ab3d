"""Charts: each returns the Axes it drew on, with the expected bars, lines and labels."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from conftest import AS_OF, ext, lms
from matplotlib.axes import Axes

from recon import charts
from recon import outcomes as oc
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.result import Result
from recon.target import Target

EXTERNAL = [
    ext("ann@example.com", "SAFE-101", "Completed", "2026-01-10"),
    ext("bob@example.com", "SAFE-101", "In Progress", "", "2026-02-01"),
    ext("cy@example.com", "DATA-200", "Completed", "2026-03-05"),
    ext("cy@example.com", "LEAD-300", "Completed", "2026-03-06"),
    ext("zed@example.com", "LEAD-300", "Completed", "2026-03-06"),  # unknown learner
    ext("ann@example.com", "DATA-200", "Completed", "not a date"),  # bad date
]
PROGRESS = [lms("u-cy", "lp-lead", "completed", "2026-03-06")]

LMS = Target.real("https://lms.example.com")  # a real LMS; nothing is sent to it here


@pytest.fixture(autouse=True)
def no_show_and_close(monkeypatch: pytest.MonkeyPatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a chart function called plt.show()")

    monkeypatch.setattr(plt, "show", refuse)
    yield
    plt.close("all")


@pytest.fixture
def result(reconcile_case) -> Result:
    return reconcile_case(EXTERNAL, PROGRESS)


def bar_widths(ax: Axes) -> list[float]:
    return [patch.get_width() for patch in ax.patches]


def ytick_texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def synthetic_result(paths: int) -> Result:
    """A result whose proposals spread over ``paths`` learning paths: path i has i+1
    missing completions and one missing progress."""
    rows = []
    for i in range(paths):
        for j in range(i + 1):
            rows.append((f"u{j}", f"lp-{i:02d}", oc.MISSING_COMPLETION, f"CODE-{i:02d}"))
        rows.append(("u-x", f"lp-{i:02d}", oc.MISSING_PROGRESS, f"CODE-{i:02d}"))
    proposals = pd.DataFrame(rows, columns=["userId", "learningPathId", "category", "path"])
    return Result(
        outcomes=pd.DataFrame({"outcome": [oc.MISSING_COMPLETION] * len(rows)}),
        proposals=proposals,
        exceptions=pd.DataFrame(),
        completions=pd.DataFrame(columns=["month", "source", "completions"]),
        inputs={},
        as_of=datetime(2026, 6, 1, tzinfo=UTC),
        counts={oc.MISSING_COMPLETION: len(rows)},
    )


def test_outcomes_by_kind_has_one_bar_per_outcome_with_its_count(result: Result) -> None:
    ax = charts.outcomes_by_kind(result)
    assert isinstance(ax, Axes)
    assert ytick_texts(ax) == list(oc.ALL)
    assert bar_widths(ax) == [result.counts[name] for name in oc.ALL]
    assert result.counts[oc.MISSING_COMPLETION] == 2  # the chart shows a real count
    assert "Outcomes by kind" in ax.get_title()
    assert ax.get_xlabel() == "provider rows"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(charts.GROUP_COLOURS)


def test_problem_bars_share_the_problem_colour(result: Result) -> None:
    ax = charts.outcomes_by_kind(result)
    colours = dict(zip(oc.ALL, [p.get_facecolor() for p in ax.patches], strict=True))
    assert colours[oc.BAD_DATE] == colours[oc.UNKNOWN_LEARNER]
    assert colours[oc.BAD_DATE] != colours[oc.MISSING_COMPLETION]


def test_chart_draws_on_the_axes_it_is_given(result: Result) -> None:
    _, given = plt.subplots()
    assert charts.outcomes_by_kind(result, ax=given) is given
    assert charts.gap_by_path(result, ax=given) is given


def test_gap_by_path_stacks_categories_per_path(result: Result) -> None:
    ax = charts.gap_by_path(result)
    labels = ytick_texts(ax)
    # lp-safe: ann completed + bob in progress; lp-data: cy completed.
    assert labels == ["SAFE-101 (lp-safe)", "DATA-200 (lp-data)"]
    completion, progress = ax.containers[0], ax.containers[1]
    assert [p.get_width() for p in completion] == [1, 1]
    assert [p.get_width() for p in progress] == [1, 0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(oc.PROPOSED)
    assert ax.get_ylabel() == "learning path"
    assert "proposals" in ax.get_xlabel()


def test_gap_by_path_keeps_the_top_20_of_50_largest_first() -> None:
    ax = charts.gap_by_path(synthetic_result(50), top=20)
    labels = ytick_texts(ax)
    assert len(labels) == 20
    assert labels[0] == "CODE-49 (lp-49)"  # 50 completions + 1 progress
    assert labels[-1] == "CODE-30 (lp-30)"
    assert "top 20 of 50" in ax.get_title()
    # A tall figure for many paths, so the labels do not overlap.
    assert ax.figure.get_figheight() >= 6


def test_completions_over_time_draws_provider_and_lms_per_month(result: Result) -> None:
    ax = charts.completions_over_time(result)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"provider", "LMS"}
    # Every month from the first to the last, a month without completions at 0.
    assert [str(x)[:7] for x in lines["provider"].get_xdata()] == ["2026-01", "2026-02", "2026-03"]
    assert list(lines["provider"].get_ydata()) == [1, 0, 2]  # ann; cy twice in March
    assert list(lines["LMS"].get_ydata()) == [0, 0, 1]  # cy on lp-lead
    assert ax.get_xlabel() == "month of completion"
    assert ax.get_ylabel() == "completions"


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: charts.gap_by_path(r),
        lambda r: charts.completions_over_time(r),
    ],
)
def test_empty_result_gives_an_empty_chart_that_says_why(reconcile_case, draw) -> None:
    result = reconcile_case([ext("zed@example.com")])  # one unusable row, nothing else
    ax = draw(result)
    assert isinstance(ax, Axes)
    assert len(ax.patches) == 0 and len(ax.get_lines()) == 0
    assert ax.texts and ax.get_title()


@pytest.fixture
def history(write_case, tmp_path: Path) -> Ledger:
    """Two runs: the second after the LMS caught up with ann; one API rejection."""
    ledger = Ledger(tmp_path / "history.db")
    first = write_case(EXTERNAL, PROGRESS)
    reconcile_run(first, as_of=AS_OF, ledger=ledger)
    props = ledger.proposals()
    ledger.decide(props["key"], "approved", by="test")
    for key, result in zip(props["key"], ["accepted", "rejected", "accepted"], strict=True):
        attempt = ledger.begin_attempt(key, 1, LMS)
        errors = ["learner is not enrolled"] if result == "rejected" else []
        ledger.finish_attempt(attempt, result, http_status=200, errors=errors)
    caught_up = [*PROGRESS, lms("u-ann", "lp-safe", "completed", "2026-01-10")]
    reconcile_run(write_case(EXTERNAL, caught_up), as_of="2026-07-01T00:00:00Z", ledger=ledger)
    yield ledger
    ledger.close()


def test_gap_per_run_draws_one_point_per_run(history: Ledger) -> None:
    runs = history.runs()
    ax = charts.gap_per_run(runs)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["proposals (total)"].get_ydata()) == runs["proposals"].tolist()
    # Run 2: ann caught up, cy's completion accepted earlier; bob's progress was rejected.
    assert list(lines[oc.MISSING_COMPLETION].get_ydata()) == [2, 0]
    assert list(lines[oc.MISSING_PROGRESS].get_ydata()) == [1, 1]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "#1\n2026-06-01",
        "#2\n2026-07-01",
    ]
    assert ax.get_title() == "Open gap per run"
    assert ax.get_xlabel() and ax.get_ylabel()


def test_funnel_shows_proposed_approved_accepted_of_the_latest_run(history: Ledger) -> None:
    runs = history.runs()
    ax = charts.funnel(runs, run_id=1)
    assert ytick_texts(ax) == list(charts.FUNNEL_STAGES)
    assert bar_widths(ax) == [3, 3, 2]
    assert "run #1" in ax.get_title()
    latest = charts.funnel(runs)
    assert "run #2" in latest.get_title()


def test_rejection_reasons_counts_final_rejections_per_message() -> None:
    attempts = pd.DataFrame(
        {
            "result": ["rejected", "rejected", "retry", "rejected", "accepted"],
            "errors": [
                json.dumps(["invalid status"]),
                json.dumps(["invalid status", "userId is required"]),
                json.dumps(["HTTP 503"]),  # retried: not a rejection
                json.dumps(["userId is required"]),
                None,
            ],
        }
    )
    ax = charts.rejection_reasons(attempts)
    assert ytick_texts(ax) == ["invalid status", "userId is required"]
    assert bar_widths(ax) == [2, 2]
    assert ax.get_xlabel() == "records rejected"


def test_history_charts_of_an_empty_ledger_say_so(tmp_path: Path) -> None:
    with Ledger(tmp_path / "empty.db") as ledger:
        runs, attempts = ledger.runs(), ledger.attempts()
    for ax in (
        charts.gap_per_run(runs),
        charts.funnel(runs),
        charts.rejection_reasons(attempts),
    ):
        assert isinstance(ax, Axes)
        assert len(ax.patches) == 0 and len(ax.get_lines()) == 0
        assert ax.texts
