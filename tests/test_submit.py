"""`recon submit` against the local sandbox over real loopback HTTP: every answer of the
API, pacing, crash safety, the one-submit lock, and the dry run."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import AS_OF, PATHS, ext, reconcile_into, write_case_in
from sandbox_inspect import accept_counts, accepted, requests_log, status_counts
from servers import Scripted, Trickle, self_signed, server_tls

from recon import ledger as lg
from recon.cli import main
from recon.client import ACTIVITY_PATH, ApiClient, TokenBucket
from recon.errors import ApiError, AuthError, LedgerBusyError, RedirectError
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.sandbox import Sandbox
from recon.submit import Pace, submit
from recon.target import Target, target_url

KEY = "test-key-not-secret"
FAST = Pace(rate=500, burst=500, concurrency=4, backoff_base=0.01, backoff_cap=0.05)
RECON = str(Path(sys.executable).with_name("recon"))


def ScriptedLms(script, **options):  # noqa: N802 - stands in for a class
    """A scripted server that answers the ping before a submit as the LMS does."""
    return Scripted(script, ping={"valid": True}, **options)


def make_ledger(folder: Path, learners: int) -> tuple[Path, list[str]]:
    """A ledger with one approved missing-completion proposal per learner."""
    users = [{"email": f"l{i}@example.com", "userId": f"u-{i:04d}"} for i in range(learners)]
    external = [
        ext(f"l{i}@example.com", "SAFE-101", "Completed", "2026-03-01") for i in range(learners)
    ]
    config = write_case_in(folder / "inputs", external, (), users, PATHS)
    path = folder / "ledger.db"
    with Ledger(path) as ledger:
        reconcile_run(config, as_of=AS_OF, ledger=ledger)
        keys = ledger.select(everything=True)
        ledger.decide(keys, "approved", by="test")
    return path, keys


@pytest.fixture
def ledger_of(tmp_path: Path) -> Callable[[int], tuple[Ledger, list[str]]]:
    opened: list[Ledger] = []

    def build(learners: int) -> tuple[Ledger, list[str]]:
        path, keys = make_ledger(tmp_path, learners)
        ledger = Ledger(path)
        opened.append(ledger)
        return ledger, keys

    yield build
    for ledger in opened:
        ledger.close()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(key=KEY, rate=1000, burst=1000) as sb:
        yield sb


def states(ledger: Ledger) -> Counter[str]:
    return Counter(ledger.proposals()["submission"])


def posts(sb: Sandbox) -> Counter[int]:
    """The sandbox's answers to POSTs (a submit also pings first)."""
    return Counter(r["status"] for r in requests_log(sb) if r["method"] == "POST")


def practice(sb: Sandbox) -> Target:
    return Target(target_url(sb.url), practice=True)


def test_all_accepted_once_each(ledger_of, sandbox: Sandbox) -> None:
    ledger, keys = ledger_of(12)
    client = ApiClient(sandbox.url, KEY)
    report = submit(ledger, client, pace=FAST, progress=False)
    assert (report.accepted, report.failed, report.rejected_total) == (12, 0, 0)
    assert report.exit_code == 0 and report.remaining == 0
    assert states(ledger) == {"accepted": 12}
    assert posts(sandbox) == {200: 12}
    assert max(accept_counts(sandbox).values()) == 1
    # Accepted is final: a second submit has nothing to send.
    again = submit(ledger, client, pace=FAST, progress=False)
    assert again.planned == 0 and again.requests == 0
    assert sum(posts(sandbox).values()) == 12
    attempts = ledger.attempts()
    assert set(attempts["http_status"]) == {200}
    assert attempts["latency_ms"].notna().all()


def test_only_approved_are_sent(ledger_of, sandbox: Sandbox) -> None:
    ledger, keys = ledger_of(6)
    ledger.decide(keys[:2], "rejected", by="ana", note="not ours")
    submit(ledger, ApiClient(sandbox.url, KEY), pace=FAST, progress=False)
    sent = {(a["userId"]) for a in accepted(sandbox)}
    assert len(sent) == 4
    props = ledger.proposals().set_index("key")
    assert (props.loc[keys[:2], "submission"] == "not-sent").all()


def test_dry_run_sends_nothing(ledger_of, sandbox: Sandbox) -> None:
    ledger, _ = ledger_of(30)
    report = submit(ledger, None, pace=Pace(rate=2, burst=20), dry_run=True, progress=False)
    assert report.planned == 30 and report.dry_run
    assert report.estimate == pytest.approx(5.0)  # 20 at once, 10 more at 2/s
    assert "Nothing was sent" in report.render()
    assert sum(status_counts(sandbox).values()) == 0
    assert ledger.attempts().empty


