"""Notebook 04's resolve widget: a run's open suggestions, one provider row at a time.

:class:`ResolveModel` holds no widget: which rows have open suggestions, each row's
evidence (the provider row's original cells, as ``run_exceptions`` keeps them, with its
outcome and detail) and its candidates, and the three actions, each written to the
ledger at once through :mod:`recon.aliases` (accept the best candidate, accept another
one offered: "pick another", reject one). :class:`ResolveWidget` is a thin ipywidgets
view over it: the evidence beside each candidate, an Accept and a Reject button per
candidate, previous / next. Every click is saved before the view changes, so a kernel
restart or a second analyst sees it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import aliases as al

if TYPE_CHECKING:
    from .ledger import Ledger


@dataclass(frozen=True)
class Item:
    """One provider row and what is unknown about it (``learner`` or ``path``)."""

    row: int
    kind: str


class ResolveModel:
    """The open suggestions of run ``run`` (default: the latest), row by row."""

    def __init__(self, ledger: Ledger, run: str | int | None = "latest", by: str | None = None):
        self.ledger = ledger
        self.run_id = ledger.resolve_run(run)
        self.by = by
        self.position = 0
        self.last = ""
        self._exceptions: pd.DataFrame | None = None  # read once, when first shown
        self.refresh()

    def refresh(self) -> None:
        """Read the open suggestions again (after a click, or another analyst's)."""
        self.open = al.suggestions(self.ledger, self.run_id)
        pairs = self.open[["row", "kind"]].drop_duplicates()
        self.items = [Item(int(r), str(k)) for r, k in pairs.itertuples(index=False)]
        self.position = min(self.position, max(0, len(self.items) - 1))

    @property
    def current(self) -> Item | None:
        return self.items[self.position] if self.items else None

    def move(self, step: int) -> None:
        if self.items:
            self.position = (self.position + step) % len(self.items)

    def evidence(self, item: Item) -> dict[str, Any]:
        """The provider row as it was in the file (its original cells), with the row's
        outcome and detail."""
        if self._exceptions is None:
            self._exceptions = self.ledger.exceptions(self.run_id)
        found = self._exceptions[self._exceptions.iloc[:, 0] == item.row]
        if found.empty:
            return {"row": item.row}
        # By position: a provider column may be called row, outcome or detail too.
        values = found.iloc[0].tolist()
        names = [str(c) for c in found.columns]
        shown = {"row": item.row, "outcome": values[1], "detail": values[2]}
        for name, value in zip(names[3:], values[3:], strict=True):
            shown[name if name not in shown else f"{name} (provider)"] = value
        return shown

    def candidates(self, item: Item) -> pd.DataFrame:
        """The row's open candidates, best first (``candidate``, ``candidate_id``,
        ``score``, ``reason``); a line without ``candidate_id`` is a reason without a guess."""
        lines = self.open[(self.open["row"] == item.row) & (self.open["kind"] == item.kind)]
        return lines.reset_index(drop=True)

    def accept(self, item: Item, candidate_id: str | None = None) -> str:
        """Make the best candidate (or ``candidate_id``, another one offered) an alias."""
        done = al.accept(
            self.ledger,
            item.row,
            run=self.run_id,
            kind=item.kind,
            candidate=candidate_id,
            by=self.by,
        )
        return self._after(done, item)

    def reject(self, item: Item, candidate_id: str | None = None) -> str:
        """Turn the best candidate (or ``candidate_id``) down: never offered again."""
        done = al.reject(
            self.ledger,
            item.row,
            run=self.run_id,
            kind=item.kind,
            candidate=candidate_id,
            by=self.by,
        )
        return self._after(done, item)

    def _after(self, done: al.Resolved, item: Item) -> str:
        self.last = f"row {item.row} ({item.kind}): {done.describe()}; saved in the ledger"
        self.refresh()
        return self.last


class ResolveWidget:
    """The view: ``ResolveWidget(model).widget`` in a notebook cell."""

    def __init__(self, model: ResolveModel) -> None:
        import ipywidgets as w

        self.model = model
        self.header = w.HTML()
        self.evidence = w.HTML()
        self.choices = w.VBox()
        self.message = w.HTML()
        self.previous = w.Button(description="Previous", icon="arrow-left")
        self.next = w.Button(description="Next", icon="arrow-right")
        self.previous.on_click(lambda _: self._move(-1))
        self.next.on_click(lambda _: self._move(1))
        self.accept_buttons: list[Any] = []
        self.reject_buttons: list[Any] = []
        self.widget = w.VBox(
            [
                w.HBox([self.previous, self.next, self.header]),
                w.HBox([self.evidence, self.choices]),
                self.message,
            ]
        )
        self.render()

    def _move(self, step: int) -> None:
        self.model.move(step)
        self.render()

    def _act(self, action: str, candidate_id: str) -> None:
        item = self.model.current
        if item is None:
            return
        try:
            if action == "accept":
                said = self.model.accept(item, candidate_id)
            else:
                said = self.model.reject(item, candidate_id)
        except Exception as exc:  # noqa: BLE001 - shown, never swallowed
            said = f"not saved: {exc}"
        self.render()
        self.message.value = html.escape(said)

    def render(self) -> None:
        import ipywidgets as w

        item = self.model.current
        self.accept_buttons, self.reject_buttons = [], []
        if item is None:
            self.header.value = "<b>No open suggestions in this run.</b>"
            self.evidence.value = ""
            self.choices.children = ()
            return
        total = len(self.model.items)
        self.header.value = (
            f"<b>run {self.model.run_id}: row {item.row}, unknown {item.kind}</b> "
            f"({self.model.position + 1} of {total} open)"
        )
        cells = self.model.evidence(item)
        rows = "".join(
            f"<tr><th style='text-align:left;white-space:nowrap'>{html.escape(str(k))}</th>"
            f"<td>{html.escape('' if v is None else str(v))}</td></tr>"
            for k, v in cells.items()
        )
        self.evidence.value = f"<b>the provider's row</b><table>{rows}</table>"
        boxes = [w.HTML("<b>candidates</b>")]
        for line in self.model.candidates(item).to_dict("records"):
            cid = line["candidate_id"]
            label = w.HTML(candidate_html(line))
            if cid is None or (not isinstance(cid, str) and pd.isna(cid)):
                boxes.append(label)
                continue
            accept = w.Button(description="Accept", button_style="success")
            reject = w.Button(description="Reject", button_style="danger")
            accept.on_click(lambda _, c=cid: self._act("accept", c))
            reject.on_click(lambda _, c=cid: self._act("reject", c))
            self.accept_buttons.append(accept)
            self.reject_buttons.append(reject)
            boxes.append(w.HBox([label, accept, reject]))
        self.choices.children = tuple(boxes)


def candidate_html(line: Mapping[Any, Any]) -> str:
    """One candidate in the analyst's words: the email or course code first, its score
    and reason; the LMS id only as grey detail (its tooltip too)."""
    cid = line.get("candidate_id")
    cid = "" if cid is None or (not isinstance(cid, str) and pd.isna(cid)) else str(cid)
    score = line.get("score")
    scored = "" if score is None or pd.isna(score) else f" · score {score:.2f}"
    shown = html.escape(str(line.get("candidate") or "(no guess)"))
    detail = (
        f"<br><span style='color:#757575;font-size:11px'>LMS id {html.escape(cid)}</span>"
        if cid
        else ""
    )
    return (
        f"<b title='{html.escape(cid)}'>{shown}</b>{scored}<br>"
        f"<small>{html.escape(str(line.get('reason') or ''))}</small>{detail}"
    )


__all__ = ["Item", "ResolveModel", "ResolveWidget", "candidate_html"]
