"""What the review makes fast must stay what it was (issue 12): the kind and path filters
computed at load select what the ledger selects, before and after decisions; ``LMS now``
folded in DuckDB is the README's rule as the pandas fold had it; provider dates built
without strftime are the same days; the provider's export read on first use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import AS_OF, ext, lms, write_case_in
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.errors import LedgerError, ReconError
from recon.evidence import LMS_RANK, NO_RECORD, Evidence
from recon.fmt import code_spellings
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.review import LMS_READING, _row_html
from recon.review_model import DECISIONS, ReviewModel, _local_dates

USERS = [{"email": f"user{i:02d}@example.com", "userId": f"U{i:02d}"} for i in range(9)]
PATHS = [
    {"externalCode": "SAFE-101", "learningPathId": "LP-Safe"},
    {"externalCode": "DATA-200", "learningPathId": "lp-data"},
    {"externalCode": "LEAD-300", "learningPathId": "Lp-Lead"},
]
EXTERNAL = [
    ext(
        u["email"],
        code,
        "Completed" if (i + j) % 2 else "In Progress",
        f"2026-03-0{1 + i % 9}",
        "2026-02-10",
    )
    for i, u in enumerate(USERS)
    for j, code in enumerate(["SAFE-101", "DATA-200", "LEAD-300"])
]
# Several rows for one pair (ids in another case), words recon does not understand, and
# completion dates: what the fold has to get right.
PROGRESS = [
    lms("U00", "LP-Safe", "started"),
    lms("u00", "lp-safe", "completed", "2026-01-05"),
    lms("U00", "LP-SAFE", "completed", "2026-01-02"),
    lms("U01", "lp-data", "Enrolled"),
    lms("U01", "lp-data", "not-started"),
    lms("U02", "Lp-Lead", "not-completed"),
    lms("U02", "Lp-Lead", "Archived"),
    lms("U02", "Lp-Lead", "Paused"),
    lms("U03", "LP-Safe", "not-started"),
]


@pytest.fixture
def case(tmp_path: Path) -> Path:
    return write_case_in(tmp_path / "case", EXTERNAL, PROGRESS, users=USERS, paths=PATHS)


@pytest.fixture
def ledger(case: Path, tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.db") as opened:
        reconcile_run(case, as_of=AS_OF, ledger=opened)
        yield opened


def _spellings(value: str) -> list[str]:
    return [value, value.lower(), value.upper(), value.swapcase()]


def _assert_kind_and_path_filters_match_the_ledger(model: ReviewModel) -> None:
    ledger = model.ledger
    kinds = [""] + sorted(set(model.frame["category"]))
    paths = [""] + sorted(set(model.frame["learningPathId"]))
    assert len(kinds) > 2 and len(paths) > 3
    for kind in kinds:
        for path in paths:
            for spelled in _spellings(path) if path else [""]:
                model.set_filters(kind=kind, path=spelled, decision="")
                if kind or path:
                    try:
                        expected = ledger.select(
                            model.run_id,
                            categories=[kind] if kind else [],
                            paths=[spelled] if path else [],
                        )
                    except LedgerError:
                        expected = []  # this kind has no proposal on this path
                else:
                    expected = ledger.select(model.run_id, everything=True)
                assert model.matching()["key"].tolist() == expected, (kind, spelled)


def test_kind_and_path_filters_select_what_the_ledger_selects(ledger: Ledger) -> None:
    model = ReviewModel(ledger, by="tester")
    _assert_kind_and_path_filters_match_the_ledger(model)
    # After decisions (they change no kind or path) and after reading the run again.
    model.set_filters(kind="", path="")
    model.decide(model.frame["key"].iloc[:4], "rejected")
    model.set_filters(kind=model.frame["category"].iloc[0])
    model.decide_matching("approved")
    _assert_kind_and_path_filters_match_the_ledger(model)
    model.load()
    _assert_kind_and_path_filters_match_the_ledger(model)
    # A run's counts after decisions are the ledger's.
    held = ledger.proposals(model.run_id)["decision"].value_counts()
    assert model.counts() == {d: int(held.get(d, 0)) for d in model.counts()}


def test_a_kind_or_path_the_run_lacks_is_an_error_as_in_the_ledger(ledger: Ledger) -> None:
    model = ReviewModel(ledger, by="tester")
    with pytest.raises(LedgerError, match="no proposal with learning path 'lp-nowhere'"):
        model.set_filters(path="lp-nowhere")
    with pytest.raises(LedgerError, match="no proposal with category 'no-such-kind'"):
        model.set_filters(kind="no-such-kind")
    with pytest.raises(LedgerError):
        ledger.select(model.run_id, paths=["lp-nowhere"])


def _pandas_now(rows: pd.DataFrame) -> pd.DataFrame:
    """The fold as it was written in pandas before it moved to DuckDB: the oracle."""
    rows = rows.assign(
        pair=rows["userId"].str.lower() + "\x00" + rows["learningPathId"].str.lower()
    )
    rank = rows["status"].map(LMS_RANK)
    ordered = rows.assign(rank=rank).sort_values(["pair", "rank"], ascending=[True, False])
    best = ordered.groupby("pair", sort=False)["status"].first()
    unknown = rows[rows["status"].isna()].groupby("pair")["word"].first()
    status = best.astype(object)
    status.loc[unknown.index] = [f"“{w}”" for w in unknown]
    dates = rows.dropna(subset=["completionDate"]).groupby("pair")["completionDate"].min()
    return pd.DataFrame({"lms_status": status, "lms_date": dates.reindex(status.index)})


def test_lms_now_is_the_readmes_fold(case: Path) -> None:
    with Evidence(case) as evidence:
        expected = _pandas_now(evidence.lms).sort_index()
        now = evidence.now()
        assert now.index.tolist() == expected.index.tolist()
        assert now["lms_status"].tolist() == expected["lms_status"].tolist()
        assert now["lms_date"].fillna("").tolist() == expected["lms_date"].fillna("").tolist()
        assert now.loc["u00\x00lp-safe"].tolist() == ["completed", "2026-01-02T00:00:00.000Z"]
        assert now.loc["u01\x00lp-data", "lms_status"] == "“Enrolled”"
        # now_for: in the order asked, any case, None where the export has no row.
        users = pd.Series(["u02", "U00", "U08", "U01"], index=[10, 11, 12, 13])
        paths = pd.Series(["LP-LEAD", "Lp-safe", "lp-data", "LP-DATA"], index=users.index)
        found = evidence.now_for(users, paths)
        assert found.index.tolist() == [10, 11, 12, 13]
        assert found["lms_status"].tolist()[:2] == [
            expected.loc["u02\x00lp-lead", "lms_status"],
            "completed",
        ]
        assert pd.isna(found["lms_status"].iloc[2])
        assert found["lms_status"].iloc[3] == "“Enrolled”"
        assert evidence.lms_rows("U00", "lp-SAFE")["row"].tolist() == [1, 2, 3]


def test_lms_now_of_the_model_matches_the_fold(ledger: Ledger, case: Path) -> None:
    with Evidence(case) as evidence:
        model = ReviewModel(ledger, by="tester", evidence=evidence)
        expected = _pandas_now(evidence.lms)
        pair = (
            model.frame["userId"].str.lower() + "\x00" + model.frame["learningPathId"].str.lower()
        )
        want = expected["lms_status"].reindex(pair.to_numpy()).fillna("no record").tolist()
        assert model.frame["lms_status"].tolist() == want
        assert "no record" in want and "not-started" in want


def test_lms_export_is_read_on_first_use_and_a_page_drawn_before_is_not_left_so(
    ledger: Ledger, case: Path
) -> None:
    """Opening reads no LMS export; a page drawn without waiting shows ``LMS now`` as not
    yet known (the widget says "reading…"), and the next page asked for the usual way
    reads it and has it: a page drawn early is never kept as if the LMS had no record."""
    with Evidence(case) as evidence:
        model = ReviewModel(ledger, by="tester", evidence=evidence)
        assert evidence._reading_lms is None and not evidence.lms_ready()
        early = model.page_frame(wait_lms=False)
        assert len(early) and early["lms_status"].isna().all()
        assert evidence._reading_lms is None  # drawing did not read it either
        record = early.iloc[0].to_dict()
        cell = _row_html(record, "reading")
        assert LMS_READING in cell and NO_RECORD not in cell
        shown = model.page_frame()
        assert evidence.lms_ready()
        expected = _pandas_now(evidence.lms)
        pair = shown["userId"].str.lower() + "\x00" + shown["learningPathId"].str.lower()
        want = expected["lms_status"].reindex(pair.to_numpy()).fillna(NO_RECORD).tolist()
        assert shown["lms_status"].tolist() == want
        assert model.page_frame(wait_lms=False)["lms_status"].tolist() == want
        assert NO_RECORD in _row_html(shown.loc[shown["lms_status"] == NO_RECORD].iloc[0])


def test_provider_rows_are_read_on_first_use(case: Path, tmp_path: Path) -> None:
    with Evidence(case) as evidence:
        assert evidence._provider is None  # not read at opening
        rows = evidence.provider_rows([2, 1])
        assert rows["row"].tolist() == [1, 2]
        assert rows["Email"].tolist() == [USERS[0]["email"], USERS[0]["email"]]
    # A provider file gone after the run: the evidence says so, the LMS now still shows.
    broken = tmp_path / "broken.toml"
    broken.write_text(case.read_text().replace("external.csv", "gone.csv"))
    (tmp_path / "case" / "broken.toml").write_text(broken.read_text())
    with Evidence(tmp_path / "case" / "broken.toml") as evidence:
        evidence.start_provider()
        with pytest.raises(ReconError, match="external file not found"):
            evidence.provider_rows([1])
        assert not evidence.now().empty


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.datetimes(
                min_value=pd.Timestamp("1990-01-01").to_pydatetime(),
                max_value=pd.Timestamp("2090-01-01").to_pydatetime(),
            ).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"),
        ),
        max_size=20,
    ),
    st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati"]),
)
def test_provider_dates_are_the_local_days(values: list[str | None], zone: str) -> None:
    when = pd.Series(values, dtype=object)
    stamps = pd.to_datetime(when, utc=True, errors="coerce", format="ISO8601")
    local = stamps.dt.tz_convert(zone).dt.strftime("%Y-%m-%d")
    expected = local.where(stamps.notna(), None)
    # None or NaN alike: no date (the widget shows a blank for either).
    days = [d if isinstance(d, str) else None for d in _local_dates(when, zone)]
    assert days == [d if isinstance(d, str) else None for d in expected]


# -- the lean read (issue 12, second round): what the model reads per page is the run ----

PROPOSAL_COLUMNS = [
    "run_id", "key", "userId", "learningPathId", "status", "completionDate",
    "timeStampDate", "category", "rows", "learner", "path", "payload", "decision",
    "decided_by", "note", "policy", "submission", "attempts", "api_errors", "http_status",
    "target",
]  # fmt: skip


def _same(frame: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
    """Equal cell by cell, a missing value (None or NaN) equal to any other."""
    left = frame[columns].astype(object).where(frame[columns].notna(), None)
    right = expected[columns].astype(object).where(expected[columns].notna(), None)
    assert left.to_numpy().tolist() == right.to_numpy().tolist()


def test_the_lean_read_pages_are_the_full_read(ledger: Ledger) -> None:
    """Every page the model builds from ``review_rows``/``review_page`` holds what
    ``Ledger.proposals`` holds for those rows, before and after decisions (made by the
    model, and by a second analyst the model has not read yet)."""
    model = ReviewModel(ledger, by="tester", page_size=7)
    other = ReviewModel(ledger, by="other")
    for step in range(3):
        full = ledger.proposals(model.run_id)
        if step == 1:  # decided by the model: its pages show them as the ledger does
            model.decide(full["key"].iloc[:5], "rejected", note="moved")
            model.set_filters(kind=str(full["category"].iloc[0]))
            model.decide_matching("approved")
            model.set_filters(kind="")
            full = ledger.proposals(model.run_id)
        if step == 2:  # decided by another: not on the model's pages until it reloads
            before = full
            other.decide(before["key"].iloc[5:9], "rejected")
            full = before
        for page in range(model.page_count):
            model.go_to(page)
            shown = model.page_frame()
            want = full.iloc[shown.index]
            _same(shown, want, PROPOSAL_COLUMNS)
            assert shown["path_label"].notna().all()
        # The whole frame is the same read (it is built from the same pages).
        _same(model.frame, full, PROPOSAL_COLUMNS)
    model.load()
    _same(model.frame, ledger.proposals(model.run_id), PROPOSAL_COLUMNS)


def test_review_page_is_proposals_for_its_rows(ledger: Ledger) -> None:
    rows, words = ledger.review_rows()
    full = ledger.proposals()
    assert rows["key"].tolist() == full["key"].tolist()
    assert [words[w] for w in rows["category_word"]] == full["category"].tolist()
    assert [words[w] for w in rows["path_word"]] == full["learningPathId"].tolist()
    assert [words.get(w) for w in rows["code_word"]] == full["path"].tolist()
    assert rows["decision"].tolist() == full["decision"].tolist()
    assert rows["submission"].tolist() == full["submission"].tolist()
    picked = rows.iloc[[3, 0, 11]]
    page = ledger.review_page("latest", picked["correction"], picked["decision_id"])
    page = page.set_index("key").loc[picked["key"]].reset_index()
    _same(page, full.iloc[[3, 0, 11]], PROPOSAL_COLUMNS[:16])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["one", "matching", "override"]),
            st.sampled_from(["approved", "rejected"]),
            st.integers(0, 26),
            st.sampled_from(["", "completion", "progress"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_counters_equal_a_recount_after_decisions(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, str, int, str]]
) -> None:
    """The counters, kept as codes, equal a recount of the ledger after any decisions."""
    folder = tmp_path_factory.mktemp("counters")
    case = write_case_in(folder / "case", EXTERNAL, PROGRESS, users=USERS, paths=PATHS)
    with Ledger(folder / "ledger.db") as ledger:
        reconcile_run(case, as_of=AS_OF, ledger=ledger)
        model = ReviewModel(ledger, by="tester")
        keys = ledger.proposals()["key"].tolist()
        kinds = sorted(set(ledger.proposals()["category"]))
        for how, decision, at, kind in steps:
            if how == "one":
                model.decide([keys[at % len(keys)]], decision)
            else:
                wanted = [k for k in kinds if kind in k][:1] or [""]
                model.set_filters(kind=wanted[0])
                model.decide_matching(decision, override=how == "override")
            held = ledger.proposals()["decision"].value_counts()
            assert model.counts() == {d: int(held.get(d, 0)) for d in DECISIONS}
            matching = ledger.proposals().iloc[model.matching().index]
            assert model.matching_undecided() == int((matching["decision"] == "undecided").sum())
            model.set_filters(kind="")


def test_lms_now_of_each_page_is_the_whole_exports_fold(ledger: Ledger, case: Path) -> None:
    """LMS now read per page (the pairs' rows only) equals the fold of the whole export
    (the view of every row), for every page and for a pair's rows."""
    with Evidence(case) as evidence:
        whole = evidence.now()
        model = ReviewModel(ledger, by="tester", evidence=evidence, page_size=4)
        for page in range(model.page_count):
            model.go_to(page)
            shown = model.page_frame()
            pair = shown["userId"].str.lower() + "\x00" + shown["learningPathId"].str.lower()
            want = whole.reindex(pair.to_numpy())
            assert shown["lms_status"].tolist() == want["lms_status"].fillna("no record").tolist()
            assert shown["lms_date"].fillna("").tolist() == want["lms_date"].fillna("").tolist()
        every = evidence.lms
        for user, path in [("U00", "lp-SAFE"), ("u02", "LP-LEAD"), ("U08", "nowhere")]:
            mine = every[every["pair"] == f"{user.lower()}\x00{path.lower()}"]
            rows = evidence.lms_rows(user, path)
            assert rows["row"].tolist() == mine["row"].tolist()
            assert rows["status"].tolist() == mine["status"].tolist()


def _decisions(ledger: Ledger) -> list[tuple[object, ...]]:
    rows = ledger.decisions()
    return [tuple(r) for r in rows.drop(columns=["id", "at"]).itertuples(index=False)]


def test_deciding_many_keys_at_once_equals_deciding_them_one_by_one(
    case: Path, tmp_path: Path
) -> None:
    """``Ledger.decide`` over many keys (one set of statements for all of them) writes
    what deciding each key alone writes and says the same, by key and with the bulk
    rule (only undecided), unknown keys refused alike."""
    ledgers = []
    for name in ("one-by-one", "together"):
        opened = Ledger(tmp_path / f"{name}.db")
        reconcile_run(case, as_of=AS_OF, ledger=opened)
        ledgers.append(opened)
    one, bulk = ledgers
    keys = one.proposals()["key"].tolist()
    assert keys == bulk.proposals()["key"].tolist()
    steps = [
        (keys[:5], "rejected", False),
        (keys[3:12] + keys[:2], "approved", True),  # some decided: left, with what they hold
        (keys[::-1], "approved", True),
        (keys[10:14], "rejected", False),  # by key: overrides
    ]
    for chosen, decision, only in steps:
        changed: list[str] = []
        left: list[str] = []
        held: dict[str, dict[str, object]] = {}
        for key in chosen:
            alone = one.decide([key], decision, by="t", note="n", policy="p", only_undecided=only)
            changed += alone.changed
            left += alone.left
            held.update(alone.held)
        b = bulk.decide(chosen, decision, by="t", note="n", policy="p", only_undecided=only)
        assert (tuple(changed), tuple(left)) == (b.changed, b.left)
        drop = {k: {f: v for f, v in h.items() if f != "at"} for k, h in held.items()}
        assert drop == {k: {f: v for f, v in h.items() if f != "at"} for k, h in b.held.items()}
        assert _decisions(one) == _decisions(bulk)
    for ledger in ledgers:
        with pytest.raises(LedgerError, match="no proposal with key 'nope' \\(and 1 more\\)"):
            ledger.decide([keys[0], "nope", "nada"], "approved")
        assert len(ledger.decisions()) == len(one.decisions())
    for ledger in ledgers:
        ledger.close()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["LP-a", "lp-A", "lp-b", "LP-B", "lp-c"]),
            st.one_of(st.none(), st.sampled_from(["SAFE-1", "safe-1", " Safe-1 ", "DATA", ""])),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_code_spellings_from_counted_pairs_are_those_of_every_row(
    rows: list[tuple[str, str | None]],
) -> None:
    """The review counts distinct (path id, course code) pairs instead of passing every
    proposal: the spelling chosen per path must be the same (most often, ties sorted)."""
    every = pd.DataFrame(rows, columns=["learningPathId", "path"])
    counted = every.fillna({"path": "\0none"}).value_counts().reset_index(name="n")
    counted["path"] = counted["path"].replace("\0none", None)
    assert code_spellings(counted, weight_column="n") == code_spellings(every)


def test_the_models_spellings_are_those_of_its_frame(ledger: Ledger) -> None:
    model = ReviewModel(ledger, by="tester")
    assert model.spellings == code_spellings(model.frame[["learningPathId", "path"]])
    assert model.spellings  # the case has course codes
