"""The sandbox answers as the documented LMS API does, over real loopback HTTP."""

from __future__ import annotations

import csv
import inspect
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sandbox_inspect import (
    accept_counts,
    accepted,
    dropped_count,
    requests_log,
    setting_names,
    status_counts,
)

from recon import cli
from recon.sandbox import (
    ACTIVITY_PATH,
    PING_PATH,
    PROGRESS_COLUMNS,
    Sandbox,
    SandboxSettings,
    export_progress,
    seed_progress,
    wire_date,
)
from recon.validation import (
    MSG_COMPLETION_WITH_NON_COMPLETED,
    MSG_FEATURE_OFF,
    MSG_INVALID_COMPLETION_DATE,
    MSG_INVALID_STATUS,
    MSG_INVALID_TIMESTAMP_DATE,
    MSG_TIMESTAMP_WITH_COMPLETED,
)

pytestmark = pytest.mark.timeout(60)

KEY = "test-key-5f2c"
AUTH = {"Authorization": f"Bearer {KEY}"}
USER = "123e4567-e89b-12d3-a456-426614174000"
PATH = "223e4567-e89b-12d3-a456-426614174000"
COMPLETION = {"userId": USER, "learningPathId": PATH, "status": "completed",
              "completionDate": "2026-01-15T00:00:00.000Z"}  # fmt: skip
IN_PROGRESS = {"userId": USER, "learningPathId": PATH, "status": "started",
               "timeStampDate": "2026-01-10T00:00:00.000Z"}  # fmt: skip


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    # A limit far above what a test sends, so only the rate-limit tests meet it.
    with Sandbox(key=KEY, rate=1000, burst=1000) as sandbox:
        yield sandbox


def post(sandbox: Sandbox, session: requests.Session, body: Any, **kw: Any) -> requests.Response:
    kw.setdefault("headers", AUTH)
    kw.setdefault("timeout", 5)
    return session.post(sandbox.url + ACTIVITY_PATH, json=body, **kw)


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer"},
        {"Authorization": KEY},
    ],
    ids=["no-header", "wrong-key", "basic-scheme", "no-token", "no-scheme"],
)
def test_a_missing_or_wrong_key_gets_401_with_an_empty_body(sb, http, headers):
    for response in (
        post(sb, http, COMPLETION, headers=headers),
        http.get(sb.url + PING_PATH, headers=headers, timeout=5),
    ):
        assert response.status_code == 401
        assert response.content == b""
        assert response.headers["Content-Length"] == "0"
        assert "X-RateLimit-Limit" not in response.headers  # rate limit comes after auth
    assert accepted(sb) == []
    assert status_counts(sb) == {401: 2}


def test_ping_answers_valid_true_for_the_right_key(sb, http):
    response = http.get(sb.url + PING_PATH, headers=AUTH, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"valid": True, "practice": True}  # recon's sandbox is practice
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/incoming/v2/nothing"),
        ("GET", ACTIVITY_PATH),
        ("POST", PING_PATH),
        ("PUT", ACTIVITY_PATH),
        ("POST", "/incoming/v2/learningPathExternalActivity/extra"),
    ],
)
def test_anything_else_is_404(sb, http, method, path):
    response = http.request(method, sb.url + path, headers=AUTH, json=COMPLETION, timeout=5)
    assert response.status_code == 404
    assert accepted(sb) == []


