"""The review widget: a thin ipywidgets view of a :class:`~recon.review_model.ReviewModel`.

The model (``widget.model``) holds the run, the filters, the page and every decision, and
writes decisions to the ledger; this module only draws it and turns clicks into calls of
the model. The notebook only displays a :class:`ReviewWidget`; everything it does is a
method that tests call directly (``widget.approve_matching()``, ``widget.next_page()``,
``widget.submit()``), and the buttons call the same methods.

Only the current page (50 rows) is drawn, into row widgets created once and reused: each
redrawn widget is a message to the browser.

Size: over 600 lines because it lays out and draws the whole review (filters, the page
table, each row's evidence panel, the Confirm step, the submission's progress and
summary) with their HTML; no rule and no ledger query lives here. The HTML builders at
the end could move to a module of their own if it grows further.

The API key never passes through here: the widget holds an
:class:`~recon.client.ApiClient`, whose ``repr`` hides the key, and shows only its base URL.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd
from ipywidgets.widgets.widget_string import HTMLStyle

from .client import ApiClient
from .errors import ReconError
from .evidence import NO_RECORD, Evidence
from .fmt import duration, esc
from .ledger import Decided, Ledger
from .review_model import DECISIONS, FINAL, PAGE_SIZE, Filters, ReviewModel
from .submit import Pace, SubmitReport, submit
from .target import guess

__all__ = ["DECISIONS", "PAGE_SIZE", "ReviewWidget", "lms_unreadable_message"]

# Column widths of the page table, shared by the header and every row so they line up.
_COLUMNS = (
    ("learner", "144px"),
    ("learning path", "108px"),
    ("provider says", "92px"),
    ("LMS now", "92px"),
    ("will send", "92px"),
    ("kind", "118px"),
    ("decision", "64px"),
    ("sent", "60px"),
)
_TABLE_WIDTH = sum(int(width.removesuffix("px")) for _, width in _COLUMNS)
_TOGGLE_PX, _EYE_PX = 84, 32
_DECISION_COLOURS = {"approved": "#2e7d32", "rejected": "#c62828", "undecided": "#757575"}
_SUBMISSION_COLOURS = {
    "accepted": "#2e7d32",
    "rejected": "#c62828",
    "failed": "#ef6c00",
    "unknown": "#ef6c00",
}
# What ``LMS now`` says while the LMS export is read in the background, and when it
# could not be read (the error itself is the cell's tooltip and the red message).
LMS_READING = "reading…"
LMS_UNREADABLE = "unreadable"
# The live summary is redrawn at most this often while sending: each redraw is a message
# to the browser, and the workers call back once per record.
_REDRAW_INTERVAL_S = 0.1


def _cells(values: Sequence[str], header: bool = False) -> str:
    """One table row with the fixed column widths (values already escaped HTML)."""
    tag = "th" if header else "td"
    style = (
        "padding:2px 4px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;text-align:left;"
    )
    cells = "".join(
        f'<{tag} style="width:{width};max-width:{width};{style}">{value}</{tag}>'
        for (_, width), value in zip(_COLUMNS, values, strict=True)
    )
    weight = "font-weight:600;" if header else ""
    return (
        # table-layout:fixed only holds with an explicit table width.
        f'<table style="table-layout:fixed;width:{_TABLE_WIDTH}px;border-collapse:collapse;'
        f'font-size:12px;{weight}">'
        f"<tr>{cells}</tr></table>"
    )


class _Shared:
    """Layouts and styles every row uses alike (never changed per row): one model each for
    the fifty rows rather than one per widget, each a message to the browser and most of
    the time it takes to open the review."""

    def __init__(self) -> None:
        self.toggle_style = widgets.ToggleButtonsStyle(button_width="38px")
        self.toggle_layout = widgets.Layout(width=f"{_TOGGLE_PX}px", margin="0", flex="0 0 auto")
        self.eye_style = widgets.ButtonStyle()
        self.eye_layout = widgets.Layout(
            width=f"{_EYE_PX}px", padding="0", margin="0 6px 0 2px", flex="0 0 auto"
        )
        self.html_style = HTMLStyle()
        self.cells_layout = widgets.Layout()
        self.outer_layout = widgets.Layout()


class _Row:
    """The widgets of one table row, reused for whichever proposal sits in that slot."""

    def __init__(self, slot: int, owner: ReviewWidget, shared: _Shared) -> None:
        self.slot = slot
        self.key: str | None = None
        self.toggle = widgets.ToggleButtons(
            options=[("✓", "approved"), ("✗", "rejected")],
            value=None,
            tooltips=["approve", "reject"],
            style=shared.toggle_style,
            layout=shared.toggle_layout,
        )
        self.toggle.add_class("recon-row-decision")
        self.toggle.observe(lambda change: owner._on_row_decision(self, change), "value")
        self.show = widgets.Button(
            icon="eye",
            tooltip="show the evidence: provider rows, LMS rows, body, decisions, attempts",
            style=shared.eye_style,
            layout=shared.eye_layout,
        )
        self.show.add_class("recon-row-preview")
        self.show.on_click(lambda _: owner._guard(lambda: owner.toggle_evidence(self.slot)))
        self.cells = widgets.HTML(style=shared.html_style, layout=shared.cells_layout)
        self.box = widgets.HBox(
            [self.toggle, self.show, self.cells],
            layout=widgets.Layout(align_items="center", display="none"),
        )
        self.box.add_class("recon-row")
        # The evidence opens right under its row, not below the page.
        self.panel = widgets.HTML(
            style=shared.html_style, layout=widgets.Layout(display="none", margin="2px 0 8px 124px")
        )
        self.panel.add_class("recon-evidence")
        self.outer = widgets.VBox([self.box, self.panel], layout=shared.outer_layout)


class ReviewWidget(widgets.VBox):
    """Review a run's proposals: filter, approve/reject, preview, dry run, submit.

    ``ledger``: the open :class:`Ledger` (kept open while the widget lives).
    ``client``: the :class:`ApiClient` to submit with (None: only dry runs).
    ``run``: a run id or ``"latest"``. ``by``: who decides (default: ``$RECON_ANALYST``,
    else the login name, as the CLI), recorded with every decision, as is the text of the
    Note field. ``pace``: how fast to send (default :class:`Pace`). ``config`` (the run's
    recon.toml) or ``evidence``: the input files, for the ``LMS now`` column and the
    provider's and LMS's rows in a proposal's evidence (without: ``LMS now`` is blank).

    Filters (all must hold): ``kind`` (category), ``path`` (learning path id),
    ``learner`` (text in the learner's email or user id, case-insensitive), ``date_from``/
    ``date_to`` (the completion date, or the activity date for progress), ``decision``.
    """

    def __init__(
        self,
        ledger: Ledger,
        client: ApiClient | None = None,
        *,
        run: str | int | None = "latest",
        by: str | None = None,
        pace: Pace | None = None,
        page_size: int = PAGE_SIZE,
        config: str | Path | None = None,
        evidence: Evidence | None = None,
    ) -> None:
        self.ledger = ledger
        self.client = client
        self.pace = pace or Pace()
        self.last_report: SubmitReport | None = None
        # Where submissions go, as known without a request (a practice sandbox of this
        # process, else the LMS's URL); a submit's ping then says for sure.
        self.target = guess(client)
        if evidence is None and config is not None:
            evidence = Evidence(config)  # reads the config only
        # The LMS export is read in the background once the widget is built (the end of
        # this method): opening never waits for it, nor shares the two cores with it
        # (read beside the ledger, it made a 110,000-proposal opening 1.2 s, not 0.8).
        # ``LMS now`` says "reading…" until it is read, then the page's rows are drawn
        # again (:meth:`_on_lms_read`); an export that cannot be read is said in red.
        self.model = ReviewModel(
            ledger, run=run, target=self.target, by=by, page_size=page_size, evidence=evidence
        )
        self._lms_drawn = threading.Event()
        self.open_key: str | None = None  # the proposal whose evidence is open
        self._lock = self.model.lock
        self._syncing = False  # set while the code (not a person) moves the row toggles
        self._thread: threading.Thread | None = None

        # -- filters ("" is "all": a None value leaves a dropdown showing no selection)
        self.kind = widgets.Dropdown(
            description="Kind", options=[("all kinds", ""), *self.model.kind_options()]
        )
        self.path = widgets.Dropdown(
            description="Path", options=[("all paths", ""), *self.model.path_options()]
        )
        self.learner = widgets.Text(description="Learner", placeholder="email or user id")
        self.date_from = widgets.DatePicker(description="From")
        self.date_to = widgets.DatePicker(description="To")
        self.decision = widgets.Dropdown(
            description="Decision",
            options=[("any", "")] + [(d, d) for d in DECISIONS],
        )
        filters = (
            (self.kind, "kind"),
            (self.path, "path"),
            (self.learner, "learner"),
            (self.date_from, "from"),
            (self.date_to, "to"),
            (self.decision, "decision"),
        )
        for control, name in filters:
            control.add_class(f"recon-filter-{name}")
            control.layout = widgets.Layout(width="260px")
            control.style = {"description_width": "70px"}
            control.observe(lambda _: self.apply_filters(), "value")

        # -- actions
        self.approve_button = self._button(
            "Approve all matching",
            "recon-approve-matching",
            "success",
            lambda: self.ask_matching("approved"),
        )
        self.reject_button = self._button(
            "Reject all matching",
            "recon-reject-matching",
            "danger",
            lambda: self.ask_matching("rejected"),
        )
        self.override = widgets.Checkbox(
            value=False,
            description="Override earlier decisions",
            indent=False,
            tooltip="the next Approve/Reject all matching also changes proposals decided "
            "earlier (without it they are left as they are and counted)",
            layout=widgets.Layout(width="auto"),
        )
        self.override.add_class("recon-override")
        self.note = widgets.Text(
            description="Note",
            placeholder="why (recorded with each decision made here)",
            layout=widgets.Layout(width="520px"),
            style={"description_width": "70px"},
        )
        self.note.add_class("recon-note")
        self.refresh_button = self._button("Refresh", "recon-refresh", "", self.reload)
        self.prev_button = self._button("◀ Previous", "recon-prev", "", self.previous_page)
        self.next_button = self._button("Next ▶", "recon-next", "", self.next_page)
        self.dry_run_button = self._button("Dry run", "recon-dry-run", "info", self.dry_run)
        self.submit_button = self._button(
            "Submit approved", "recon-submit", "warning", self.ask_submit
        )
        # Bulk actions and Submit ask first: "Confirm ..." states what will happen.
        self.confirm_button = self._button("Confirm", "recon-confirm", "warning", self.confirm)
        self.cancel_button = self._button("Cancel", "recon-cancel", "", self.cancel)
        self.confirm_box = widgets.HBox(
            [self.confirm_button, self.cancel_button], layout=widgets.Layout(display="none")
        )
        self.confirm_box.add_class("recon-confirm-box")
        self._pending: Any = None
        self.counters = widgets.HTML()
        self.counters.add_class("recon-counters")
        self.status = widgets.HTML()
        self.status.add_class("recon-status")

        # -- the page
        shared = _Shared()
        self.rows = [_Row(slot, self, shared) for slot in range(page_size)]
        header = widgets.HTML(_cells([name for name, _ in _COLUMNS], header=True))
        # As wide as a row's toggle, eye and their margins, so the columns line up.
        spacer = widgets.HTML(
            "<b>decide</b>",
            layout=widgets.Layout(
                width=f"{_TOGGLE_PX + _EYE_PX + 8}px", margin="0", flex="0 0 auto"
            ),
        )
        header_box = widgets.HBox([spacer, header])
        self.table = widgets.VBox([header_box] + [r.outer for r in self.rows])
        self.table.add_class("recon-table")
        self.hint = widgets.HTML(
            "<i>Click the eye of a row to see its evidence: the provider's row(s), what the "
            "LMS holds, the exact body, every decision and every attempt.</i>"
        )
        self.hint.add_class("recon-preview")
        # Why LMS now cannot be shown, in red right above the table whose column says
        # "unreadable" (the summary below the fifty rows says it too).
        self.lms_note = widgets.HTML(layout=widgets.Layout(display="none"))
        self.lms_note.add_class("recon-lms-note")

        # -- submission
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, description="Sent", layout=widgets.Layout(width="420px")
        )
        self.progress.add_class("recon-progress")
        self.summary = widgets.HTML()
        self.summary.add_class("recon-summary")
        self.target_label = widgets.HTML()
        self.target_label.add_class("recon-target")
        self._show_target()

        target = "no API client (dry runs only)"
        if self.target is not None:
            practice = f" (at {self.target.url})" if self.target.practice else ""
            target = self.target.label + practice
        super().__init__(
            [
                widgets.HTML(
                    f"<b>Run {self.run_id}</b>: {self.model.proposal_count:,} proposal(s). "
                    f"Submissions go to {esc(target)}."
                ),
                widgets.HBox([self.kind, self.path, self.learner]),
                widgets.HBox([self.date_from, self.date_to, self.decision]),
                widgets.HBox(
                    [self.approve_button, self.reject_button, self.override, self.refresh_button]
                ),
                self.note,
                self.counters,
                widgets.HBox([self.prev_button, self.next_button, self.status]),
                self.hint,
                self.lms_note,
                self.table,
                widgets.HBox(
                    [self.dry_run_button, self.submit_button, self.target_label, self.progress]
                ),
                self.confirm_box,
                self.summary,
            ]
        )
        self.add_class("recon-review")
        self.apply_filters()
        if self.model.evidence is not None:
            self.model.evidence.when_lms_read(self._on_lms_read)
            # Only a proposal's evidence needs the provider's export: read it in the
            # background now (after the LMS export), so the first eye clicked finds it
            # read (seconds at 1M rows).
            self.model.evidence.start_provider()
        else:
            self._lms_drawn.set()

    def __repr__(self) -> str:
        return f"<ReviewWidget run={self.run_id} proposals={self.model.proposal_count}>"

    # -- building blocks ------------------------------------------------------------------

    def _button(self, description: str, css: str, style: str, action: Any) -> widgets.Button:
        button = widgets.Button(
            description=description,
            button_style=style,
            # Never squeezed below its label: the labels are the UI's contract.
            layout=widgets.Layout(width="auto", min_width="110px", flex="0 0 auto"),
        )
        button.add_class(css)
        button.on_click(lambda _: self._guard(action))
        return button

    def _guard(self, action: Any) -> None:
        """Run a button's action; a recon error becomes a message, not a traceback."""
        try:
            action()
        except ReconError as exc:
            self._message(str(exc), error=True)

    def _show_target(self) -> None:
        where = self.target.label if self.target is not None else "no API client (dry runs only)"
        colour = "#2e7d32" if self.target is not None and self.target.practice else "#c62828"
        self.target_label.value = (
            f'<span style="color:{colour};font-weight:600">{esc(where)}</span>'
        )

    def _message(self, text: str, *, error: bool = False) -> None:
        colour = "#c62828" if error else "inherit"
        self.summary.value = f'<div style="color:{colour}">{esc(text)}</div>'

    # -- the model, as the widget's own attributes (tests and notebooks use them) --------

    @property
    def run_id(self) -> int:
        return self.model.run_id

    @property
    def by(self) -> str | None:
        return self.model.by

    @property
    def frame(self) -> pd.DataFrame:
        return self.model.frame

    @property
    def page(self) -> int:
        return self.model.page

    @property
    def page_size(self) -> int:
        return self.model.page_size

    @property
    def page_count(self) -> int:
        """Pages of matching proposals (at least 1, an empty one when nothing matches)."""
        return self.model.page_count

    def _filters(self) -> Filters:
        return Filters(
            kind=self.kind.value or "",
            path=self.path.value or "",
            learner=self.learner.value or "",
            date_from=self.date_from.value,
            date_to=self.date_to.value,
            decision=self.decision.value or "",
        )

    # -- filtering and paging -------------------------------------------------------------

    def apply_filters(self, *, keep_page: bool = False) -> int:
        """Recompute which proposals match the filters; returns how many.

        Goes back to the first page unless ``keep_page`` (then the page is only clamped).
        A question waiting for "Confirm" is withdrawn: its count no longer holds.
        """
        if getattr(self, "_pending", None) is not None:
            self.cancel()
        with self._lock:
            found = self.model.apply(self._filters(), keep_page=keep_page)
            self._render()
            return found

    def matching(self) -> pd.DataFrame:
        """The proposals matching the current filters, in ledger order."""
        return self.model.matching()

    def page_frame(self) -> pd.DataFrame:
        """The proposals on the current page."""
        return self.model.page_frame()

    def go_to(self, page: int) -> int:
        """Show page ``page`` (0-based, clamped); returns the page shown."""
        with self._lock:
            shown = self.model.go_to(page)
            self._render()
            return shown

    def next_page(self) -> int:
        """Show the next page; returns the page shown."""
        return self.go_to(self.page + 1)

    def previous_page(self) -> int:
        """Show the previous page; returns the page shown."""
        return self.go_to(self.page - 1)

    def reload(self) -> None:
        """Read the run again from the ledger: another analyst's decisions, submissions."""
        with self._lock:
            self.model.load()
            self.apply_filters(keep_page=True)

    # -- decisions ------------------------------------------------------------------------

    def decide(self, keys: Iterable[str], decision: str, *, policy: str | None = None) -> int:
        """Record ``decision`` (approved/rejected) for ``keys`` in the ledger, then show it.

        An explicit decision: written for every key whatever the widget's copy of the run
        says, except keys whose record the API has already answered for good (a decision
        changes nothing there; their row toggle is disabled). Returns how many decisions
        were written. The Note field's text is recorded with it.
        """
        with self._lock:
            decided = self.model.decide(keys, decision, note=self.note.value, policy=policy)
            self._after_decision(decided)
            return len(decided.changed)

    def _after_decision(self, decided: Decided, *, refiltered: bool = False) -> None:
        if refiltered:
            self._render()  # the decision filter no longer holds for what was decided
        else:
            self._redraw_decided({*decided.changed, *decided.left})

    def approve(self, keys: Iterable[str]) -> int:
        """Approve these proposals (by key); returns how many decisions were written."""
        return self.decide(keys, "approved")

    def reject(self, keys: Iterable[str]) -> int:
        """Reject these proposals (by key); returns how many decisions were written."""
        return self.decide(keys, "rejected")

    def approve_matching(self) -> int:
        """Approve every proposal matching the filters (all pages); returns how many."""
        return self._decide_matching("approved")

    def reject_matching(self) -> int:
        """Reject every proposal matching the filters (all pages); returns how many."""
        return self._decide_matching("rejected")

    def _decide_matching(self, decision: str) -> int:
        override = bool(self.override.value)
        with self._lock:
            decided, filters = self.model.decide_matching(
                decision, note=self.note.value, override=override
            )
            self._after_decision(decided, refiltered=bool(self.model.filters.decision))
            # One tick is one explicit request: the next bulk action asks again.
            self.override.value = False
        hint = 'tick "Override earlier decisions" to change decided ones'
        self._message(decided.describe(f" proposal(s) matching {filters}", hint))
        return len(decided.changed)

    def describe_filters(self) -> str:
        """The filters in words, as recorded with an "all matching" decision."""
        return self.model.describe_filters()

    def _on_row_decision(self, row: _Row, change: dict[str, Any]) -> None:
        if self._syncing or row.key is None or change["new"] is None:
            return
        try:
            self.decide([row.key], change["new"])
        except ReconError as exc:
            self._message(str(exc), error=True)
            self._render()

    def counts(self) -> dict[str, int]:
        """Proposals of the run per decision (the whole run, not only the matching)."""
        return self.model.counts()

    def counters_text(self) -> str:
        """``undecided N · approved N · rejected N``, as the counters show it."""
        return self.model.counters_text()

    # -- drawing --------------------------------------------------------------------------

    def _draw_row(self, row: _Row, record: Mapping[Any, Any], lms: str | BaseException) -> None:
        self._syncing = True
        try:
            row.key = record["key"]
            row.cells.value = _row_html(record, lms)
            decided = record["decision"] in ("approved", "rejected")
            row.toggle.value = record["decision"] if decided else None
            row.toggle.disabled = record["submission"] in FINAL
            row.box.layout.display = "flex"
        finally:
            self._syncing = False

    def _redraw_decided(self, keys: set[str]) -> None:
        """After decisions: redraw only the rows on screen they concern, and the counters.
        Every redrawn widget is a message to the browser, so a click on one row must not
        redraw fifty."""
        lms = self._lms_state()  # before the page: a reading ending between is drawn after
        page = self.model.page_frame(wait_lms=False)
        for row, record in zip(self.rows, page.to_dict("records"), strict=False):
            if record["key"] in keys:
                self._draw_row(row, record, lms)
        if self.open_key in keys:
            self._place_evidence()
        self.counters.value = f"<b>{self.counters_text()}</b>"

    def _render(self) -> None:
        lms = self._lms_state()  # before the page: a reading ending between is drawn after
        page = self.model.page_frame(wait_lms=False)
        for row, record in zip(self.rows, page.to_dict("records"), strict=False):
            self._draw_row(row, record, lms)
        self._syncing = True
        try:
            for row in self.rows[len(page) :]:
                row.key = None
                row.toggle.value = None
                row.box.layout.display = "none"
        finally:
            self._syncing = False
        self._place_evidence()
        total = self.model.matching_count
        start = self.page * self.page_size
        shown = f"{start + 1:,}–{start + len(page):,}" if total else "0"
        sent_text = ", ".join(f"{k} {n:,}" for k, n in self.model.sent_counts().items())
        self.status.value = (
            f"&nbsp; rows {shown} of {total:,} matching · page {self.page + 1} of "
            f"{self.page_count}" + (f" · sent: {sent_text}" if sent_text else "")
        )
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.page_count - 1
        self.approve_button.tooltip = f"approve the {total:,} matching proposal(s)"
        self.reject_button.tooltip = f"reject the {total:,} matching proposal(s)"
        self.counters.value = f"<b>{self.counters_text()}</b>"

    def _lms_state(self) -> str | BaseException:
        """What ``LMS now`` can show: "none" (no input files given), "reading", "read",
        or the error that kept the LMS export from being read."""
        evidence = self.model.evidence
        if evidence is None:
            return "none"
        if evidence.lms_ready():
            return "read"
        return evidence.lms_error() or "reading"

    def _on_lms_read(self, error: BaseException | None) -> None:
        """The LMS export is read (or failed): draw the page's ``LMS now`` again (the
        cells only: the toggles stay as they are), and say an error in red."""
        try:
            with self._lock:
                if error is not None:
                    said = lms_unreadable_message(error)
                    self._message(said, error=True)
                    self.lms_note.value = f'<div style="color:#c62828">{esc(said)}</div>'
                    self.lms_note.layout.display = "block"
                lms = self._lms_state()
                page = self.model.page_frame(wait_lms=False)
                for row, record in zip(self.rows, page.to_dict("records"), strict=False):
                    row.cells.value = _row_html(record, lms)
        finally:
            self._lms_drawn.set()

    def wait_for_lms(self, timeout: float | None = None) -> bool:
        """Wait until ``LMS now`` is drawn from the LMS export (or its error is shown);
        returns whether it is (False: the timeout passed first)."""
        return self._lms_drawn.wait(timeout)

    # -- evidence -------------------------------------------------------------------------

    @property
    def preview(self) -> widgets.HTML:
        """The open evidence panel (or the hint, when none is open)."""
        for row in self.rows:
            if self.open_key is not None and row.key == self.open_key:
                return row.panel
        return self.hint

    def toggle_evidence(self, slot: int) -> bool:
        """Open the evidence of row ``slot`` (closing any other), or close it when it is
        the one open; returns whether it is open now."""
        row = self.rows[slot]
        if row.key is not None and row.key == self.open_key:
            self.close_evidence()
            return False
        self.show_payload(slot)
        return True

    def close_evidence(self) -> None:
        self.open_key = None
        for row in self.rows:
            row.panel.layout.display = "none"

    def show_payload(self, slot: int) -> dict[str, str]:
        """Open the evidence of the proposal in row ``slot`` of the page, right under the
        row; returns its request body."""
        with self._lock:
            page = self.model.page_frame(wait_lms=False)  # the key only: LMS now not needed
            if not 0 <= slot < len(page):
                raise IndexError(f"the page has no row {slot}")
            key = str(page.iloc[slot]["key"])
        found = self.evidence(key)
        self.close_evidence()
        self.open_key = key
        row = self.rows[slot]
        row.panel.value = _evidence_html(found, self.model.provider_zone)
        row.panel.layout.display = "block"
        return dict(found["body"])

    def evidence(self, key: str) -> dict[str, Any]:
        """Everything behind proposal ``key`` (see :meth:`ReviewModel.evidence_of`)."""
        return self.model.evidence_of(key)

    def _place_evidence(self) -> None:
        """The evidence follows the filters and pages: it stays open under its row while
        that row is on the page, and closes when the row leaves it."""
        if self.open_key is None:
            return
        on_page = [row for row in self.rows if row.key == self.open_key]
        if not on_page:
            self.close_evidence()
            return
        for row in self.rows:
            if row is not on_page[0]:
                row.panel.layout.display = "none"
        # Read again: a decision or an attempt may have been added since it was opened.
        found = self.evidence(self.open_key)
        on_page[0].panel.value = _evidence_html(found, self.model.provider_zone)
        on_page[0].panel.layout.display = "block"

    # -- asking first ---------------------------------------------------------------------

    def ask_matching(self, decision: str) -> str | None:
        """What "Approve/Reject all matching" does: more than one matching proposal asks
        first (returns the Confirm button's label); one or none acts at once."""
        total = self.model.matching_count
        if total <= 1:
            self._decide_matching(decision)
            return None
        verb = "approve" if decision == "approved" else "reject"
        undecided = self.model.matching_undecided()
        left = total - undecided
        override = bool(self.override.value)
        if override or not left:
            what = f"{total:,} proposal(s)"
        else:
            what = f"{undecided:,} undecided proposal(s) ({left:,} decided stay as they are)"
        label = f"Confirm: {verb} {what} matching {self.describe_filters()}"
        self._ask(label, lambda: self._decide_matching(decision))
        return label

    def ask_submit(self) -> str:
        """What "Submit approved" does: asks first, stating how many, where and about how
        long (the dry run's count and estimate); returns the Confirm button's label."""
        report = submit(self.ledger, self.client, run=self.run_id, pace=self.pace, dry_run=True)
        count = report.planned - report.invalid
        label = (
            f"Confirm: submit {count:,} approved proposal(s) to {report.where}, "
            f"about {duration(report.estimate)}"
        )
        self._ask(label, self.start_submit)
        return label

    def _ask(self, label: str, action: Any) -> None:
        self._pending = action
        self.confirm_button.description = label
        self.confirm_button.tooltip = label
        self.confirm_box.layout.display = "flex"

    def confirm(self) -> Any:
        """Do what the Confirm button states; returns what the action returned."""
        action, self._pending = self._pending, None
        self.confirm_box.layout.display = "none"
        self.confirm_button.description = "Confirm"
        if action is None:
            return None
        return action()

    def cancel(self) -> None:
        """Withdraw the question: nothing is done."""
        self._pending = None
        self.confirm_box.layout.display = "none"
        self.confirm_button.description = "Confirm"

    # -- submission -----------------------------------------------------------------------

    def dry_run(self) -> SubmitReport:
        """Show what "Submit approved" would send and how long it would take; sends nothing."""
        report = submit(self.ledger, self.client, run=self.run_id, pace=self.pace, dry_run=True)
        self.last_report = report
        target = report.where
        preview = "".join(
            f"<pre style='margin:2px 0'>{esc(json.dumps(body))}</pre>" for body in report.preview
        )
        invalid = (
            f" {report.invalid:,} would be refused by local validation." if report.invalid else ""
        )
        self.summary.value = (
            f"<b>Dry run</b>: {report.planned:,} approved proposal(s) would be sent to "
            f"{esc(target)}, about {duration(report.estimate)} at "
            f"{self.pace.rate:g}/s (burst {self.pace.burst}). Nothing was sent.{invalid}"
            + (f"<br>First bodies:{preview}" if preview else "")
        )
        return report

    def submit(self) -> SubmitReport:
        """Send the run's approved proposals that still need sending, and wait.

        The progress bar and the summary follow along; at the end the summary lists the
        records the API rejected, with its messages. Raises :class:`ReconError` when
        there is no client or another submit holds the ledger.
        """
        if self.client is None:
            raise ReconError("no API client: this widget can only do dry runs")
        todo = self.ledger.to_send(self.run_id, self.target)
        sent_keys = set(todo["key"])
        self.progress.max = max(1, len(todo))
        self.progress.value = 0
        self.progress.bar_style = ""
        self._set_busy(True)
        last_draw = [0.0]

        def follow(report: SubmitReport) -> None:
            # Called from the sending threads, once per record: keep it short.
            now = time.monotonic()
            done = report.accepted + report.rejected_total + report.failed + report.invalid
            if now - last_draw[0] < _REDRAW_INTERVAL_S and done < report.planned:
                return
            last_draw[0] = now
            self.progress.max = max(1, report.planned)
            self.progress.value = done
            self.summary.value = f"<b>{_live_line(report, 'Submitting')}</b>"

        try:
            report = submit(
                self.ledger,
                self.client,
                run=self.run_id,
                pace=self.pace,
                progress=False,
                on_progress=follow,
            )
        finally:
            self._set_busy(False)
        self.last_report = report
        if report.target is not None:
            self.target = report.target  # what the ping said
            self._show_target()
        self.progress.max = max(1, report.planned)
        self.progress.value = report.planned - report.remaining
        self.progress.bar_style = "danger" if report.exit_code else "success"
        self.reload()
        self.summary.value = self._final_summary(report, sent_keys)
        return report

    def start_submit(self) -> threading.Thread:
        """Submit in a background thread so the notebook stays usable; see :meth:`wait`."""
        if self._thread is not None and self._thread.is_alive():
            raise ReconError("a submission is already running")

        def work() -> None:
            try:
                self.submit()
            except ReconError as exc:
                self._message(str(exc), error=True)

        self._thread = threading.Thread(target=work, name="recon-review-submit", daemon=True)
        self._thread.start()
        return self._thread

    def wait(self, timeout: float | None = None) -> SubmitReport | None:
        """Wait for a submission started by the button; returns its report."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.last_report

    def _set_busy(self, busy: bool) -> None:
        # Disabled, not renamed: the descriptions are part of the UI contract.
        self.submit_button.disabled = busy
        self.dry_run_button.disabled = busy

    def _final_summary(self, report: SubmitReport, sent_keys: set[str]) -> str:
        parts = [
            f"<b>{_live_line(report, 'Submitted')}</b>",
            f"Sent to: {esc(report.where)}",
        ]
        rate = report.requests / report.elapsed if report.elapsed else 0.0
        parts.append(
            f"{report.requests:,} request(s) in {duration(report.elapsed)} "
            f"({rate:.1f}/s, {report.throttled:,} throttled)"
        )
        if report.failed:
            parts.append(f"{report.failed:,} failed: submit again later to retry them.")
        if report.fatal:
            parts.append(f'<span style="color:#c62828">Stopped: {esc(report.fatal)}</span>')
        with self._lock:
            rejected, shown = self.model.rejected_among(sent_keys, 100)
        if rejected:
            rows = "".join(
                f"<tr><td>{esc(r['learner'] or r['userId'])}</td>"
                f'<td title="{esc(r["learningPathId"])}">{esc(r["path_label"])}</td>'
                f"<td>{esc(r['status'])}</td>"
                f"<td>{esc(_messages(r))}</td></tr>"
                for _, r in shown.iterrows()
            )
            more = f"<br>… and {rejected - len(shown):,} more" if rejected > 100 else ""
            parts.append(
                f"Rejected by the API ({rejected:,}):"
                '<table class="recon-rejected" style="font-size:12px">'
                "<tr><th>learner</th><th>learning path</th><th>status</th><th>message</th></tr>"
                f"{rows}</table>{more}"
            )
        return "<br>".join(parts)


def lms_unreadable_message(error: BaseException) -> str:
    """What the widget says when the LMS export cannot be read: what is lost (only LMS
    now), what still works, and what to do."""
    return (
        f"LMS now is not known: the LMS export could not be read: {error}. Deciding, "
        "the dry run and submitting do not need it. Fix the file (the config's [progress] "
        "section names it), then run this cell again to see what the LMS holds."
    )


def _row_html(record: Mapping[Any, Any], lms: str | BaseException = "read") -> str:
    """One row's cells; ``lms``: what ``LMS now`` can show (``ReviewWidget._lms_state``)."""
    learner = esc(record["learner"]) or esc(record["userId"])
    path = f'<span title="{esc(record["learningPathId"])}">{esc(record["path_label"])}</span>'
    wire = record["when"] if isinstance(record["when"], str) else ""
    local = record["provider_date"] if isinstance(record["provider_date"], str) else ""
    decision = str(record["decision"])
    submission = str(record["submission"])
    sent = "" if submission == "not-sent" else submission
    return _cells(
        [
            f'<span title="{esc(record["userId"])}">{learner}</span>',
            path,
            _two_lines(esc(record["status"]), esc(local)),
            _lms_now(record, lms),
            f'<span title="{esc(wire)}">'
            + _two_lines(esc(record["status"]), esc(wire[:10]))
            + "</span>",
            esc(record["category"]),
            f'<span style="color:{_DECISION_COLOURS.get(decision, "inherit")}">'
            f"{esc(decision)}</span>",
            f'<span style="color:{_SUBMISSION_COLOURS.get(submission, "inherit")}" '
            f'title="{esc(_messages(record))}">{esc(sent)}</span>',
        ]
    )


def _lms_now(record: Mapping[Any, Any], lms: str | BaseException = "read") -> str:
    if isinstance(lms, BaseException):
        why = f"the LMS export could not be read: {lms}"
        return f'<span style="color:#c62828" title="{esc(why)}">{LMS_UNREADABLE}</span>'
    if lms == "reading":
        return f'<i style="color:#757575" title="the LMS export is being read">{LMS_READING}</i>'
    status = record.get("lms_status")
    if not isinstance(status, str):
        return '<span title="no input files given: not known">–</span>'
    if status == NO_RECORD:
        return f'<i style="color:#757575">{NO_RECORD}</i>'
    when = record.get("lms_date")
    return _two_lines(esc(status), esc(when[:10]) if isinstance(when, str) else "")


def _two_lines(status: str, day: str) -> str:
    """A status over its date (both escaped HTML): three such columns fit the page."""
    return f'{status}<br><span style="color:#616161">{day}</span>' if day else status


def _table(frame: pd.DataFrame, css: str) -> str:
    """A small HTML table of ``frame`` (every cell escaped)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return (
        f'<div style="overflow-x:auto"><table class="{css}" style="font-size:12px;'
        'border-collapse:collapse;white-space:nowrap">'
        f"<tr>{head}</tr>{body}</table></div>"
    )


def _messages(record: Any) -> str:
    text = record["api_errors"]
    if not isinstance(text, str) or not text:
        return ""
    try:
        return "; ".join(str(m) for m in json.loads(text))
    except ValueError:
        return text


def _live_line(report: SubmitReport, verb: str) -> str:
    return (
        f"{verb} run {report.run_id}: accepted {report.accepted:,} · rejected "
        f"{report.rejected_total:,} · failed {report.failed:,} · remaining {report.remaining:,}"
    )


def _evidence_html(found: Mapping[str, Any], zone: str) -> str:
    """The evidence panel of one proposal (see :meth:`ReviewModel.evidence_of`)."""
    record = found["record"]
    parts = [
        f"<b>{esc(record['learner'] or record['userId'])}</b> "
        f"<span style='color:#757575'>({esc(record['userId'])})</span> → "
        f"<b>{esc(record['path_label'])}</b> "
        f"<span style='color:#757575'>({esc(record['learningPathId'])})</span> · "
        f"{esc(record['category'])} · key <code>{esc(record['key'])}</code>"
    ]
    provider = found["provider"]
    parts.append(
        f"<b>Provider row(s)</b> (row numbers as in every output; dates as written, "
        f"read in {esc(zone)}):" + _table(provider, "recon-evidence-provider")
    )
    if found.get("provider_error") is not None:
        why = f"the provider's export could not be read: {found['provider_error']}"
        parts.append(f'<span style="color:#c62828">{esc(why)} (row numbers only)</span>')
    lms = found["lms"]
    status = record.get("lms_status")
    if found.get("lms_error") is not None:
        why = f"the LMS export could not be read: {found['lms_error']}"
        parts.append(
            f'<b>LMS now</b>: <span style="color:#c62828">{LMS_UNREADABLE}</span> ({esc(why)})'
        )
    elif not isinstance(status, str):
        parts.append("<b>LMS now</b>: not known (the widget was given no input files)")
    elif lms.empty:
        parts.append(f"<b>LMS now</b>: {NO_RECORD} (the LMS export has no row for this pair)")
    else:
        shown = lms.drop(columns=["userId", "learningPathId"]).rename(
            columns={
                "word": "status as written",
                "status": "read as",
                "completionDate": "completion (UTC)",
                "completion_raw": "completion as written",
            }
        )
        parts.append(
            f"<b>LMS now</b>: {esc(status)} {esc(record.get('lms_date') or '')} — its row(s):"
            + _table(shown, "recon-evidence-lms")
        )
    parts.append(
        "<b>Will send</b> (the exact body):"
        f"<pre style='margin:4px 0'>{esc(json.dumps(found['body'], indent=2))}</pre>"
    )
    decisions = found["decisions"]
    parts.append(
        "<b>Decisions</b>: none yet"
        if decisions.empty
        else "<b>Decisions</b>:" + _table(decisions, "recon-evidence-decisions")
    )
    attempts = found["attempts"]
    if attempts.empty:
        parts.append("<b>Attempts</b>: not sent yet")
    else:
        shown = attempts.assign(
            errors=[_messages({"api_errors": e}) for e in attempts["errors"]],
            practice=attempts["practice"].map({1: "practice", 0: "LMS"}),
        ).rename(columns={"errors": "the API's messages"})
        parts.append("<b>Attempts</b>:" + _table(shown, "recon-evidence-attempts"))
    return (
        '<div style="border-left:3px solid #1976d2;padding:4px 10px;background:#f5f9ff;'
        'font-size:12px">' + "<br>".join(parts) + "</div>"
    )
