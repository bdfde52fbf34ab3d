"""The LMS progress fold is defined once (issue 10): the sandbox seeds its LMS through the
engine's own SQL (`recon.engine.lms_fold_sql`), so what the sandbox holds before anything
is posted reads, through `recon reconcile`, exactly as the export it was seeded from.

Ids are compared as the engine compares the LMS's ids: without letter case, by DuckDB's
``lower`` (``id_key``), also for letters outside ASCII, in the seed and in the view.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import requests
from conftest import AS_OF, USERS, ext, lms, outcomes_of, write_case_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.config import load_config
from recon.engine import reconcile
from recon.result import payload
from recon.sandbox import ACTIVITY_PATH, Sandbox, export_progress, progress_frame, seed_progress
from recon.sandbox.seed import id_key

pytestmark = pytest.mark.timeout(300)

# Learners whose ids have case outside ASCII: the directory spells them one way, the LMS
# export another (as the LMS may), and the engine and the sandbox must agree they are one.
FOLD_USERS = [
    *USERS,
    {"email": "emile@example.com", "userId": "u-émile"},
    {"email": "ida@example.com", "userId": "u-i"},
]
LMS_USERS = ["u-ann", "U-ANN", "u-bob", "U-Bob", "u-cy", "U-ÉMILE", "u-émile", "U-İ", "u-i"]
LMS_PATHS = ["lp-safe", "LP-SAFE", "lp-data", "Lp-Data"]
LMS_STATUSES = ["completed", "Completed", "started", "not-started", "not-completed"]
LMS_STATUSES += ["Done", "Halfway", ""]  # words recon does not understand, and a blank
LMS_DATES = ["", "2026-01-15", "2026-02-01T10:00:00Z", "2026-01-15T23:30:00-05:00"]
LMS_DATES += ["15/01/2026", "soon"]  # unreadable
EMAILS = [u["email"] for u in FOLD_USERS]
CODES = ["SAFE-101", "DATA-200"]

lms_rows = st.lists(
    st.builds(
        lms,
        st.sampled_from(LMS_USERS),
        st.sampled_from(LMS_PATHS),
        st.sampled_from(LMS_STATUSES),
        st.sampled_from(LMS_DATES),
    ),
    max_size=14,
)
ext_rows = st.lists(
    st.builds(
        ext,
        st.sampled_from(EMAILS),
        st.sampled_from(CODES),
        st.sampled_from(["Completed", "In Progress", "Registered", "Failed"]),
        st.sampled_from(["", "03/01/2026"]),
        st.sampled_from(["", "02/20/2026"]),
    ),
    min_size=1,
    max_size=8,
)


def _read_as_recon(config: Path) -> tuple[list[str], list[dict[str, str]]]:
    result = reconcile(config, as_of=AS_OF)
    return outcomes_of(result), [payload(p) for p in result.proposals.to_dict("records")]


@given(external=ext_rows, progress=lms_rows)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_a_seeded_sandbox_reads_as_the_export_it_was_seeded_from(
    tmp_path_factory, external, progress
) -> None:
    folder = tmp_path_factory.mktemp("fold")
    original = write_case_in(folder / "original", external, progress, users=FOLD_USERS)
    spec = load_config(original).progress
    db = folder / "lms.db"
    seed_progress(db, spec)
    # The sandbox's view, exported in the config's shape, read by recon again.
    view = write_case_in(folder / "view", external, [], users=FOLD_USERS)
    export_progress(db, view.parent / "progress.csv", spec)
    assert _read_as_recon(view) == _read_as_recon(original)


@given(st.text(max_size=12))
def test_the_sandbox_tells_ids_apart_as_the_engine_does(value: str) -> None:
    # The engine compares the LMS's ids with DuckDB's lower(); id_key is that, in Python.
    with duckdb.connect() as con:
        assert id_key(value) == con.execute("SELECT lower(?)", [value]).fetchall()[0][0]


def test_a_post_in_another_case_is_the_seeded_pair(tmp_path: Path) -> None:
    seed = tmp_path / "seed.csv"
    seed.write_text(
        "userId,learningPathId,status,completionDate\n"
        "U-ÉMILE,LP-SAFE,started,\n"
        "u-émile,lp-safe,not-started,\n"
        "U-İ,lp-safe,started,\n",
        encoding="utf-8",
    )
    key = "fold-key-1234"
    with Sandbox(key=key, seed_progress=seed, rate=50, burst=50) as sb:
        seeded = sb.progress()
        # two rows of one pair, folded as recon folds them: the furthest status (the
        # view is sorted by the pair's key: "u-i" before "u-émile")
        assert seeded.to_dict("records") == [
            {"userId": "U-İ", "learningPathId": "lp-safe", "status": "started",
             "completionDate": None},
            {"userId": "U-ÉMILE", "learningPathId": "LP-SAFE", "status": "started",
             "completionDate": None},
        ]  # fmt: skip
        for user in ("u-émile", "u-i"):
            body = {"userId": user, "learningPathId": "Lp-Safe", "status": "completed"}
            body["completionDate"] = "2026-03-01T00:00:00.000Z"
            answer = requests.post(
                sb.url + ACTIVITY_PATH, json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert answer.status_code == 200
        view = sb.progress()
    assert list(view["status"]) == ["completed", "completed"]
    assert list(view["userId"]) == ["U-İ", "U-ÉMILE"]


def test_several_unknown_words_keep_the_first_in_sort_order(tmp_path: Path) -> None:
    # The engine's fold names one word per pair (the first in sort order); the sandbox's
    # view holds that same one, whatever order the rows come in.
    for order in (["Zeta", "Alpha"], ["Alpha", "Zeta"]):
        seed = tmp_path / f"seed-{order[0]}.csv"
        lines = [f"u-1,lp-1,{word}," for word in order]
        seed.write_text("userId,learningPathId,status,completionDate\n" + "\n".join(lines))
        db = tmp_path / f"{order[0]}.db"
        assert seed_progress(db, seed) == 1
        assert list(progress_frame(db)["status"]) == ["Alpha"]