# --------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**IN_PROGRESS, "completionDate": "2026-01-15T00:00:00.000Z"},
         MSG_COMPLETION_WITH_NON_COMPLETED),
        ({**COMPLETION, "status": "done"}, MSG_INVALID_STATUS),
        ({**COMPLETION, "timeStampDate": "2026-01-10T00:00:00.000Z"},
         MSG_TIMESTAMP_WITH_COMPLETED),
        ({"userId": USER, "learningPathId": PATH, "timeStampDate": "2026-01-10"},
         MSG_TIMESTAMP_WITH_COMPLETED),
        ({**COMPLETION, "completionDate": "15/01/2026"}, MSG_INVALID_COMPLETION_DATE),
        ({**IN_PROGRESS, "timeStampDate": "yesterday"}, MSG_INVALID_TIMESTAMP_DATE),
        ({"learningPathId": PATH}, "userId is required"),
    ],
    ids=["completion-with-started", "invalid-status", "timestamp-with-completed",
         "timestamp-with-no-status", "bad-completion-date", "bad-timestamp", "no-user"],
)  # fmt: skip
def test_each_documented_validation_message_exactly(sb, http, body, message):
    response = post(sb, http, body)
    assert response.status_code == 400
    assert response.json() == {"errors": [message]}
    assert accepted(sb) == []
    (logged,) = requests_log(sb)
    assert logged["status"] == 400
    assert logged["errors"] == [message]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"", "request body is not valid JSON"),
        (b"\xff\xfe", "request body is not valid JSON"),
        (b'["userId"]', "request body must be a JSON object"),
        (b'"text"', "request body must be a JSON object"),
    ],
)
def test_a_body_that_is_not_a_json_object_gets_400_with_errors(sb, http, data, message):
    response = http.post(
        sb.url + ACTIVITY_PATH,
        data=data,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json() == {"errors": [message]}


@pytest.mark.parametrize("body", [COMPLETION, IN_PROGRESS], ids=["completion", "in-progress"])
def test_a_valid_activity_gets_200_with_an_empty_body_and_is_stored(sb, http, body):
    response = post(sb, http, body)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    (stored,) = accepted(sb)
    assert {k: v for k, v in stored.items() if k != "received_at" and v is not None} == body
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stored["received_at"])
    assert accept_counts(sb) == {(USER, PATH, body["status"]): 1}


def test_status_defaults_to_completed(sb, http):
    assert post(sb, http, {"userId": USER, "learningPathId": PATH}).status_code == 200
    assert accept_counts(sb) == {(USER, PATH, "completed"): 1}


def test_the_same_body_twice_is_counted_twice(sb, http):
    for _ in range(2):
        assert post(sb, http, COMPLETION).status_code == 200
    assert accept_counts(sb) == {(USER, PATH, "completed"): 2}


def test_feature_off_gets_the_documented_message_and_can_be_switched_at_runtime(sb, http):
    sb.settings.feature_on = False
    response = post(sb, http, COMPLETION)
    assert response.status_code == 400
    assert response.json() == {"errors": [MSG_FEATURE_OFF]}
    # Feature off wins over validation: the company setting is checked first.
    assert post(sb, http, {"bad": "body"}).json() == {"errors": [MSG_FEATURE_OFF]}
    assert accepted(sb) == []
    sb.settings.feature_on = True
    assert post(sb, http, COMPLETION).status_code == 200


def test_feature_off_from_the_constructor(http):
    with Sandbox(key=KEY, feature_on=False) as sandbox:
        assert post(sandbox, http, COMPLETION).json() == {"errors": [MSG_FEATURE_OFF]}
        # ping still answers: it checks the key, not the feature
        assert http.get(sandbox.url + PING_PATH, headers=AUTH, timeout=5).json() == {
            "valid": True,
            "practice": True,
        }


def test_keep_alive_one_connection_serves_every_kind_of_answer(sb, http):
    answers = [
        post(sb, http, COMPLETION).status_code,
        post(sb, http, {**COMPLETION, "status": "x"}).status_code,
        post(sb, http, COMPLETION, headers={}).status_code,
        http.get(sb.url + "/nowhere", timeout=5).status_code,
        http.get(sb.url + PING_PATH, headers=AUTH, timeout=5).status_code,
    ]
    assert answers == [200, 400, 401, 404, 200]
    pools = http.get_adapter(sb.url).poolmanager.pools
    keys = pools.keys()  # the pool container refuses plain iteration
    assert [pools[k].num_connections for k in keys] == [1]


# --------------------------------------------------------------------- rate limit


