"""The review of a run's proposals without any widget: load, filter, page, decide, count.

:class:`~recon.review.ReviewWidget` draws this model; tests and scripts drive it directly.

Why it stays responsive with 100,000 proposals: only what filters, counts and pages need
is read for every proposal (:meth:`~recon.ledger.Ledger.review_rows`: ids and codes, no
payload, no text built per row), column-wise with no Python step per proposal; the kind
and path filters compare integer codes, by the ledger's own rule
(:meth:`~recon.ledger.Ledger.select`: the category as written, the path id in any ASCII
case), the others are a handful of vectorised comparisons (learner text, dates, decision
codes); counters are a bincount of the decision codes. Only the current page is drawn,
and only its rows are read in full (:meth:`ReviewModel.rows_at`,
:meth:`~recon.ledger.Ledger.review_page`), with ``LMS now`` for their pairs (cached per
pair, read for three pages at a time). :attr:`ReviewModel.frame`, every proposal in full,
is built only when asked for.

Why a decision is never lost: each one is written to the ledger (``Ledger.decide``) the
moment it is made, before the model's copy changes, so a kernel restart or a second
analyst (:meth:`ReviewModel.load`) sees it.

Size: just over 600 lines because loading a run column-wise, the filters, paging with
``LMS now`` and the evidence of one proposal all read the same columns and lock: split,
each part would reach into the others' state.

Why a decision never overrides another by accident: a decision by key is written whatever
the model's copy of the run says (that copy may be stale); "all matching" changes only
proposals with no decision yet, as the ledger holds them at that moment (the ledger's
rule, ``only_undecided``), unless asked to override.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from . import outcomes as oc
from .errors import LedgerError, ReconError
from .evidence import NO_RECORD, Evidence
from .fmt import code_spellings, path_label
from .ledger import Decided, Ledger, default_analyst, now_iso
from .target import Target

__all__ = ["DECISIONS", "PAGE_SIZE", "Filters", "ReviewModel"]

PAGE_SIZE = 50
DECISIONS = ("undecided", "approved", "rejected")
# Submission states after which a decision no longer changes anything: the API has
# answered for good.
FINAL = ("accepted", "rejected")
# Frame column <- field of Decided.held: a decision as the ledger holds it.
_HELD_COLUMNS = (
    ("decision", "decision"),
    ("decided_by", "by"),
    ("decided_at", "at"),
    ("note", "note"),
    ("policy", "policy"),
)


@dataclass(frozen=True)
class Filters:
    """What the analyst narrowed the run to; every filter given must hold.

    ``kind``: a category; ``path``: a learning path id; ``learner``: text in the
    learner's email or user id (any case); ``date_from``/``date_to``: the completion date,
    or the activity date for progress (UTC day); ``decision``: undecided/approved/rejected.
    Empty or None: no filter.
    """

    kind: str = ""
    path: str = ""
    learner: str = ""
    date_from: date | None = None
    date_to: date | None = None
    decision: str = ""

    def describe(self, path_labels: dict[str, str] | None = None) -> str:
        """The filters in words, as recorded with an "all matching" decision."""
        labels = path_labels or {}
        parts = []
        for name, value in (
            ("kind", self.kind or None),
            ("path", labels.get(self.path, self.path) if self.path else None),
            ("learner contains", self.learner.strip() or None),
            ("from", self.date_from),
            ("to", self.date_to),
            ("decision", self.decision or None),
        ):
            if value is not None:
                parts.append(f"{name} {value}")
        return ", ".join(parts) or "no filter"


class ReviewModel:
    """A run's proposals as the analyst reviews them.

    ``frame``: one row per proposal in ledger order (the ledger's columns, then
    ``path_label``, ``lms_status``/``lms_date`` (``LMS now``), ``provider_date`` (the
    proposal's date in the provider's timezone) and helpers). ``evidence``: the run's
    input files (:class:`Evidence`), for ``LMS now`` and the evidence of a proposal;
    without it ``LMS now`` is unknown and the evidence holds what the ledger has.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        run: str | int | None = "latest",
        target: Target | None = None,
        by: str | None = None,
        page_size: int = PAGE_SIZE,
        evidence: Evidence | None = None,
    ) -> None:
        self.ledger = ledger
        self.run_id = ledger.resolve_run(run)
        self.target = target
        self.by = by if by is not None else default_analyst()
        self.page_size = page_size
        self.evidence = evidence
        self.page = 0
        self.filters = Filters()
        self.lock = threading.RLock()
        self._matching = np.zeros(0, dtype=np.int64)
        self._search_cache: tuple[str, np.ndarray] | None = None
        # (kind, path) -> the positions the ledger selects: a run's proposals never
        # change, so each answer holds for as long as the model reviews that run.
        self._selected_by: dict[tuple[str, str], np.ndarray] = {}
        # (user id, learning path id) -> (lms_status, lms_date): a page asks only once.
        self._now: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._frame: pd.DataFrame | None = None
        self.load()

    # -- loading --------------------------------------------------------------------------

    def load(self) -> None:
        """Read the run's proposals, with their decisions and submission states, and apply
        the filters again (the page is kept, clamped).

        Only what filters, counts and pages need is read for every proposal
        (:meth:`Ledger.review_rows`: ids and codes); the other columns are read for the
        rows shown (:meth:`rows_at`), with ``LMS now`` for their pairs.
        """
        with self.lock:
            rows, words = self.ledger.review_rows(self.run_id, self.target)
            n = len(rows)
            self._rows = rows
            self._keys = pd.Index(rows["key"])  # key -> position, built once
            self._ids = _words(rows["path_word"], words)
            self._codes = _words(rows["code_word"], words)
            self._categories = _words(rows["category_word"], words)
            self._search = pd.Series(rows["who"], dtype=object).str.lower()
            self._day = pd.to_datetime(
                pd.Series(rows["day"], dtype=object), format="%Y-%m-%d", errors="coerce"
            ).to_numpy("datetime64[D]")
            # Decisions as small codes (DECISIONS' order): counting and filtering them is
            # a bincount and a comparison, never a text column of the whole run.
            self._decision = pd.Categorical(rows["decision"], categories=DECISIONS).codes.copy()
            # What was decided here since reading (the page shows it, not the ledger's
            # decision read with the run): its columns, by position.
            self._touched = np.zeros(n, dtype=bool)
            self._held = {column: np.full(n, None, dtype=object) for column, _ in _HELD_COLUMNS}
            self._final = np.isin(rows["submission"].to_numpy(dtype=object), FINAL)
            sent = rows["submission"].value_counts()
            self._sent = {k: int(sent[k]) for k in ("accepted", "rejected", "failed") if k in sent}
            self.spellings = self._code_spellings()
            ids = [str(p) for p in self._ids.categories]
            labels = {p: path_label(self.spellings.get(p.lower()), p) for p in ids}
            self._path_labels = labels
            # The kind and path filters compare small integer codes: the category, and the
            # learning path id folded as the ledger folds it (``Ledger.select``).
            self._kind_codes = np.asarray(self._categories.codes, dtype=np.int64)
            self._kind_of = {str(k): i for i, k in enumerate(self._categories.categories)}
            folded_codes, folded = pd.factorize(pd.Series([_fold_id(p) for p in ids], dtype=object))
            self._path_codes = folded_codes[np.asarray(self._ids.codes)] if n else np.zeros(0, int)
            self._path_of = {str(k): i for i, k in enumerate(folded)}
            self._search_cache = None
            self._selected_by = {}
            self._now = {}
            self._now_known = np.zeros(n, dtype=bool)
            self._frame = None
            self.apply(self.filters, keep_page=True)

    def _code_spellings(self) -> dict[str, str]:
        """:func:`code_spellings` of the run, from its distinct (path id, course code)
        pairs with their counts: the same answer as from every proposal, without a text
        column of the whole run."""
        ids, codes = np.asarray(self._ids.codes, np.int64), np.asarray(self._codes.codes)
        width = len(self._codes.categories) + 1  # code -1 (none) is 0 here
        pairs, counts = np.unique(ids * width + codes + 1, return_counts=True)
        code_at = pairs % width - 1
        return code_spellings(
            pd.DataFrame(
                {
                    "learningPathId": self._ids.categories[pairs // width],
                    "path": pd.Categorical.from_codes(code_at, self._codes.categories),
                    "n": counts,
                }
            ),
            weight_column="n",
        )

    @property
    def frame(self) -> pd.DataFrame:
        """Every proposal of the run as a frame (see the class): built when first asked
        for after a load or a decision (seconds at 100,000 proposals; the review itself
        never needs it)."""
        with self.lock:
            if self._frame is None:
                self._frame = self.rows_at(np.arange(len(self._rows)))
            return self._frame

    @property
    def proposal_count(self) -> int:
        """How many proposals the run has."""
        return len(self._rows)

    def rows_at(self, positions: np.ndarray, *, wait_lms: bool = True) -> pd.DataFrame:
        """The rows of :attr:`frame` at ``positions`` (index: the positions), read for
        those rows only. Without ``wait_lms``, ``LMS now`` is None while the LMS export
        is still being read (or could not be read) rather than waited for."""
        with self.lock:
            positions = np.asarray(positions, dtype=np.int64)
            rows = self._rows.iloc[positions]
            parts = [
                self.ledger.review_page(
                    self.run_id,
                    rows["correction"].iloc[at : at + 5000],
                    rows["decision_id"].iloc[at : at + 5000],
                )
                for at in range(0, max(len(rows), 1), 5000)
            ]
            read = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            at = pd.Index(read["correction"]).get_indexer(rows["correction"])
            frame = read.iloc[at].drop(columns="correction")
            frame.index = pd.RangeIndex(len(frame)) if positions.size == 0 else positions
            frame["decision"] = np.asarray(DECISIONS, dtype=object)[self._decision[positions]]
            touched = self._touched[positions]
            for column, _ in _HELD_COLUMNS[1:]:
                frame[column] = frame[column].astype(object)
                frame.loc[touched, column] = self._held[column][positions[touched]]
            for column in ("submission", "attempts", "api_errors", "http_status"):
                frame[column] = rows[column].to_numpy()
            frame["target"] = self.target.label if self.target is not None else None
            learner = frame["learner"].fillna("").astype(str)
            user = frame["userId"].fillna("").astype(str)
            frame["search"] = (learner + " " + user).str.lower()
            # completionDate for completions, timeStampDate for progress: the one date a
            # proposal carries; the first 10 characters of the wire format are the UTC day.
            when = frame["completionDate"].fillna(frame["timeStampDate"])
            frame["when"] = when
            frame["day"] = pd.to_datetime(
                when.astype("str").str.slice(0, 10), format="%Y-%m-%d", errors="coerce"
            )
            frame["path_label"] = frame["learningPathId"].astype(str).map(self._path_labels)
            frame["provider_date"] = _local_dates(when, self.provider_zone)
            self._now_known[positions] = self._add_lms_now(frame, wait_lms)
            for column, _ in _HELD_COLUMNS:
                frame[column] = frame[column].astype(object)
            return frame

    @property
    def provider_zone(self) -> str:
        return self.evidence.provider_zone if self.evidence is not None else "UTC"

    def _add_lms_now(self, frame: pd.DataFrame, wait: bool) -> bool:
        """Add ``LMS now`` to ``frame``; returns whether it is known (read)."""
        if self.evidence is None or not (wait or self.evidence.lms_ready()):
            frame["lms_status"] = None
            frame["lms_date"] = None
            return False
        users, paths = frame["userId"].astype(str), frame["learningPathId"].astype(str)
        pairs = list(zip(users, paths, strict=True))
        missing = list(dict.fromkeys(p for p in pairs if p not in self._now))
        if missing:
            users = pd.Series([u for u, _ in missing], dtype=object)
            paths = pd.Series([p for _, p in missing], dtype=object)
            found = self.evidence.now_for(users, paths)
            status = found["lms_status"].fillna(NO_RECORD).to_numpy()
            day = found["lms_date"].to_numpy()
            if len(missing) > 5_000:  # a whole run: not kept (the pages keep theirs)
                fresh = dict(zip(missing, zip(status, day, strict=True), strict=True))
                frame["lms_status"] = [fresh[p][0] for p in pairs]
                frame["lms_date"] = [fresh[p][1] for p in pairs]
                return True
            self._now.update(zip(missing, zip(status, day, strict=True), strict=True))
        frame["lms_status"] = [self._now[p][0] for p in pairs]
        frame["lms_date"] = [self._now[p][1] for p in pairs]
        return True

    def kind_options(self) -> list[tuple[str, str]]:
        """(label, category) per category of the run, proposed ones first, with counts."""
        names = self._categories.categories
        n = np.bincount(self._kind_codes, minlength=len(names))
        # As value_counts orders them: most first, ties in order of first appearance.
        first = pd.unique(self._kind_codes)
        counts = pd.Series(n[first].tolist(), index=[str(names[int(c)]) for c in first])
        counts = counts.sort_values(ascending=False, kind="stable")
        kinds = [k for k in oc.PROPOSED if k in counts] + [
            str(k) for k in counts.index if k not in oc.PROPOSED
        ]
        return [(f"{k} ({int(counts[k]):,})", k) for k in kinds]

    def path_options(self) -> list[tuple[str, str]]:
        """(label, learning path id) per path of the run: the course code first."""
        ids = [str(p) for p in self._ids.categories]
        counts = np.bincount(np.asarray(self._ids.codes), minlength=len(ids))
        labels = self._path_labels
        return sorted(
            (f"{labels[p]} · {int(n):,}", p) for p, n in zip(ids, counts, strict=True) if n
        )

    def path_labels(self) -> dict[str, str]:
        """Learning path id -> its label (course code, start of the id)."""
        return dict(self._path_labels)  # built once per load, one entry per distinct path

    # -- filtering and paging -------------------------------------------------------------

    def _selected(self, kind: str, path: str) -> np.ndarray:
        """Positions the ledger's own filters (category, learning path) select, as
        :meth:`~recon.ledger.Ledger.select` selects them (the path id in any ASCII case),
        from codes computed once at load."""
        if not (kind or path):
            return np.ones(len(self._rows), dtype=bool)
        if (kind, path) in self._selected_by:
            return self._selected_by[(kind, path)]
        mask = np.ones(len(self._rows), dtype=bool)
        for value, codes, known, what in (
            (kind, self._kind_codes, self._kind_of, "category"),
            (_fold_id(path), self._path_codes, self._path_of, "learning path"),
        ):
            if not value:
                continue
            if value not in known:
                # As the ledger says it: a filter naming nothing of the run is a mistake.
                raise LedgerError(f"run {self.run_id} has no proposal with {what} {value!r}")
            mask &= codes == known[value]
        self._selected_by[(kind, path)] = mask
        return mask

    def _mask(self, filters: Filters) -> np.ndarray:
        mask = self._selected(filters.kind, filters.path).copy()
        text = filters.learner.strip().lower()
        if text:
            if self._search_cache is None or self._search_cache[0] != text:
                found = self._search.str.contains(text, regex=False).to_numpy(dtype=bool)
                self._search_cache = (text, found)
            mask &= self._search_cache[1]
        # A date bound leaves out proposals without a date (NaT compares False).
        if filters.date_from is not None:
            mask &= self._day >= np.datetime64(_as_date(filters.date_from), "D")
        if filters.date_to is not None:
            mask &= self._day <= np.datetime64(_as_date(filters.date_to), "D")
        if filters.decision:
            mask &= self._decision == DECISIONS.index(filters.decision)
        return mask

    def apply(self, filters: Filters | None = None, *, keep_page: bool = False) -> int:
        """Filter by ``filters`` (default: the current ones); returns how many match.

        Goes back to the first page unless ``keep_page`` (then the page is only clamped).
        """
        with self.lock:
            if filters is not None:
                self.filters = filters
            self._matching = np.flatnonzero(self._mask(self.filters))
            self.page = min(self.page, self.page_count - 1) if keep_page else 0
            return len(self._matching)

    def set_filters(self, **changes: Any) -> int:
        """Change some filters (names of :class:`Filters`); returns how many match."""
        known = {f.name for f in fields(Filters)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"no such filter: {sorted(unknown)}")
        return self.apply(replace(self.filters, **changes))

    @property
    def matching_count(self) -> int:
        return len(self._matching)

    @property
    def page_count(self) -> int:
        """Pages of matching proposals (at least 1, an empty one when nothing matches)."""
        return max(1, -(-len(self._matching) // self.page_size))

    def matching(self) -> pd.DataFrame:
        """The proposals matching the filters, in ledger order."""
        with self.lock:
            return self.rows_at(self._matching)

    def page_frame(self, *, wait_lms: bool = True) -> pd.DataFrame:
        """The proposals on the current page (``wait_lms``: see :meth:`rows_at`)."""
        with self.lock:
            start = self.page * self.page_size
            shown = self._matching[start : start + self.page_size]
            if (
                self.evidence is None
                or self._now_known[shown].all()
                or not (wait_lms or self.evidence.lms_ready())
            ):
                return self.rows_at(shown, wait_lms=wait_lms)
            # LMS now costs one query per page whatever its size: ask it for the pages
            # around too, so the next and previous page find theirs read.
            size = self.page_size
            around = self._matching[max(0, start - size) : start + 3 * size]
            return self.rows_at(around).loc[shown]

    def go_to(self, page: int) -> int:
        """Move to page ``page`` (0-based, clamped); returns the page now current."""
        with self.lock:
            self.page = max(0, min(page, self.page_count - 1))
            return self.page

    def describe_filters(self) -> str:
        """The current filters in words (paths by their code)."""
        return self.filters.describe(self.path_labels())

    # -- decisions ------------------------------------------------------------------------

    def decide(
        self,
        keys: Iterable[str],
        decision: str,
        *,
        note: str | None = None,
        policy: str | None = None,
        only_undecided: bool = False,
    ) -> Decided:
        """Record ``decision`` for ``keys`` in the ledger first, then in the model's copy.

        Keys whose record the API has already answered for good are skipped (a decision
        changes nothing there). With ``only_undecided`` (the bulk rule) keys already
        decided are left as the ledger holds them and reported in ``Decided.left``.
        """
        if decision not in ("approved", "rejected"):
            raise ValueError(f"a decision is 'approved' or 'rejected', not {decision!r}")
        note = (note or "").strip() or None
        with self.lock:
            positions = self._positions(pd.Index(list(keys)))
            # Only the rows asked about: converting a whole 100,000-row column per click
            # is what made a single decision slow.
            sent = self._final[positions]
            todo = self._rows["key"].iloc[positions[~sent]].tolist()
            if not todo:
                return Decided(decision, ())
            # The ledger first: if writing fails, the screen must not claim otherwise.
            decided = self.ledger.decide(
                todo,
                decision,
                run=self.run_id,
                by=self.by,
                note=note,
                policy=policy,
                only_undecided=only_undecided,
            )
            changed = self._positions(pd.Index(decided.changed))
            # The ledger's own time stamp differs by milliseconds at most.
            self._hold(changed, [decision, self.by, now_iso(), note, policy])
            if decided.left:
                # Decided earlier, perhaps by someone else since this copy was read: show
                # what the ledger holds, not this copy.
                held = pd.DataFrame.from_dict(decided.held, orient="index")
                left = self._positions(pd.Index(held.index))
                self._hold(left, [held[name].to_numpy() for _, name in _HELD_COLUMNS])
            return decided

    def _hold(self, positions: np.ndarray, values: list[Any]) -> None:
        """The decision columns of ``positions`` as decided here (values: one each of
        ``_HELD_COLUMNS``, a value or an array)."""
        if not len(positions):
            return
        for (column, _), value in zip(_HELD_COLUMNS, values, strict=True):
            self._held[column][positions] = value
        self._decision[positions] = pd.Categorical(
            self._held["decision"][positions], categories=DECISIONS
        ).codes
        self._touched[positions] = True
        self._frame = None

    def decide_matching(
        self, decision: str, *, note: str | None = None, override: bool = False
    ) -> tuple[Decided, str]:
        """Decide every proposal matching the filters (all pages); returns what the
        ledger did and the filters in words. Only undecided ones unless ``override``."""
        with self.lock:
            keys = self._rows["key"].iloc[self._matching].tolist()
            filters = self.describe_filters()
            policy = f"all matching: {filters}" + (
                "; overriding earlier decisions" if override else ""
            )
            decided = self.decide(
                keys, decision, note=note, policy=policy, only_undecided=not override
            )
            if self.filters.decision:
                # The decision filter no longer holds for what was just decided.
                self.apply(keep_page=True)
            return decided, filters

    def _positions(self, keys: pd.Index) -> np.ndarray:
        found = self._keys.get_indexer(keys)
        if (found < 0).any():
            missing = keys[found < 0][0]
            raise ReconError(f"run {self.run_id} has no proposal with key {missing!r}")
        return np.asarray(found)

    # -- counts ---------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Proposals of the run per decision (the whole run, not only the matching)."""
        with self.lock:
            found = np.bincount(self._decision, minlength=len(DECISIONS))
            return {d: int(n) for d, n in zip(DECISIONS, found, strict=True)}

    def counters_text(self) -> str:
        """``undecided N · approved N · rejected N``."""
        return " · ".join(f"{name} {n:,}" for name, n in self.counts().items())

    def matching_undecided(self) -> int:
        """How many matching proposals have no decision yet (what a bulk action changes)."""
        with self.lock:
            return int((self._decision[self._matching] == 0).sum())

    def sent_counts(self) -> dict[str, int]:
        """Proposals of the run per final or failed submission state."""
        return dict(self._sent)  # counted at load: only a submission changes it

    def rejected_among(self, keys: set[str], first: int) -> tuple[int, pd.DataFrame]:
        """How many of ``keys`` the API rejected, and the first ``first`` of them (rows
        of :attr:`frame`)."""
        with self.lock:
            found = np.flatnonzero(
                self._rows["key"].isin(keys).to_numpy(dtype=bool)
                & (self._rows["submission"] == "rejected").to_numpy(dtype=bool)
            )
            return len(found), self.rows_at(found[:first])

    # -- evidence -------------------------------------------------------------------------

    def record(self, key: str) -> pd.Series:
        """The model's row of proposal ``key``."""
        with self.lock:
            return self.rows_at(self._positions(pd.Index([key]))).iloc[0]

    def evidence_of(self, key: str) -> dict[str, Any]:
        """Everything behind proposal ``key``: the provider row(s) with their original
        cells, the LMS rows for the pair, the exact body, every decision and every attempt.
        An export that cannot be read does not hide the rest: its part is then the error
        (``provider_error`` / ``lms_error``, else None) and the other parts are shown.
        """
        lms_error: BaseException | None = None
        with self.lock:
            at = self._positions(pd.Index([key]))
            try:
                record = self.rows_at(at).iloc[0]  # waits for the LMS export
            except ReconError:
                lms_error = self.evidence.lms_error() if self.evidence is not None else None
                if lms_error is None:
                    raise  # not the LMS export's error
                record = self.rows_at(at, wait_lms=False).iloc[0]
        rows = [int(r) for r in str(record["rows"] or "").split(";") if r.strip().isdigit()]
        provider = pd.DataFrame({"row": rows})
        lms = pd.DataFrame()
        provider_error: ReconError | None = None
        if self.evidence is not None:
            try:
                provider = self.evidence.provider_rows(rows)
                lines = provider["row"].map(self.evidence.spreadsheet_line)
                provider.insert(1, "spreadsheet line", lines)
            except ReconError as exc:
                provider, provider_error = pd.DataFrame({"row": rows}), exc
            if lms_error is None:
                lms = self.evidence.lms_rows(str(record["userId"]), str(record["learningPathId"]))
        decisions = self.ledger.decisions_of(key)
        attempts = self.ledger.attempts_of(key)
        return {
            "record": record,
            "body": json.loads(record["payload"]),
            "provider": provider,
            "provider_error": provider_error,
            "lms": lms,
            "lms_error": lms_error,
            "decisions": decisions,
            "attempts": attempts,
        }


def _local_dates(when: pd.Series, zone: str) -> pd.Series:
    """The wire-format instants as calendar days in ``zone`` (YYYY-MM-DD; None if none)."""
    stamps = pd.to_datetime(when, utc=True, errors="coerce", format="ISO8601")
    # Through numpy's day strings: strftime is a Python step per value.
    local = stamps.dt.tz_convert(zone).dt.tz_localize(None).to_numpy("datetime64[D]")
    days = pd.Series(np.datetime_as_string(local, unit="D"), index=when.index, dtype=object)
    return days.where(stamps.notna().to_numpy(), None)


def _words(ids: pd.Series, words: dict[int, str]) -> pd.Categorical[str]:
    """Word ids as their texts (0: none), a categorical: one text per distinct word."""
    # factorize (hashing) rather than np.unique (sorting every id): few distinct words
    codes, distinct = pd.factorize(ids.to_numpy(dtype=np.int64), sort=True)
    texts = [words.get(int(i)) for i in distinct]
    if distinct.size and distinct[0] == 0:  # none: a missing value
        return pd.Categorical.from_codes(codes - 1, pd.Index([str(t) for t in texts[1:]]))
    return pd.Categorical.from_codes(codes, pd.Index([str(t) for t in texts]))


def _fold_id(value: str) -> str:
    """A learning path id folded as SQLite's lower() folds it (ASCII only)."""
    return "".join(c.lower() if c.isascii() else c for c in value)


def _as_date(value: Any) -> date:
    return value.date() if hasattr(value, "date") and callable(value.date) else value
