"""`recon lms pull` (issue 14): the LMS's learners and learning paths read page by page in
both documented shapes (and a clear stop on any other), stored in the ledger with the
time and target of the pull; `source = "lms"` in [users] / [paths] reads the latest pull,
the run records which one and warns when it is older than [lms] pull_max_age_days."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import AS_OF, PATHS, USERS, ext, lms, write_case_in
from servers import Scripted

from recon import lms_pull as lp
from recon.cli import main
from recon.client import ApiClient
from recon.config import load_config
from recon.errors import ApiError, AuthError, ConfigError
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.sandbox import Sandbox

KEY = "pull-test-key-0123456789"

LEARNERS = [
    {"id": u["userId"], "email": u["email"], "firstName": "F", "lastName": "L", "name": "F L"}
    for u in USERS
]
CATALOG = [
    {
        "id": p["learningPathId"],
        "title": f"Title {p['externalCode']}",
        "sku": p["externalCode"],
        "slug": p["externalCode"].lower(),
        "kind": "learningPath",
    }
    for p in PATHS
]
ROWS = [
    ext("ann@example.com", "SAFE-101", completed="2026-01-15"),
    ext("bob@example.com", "DATA-200", "In Progress", activity="2026-02-01"),
    ext("cy@example.com", "LEAD-300", completed="2026-01-15"),
    ext("zed@elsewhere.org", "SAFE-101", completed="2026-01-15"),
    ext("ann@example.com", "data_0200", completed="2026-01-15"),  # near miss of DATA-200
]
PROGRESS = [lms("u-ann", "lp-safe", "completed", "2026-01-15T00:00:00Z")]
LMS_SOURCE = {
    "users": {"source": "lms", "file": None, "email": None, "user_id": None},
    "paths": {
        "source": "lms",
        "file": None,
        "external_code": None,
        "learning_path_id": None,
    },
}


# -- reading a page: both shapes, nothing else ---------------------------------------------


def users_page_info(items, page, more):
    info = {"perPage": 2, "currentPage": page, "total": 5, "hasMore": more}
    return {"data": {"APIUsers": {"users": items, "pageInfo": info}}}


def meta(items, key, page, pages, cursor=None):
    block = {"page": page, "perPage": 2, "totalCount": 5, "totalPages": pages}
    return {key: items, "meta": {**block, "nextCursor": cursor}}


@pytest.mark.parametrize(
    ("kind", "doc", "shape", "nxt"),
    [
        ("users", users_page_info([{"id": "a"}], 1, True), "pageInfo", {"page": "2"}),
        ("users", users_page_info([{"id": "a"}], 3, False), "pageInfo", None),
        ("users", meta([{"id": "a"}], "users", 1, 3), "meta", {"page": "2"}),
        ("users", meta([{"id": "a"}], "users", 3, 3), "meta", None),
        ("users", meta([{"id": "a"}], "users", 1, 3, "c2"), "meta", {"cursor": "c2"}),
        (
            "paths",
            {"contentItems": [{"id": "p"}], "pageInfo": {"cursor": "x", "hasMore": True}},
            "pageInfo",
            {"cursor": "x"},
        ),
        (
            "paths",
            {"contentItems": [], "pageInfo": {"cursor": None, "hasMore": False}},
            "pageInfo",
            None,
        ),
        ("paths", meta([{"id": "p"}], "contentItems", 1, 2, "n"), "meta", {"cursor": "n"}),
        ("paths", meta([{"id": "p"}], "contentItems", 2, 2), "meta", None),
    ],
)
def test_both_documented_shapes_are_read(kind, doc, shape, nxt):
    page = lp.read_page(kind, doc, {}, "preview")
    assert page.shape == shape
    assert page.next == nxt
    nested = doc.get("data", {}).get("APIUsers", {})
    assert page.items == doc.get("contentItems", doc.get("users", nested.get("users")))


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"users": [{"id": "a"}]},  # no paging at all
        {"data": {"users": [{"id": "a"}]}, "pageInfo": {"hasMore": False}},  # list not found
        {"users": ["a"], "meta": {"nextCursor": None}},  # not objects
        users_page_info([{"id": "a"}], 1, "yes"),  # hasMore not a boolean
        {"users": [], "meta": {"page": 1}},  # neither a cursor nor the pages
        {"users": [], "meta": {"nextCursor": None}, "pageInfo": {"hasMore": False}},  # both
        {"data": {"APIUsers": {"users": [], "pageInfo": {"hasMore": True}}}},  # more, but how
    ],
)
def test_any_other_shape_stops_quoting_the_answer(doc):
    with pytest.raises(lp.ShapeError, match="neither documented shape.*It begins: 'THE BODY'"):
        lp.read_page("users", doc, {}, "THE BODY")


# -- scripted servers: pages as the API may send them ----------------------------------------


def _query(server, n):
    return {k: v[-1] for k, v in parse_qs(urlsplit(server.paths[n - 1]).query).items()}


def _json(doc, headers=None):
    return 200, {"Content-Type": "application/json", **(headers or {})}, json.dumps(doc).encode()


def test_scripted_pages_in_both_shapes_are_all_read_and_stored(tmp_path):
    people = [{"id": f"u{i}", "email": f"p{i}@example.com", "name": f"P {i}"} for i in range(5)]
    paths = [{"id": f"lp{i}", "title": f"T{i}", "sku": f"S-{i}", "slug": f"t{i}"} for i in range(3)]

    def script(n, headers):
        q = _query(server, n)
        if "/users" in server.paths[n - 1]:
            page = int(q["page"])
            return _json(users_page_info(people[(page - 1) * 2 : page * 2], page, page < 3))
        start = int(q.get("cursor", "0"))
        nxt = str(start + 2) if start + 2 < 3 else None
        return _json(meta(paths[start : start + 2], "contentItems", start // 2 + 1, 2, nxt))

    with Scripted(script, ping={"valid": True}) as server, Ledger(tmp_path / "l.db") as ledger:
        client = ApiClient(server.url, KEY)
        report = lp.pull(ledger, client, pace=lp.PullPace(rate=50, burst=50, per_page=2))
        client.close()
        assert report.rows == {"users": 5, "paths": 3}
        assert report.pages == {"users": 3, "paths": 2}
        assert report.shapes == {"users": "pageInfo", "paths": "meta"}
        assert not report.target.practice
        queries = [_query(server, n) for n in range(1, server.received + 1)]
        assert queries[3] == {"types": "learningPath", "perPage": "2"}
        assert queries[4]["cursor"] == "2"
        assert list(lp.pulled(ledger, "users", report.pull_id)["email"]) == [
            p["email"] for p in people
        ]
        assert list(lp.pulled(ledger, "paths", report.pull_id)["sku"]) == ["S-0", "S-1", "S-2"]
        found = lp.latest_pull(ledger, "users")
        assert found["target"] == report.target.url and found["rows"] == 5


def test_an_unknown_shape_stops_the_pull_and_stores_nothing(tmp_path, capsys, monkeypatch):
    body = {"results": [{"id": "u1", "email": "a@example.com"}], "next": KEY}

    def script(n, headers):
        return _json(body)

    with Scripted(script, ping={"valid": True}) as server:
        monkeypatch.setenv("TI_API_KEY", KEY)
        code = main(["lms", "pull", "--ledger", str(tmp_path / "l.db"), "--base-url", server.url])
    err = capsys.readouterr().err
    assert code == 2
    assert "neither documented shape" in err and "nothing of this pull was stored" in err
    assert '{"results": [{"id": "u1", "email": "a@example.com"}], "next": "<API key>"' in err
    assert KEY not in err
    with sqlite3.connect(tmp_path / "l.db") as db:
        assert db.execute("SELECT count(*) FROM lms_pulls").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM lms_users").fetchone()[0] == 0


def test_a_throttled_page_is_waited_for_then_read(tmp_path):
    def script(n, headers):
        if n == 1:
            return 429, {"Retry-After": "1"}, b'{"error": "rate_limit_exceeded"}'
        only = [{"id": "u1", "email": "a@example.com"}]
        return _json({"users": only, "meta": {"nextCursor": None}})

    with Scripted(script, ping={"valid": True}) as server, Ledger(tmp_path / "l.db") as ledger:
        client = ApiClient(server.url, KEY)
        report = lp.pull(ledger, client, what=["users"], pace=lp.PullPace(rate=50, burst=50))
        client.close()
        assert server.received == 2 and server.times[1] - server.times[0] >= 0.9
        assert report.rows == {"users": 1}


def test_a_refused_key_stops_before_anything_is_stored(tmp_path):
    def script(n, headers):
        return 401, {}, b""

    with Scripted(script, ping={"valid": True}) as server, Ledger(tmp_path / "l.db") as ledger:
        client = ApiClient(server.url, KEY)
        with pytest.raises(AuthError, match="refused"):
            lp.pull(ledger, client, pace=lp.PullPace(rate=50, burst=50))
        client.close()
        assert lp.latest_pull(ledger, "users") is None


def test_a_page_that_repeats_itself_stops_the_pull(tmp_path):
    def script(n, headers):  # always "more", always the same cursor
        return _json({"contentItems": [{"id": "p"}], "pageInfo": {"cursor": "c", "hasMore": True}})

    with Scripted(script, ping={"valid": True}) as server, Ledger(tmp_path / "l.db") as ledger:
        client = ApiClient(server.url, KEY)
        with pytest.raises(ApiError, match="already read"):
            lp.pull(ledger, client, what=["paths"], pace=lp.PullPace(rate=50, burst=50))
        client.close()
        assert server.received == 2


# -- the sandbox, end to end --------------------------------------------------------------


@pytest.mark.parametrize("shape", ["pageInfo", "meta"])
def test_the_sandbox_serves_the_samples_directory_and_catalog_in_both_shapes(
    shape, tmp_path, monkeypatch, capsys
):
    from recon.demo import SAMPLE_CONFIG
    from recon.suggest import load_sources

    config = load_config(SAMPLE_CONFIG)
    sources = load_sources(config)
    with Sandbox(key=KEY, rate=100, burst=100, page_shape=shape) as sb:
        sb.seed_lists(config)
        monkeypatch.setenv("TI_API_KEY", KEY)
        ledger = tmp_path / "l.db"
        args = ["lms", "pull", "--ledger", str(ledger), "--base-url", sb.url]
        assert main([*args, "--per-page", "30", "--rate", "100", "--burst", "100"]) == 0
    out = capsys.readouterr().out
    assert f"({shape} paging)" in out and "practice sandbox" in out
    assert KEY not in out
    with Ledger(ledger) as opened:
        pull = lp.latest_pull(opened, "users")
        assert pull["practice"] is True
        users = lp.pulled(opened, "users", pull["id"])
        paths = lp.pulled(opened, "paths", pull["id"])
    directory = sources.directory.drop_duplicates("id")  # the LMS holds each learner once
    assert len(users) == len(directory) > 400
    assert dict(zip(users["email"], users["id"], strict=True)) == dict(
        zip(directory["email"], directory["id"], strict=True)
    )
    assert dict(zip(paths["sku"], paths["id"], strict=True)) == dict(
        zip(sources.catalog["code"], sources.catalog["id"], strict=True)
    )
    assert paths["slug"].str.fullmatch(r"[a-z0-9-]+").all() and paths["title"].notna().all()


def _lms_case(tmp_path, **config):
    extra = {k: dict(v) for k, v in LMS_SOURCE.items()}
    for role, keys in config.items():
        extra.setdefault(role, {}).update(keys)
    return write_case_in(tmp_path / "lms", ROWS, PROGRESS, None, None, config=extra)


def _pull_into(ledger_path, shape="meta"):
    with Sandbox(key=KEY, rate=100, burst=100, page_shape=shape) as sb:
        sb.learners[:] = LEARNERS
        sb.paths[:] = CATALOG
        client = ApiClient(sb.url, KEY)
        with Ledger(ledger_path) as ledger:
            report = lp.pull(ledger, client, pace=lp.PullPace(rate=100, burst=100, per_page=2))
        client.close()
    return report


def test_source_lms_reconciles_from_the_pull_as_from_the_files(tmp_path, capsys):
    with_files = write_case_in(tmp_path / "files", ROWS, PROGRESS)
    from_lms = _lms_case(tmp_path)
    assert not (from_lms.parent / "users.csv").exists()
    ledger = tmp_path / "lms" / "recon-ledger.db"
    report = _pull_into(ledger)
    expected = reconcile_run(with_files, as_of=AS_OF)
    got = reconcile_run(from_lms, ledger=ledger, as_of=AS_OF, out=tmp_path / "out")
    assert got.counts == expected.counts
    assert list(got.outcomes["outcome"]) == list(expected.outcomes["outcome"])
    assert list(got.proposals["key"]) == list(expected.proposals["key"])
    # which pull it read: in the Result, summary.json and the ledger
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["lms_pulls"]["users"]["pull_id"] == report.pull_id
    assert summary["lms_pulls"]["paths"]["practice"] is True
    assert summary["inputs"]["users"]["path"].startswith(f"LMS pull {report.pull_id} (")
    assert summary["warnings"] == []
    with Ledger(ledger) as opened:
        assert lp.run_pulls(opened, got.run_id) == {
            "users": report.pull_id,
            "paths": report.pull_id,
        }
    # the catalog's slug is offered for the near-miss code (sku is the mapping itself)
    row5 = got.suggestions[got.suggestions["row"] == 5]
    assert "lp-data" in set(row5["candidate_id"])
    # through the CLI: the pull is named on the terminal
    assert (
        main(
            [
                "reconcile",
                "--config",
                str(from_lms),
                "--out",
                str(tmp_path / "o2"),
                "--as-of",
                AS_OF,
            ]
        )
        == 1
    )
    assert f"LMS pull {report.pull_id} as [users]" in capsys.readouterr().out


def test_source_lms_without_a_pull_or_a_ledger_says_so(tmp_path, capsys):
    config = _lms_case(tmp_path)
    with pytest.raises(ConfigError, match=r"holds no pull of users: run `recon lms pull"):
        reconcile_run(config, ledger=tmp_path / "l.db", as_of=AS_OF)
    with pytest.raises(ConfigError, match="run with a ledger"):
        reconcile_run(config, as_of=AS_OF)
    code = main(["reconcile", "--config", str(config), "--out", str(tmp_path / "o")])
    assert code == 2 and "holds no pull of users" in capsys.readouterr().err


def _age(ledger_path, days):
    with sqlite3.connect(ledger_path) as db:
        db.execute(
            "UPDATE lms_pulls SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
            (f"-{days} days",),
        )


def test_an_old_pull_is_warned_about_on_the_terminal_and_in_the_summary(tmp_path, capsys):
    config = _lms_case(tmp_path)
    ledger = tmp_path / "lms" / "recon-ledger.db"
    _pull_into(ledger)
    _age(ledger, 10)
    code = main(["reconcile", "--config", str(config), "--out", str(tmp_path / "o")])
    assert code == 1
    out = capsys.readouterr().out
    assert "warning: the LMS pull 1 of users is 10.0 days old" in out
    assert "older than [lms] pull_max_age_days = 7" in out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert len(summary["warnings"]) == 2  # users and paths
    assert summary["lms_pulls"]["users"]["age_days"] == pytest.approx(10, abs=0.01)
    # a longer limit: no warning
    config = _lms_case(tmp_path, lms={"pull_max_age_days": 30})
    result = reconcile_run(config, ledger=ledger, as_of=AS_OF)
    assert result.warnings == []


def test_config_source_key(tmp_path):
    config = load_config(_lms_case(tmp_path))
    assert config.users.source == "lms" and config.users.user_id == "id"
    assert config.paths.external_code == "sku" and config.paths.title == "title"
    with pytest.raises(ConfigError, match=r'source = "lms" and `file`'):
        load_config(_lms_case(tmp_path, users={"file": "users.csv"}))
    with pytest.raises(ConfigError, match=r'`source` must be "file" or "lms"'):
        load_config(_lms_case(tmp_path, paths={"source": "api"}))
    with pytest.raises(ConfigError, match="pull_max_age_days"):
        load_config(_lms_case(tmp_path, lms={"pull_max_age_days": 0}))