def test_over_the_limit_gets_429_with_retry_after_and_rate_headers(http):
    with Sandbox(key=KEY, rate=4, burst=3) as sandbox:
        before = time.time()
        remaining = []
        for _ in range(3):
            response = http.get(sandbox.url + PING_PATH, headers=AUTH, timeout=5)
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit"] == "3"
            reset = int(response.headers["X-RateLimit-Reset"])
            assert before <= reset <= before + 3  # full again within burst/rate seconds
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        assert remaining == [2, 1, 0]

        response = post(sandbox, http, COMPLETION)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"  # ceil(0.25 s), at least 1
        assert response.json() == {"error": "rate_limit_exceeded", "retryAfter": 1}
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert "X-RateLimit-Reset" in response.headers
        assert accepted(sandbox) == []

        # An unauthenticated request is refused for its key, not counted against the limit.
        assert post(sandbox, http, COMPLETION, headers={}).status_code == 401

        time.sleep(0.3)  # one token at 4/s
        assert post(sandbox, http, COMPLETION).status_code == 200
        assert post(sandbox, http, COMPLETION).status_code == 429
        assert status_counts(sandbox) == {200: 4, 429: 2, 401: 1}


def test_retry_after_rounds_up_whole_seconds(http):
    with Sandbox(key=KEY, rate=0.4, burst=1) as sandbox:
        assert http.get(sandbox.url + PING_PATH, headers=AUTH, timeout=5).status_code == 200
        response = http.get(sandbox.url + PING_PATH, headers=AUTH, timeout=5)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"  # 1 token / 0.4 per s = 2.5 s
        assert response.json()["retryAfter"] == 3


def test_the_rate_limit_can_be_changed_at_runtime(http):
    with Sandbox(key=KEY, rate=1, burst=1) as sandbox:
        codes = [http.get(sandbox.url + PING_PATH, headers=AUTH).status_code for _ in range(2)]
        assert codes == [200, 429]
        sandbox.settings.update(rate=1000, burst=50)
        time.sleep(0.01)
        response = http.get(sandbox.url + PING_PATH, headers=AUTH, timeout=5)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "50"


# ------------------------------------------------------------------------- faults