def test_rejection_with_messages_is_stored_and_not_retried(ledger_of) -> None:
    ledger, _ = ledger_of(3)
    with ScriptedApi(lambda n: (400, {}, {"errors": ["learner is not enrolled"]})) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
        assert api.requests == 3
    assert report.rejected == {"learner is not enrolled": 3}
    assert report.exit_code == 1
    props = ledger.proposals()
    assert set(props["submission"]) == {"rejected"}
    assert json.loads(props["api_errors"].iloc[0]) == ["learner is not enrolled"]
    assert ledger.to_send().empty  # rejected is final


def test_feature_off_stops_the_run_at_once(ledger_of, sandbox: Sandbox) -> None:
    ledger, _ = ledger_of(40)
    sandbox.settings.feature_on = False
    pace = Pace(rate=500, burst=500, concurrency=4)
    report = submit(ledger, ApiClient(sandbox.url, KEY), pace=pace, progress=False)
    assert report.exit_code == 2
    assert "externalActivity" in (report.fatal or "")
    assert report.requests <= pace.concurrency + 1
    assert states(ledger) == {"not-sent": 40}
    sandbox.settings.feature_on = True
    finished = submit(ledger, ApiClient(sandbox.url, KEY), pace=pace, progress=False)
    assert finished.accepted == 40 and finished.exit_code == 0


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_stops_the_run(ledger_of, status: int) -> None:
    ledger, _ = ledger_of(30)
    with ScriptedApi(lambda n: (status, {}, None)) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
    assert report.exit_code == 2
    assert report.fatal == f"the API key was refused (HTTP {status})"
    assert report.requests <= FAST.concurrency + 1
    assert states(ledger) == {"not-sent": 30}


def test_wrong_key_against_the_sandbox(ledger_of, sandbox: Sandbox) -> None:
    ledger, _ = ledger_of(20)
    report = submit(ledger, ApiClient(sandbox.url, "wrong-key"), pace=FAST, progress=False)
    assert report.exit_code == 2 and "refused" in (report.fatal or "")
    assert status_counts(sandbox)[401] <= FAST.concurrency + 1


def test_wrong_base_url_stops_with_404(ledger_of, sandbox: Sandbox) -> None:
    ledger, _ = ledger_of(10)
    report = submit(ledger, ApiClient(sandbox.url + "/lms", KEY), pace=FAST, progress=False)
    assert report.exit_code == 2 and "404" in (report.fatal or "")
    assert report.requests <= FAST.concurrency + 1


def test_server_errors_are_retried_then_accepted(ledger_of, sandbox: Sandbox) -> None:
    ledger, _ = ledger_of(5)
    sandbox.settings.fail_first = 6
    report = submit(ledger, ApiClient(sandbox.url, KEY), pace=FAST, progress=False)
    assert report.accepted == 5 and report.failed == 0
    assert status_counts(sandbox)[503] == 6
    results = Counter(ledger.attempts()["result"])
    assert results == {lg.RETRY: 6, lg.ACCEPTED: 5}


def test_retries_are_bounded_then_failed_and_a_later_submit_retries(
    ledger_of, sandbox: Sandbox
) -> None:
    ledger, _ = ledger_of(3)
    sandbox.settings.fail_rate = 1.0
    pace = Pace(rate=500, burst=500, concurrency=3, max_tries=3, backoff_base=0.01)
    report = submit(ledger, ApiClient(sandbox.url, KEY), pace=pace, progress=False)
    assert report.failed == 3 and report.exit_code == 1
    assert status_counts(sandbox)[503] == 9  # 3 tries each
    assert states(ledger) == {"failed": 3}
    sandbox.settings.fail_rate = 0.0
    later = submit(ledger, ApiClient(sandbox.url, KEY), pace=pace, progress=False)
    assert later.accepted == 3 and states(ledger) == {"accepted": 3}


def test_dropped_connections_and_timeouts_are_retried(ledger_of, sandbox: Sandbox) -> None:
    ledger, _ = ledger_of(20)
    sandbox.settings.update(drop_rate=0.2, stall_rate=0.1, stall_ms=800, seed=7)
    client = ApiClient(sandbox.url, KEY, read_timeout=0.3)
    pace = Pace(rate=500, burst=500, concurrency=4, max_tries=10, backoff_base=0.01)
    report = submit(ledger, client, pace=pace, progress=False)
    assert report.accepted == 20
    errors = [e for e in ledger.attempts()["errors"].dropna()]
    assert any("ConnectionError" in e or "ReadTimeout" in e for e in errors)


def test_answer_lost_after_accept_is_resent_and_ends_accepted(ledger_of, sandbox: Sandbox) -> None:
    ledger, _ = ledger_of(10)
    sandbox.settings.update(drop_after_accept_rate=0.5, seed=3)
    pace = Pace(rate=500, burst=500, concurrency=2, max_tries=20, backoff_base=0.01)
    report = submit(ledger, ApiClient(sandbox.url, KEY), pace=pace, progress=False)
    assert report.accepted == 10
    counts = accept_counts(sandbox)
    assert len(counts) == 10 and max(counts.values()) >= 2  # unknown outcomes were resent
    assert states(ledger) == {"accepted": 10}


def test_429_waits_for_retry_after_and_everything_is_accepted(ledger_of) -> None:
    ledger, _ = ledger_of(12)
    with Sandbox(key=KEY, rate=10, burst=2) as sb:
        pace = Pace(rate=1000, burst=1000, concurrency=4)
        started = time.perf_counter()
        report = submit(ledger, ApiClient(sb.url, KEY), pace=pace, progress=False)
        took = time.perf_counter() - started
        assert report.accepted == 12
        assert report.throttled >= 1 and status_counts(sb)[429] == report.throttled
        assert took >= 1.0  # Retry-After is at least one second: it was honoured
    assert Counter(ledger.attempts()["http_status"])[429] == report.throttled


def test_plain_http_is_refused_unless_loopback() -> None:
    with pytest.raises(ApiError, match="refusing plain http"):
        ApiClient("http://lms.example.com", KEY)
    assert ApiClient("http://127.0.0.1:9", KEY).base_url == "http://127.0.0.1:9"
    assert ApiClient("https://lms.example.com/", KEY).base_url == "https://lms.example.com"
    assert KEY not in repr(ApiClient("https://lms.example.com", KEY))


def test_token_bucket_paces_after_the_burst() -> None:
    bucket = TokenBucket(rate=50, burst=5)
    started = time.perf_counter()
    for _ in range(15):
        bucket.acquire()
    took = time.perf_counter() - started
    assert 0.18 <= took <= 0.5  # 5 at once, 10 more at 50/s = 0.2 s