def test_latency_is_added_and_does_not_serialise_concurrent_clients():
    with Sandbox(key=KEY, rate=1000, burst=1000, latency_ms=200) as sandbox:
        durations: list[float] = []
        lock = threading.Lock()

        def client() -> None:
            with requests.Session() as session:
                for _ in range(2):
                    start = time.monotonic()
                    assert post(sandbox, session, COMPLETION).status_code == 200
                    with lock:
                        durations.append(time.monotonic() - start)

        threads = [threading.Thread(target=client) for _ in range(8)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        assert len(durations) == 16
        assert min(durations) >= 0.2
        # 16 requests of 0.2 s: 3.2 s if a lock serialised them; ~0.4 s when they overlap.
        assert elapsed < 1.2
        assert accept_counts(sandbox) == {(USER, PATH, "completed"): 16}


def test_fail_first_answers_the_next_n_posts_with_503(sb, http):
    sb.settings.fail_first = 2
    codes = [post(sb, http, COMPLETION).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert len(accepted(sb)) == 1  # a 503 stored nothing
    # ping is not a POST: never failed
    sb.settings.fail_first = 1
    assert http.get(sb.url + PING_PATH, headers=AUTH, timeout=5).status_code == 200
    assert post(sb, http, COMPLETION).status_code == 503
    assert status_counts(sb) == {503: 3, 200: 2}
    # only a POST that passed the key and the rate limit takes a fail_first slot
    sb.settings.fail_first = 1
    assert post(sb, http, COMPLETION, headers={}).status_code == 401
    assert post(sb, http, COMPLETION).status_code == 503
    assert [r["fault"] for r in requests_log(sb)].count("fail") == 4


def test_fail_rate_is_reproducible_with_a_seed(http):
    def pattern(sandbox: Sandbox) -> list[int]:
        return [post(sandbox, http, COMPLETION).status_code for _ in range(24)]

    with Sandbox(key=KEY, rate=1000, burst=1000, fail_rate=0.5, seed=7) as sandbox:
        first = pattern(sandbox)
        assert len(accepted(sandbox)) == first.count(200)
        sandbox.settings.seed = 7  # restarts the sequence
        assert pattern(sandbox) == first
    with Sandbox(key=KEY, rate=1000, burst=1000, fail_rate=0.5, seed=7) as sandbox:
        assert pattern(sandbox) == first
    assert 4 <= first.count(503) <= 20
    with Sandbox(key=KEY, rate=1000, burst=1000, fail_rate=0.5, seed=8) as sandbox:
        assert pattern(sandbox) != first


def test_drop_closes_the_connection_without_an_answer_and_stores_nothing(sb, http):
    sb.settings.drop_rate = 1.0
    with pytest.raises(requests.ConnectionError):
        post(sb, http, COMPLETION)
    assert accepted(sb) == []
    assert dropped_count(sb) == 1
    (logged,) = requests_log(sb)
    assert (logged["status"], logged["fault"]) == (None, "drop")
    sb.settings.drop_rate = 0.0
    assert post(sb, http, COMPLETION).status_code == 200  # the client reconnects


def test_drop_after_accept_stores_then_leaves_the_outcome_unknown(sb, http):
    sb.settings.drop_after_accept_rate = 1.0
    with pytest.raises(requests.ConnectionError):
        post(sb, http, COMPLETION)
    assert accept_counts(sb) == {(USER, PATH, "completed"): 1}
    assert dropped_count(sb) == 1
    assert requests_log(sb)[0]["fault"] == "drop-after-accept"
    # An invalid body is still refused: only an accepted activity can be dropped after.
    assert post(sb, http, {**COMPLETION, "status": "x"}).status_code == 400


def test_a_stall_trips_the_client_timeout_and_the_activity_still_lands(sb, http):
    sb.settings.update(stall_ms=600, stall_rate=1.0)
    start = time.monotonic()
    with pytest.raises(requests.Timeout):
        post(sb, http, COMPLETION, timeout=0.2)
    assert time.monotonic() - start < 0.5
    deadline = time.monotonic() + 3
    while not accepted(sb) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(accepted(sb)) == 1
    sb.settings.stall_rate = 0.0
    with requests.Session() as fresh:
        assert post(sb, fresh, COMPLETION, timeout=2).status_code == 200


def test_settings_are_checked():
    settings = SandboxSettings()
    for name, value in [
        ("fail_rate", 1.5),
        ("drop_rate", -0.1),
        ("rate", 0),
        ("burst", 0),
        ("burst", 2.5),
        ("latency_ms", -1),
        ("feature_on", "yes"),
        ("fail_first", -1),
    ]:
        with pytest.raises(ValueError):
            setattr(settings, name, value)
    with pytest.raises(AttributeError):
        settings.fail_rates = 0.5
    with pytest.raises(ValueError):
        Sandbox(key=KEY, stall_rate=2)
    with pytest.raises(ValueError):
        Sandbox(key="")


def test_every_setting_is_a_sandbox_argument_and_a_cli_option():
    names = setting_names()
    params = inspect.signature(Sandbox).parameters
    assert set(names) <= set(params)
    serve = _subparser(cli.build_parser(), "sandbox", "serve")
    options = {a.dest: a for a in serve._actions}
    for name in names:
        dest = "feature_off" if name == "feature_on" else name
        assert dest in options, f"no CLI option for {name}"
    for action in serve._actions:
        assert action.help, f"{action.option_strings} has no help"
    export = _subparser(cli.build_parser(), "sandbox", "export-progress")
    assert all(a.help for a in export._actions)


def _subparser(parser: Any, *names: str) -> Any:
    for name in names:
        (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        parser = sub.choices[name]
    return parser


# ---------------------------------------------------------------------- storage


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


SEED = [
    ["userId", "learningPathId", "status", "completionDate"],
    ["u1", "p1", "started", ""],
    ["u2", "p2", "completed", "2025-12-01T00:00:00Z"],
    ["u3", "p3", " Completed ", "2025-11-01"],
    ["=HYPERLINK(1)", "p9", "not-started", ""],
    ["", "p0", "completed", "2025-01-01"],  # no learner: not a progress record
]


def test_export_progress_is_the_lms_view(tmp_path, http):
    db = tmp_path / "sandbox.db"
    seed = _write_csv(tmp_path / "seed.csv", SEED)
    with Sandbox(key=KEY, db=db, rate=1000, burst=1000, seed_progress=seed) as sandbox:
        posts = [
            {"userId": "u1", "learningPathId": "p1", "completionDate": "2026-01-15"},
            # a second completion does not move the completion date
            {"userId": "u1", "learningPathId": "p1", "completionDate": "2026-02-01T00:00Z"},
            # the latest status wins; the seeded completion date stays
            {"userId": "u2", "learningPathId": "p2", "status": "started",
             "timeStampDate": "2026-01-10T00:00:00.000Z"},
            # completed without a date: dated when received
            {"userId": "u4", "learningPathId": "p4", "status": "completed"},
            {"userId": "u5", "learningPathId": "p5", "status": "not-started"},
            {"userId": "u3", "learningPathId": "p3", "completionDate": "2026-03-01T10:00:00+02:00"},
        ]  # fmt: skip
        for body in posts:
            assert post(sandbox, http, body).status_code == 200
        u4_received = [a for a in accepted(sandbox) if a["userId"] == "u4"][0]["received_at"]
        live = sandbox.progress()
    assert export_progress(db, tmp_path / "progress.csv") == 6
    rows = _read_csv(tmp_path / "progress.csv")
    assert rows == [
        PROGRESS_COLUMNS,
        ["'=HYPERLINK(1)", "p9", "not-started", ""],  # formula escaped
        ["u1", "p1", "completed", "2026-01-15T00:00:00.000Z"],
        ["u2", "p2", "started", "2025-12-01T00:00:00.000Z"],
        ["u3", "p3", "completed", "2025-11-01T00:00:00.000Z"],
        ["u4", "p4", "completed", u4_received],
        ["u5", "p5", "not-started", ""],
    ]
    assert live.fillna("").values.tolist()[1:] == [r for r in rows[2:]]


def test_reseeding_replaces_the_seed_and_keeps_posted_activity_later(tmp_path, http):
    db = tmp_path / "sandbox.db"
    seed = _write_csv(tmp_path / "seed.csv", SEED[:3])
    assert seed_progress(db, seed) == 2
    with Sandbox(key=KEY, db=db, rate=1000, burst=1000) as sandbox:
        assert post(sandbox, http, {"userId": "u1", "learningPathId": "p1"}).status_code == 200
        # seeding again (the LMS's state before the run) must not undo what was posted,
        # also while the sandbox runs on that file
        assert seed_progress(db, seed) == 2
        frame = sandbox.progress()
    assert frame.values.tolist()[0][:3] == ["u1", "p1", "completed"]
    assert len(frame) == 2
    # a restarted sandbox on the same file keeps what it accepted
    with Sandbox(key=KEY, db=db) as again:
        assert accept_counts(again) == {("u1", "p1", "completed"): 1}


def test_a_seed_without_a_completion_date_column_is_read(tmp_path):
    seed = _write_csv(tmp_path / "seed.csv", [["userid", "learningPathId", "status"],
                                              ["u1", "p1", "started"]])  # fmt: skip
    db = tmp_path / "s.db"
    assert seed_progress(db, seed) == 1
    export_progress(db, tmp_path / "out.csv")
    assert _read_csv(tmp_path / "out.csv")[1] == ["u1", "p1", "started", ""]


def test_the_key_is_never_stored_nor_shown(tmp_path, http):
    db = tmp_path / "sandbox.db"
    with Sandbox(key=KEY, db=db) as sandbox:
        post(sandbox, http, COMPLETION)
        post(sandbox, http, COMPLETION, headers={"Authorization": "Bearer wrong-key"})
        assert KEY not in repr(sandbox)
        assert KEY not in repr(sandbox.settings)
    for file in tmp_path.iterdir():
        assert KEY.encode() not in file.read_bytes()
        assert b"wrong-key" not in file.read_bytes()


def test_stop_ends_open_keep_alive_connections(http):
    sandbox = Sandbox(key=KEY).start()
    url = sandbox.url
    assert http.get(url + PING_PATH, headers=AUTH, timeout=5).status_code == 200
    sandbox.stop()
    sandbox.stop()  # twice is fine
    with pytest.raises(requests.ConnectionError):
        http.get(url + PING_PATH, headers=AUTH, timeout=2)


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("2026-01-15", "2026-01-15T00:00:00.000Z"),
        ("2026-01-15T10:30", "2026-01-15T10:30:00.000Z"),
        ("2026-01-15T10:30:00.5Z", "2026-01-15T10:30:00.500Z"),
        ("2026-01-15T10:30:00+02:00", "2026-01-15T08:30:00.000Z"),
        ("2026-01-15 10:30:00.123456Z", "2026-01-15T10:30:00.123Z"),
        ("01/15/2026", "01/15/2026"),  # not ISO: kept as the LMS holds it
    ],
)
def test_wire_date(text, wire):
    assert wire_date(text) == wire


# -------------------------------------------------------------------------- CLI


def test_cli_export_progress(tmp_path, capsys):
    db = tmp_path / "s.db"
    seed_progress(db, _write_csv(tmp_path / "seed.csv", SEED[:2]))
    out = tmp_path / "p.csv"
    assert cli.main(["sandbox", "export-progress", "--db", str(db), "--out", str(out)]) == 0
    assert _read_csv(out) == [PROGRESS_COLUMNS, ["u1", "p1", "started", ""]]
    assert "1 row(s)" in capsys.readouterr().out
    missing = tmp_path / "none.db"
    assert cli.main(["sandbox", "export-progress", "--db", str(missing), "--out", str(out)]) == 2
    assert "sandbox database not found" in capsys.readouterr().err


def test_cli_refuses_a_bad_setting_before_serving(capsys):
    assert cli.main(["sandbox", "serve", "--port", "0", "--fail-rate", "3"]) == 2
    assert "fail_rate must be between 0 and 1" in capsys.readouterr().err


def test_cli_serve_answers_then_stops_on_sigterm(tmp_path):
    db = tmp_path / "cli.db"
    seed = _write_csv(tmp_path / "seed.csv", SEED[:2])
    secret = "cli-secret-9d1e"
    env = {**os.environ, "TI_API_KEY": secret, "PYTHONUNBUFFERED": "1"}
    args = ["sandbox", "serve", "--port", "0", "--db", str(db), "--seed-progress", str(seed)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "recon.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", first)
        assert match, first
        url = match.group(1)
        with requests.Session() as session:
            ping = session.get(url + PING_PATH, headers={"Authorization": f"Bearer {secret}"})
            assert ping.json() == {"valid": True, "practice": True}  # `serve` is practice too
            assert session.get(url + PING_PATH, headers=AUTH).status_code == 401
            body = {"userId": "u1", "learningPathId": "p1", "completionDate": "2026-01-15"}
            response = session.post(
                url + ACTIVITY_PATH, json=body, headers={"Authorization": f"Bearer {secret}"}
            )
            assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert secret not in first + stdout + stderr
    assert "sandbox stopped" in stdout
    out = tmp_path / "progress.csv"
    export_progress(db, out)
    assert _read_csv(out)[1] == ["u1", "p1", "completed", "2026-01-15T00:00:00.000Z"]


def test_seeding_from_a_config_progress_table_uses_its_column_names(tmp_path: Path) -> None:
    from recon.config import ProgressSpec

    seed = tmp_path / "lms.csv"
    seed.write_text(
        "Learner;Path;State;Done\n"
        "u1;lp1;completed;2026-01-02\n"
        "u1;lp1;started;\n"  # listed twice: the furthest status counts
        "u2;lp1;started;\n",
        encoding="utf-8",
    )
    spec = ProgressSpec(
        file=seed, user_id="Learner", path_id="Path", status="State", completion_date="Done"
    )
    with Sandbox(key="k", seed_progress=spec) as sandbox:
        view = sandbox.progress().set_index("userId")
    assert view.loc["u1", "status"] == "completed"
    assert view.loc["u1", "completionDate"] == "2026-01-02T00:00:00.000Z"
    assert view.loc["u2", "status"] == "started"