def test_cli_submit_ping_and_key_never_printed(tmp_path: Path, sandbox: Sandbox, capsys) -> None:
    path, _ = make_ledger(tmp_path, 4)
    env = {**os.environ, "TI_API_KEY": KEY, "TI_BASE_URL": sandbox.url}
    done = subprocess.run([RECON, "ping"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [RECON, "submit", "--ledger", str(path), "--rate", "100", "--burst", "10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "accepted" in done.stdout and "4" in done.stdout
    assert KEY not in done.stdout + done.stderr
    bad = subprocess.run(
        [RECON, "submit", "--ledger", str(path), "--base-url", "http://lms.example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "refusing plain http" in bad.stderr
    assert KEY not in bad.stdout + bad.stderr
    missing = subprocess.run(
        [RECON, "submit", "--ledger", str(path)],
        env={k: v for k, v in env.items() if k != "TI_API_KEY"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "TI_API_KEY" in missing.stderr
    with Ledger(path) as ledger:
        stored = json.dumps(ledger.attempts().astype(str).values.tolist())
    assert KEY not in stored and KEY not in path.read_bytes().decode("latin-1")


def test_kill_9_mid_run_then_rerun_completes_without_resending_confirmed(
    tmp_path: Path,
) -> None:
    path, keys = make_ledger(tmp_path, 120)
    with Sandbox(key=KEY, rate=1000, burst=1000, latency_ms=40) as sb:
        env = {**os.environ, "TI_API_KEY": KEY}
        args = [RECON, "submit", "--ledger", str(path), "--base-url", sb.url]
        proc = subprocess.Popen(
            [*args, "--rate", "40", "--burst", "1", "--concurrency", "4"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while len(accepted(sb)) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        with Ledger(path) as ledger:
            confirmed = ledger.accepted_keys(practice(sb))
            middle = Counter(ledger.proposals()["submission"])
        assert 0 < len(confirmed) < 120, middle
        bodies_before = accept_counts(sb)
        done = subprocess.run(
            [*args, "--rate", "500", "--burst", "50"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        with Ledger(path) as ledger:
            assert Counter(ledger.proposals()["submission"]) == {"accepted": 120}
            by_key = ledger.proposals().set_index("key")
        after = accept_counts(sb)
        # Every confirmed one was received exactly as often as before the rerun: never again.
        for key in confirmed:
            row = by_key.loc[key]
            body = (row["userId"], row["learningPathId"], row["status"])
            assert after[body] == bodies_before[body] == 1
        assert len(after) == 120


def test_a_second_submit_on_the_same_ledger_is_refused(tmp_path: Path) -> None:
    path, _ = make_ledger(tmp_path, 40)
    with Sandbox(key=KEY, rate=1000, burst=1000, latency_ms=100) as sb:
        env = {**os.environ, "TI_API_KEY": KEY}
        first = subprocess.Popen(
            [
                RECON,
                "submit",
                "--ledger",
                str(path),
                "--base-url",
                sb.url,
                "--rate",
                "10",
                "--burst",
                "1",
                "--concurrency",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while not accepted(sb) and time.monotonic() < deadline:
                time.sleep(0.02)
            second = subprocess.run(
                [RECON, "submit", "--ledger", str(path), "--base-url", sb.url],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 2
            assert "another `recon submit` is running" in second.stderr
            with Ledger(path) as ledger, pytest.raises(LedgerBusyError):
                submit(ledger, ApiClient(sb.url, KEY), progress=False)
        finally:
            first.kill()
            first.wait(timeout=10)


def test_cli_approve_reject_status(tmp_path: Path, write_case, capsys) -> None:
    config = write_case(
        [
            ext("ann@example.com", "SAFE-101", "Completed", "2026-01-10"),
            ext("bob@example.com", "DATA-200", "In Progress", "", "2026-02-01"),
        ]
    )
    ledger = str(tmp_path / "l.db")
    assert reconcile_into(config, tmp_path / "o", ledger) == 1
    assert main(["approve", "--ledger", ledger]) == 2  # no filter: refused, nothing decided
    assert (
        main(
            [
                "approve",
                "--ledger",
                ledger,
                "--category",
                "missing-completion",
                "--by",
                "ana",
                "--note",
                "provider confirmed",
            ]
        )
        == 0
    )
    assert main(["reject", "--ledger", ledger, "--path", "lp-data", "--by", "ana"]) == 0
    capsys.readouterr()
    assert main(["status", "--ledger", ledger]) == 0
    out = capsys.readouterr().out
    assert "approved 1" in out and "rejected 1" in out
    with Ledger(ledger) as opened:
        decisions = opened.decisions()
    assert decisions["decision"].tolist() == ["approved", "rejected"]
    assert decisions["note"].tolist()[0] == "provider confirmed"
    assert main(["status", "--ledger", str(tmp_path / "missing.db")]) == 2


class ScriptedApi:
    """A loopback HTTP server answering every POST with ``script(n)`` -> (status, headers,
    JSON body or None): for answers the sandbox never gives (a record-level 400, 403).
    Its ping answers ``ping`` (a real LMS's ``{"valid": true}`` by default)."""

    def __init__(
        self,
        script: Callable[[int], tuple[int, dict[str, str], object]],
        ping: object = None,
    ) -> None:
        self.script = script
        self.ping = {"valid": True} if ping is None else ping
        self.requests = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                data = json.dumps(outer.ping).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer._lock:
                    outer.requests += 1
                    n = outer.requests
                status, headers, body = outer.script(n)
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ScriptedApi:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_redirect_is_never_taken_for_acceptance(ledger_of) -> None:
    ledger, _ = ledger_of(5)
    with ScriptedApi(lambda n: (302, {"Location": "/login"}, None)) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
        assert api.requests <= FAST.concurrency + 1
    assert report.exit_code == 2 and "redirect" in (report.fatal or "")
    assert report.accepted == 0
    assert states(ledger) == {"not-sent": 5}
    assert ledger.accepted_keys() == set()
    assert isinstance(report.error, RedirectError) and report.error.location == "/login"


def test_a_redirected_ping_stops_before_sending_with_its_own_error(ledger_of) -> None:
    ledger, _ = ledger_of(2)
    with Scripted(answers((307, {"Location": "/sso"}, b""))) as api:  # GETs scripted too
        with pytest.raises(RedirectError) as caught:
            ApiClient(api.url, KEY).ping()
        report = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
        assert api.received == 2  # the two pings; no POST
    assert caught.value.url == api.url + "/incoming/v2/ping" and caught.value.key is None
    assert (caught.value.status, caught.value.location) == (307, "/sso")
    assert isinstance(report.error, RedirectError) and report.error.key is None
    assert report.exit_code == 2 and "nothing was sent" in (report.fatal or "")
    assert ledger.attempts().empty


def test_a_redirected_record_stops_the_run_naming_its_url_and_key(ledger_of) -> None:
    ledger, keys = ledger_of(3)
    where = "https://login.example.com/sso?next=%2Fapi"
    pace = Pace(rate=500, burst=500, concurrency=1)
    with ScriptedLms(answers((302, {"Location": where}, b""))) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=pace, progress=False)
        assert api.received == 1
    error = report.error
    assert report.exit_code == 2 and isinstance(error, RedirectError)
    assert (error.status, error.url, error.location) == (302, api.url + ACTIVITY_PATH, where)
    (attempt,) = ledger.attempts().to_dict("records")
    assert attempt["http_status"] == 302 and attempt["result"] == lg.STOPPED
    assert error.key == attempt["key"] and error.key in keys
    assert report.to_dict()["stopped_at"] == error.key
    assert f"(a redirect to {where})" in (report.fatal or "")
    assert KEY not in repr(vars(error)) + str(error)
    assert states(ledger) == {"not-sent": 3}


@pytest.mark.parametrize("status", [401, 404, 500])
def test_every_stopping_answer_names_the_url_and_the_proposal(ledger_of, status: int) -> None:
    ledger, keys = ledger_of(2)
    pace = Pace(rate=500, burst=500, concurrency=1, max_tries=1)
    with ScriptedLms(answers((status, {}, b""))) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=pace, progress=False)
    if status == 500:  # transient: failed, not a stop; nothing to name
        assert report.error is None and report.failed == 2
        return
    assert isinstance(report.error, ApiError) and report.error.status == status
    assert report.error.url == api.url + ACTIVITY_PATH and report.error.key in keys


def test_ping_wants_the_api_answer() -> None:
    with Sandbox(key=KEY) as sb:
        assert ApiClient(sb.url, KEY).ping() == {"valid": True, "practice": True}
        with pytest.raises(ApiError, match="refused"):
            ApiClient(sb.url, "wrong-key").ping()


BLANKED = "pasted-k3y-7781"  # a key as copied from a CRLF .env file, with blanks around


def leaks(text: str, key: str = BLANKED) -> bool:
    """True when ``text`` shows the key, or a half of it."""
    return any(part in text for part in (key, key[: len(key) // 2], key[len(key) // 2 :]))


@pytest.mark.parametrize(
    "given",
    [f"{BLANKED}\r", f"{BLANKED}\n", f"{BLANKED}\r\n", f" {BLANKED}\r\n", f"\t{BLANKED} "],
    ids=["CR", "LF", "CRLF", "space-CRLF", "tab-space"],
)
def test_a_key_with_blanks_around_is_sent_cleaned_and_never_shown(
    tmp_path: Path, given: str
) -> None:
    """A CRLF .env file leaves CR/LF after the key: recon sends the key without them, and
    neither form reaches the terminal, the ledger or any file, also when the server
    echoes the Authorization header back in every answer."""
    path, _ = make_ledger(tmp_path, 3)
    auth: list[str] = []

    def script(n: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        auth.append(headers.get("Authorization", ""))
        return echo_key(n, headers)

    with ScriptedLms(script) as api:
        env = {**os.environ, "TI_API_KEY": given}
        args = ["--ledger", str(path), "--base-url", api.url, "--concurrency", "1"]
        ping = subprocess.run(
            [RECON, "ping", "--base-url", api.url], env=env, capture_output=True, text=True
        )
        done = subprocess.run(
            [RECON, "submit", *args], env=env, capture_output=True, text=True, timeout=60
        )
    assert ping.returncode == 0, ping.stderr
    assert auth and set(auth) == {f"Bearer {BLANKED}"}  # cleaned: no CR, LF or blank
    out = ping.stdout + ping.stderr + done.stdout + done.stderr
    assert done.returncode == 2, out  # echo_key's third answer is a 200 with a body
    assert "bad: Bearer <API key>" in out  # the echo was there, blanked
    assert not leaks(out), out
    for file in tmp_path.iterdir():
        if file.is_file():
            assert not leaks(file.read_bytes().decode("latin-1")), file


@pytest.mark.parametrize(
    "given",
    [
        f"{BLANKED[:6]}\r\n{BLANKED[6:]}",  # a line break inside
        f"{BLANKED[:6]}\r{BLANKED[6:]}",
        f"{BLANKED[:6]} {BLANKED[6:]}",
        f"{BLANKED[:6]}\x00{BLANKED[6:]}",
        f"{BLANKED[:6]}\u2014{BLANKED[6:]}",
        f"{BLANKED}\x1b[0m",
    ],
    ids=["CRLF-inside", "CR-inside", "space-inside", "NUL", "dash", "escape-after"],
)
def test_a_key_that_cannot_be_a_header_is_refused_without_a_request_or_an_echo(
    given: str,
) -> None:
    with Scripted(lambda n, h: (200, {}, b""), ping={"valid": True}) as api:
        with pytest.raises(AuthError) as caught:
            ApiClient(api.url, given)
        assert "TI_API_KEY" in str(caught.value) and not leaks(str(caught.value))
        if "\x00" not in given:  # the environment cannot hold a NUL
            done = subprocess.run(
                [RECON, "ping", "--base-url", api.url],
                env={**os.environ, "TI_API_KEY": given},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 2 and "TI_API_KEY" in done.stderr
            assert not leaks(done.stdout + done.stderr), done.stderr
        assert api.pings == api.received == 0  # refused before anything was sent


def test_transport_errors_are_stored_without_the_key(ledger_of) -> None:
    ledger, _ = ledger_of(2)
    pace = Pace(rate=500, burst=500, concurrency=1, max_tries=2, backoff_base=0.01)
    with Sandbox(key=KEY, rate=1000, burst=1000, drop_rate=1.0) as sb:  # every POST dropped
        report = submit(ledger, ApiClient(sb.url, KEY), pace=pace, progress=False)
    assert report.failed == 2
    stored = " ".join(ledger.attempts()["errors"].dropna())
    assert "ConnectionError" in stored and KEY not in stored


def test_a_proposal_rejected_during_a_submit_is_not_sent(ledger_of, sandbox: Sandbox) -> None:
    ledger, keys = ledger_of(10)
    second = Ledger(ledger.path)

    def change_of_mind(report) -> None:
        if report.accepted == 1:
            second.decide(keys, "rejected", by="ben", note="stop")

    pace = Pace(rate=500, burst=500, concurrency=1)
    report = submit(
        ledger, ApiClient(sandbox.url, KEY), pace=pace, progress=False, on_progress=change_of_mind
    )
    second.close()
    assert report.accepted == 1 and report.skipped == 9
    assert len(accepted(sandbox)) == 1
    assert report.exit_code == 0 and report.remaining == 0


def test_an_unexpected_error_stops_with_exit_2(ledger_of, sandbox: Sandbox) -> None:
    ledger, _ = ledger_of(3)
    client = ApiClient(sandbox.url, KEY, read_timeout=0)  # requests refuses a 0 timeout
    report = submit(ledger, client, pace=FAST, progress=False)
    assert report.exit_code == 2 and "unexpected ValueError" in (report.fatal or "")


def test_the_lock_holds_across_a_symlink(tmp_path: Path) -> None:
    path = tmp_path / "real.db"
    Ledger(path).close()
    alias = tmp_path / "alias.db"
    alias.symlink_to(path)
    with (
        Ledger(path) as one,
        Ledger(alias) as two,
        one.submission_lock(),
        pytest.raises(LedgerBusyError),
        two.submission_lock(),
    ):
        pass


# -- issue 9: an acceptance is a real one, answers recorded first, the key stays home -----

LOGIN_PAGE = b"<!doctype html><html><head><title>Sign in</title></head><body>...</body></html>"


def answers(*items: tuple[int, dict[str, str], bytes]) -> Callable[..., tuple]:
    """A script giving ``items`` in turn, the last one forever."""
    return lambda n, headers: items[min(n, len(items)) - 1]


@pytest.mark.parametrize("body", [LOGIN_PAGE, b"{}", b"OK", b" ", b"null"])
def test_a_200_with_a_body_is_not_an_acceptance(ledger_of, body: bytes) -> None:
    ledger, _ = ledger_of(5)
    answer = {"body": body}

    def script(n: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/html"}, answer["body"]

    with ScriptedLms(script) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
        assert api.received <= FAST.concurrency
        assert report.exit_code == 2 and report.accepted == 0
        assert "answered 200 with a body" in (report.fatal or "")
        assert body.decode()[:40] in (report.fatal or "")
        assert states(ledger) == {"not-sent": 5} and ledger.accepted_keys() == set()
        # Those records stay to send: once the LMS answers as documented, it gets them.
        answer["body"] = b""
        later = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
    assert later.accepted == 5 and states(ledger) == {"accepted": 5}


@pytest.mark.parametrize("status", [201, 202, 204])
def test_other_2xx_are_not_acceptances(ledger_of, status: int) -> None:
    ledger, _ = ledger_of(4)
    with ScriptedLms(answers((status, {}, b""))) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
    assert report.exit_code == 2 and report.accepted == 0
    assert f"answered HTTP {status}" in (report.fatal or "")
    assert states(ledger) == {"not-sent": 4}


def test_408_is_retried_like_a_server_error(ledger_of) -> None:
    ledger, _ = ledger_of(3)
    script = answers((408, {}, b""), (408, {}, b""), (200, {}, b""))
    pace = Pace(rate=500, burst=500, concurrency=1, backoff_base=0.01)
    with ScriptedLms(script) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=pace, progress=False)
    assert report.accepted == 3 and report.exit_code == 0
    attempts = ledger.attempts()
    assert list(attempts["http_status"]) == [408, 408, 200, 200, 200]
    assert list(attempts["result"])[:2] == [lg.RETRY, lg.RETRY]


def test_a_4xx_without_the_apis_errors_stops_and_keeps_records_unsent(ledger_of) -> None:
    ledger, _ = ledger_of(4)
    with ScriptedLms(answers((400, {"Content-Type": "text/html"}, b"<h1>Bad Request</h1>"))) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
    assert report.exit_code == 2 and report.rejected_total == 0
    assert "<h1>Bad Request</h1>" in (report.fatal or "")
    assert states(ledger) == {"not-sent": 4}
    assert ledger.to_send()["key"].size == 4


def test_odd_rate_headers_on_200_are_recorded_as_accepted_once(ledger_of) -> None:
    # The case: X-RateLimit-Remaining: nan raised, left the record unknown, and
    # reruns delivered the same body again and again.
    headers = {"X-RateLimit-Remaining": "nan", "X-RateLimit-Reset": "1e309", "Retry-After": "x"}
    ledger, _ = ledger_of(4)
    with ScriptedLms(answers((200, headers, b""))) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
        again = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
        assert api.received == 4
    assert report.accepted == 4 and report.exit_code == 0 and again.planned == 0
    assert states(ledger) == {"accepted": 4}


@pytest.mark.parametrize(
    ("rate", "reset", "wait"),
    [
        (1.0, "0.6", 0.6),  # the reset comes before the next interval: wait until it
        (1.0, "unix+0.6", 0.6),  # the same, the reset as a Unix time (the vendor's form)
        (2.0, "30", 0.5),  # the reset is later than one interval: one interval
        (2.0, None, 0.5),  # no reset given: one interval
    ],
    ids=["reset-seconds", "reset-unix-time", "interval-sooner", "no-reset"],
)
def test_no_requests_remaining_holds_the_next_request_back(
    ledger_of, rate: float, reset: str | None, wait: float
) -> None:
    """`X-RateLimit-Remaining: 0` on an accepted answer: the next request waits one
    interval, or until `X-RateLimit-Reset` when sooner (README, Sending); before it the
    requests go at once (the burst is large), after it at the steady rate."""
    ledger, _ = ledger_of(4)

    def script(n: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if n != 2:
            return 200, {"X-RateLimit-Remaining": "7"}, b""
        limit = {"X-RateLimit-Remaining": "0"}
        if reset is not None:
            limit["X-RateLimit-Reset"] = (
                f"{time.time() + 0.6:.3f}" if reset.startswith("unix") else reset
            )
        return 200, limit, b""

    pace = Pace(rate=rate, burst=100, concurrency=1)
    with ScriptedLms(script) as api:
        report = submit(ledger, ApiClient(api.url, KEY), pace=pace, progress=False)
        gaps = [later - earlier for earlier, later in itertools.pairwise(api.times)]
    assert report.accepted == 4 and report.throttled == 0
    assert len(gaps) == 3
    # Upper bounds leave room for a loaded machine, below the next wrong answer (the
    # pause plus one more interval).
    assert gaps[0] < 0.4, gaps  # the burst: no pause before the header
    assert wait - 0.05 <= gaps[1] < wait + 0.45, gaps  # the pause, and not one more interval
    # After the pause sending resumes at the steady rate, not in a burst.
    assert 1 / rate - 0.05 <= gaps[2] < 1 / rate + 0.45, gaps


def test_retry_after_as_an_http_date_is_honoured(ledger_of) -> None:
    def script(n: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if n > 1:
            return 200, {}, b""
        now = datetime.now(UTC).replace(microsecond=0)
        later = format_datetime(now + timedelta(seconds=2), usegmt=True)
        return 429, {"Retry-After": later, "Date": format_datetime(now, usegmt=True)}, b""

    ledger, _ = ledger_of(1)
    with ScriptedLms(script) as api:
        started = time.monotonic()
        report = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
        took = time.monotonic() - started
    assert report.accepted == 1 and report.throttled == 1
    assert 1.5 <= took < 6


def test_persistent_throttling_gives_up_after_the_runs_cap(ledger_of) -> None:
    ledger, _ = ledger_of(6)
    pace = Pace(rate=500, burst=500, concurrency=2, max_throttled_seconds=1.5)
    with ScriptedLms(
        answers((429, {"Retry-After": "1"}, b'{"error": "rate_limit_exceeded"}'))
    ) as api:
        started = time.monotonic()
        report = submit(ledger, ApiClient(api.url, KEY), pace=pace, progress=False)
        took = time.monotonic() - started
    assert took < 6  # not 50 tries of a second per record
    assert report.gave_up and "429" in report.gave_up and report.fatal is None
    assert report.exit_code == 1 and report.accepted == 0
    assert "GAVE UP" in report.render()
    assert report.failed >= 1 and set(states(ledger)) <= {"failed", "not-sent"}
    stored = json.loads(ledger.attempts()["errors"].dropna().iloc[0])
    assert stored == ["rate_limit_exceeded"]


def test_a_tls_failure_stops_at_once(ledger_of, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    ledger, _ = ledger_of(10)
    cert, key = self_signed(tmp_path, "127.0.0.1")
    with ScriptedLms(answers((200, {}, b"")), tls=server_tls(cert, key)) as api:
        started = time.monotonic()
        report = submit(ledger, ApiClient(api.url, KEY), pace=FAST, progress=False)
        took = time.monotonic() - started
        assert api.received == 0
    assert report.exit_code == 2 and "TLS certificate" in (report.fatal or "")
    assert report.requests <= FAST.concurrency and report.failed == 0
    assert took < 5  # not retried with backoff
    assert states(ledger) == {"not-sent": 10}


def test_a_trickling_server_cannot_hold_a_submit(ledger_of) -> None:
    ledger, _ = ledger_of(2)
    pace = Pace(rate=500, burst=500, concurrency=2, max_tries=2, backoff_base=0.01)
    with Trickle("body", every=0.05, ping=True) as slow:
        started = time.monotonic()
        client = ApiClient(slow.url, KEY, read_timeout=1.0, deadline=1.0)
        report = submit(ledger, client, pace=pace, progress=False)
        took = time.monotonic() - started
    assert report.failed == 2 and took < 6
    assert "total deadline" in " ".join(ledger.attempts()["errors"].dropna())


def echo_key(n: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """A server that puts the Authorization header it got into every answer."""
    auth = headers.get("Authorization", "")
    if n == 1:
        forms = [auth, json.dumps(auth)[1:-1], quote(auth, safe=""), escape(auth), auth.upper()]
        return 400, {}, json.dumps({"errors": [f"bad: {f}" for f in forms]}).encode()
    if n == 2:
        return 503, {}, f"upstream said {auth}".encode()
    return 200, {}, f"welcome {auth}".encode()


def test_the_key_stays_out_of_the_ledger_report_and_terminal(tmp_path: Path) -> None:
    path, _ = make_ledger(tmp_path, 3)
    with ScriptedLms(echo_key) as api:
        env = {**os.environ, "TI_API_KEY": KEY}
        done = subprocess.run(
            [RECON, "submit", "--ledger", str(path), "--base-url", api.url, "--concurrency", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert api.received == 3
    out = done.stdout + done.stderr
    assert done.returncode == 2, out  # the 200 with a body stopped the run
    assert "welcome Bearer <API key>" in out and "bad: Bearer <API key>" in out
    assert KEY not in out and KEY.upper() not in out
    for file in tmp_path.iterdir():
        if file.is_file():
            data = file.read_bytes().decode("latin-1")
            assert KEY not in data and KEY.upper() not in data, file
    with Ledger(path) as ledger:
        stored = json.dumps(ledger.attempts().astype(str).values.tolist())
        report = json.dumps(submit(ledger, None, dry_run=True, progress=False).to_dict())
    assert "<API key>" in stored and KEY not in stored and KEY not in report


def test_a_hostile_answer_cannot_forge_a_line(tmp_path: Path) -> None:
    forged = "\x1b[2J\x1b[H\r  accepted       240\n  rejected         0\x08\x08\u202e"
    path, _ = make_ledger(tmp_path, 2)
    body = json.dumps({"errors": [forged]}).encode()
    with ScriptedLms(answers((400, {}, body))) as api:
        done = subprocess.run(
            [RECON, "submit", "--ledger", str(path), "--base-url", api.url],
            env={**os.environ, "TI_API_KEY": KEY},
            capture_output=True,
            text=True,
            timeout=60,
        )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", out)
    accepted_lines = [line for line in out.splitlines() if line.lstrip().startswith("accepted")]
    assert accepted_lines == ["  accepted         0"]
    assert "\\x1b[2J" in out  # shown, harmless


def test_ctrl_c_records_every_answer_in_flight_and_nothing_is_sent_twice(
    tmp_path: Path,
) -> None:
    """SIGINT to a real `recon submit` while requests to a slow server are in flight, at
    five different moments: it exits 2 saying so, each request the server answered has
    its answer in the ledger (none left unknown), and the next submit sends the rest
    only: every record reaches the server exactly once in all."""
    for round_ in range(5):
        folder = tmp_path / f"round-{round_}"
        folder.mkdir()
        path, keys = make_ledger(folder, 30)
        args = [RECON, "submit", "--ledger", str(path)]
        env = {**os.environ, "TI_API_KEY": KEY}
        with ScriptedLms(answers((200, {}, b"")), delay=0.6) as api:
            proc = subprocess.Popen(
                [
                    *args,
                    "--base-url",
                    api.url,
                    "--rate",
                    "100",
                    "--burst",
                    "10",
                    "--concurrency",
                    "4",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 30
            while api.received < 1 + round_ % 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05 * round_)  # land at different moments of the requests
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            time.sleep(0.8)  # let the server finish any answer the client walked away from
            received, answered = api.received, api.answered
            with Ledger(path) as ledger:
                attempts = ledger.attempts()
            api.delay = 0.0
            rest = subprocess.run(
                [*args, "--base-url", api.url, "--rate", "500", "--burst", "50"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            bodies = Counter(api.bodies)
        assert proc.returncode == 2, out + err
        assert "interrupted" in out + err
        assert attempts["result"].notna().all(), attempts  # nothing left unknown
        assert received == answered == len(attempts) < 30
        assert (attempts["result"] == lg.ACCEPTED).sum() == answered
        assert rest.returncode == 0, rest.stdout + rest.stderr
        with Ledger(path) as ledger:
            assert states(ledger) == {"accepted": 30}
        assert len(bodies) == 30 and set(bodies.values()) == {1}  # each sent once in all
