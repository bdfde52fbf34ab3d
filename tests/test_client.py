"""The API client and the answer rules, over real loopback HTTP: what each answer means
(the README's "Sending" table, row by row), base URLs judged as requests sends them,
proxies, header parsing, the total deadline, TLS, and the key kept out of every text."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import OneShot, RecordingProxy, Scripted, Trickle, self_signed, server_tls
from urllib3.util import parse_url

from recon import ledger as lg
from recon.client import (
    ACTIVITY_PATH,
    DEADLINE,
    DROPPED,
    MIN_KEY_LENGTH,
    TIMEOUT,
    TLS,
    UNSENDABLE,
    Answer,
    ApiClient,
    check_base_url,
    parse_remaining,
    parse_reset,
    parse_retry_after,
    printable,
)
from recon.errors import (
    ApiError,
    AuthError,
    FeatureOffError,
    NotFoundError,
    RedirectError,
    TlsError,
    UnexpectedAnswerError,
)
from recon.sandbox import DEFAULT_KEY
from recon.submit import AGAIN, DONE, GIVE_UP, RULES, STOP, Pace, judge
from recon.validation import MSG_FEATURE_OFF

KEY = "test-key-not-secret"
BODY = {"userId": "u-1", "learningPathId": "lp-1", "status": "completed"}
README = Path(__file__).resolve().parents[1] / "README.md"
URL = "https://lms.example.com/incoming/v2/learningPathExternalActivity"


def ok(n: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, b""


# -- the answer rules: one row per README row ---------------------------------------------


def ans(status: int | None, **fields: Any) -> Answer:
    return Answer(status=status, url=URL, **fields)


# (rule, answer, context, ledger result, next step, what else must hold)
TABLE: list[tuple[str, Answer, dict[str, Any], str, str, dict[str, Any]]] = [
    ("accepted", ans(200), {}, lg.ACCEPTED, DONE, {"pause": 0.0}),
    ("accepted", ans(200, remaining=0, reset_in=0.1), {}, lg.ACCEPTED, DONE, {"pause": 0.1}),
    ("accepted", ans(200, remaining=0), {}, lg.ACCEPTED, DONE, {"pause": 0.5}),
    (
        "body-on-200",
        ans(200, body="<html>Sign in</html>", body_bytes=20),
        {},
        lg.STOPPED,
        STOP,
        {"fatal": UnexpectedAnswerError},
    ),
    (
        "body-on-200",
        ans(200, body=" ", body_bytes=1),
        {},
        lg.STOPPED,
        STOP,
        {"fatal": UnexpectedAnswerError},
    ),
    (
        "body-on-200",
        ans(200, body="{}", body_bytes=2),
        {},
        lg.STOPPED,
        STOP,
        {"fatal": UnexpectedAnswerError},
    ),
    ("other-2xx", ans(201), {}, lg.STOPPED, STOP, {"fatal": UnexpectedAnswerError}),
    ("other-2xx", ans(202), {}, lg.STOPPED, STOP, {"fatal": UnexpectedAnswerError}),
    ("other-2xx", ans(204), {}, lg.STOPPED, STOP, {"fatal": UnexpectedAnswerError}),
    ("other-2xx", ans(100), {}, lg.STOPPED, STOP, {"fatal": UnexpectedAnswerError}),
    ("redirect", ans(302), {}, lg.STOPPED, STOP, {"fatal": RedirectError}),
    ("redirect", ans(307), {}, lg.STOPPED, STOP, {"fatal": RedirectError}),
    (
        "feature-off",
        ans(400, errors=[MSG_FEATURE_OFF]),
        {},
        lg.STOPPED,
        STOP,
        {"fatal": FeatureOffError},
    ),
    (
        "rejected",
        ans(400, errors=["invalid status"]),
        {},
        lg.REJECTED,
        DONE,
        {"errors": ("invalid status",)},
    ),
    ("rejected", ans(422, errors=["learner is not enrolled"]), {}, lg.REJECTED, DONE, {}),
    ("rejected", ans(409, errors=["conflict"]), {}, lg.REJECTED, DONE, {}),
    (
        "4xx-without-errors",
        ans(400, body="<html>Bad Request</html>", body_bytes=24),
        {},
        lg.STOPPED,
        STOP,
        {"fatal": UnexpectedAnswerError},
    ),
    ("4xx-without-errors", ans(405), {}, lg.STOPPED, STOP, {"fatal": UnexpectedAnswerError}),
    ("4xx-without-errors", ans(422), {}, lg.STOPPED, STOP, {"fatal": UnexpectedAnswerError}),
    ("auth", ans(401), {}, lg.STOPPED, STOP, {"fatal": AuthError}),
    ("auth", ans(403, errors=["forbidden"]), {}, lg.STOPPED, STOP, {"fatal": AuthError}),
    ("not-found", ans(404), {}, lg.STOPPED, STOP, {"fatal": NotFoundError}),
    (
        "throttled",
        ans(429, retry_after=3.0),
        {},
        lg.RETRY,
        AGAIN,
        {"pause": 3.0, "throttled": True},
    ),
    ("throttled", ans(429), {}, lg.RETRY, AGAIN, {"pause": 1.0, "throttled": True}),
    ("throttled", ans(429, reset_in=7.0), {}, lg.RETRY, AGAIN, {"pause": 7.0}),
    ("throttled", ans(429, retry_after=2.0, reset_in=7.0), {}, lg.RETRY, AGAIN, {"pause": 2.0}),
    ("throttled", ans(429, retry_after=1e6), {}, lg.RETRY, AGAIN, {"pause": 120.0}),
    (
        "throttled",
        ans(429, retry_after=30.0),
        {"throttled_seconds": 590.0},
        lg.RETRY,
        AGAIN,
        {"pause": 10.0},
    ),
    (
        "throttled",
        ans(429, retry_after=1.0),
        {"throttled": 49},
        lg.FAILED,
        DONE,
        {"throttled": True},
    ),
    (
        "throttled-too-long",
        ans(429, retry_after=1.0),
        {"throttled_seconds": 600.0},
        lg.FAILED,
        GIVE_UP,
        {"fatal": ApiError},
    ),
    ("transient", ans(500), {}, lg.RETRY, AGAIN, {"transient": True, "backoff": 0.5}),
    ("transient", ans(503), {"tries": 2}, lg.RETRY, AGAIN, {"backoff": 2.0}),
    ("transient", ans(503), {"tries": 4}, lg.FAILED, DONE, {"transient": True}),
    ("transient", ans(408), {}, lg.RETRY, AGAIN, {"transient": True}),
    ("transient", ans(503, remaining=0, reset_in=0.2), {}, lg.RETRY, AGAIN, {"pause": 0.2}),
    (
        "transient",
        ans(None, failure=TIMEOUT, errors=["ReadTimeout: ..."]),
        {},
        lg.RETRY,
        AGAIN,
        {"errors": ("ReadTimeout: ...",)},
    ),
    ("transient", ans(None, failure=DEADLINE), {}, lg.RETRY, AGAIN, {}),
    ("transient", ans(None, failure=DROPPED), {"tries": 4}, lg.FAILED, DONE, {}),
    (
        "tls",
        ans(None, failure=TLS, errors=["SSLError: certificate verify failed"]),
        {},
        lg.STOPPED,
        STOP,
        {"fatal": TlsError},
    ),
    (
        "unsendable",
        ans(None, failure=UNSENDABLE, errors=["InvalidHeader: x"]),
        {},
        lg.STOPPED,
        STOP,
        {"fatal": ApiError},
    ),
    ("unknown-status", ans(600), {}, lg.STOPPED, STOP, {"fatal": UnexpectedAnswerError}),
    ("unknown-status", ans(999), {}, lg.STOPPED, STOP, {"fatal": UnexpectedAnswerError}),
]


# The README's "Sending" table, row by row, as the test holds it: (rule, the "answer"
# cell, the "what recon does" cell exactly, the ledger results and next steps the rule's
# cases above may give). Rewording a row in the README, or changing what a rule does,
# fails here until the two agree again.
README_ROWS: list[tuple[str, str, str, set[str], set[str]]] = [
    ("accepted", RULES["accepted"], "accepted; final", {lg.ACCEPTED}, {DONE}),
    (
        "body-on-200",
        RULES["body-on-200"],
        "stops the whole run (exit 2), quoting the first 200 characters; the record stays unsent",
        {lg.STOPPED},
        {STOP},
    ),
    (
        "other-2xx",
        RULES["other-2xx"],
        "stops the run (exit 2); the record stays unsent",
        {lg.STOPPED},
        {STOP},
    ),
    ("redirect", RULES["redirect"], "stops the run (exit 2)", {lg.STOPPED}, {STOP}),
    ("feature-off", RULES["feature-off"], "stops the run (exit 2)", {lg.STOPPED}, {STOP}),
    (
        "rejected",
        RULES["rejected"],
        "rejected; the messages are stored; final, not retried",
        {lg.REJECTED},
        {DONE},
    ),
    (
        "4xx-without-errors",
        RULES["4xx-without-errors"],
        "stops the run (exit 2), quoting the body; the record stays unsent",
        {lg.STOPPED},
        {STOP},
    ),
    ("auth", RULES["auth"], "stops the run (exit 2)", {lg.STOPPED}, {STOP}),
    ("not-found", RULES["not-found"], "stops the run (exit 2)", {lg.STOPPED}, {STOP}),
    (
        "throttled",
        RULES["throttled"],
        "everyone waits `Retry-After` (seconds or an HTTP date; at most 120 s), then retries; "
        "a record throttled 50 times is `failed`",
        {lg.RETRY, lg.FAILED},
        {AGAIN, DONE},
    ),
    (
        "throttled-too-long",
        RULES["throttled-too-long"],
        'the run gives up (exit 1, "GAVE UP"): that record is `failed`, the rest stay to send',
        {lg.FAILED},
        {GIVE_UP},
    ),
    (
        "transient",
        RULES["transient"],
        "retried with exponential backoff and jitter, 5 tries, then `failed`; a later "
        "`recon submit` retries failed ones",
        {lg.RETRY, lg.FAILED},
        {AGAIN, DONE},
    ),
    (
        "tls",
        RULES["tls"],
        "stops the run at once (exit 2), never retried",
        {lg.STOPPED},
        {STOP},
    ),
    ("unsendable", RULES["unsendable"], "stops the run (exit 2)", {lg.STOPPED}, {STOP}),
    ("unknown-status", RULES["unknown-status"], "stops the run (exit 2)", {lg.STOPPED}, {STOP}),
]


def readme_sending_table() -> list[tuple[str, str]]:
    """(answer, what recon does) of each row of the README's "Sending" table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Sending", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows and rows[0].startswith("| answer | what recon does | why |"), rows[:1]
    cells = [row.removeprefix("| ").removesuffix(" |").split(" | ") for row in rows[1:]]
    assert all(len(row) == 3 for row in cells), cells  # a stray "|" would shift the cells
    return [(row[0].strip(), row[1].strip()) for row in cells]


@pytest.mark.parametrize(
    ("rule", "answer", "context", "result", "step", "also"),
    TABLE,
    ids=[f"{row[0]}-{row[1].status or row[1].failure}" for row in TABLE],
)
def test_each_answer_follows_its_readme_row(
    rule: str,
    answer: Answer,
    context: dict[str, Any],
    result: str,
    step: str,
    also: dict[str, Any],
) -> None:
    verdict = judge(answer, pace=Pace(), **context)
    assert (verdict.rule, verdict.result, verdict.step) == (rule, result, step)
    # What the README row says this rule does allows this result and this next step.
    (row,) = [r for r in README_ROWS if r[0] == rule]
    assert result in row[3] and step in row[4], row[2]
    for name, expected in also.items():
        if name == "fatal":
            assert type(verdict.fatal) is expected
        else:
            assert getattr(verdict, name) == pytest.approx(expected), name
    if step in (STOP, GIVE_UP):
        assert isinstance(verdict.fatal, ApiError) and str(verdict.fatal)
        assert verdict.fatal.url == (answer.url or None)
        assert "fatal" in also, "say which error type this row raises"
    else:
        assert verdict.fatal is None
    # The stored messages are always something to read.
    if result != lg.ACCEPTED:
        assert verdict.errors and all(verdict.errors)


def test_the_table_covers_every_rule_and_the_readme_lists_them_in_order() -> None:
    assert {row[0] for row in TABLE} == set(RULES)
    assert [row[0] for row in README_ROWS] == list(RULES)
    assert readme_sending_table() == [(row[1], row[2]) for row in README_ROWS]
    # Every result and next step a README row allows is one some case of it shows.
    for rule, _, does, results, steps in README_ROWS:
        cases = [row for row in TABLE if row[0] == rule]
        assert {row[3] for row in cases} == results, does
        assert {row[4] for row in cases} == steps, does


def test_the_readmes_numbers_are_the_default_pace() -> None:
    does = dict((row[0], row[2]) for row in README_ROWS)
    pace = Pace()

    def number(rule: str, pattern: str) -> float:
        found = re.search(pattern, does[rule])
        assert found, (rule, pattern)
        return float(found.group(1))

    assert number("throttled", r"at most (\d+) s") == pace.retry_after_cap
    assert number("throttled", r"throttled (\d+) times") == pace.max_throttled
    assert number("transient", r"(\d+) tries") == pace.max_tries
    text = README.read_text(encoding="utf-8")
    found = re.search(r"default (\d+) s of waiting per run", text)
    assert found and float(found.group(1)) == pace.max_throttled_seconds
    # The row cases above use the default pace too: the 49th 429 is the 50th, the 5th
    # transient failure the last try.
    assert judge(ans(429), throttled=pace.max_throttled - 1).result == lg.FAILED
    assert judge(ans(429), throttled=pace.max_throttled - 2).result == lg.RETRY
    assert judge(ans(503), tries=pace.max_tries - 1).result == lg.FAILED
    assert judge(ans(503), tries=pace.max_tries - 2).result == lg.RETRY


def test_a_stop_quotes_the_body_it_got() -> None:
    verdict = judge(ans(200, body="<html><title>Sign in</title>", body_bytes=300))
    assert "<html><title>Sign in</title>" in str(verdict.fatal)
    assert "not counted as accepted" in str(verdict.fatal)
    assert verdict.errors == ("HTTP 200: <html><title>Sign in</title>",)


# -- headers ------------------------------------------------------------------------------

NOW = 1_780_000_000.0


def http_date(moment: float) -> str:
    return format_datetime(datetime.fromtimestamp(moment, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", None),
        ("nan", None),
        ("inf", None),
        ("1e309", None),
        ("", None),
        ("soon", None),
        (None, None),
        (http_date(NOW + 30), 30.0),
        (http_date(NOW - 30), 0.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),  # RFC 850, long past
        ("Sun Nov  6 08:49:37 1994", 0.0),  # asctime
        ("Fri, 31 Dec 9999 23:59:59 GMT", 253402300799.0 - NOW),
        ("Mon, 99 Foo 2026 99:99:99 GMT", None),
    ],
)
def test_retry_after_as_seconds_or_an_http_date(value: str | None, expected: float | None) -> None:
    got = parse_retry_after(value, now=NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_retry_after_as_a_date_is_measured_against_the_answers_own_date() -> None:
    # The server's clock says NOW; ours is an hour off: the wait is still 20 s.
    got = parse_retry_after(http_date(NOW + 20), date=http_date(NOW), now=NOW + 3600)
    assert got == pytest.approx(20.0)
    # An unreadable Date header falls back to our clock.
    assert parse_retry_after(http_date(NOW + 20), date="garbage", now=NOW) == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5),
        (" 0 ", 0),
        ("nan", None),
        ("inf", None),
        ("-1", None),
        ("1e309", None),
        ("5.0", None),
        ("garbage", None),
        ("", None),
        (None, None),
        ("9" * 40, None),
    ],
)
def test_remaining_is_a_whole_number_or_unknown(value: str | None, expected: int | None) -> None:
    assert parse_remaining(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (str(int(NOW + 5)), 5.0),
        ("5", 5.0),
        ("2.5", 2.5),
        (str(int(NOW - 50)), 0.0),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("1e309", None),
        ("x", None),
        (None, None),
    ],
)
def test_reset_as_epoch_or_delta(value: str | None, expected: float | None) -> None:
    got = parse_reset(value, now=NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)


@given(st.text(max_size=60), st.text(max_size=40))
def test_no_header_value_raises(value: str, date: str) -> None:
    for got in (
        parse_retry_after(value, date=date),
        parse_retry_after(value),
        parse_reset(value),
    ):
        assert got is None or (isinstance(got, float) and 0 <= got < float("inf"))
    remaining = parse_remaining(value)
    assert remaining is None or (isinstance(remaining, int) and remaining >= 0)


HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
TRICKY = st.sampled_from(
    [
        "nan",
        "inf",
        "-inf",
        "-1",
        "1e309",
        "NaN",
        "0x10",
        "",
        " ",
        "1_000",
        "\xb3",
        "Infinity",
        "\xa0",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "99999999999999999999",
    ]
)


def test_odd_headers_on_a_real_200_are_read_without_raising() -> None:
    current: dict[str, str] = {}
    with Scripted(lambda n, h: (200, dict(current), b"")) as api:
        client = ApiClient(api.url, KEY)

        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            retry_after=TRICKY | HEADER_TEXT,
            remaining=TRICKY | HEADER_TEXT,
            reset=TRICKY | HEADER_TEXT,
        )
        def check(retry_after: str, remaining: str, reset: str) -> None:
            current.clear()
            current.update(
                {
                    "Retry-After": retry_after.strip(),
                    "X-RateLimit-Remaining": remaining.strip(),
                    "X-RateLimit-Reset": reset.strip(),
                }
            )
            answer = client.post_activity(BODY)
            assert answer.status == 200, answer
            assert judge(answer).result == lg.ACCEPTED

        check()
        client.close()


# -- base URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("https://lms.example.com", "https://lms.example.com"),
        ("https://lms.example.com/", "https://lms.example.com"),
        (" HTTPS://LMS.Example.com:8443/api/ ", "https://lms.example.com:8443/api"),
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("http://127.0.0.1:9", "http://127.0.0.1:9"),
        ("http://localhost:8080/prefix", "http://localhost:8080/prefix"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://lms.example.com/a%2Fb", "https://lms.example.com/a%2Fb"),
    ],
)
def test_good_base_urls(given_url: str, expected: str) -> None:
    assert check_base_url(given_url) == expected


@pytest.mark.parametrize(
    ("given_url", "message"),
    [
        ("https://lms.example.com/?company=acme", "has a query"),
        ("https://lms.example.com/#top", "has a fragment"),
        ("https://lms.example.com/api;v=2", "has parameters"),
        ("https://ana:hunter22@lms.example.com", "user:password"),
        ("https://ana@lms.example.com", "user:password"),
        ("https://lms.example.com\\@evil.example", "contains '@'"),
        ("https://lms.example.com\\api", "backslash"),
        ("https://lms.example .com", "spaces"),
        ("https://lms.example.com/\x1b[2J", "control"),
        ("ftp://lms.example.com", "must look like"),
        ("lms.example.com", "must look like"),
        ("https://", "must look like"),
        ("https://lms.example.com:0", "port 0"),
        ("https://lms.example.com:99999", "not a valid URL"),
        ("https://lms.example.com/a/../b", "'..'"),
        ("https://lms.example.com/a$b", "characters"),
        ("http://lms.example.com", "refusing plain http"),
        ("http://127.1", "refusing plain http"),
        ("http://0x7f.0.0.1", "refusing plain http"),
        ("http://2130706433", "refusing plain http"),
        ("http://127.0.0.1.", "refusing plain http"),
        ("http://localhost.", "refusing plain http"),
        ("http://[::ffff:127.0.0.1]", "refusing plain http"),
        ("http://127.0.0.1.nip.io", "refusing plain http"),
        ("", "no base URL"),
    ],
)
def test_bad_base_urls_are_refused(given_url: str, message: str) -> None:
    with pytest.raises(ApiError, match=re.escape(message)) as caught:
        check_base_url(given_url)
    assert "hunter22" not in str(caught.value) and "ana" not in str(caught.value)
    assert "\x1b" not in str(caught.value)


def test_a_key_in_the_url_is_not_echoed() -> None:
    with pytest.raises(ApiError) as caught:
        ApiClient(f"https://lms.example.com/?token={KEY}", KEY)
    assert KEY not in str(caught.value)
    with pytest.raises(ApiError) as caught:
        ApiClient(f"https://lms.example.com/{KEY}$", KEY)
    assert KEY not in str(caught.value)


SECRET = "s3cr3tpw"
URL_PIECES = [
    "127.0.0.1",
    "127.1",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "2130706433",
    "localhost",
    "LocalHost",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[0:0:0:0:0:0:0:1]",
    "127。0。0。1",
    "１２７.０.０.１",
    "127．0．0．1",
    "evil.example",
    "127.0.0.1.evil.example",
    "lms.test",
    ".",
    "。",
    "\\",
    "@",
    ":",
    "/",
    "?",
    "#",
    ";",
    "%2e",
    "%40",
    "%31%32%37",
    "%00",
    " ",
    "\t",
    "\n",
    "\u200b",
    f"ana:{SECRET}",
    "80",
    "8080",
    "xn--",
    "ß",
    "[",
    "]",
    "0",
    "..",
    "\u2024",
]
SCHEMES = ["http://", "https://", "HTTP://", "hTTp://", "http:/", "http:\\\\", " http://", ""]
URLS = st.tuples(
    st.sampled_from(SCHEMES), st.lists(st.sampled_from(URL_PIECES), min_size=1, max_size=7)
).map(lambda parts: parts[0] + "".join(parts[1]))


def connects_to(url: str) -> tuple[str, list[str]]:
    """The scheme and, for plain http, the addresses requests would connect to for
    ``url``, resolved the way urllib3 does (no DNS: a name other than localhost fails)."""
    sent = parse_url(requests.Request("POST", url).prepare().url or "")
    if sent.scheme != "http":
        return sent.scheme or "", []
    host = (sent.host or "").strip("[]")
    flags = 0 if host.lower() == "localhost" else socket.AI_NUMERICHOST
    infos = socket.getaddrinfo(host, sent.port or 80, type=socket.SOCK_STREAM, flags=flags)
    return sent.scheme or "", [str(info[4][0]).split("%")[0] for info in infos]


@settings(max_examples=600, deadline=None)
@given(URLS)
def test_an_accepted_plain_http_url_always_connects_to_loopback(url: str) -> None:
    try:
        base = ApiClient(url, KEY).base_url
    except ApiError as exc:
        # Refused: the message never shows a user:password part.
        if "@" in url and SECRET not in url[url.rfind("@") :]:
            assert SECRET not in str(exc)
        assert "\n" not in str(exc) and "\t" not in str(exc)
        return
    assert SECRET not in base and "@" not in base
    scheme, addresses = connects_to(base + ACTIVITY_PATH)
    assert base.startswith(scheme + "://")
    if scheme == "http":
        assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses), (
            url,
            base,
            addresses,
        )
    # What was accepted is what gets sent: judging it again changes nothing.
    assert check_base_url(base) == base


# -- proxies ------------------------------------------------------------------------------

PROXY_VARS = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
]


def clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("variable", ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"])
def test_a_loopback_url_never_goes_through_a_proxy(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_proxies(monkeypatch)
    with RecordingProxy() as proxy, Scripted(ok) as api:
        monkeypatch.setenv(variable, proxy.url)
        # The control: plain requests does send this to the proxy (whose 200 a careless
        # client would count as accepted).
        requests.post(api.url + ACTIVITY_PATH, json=BODY, timeout=5)
        assert len(proxy.seen) == 1 and api.received == 0
        client = ApiClient(api.url, KEY)
        answer = client.post_activity(BODY)
        with pytest.raises(ApiError, match="valid"):  # the scripted server is not the LMS
            client.ping()
        client.close()
    assert answer.status == 200 and api.received == 2  # the POST and the ping, direct
    assert len(proxy.seen) == 1  # only the control's request
    assert not any(KEY.encode() in seen for seen in proxy.seen)


def test_https_uses_a_proxy_only_through_connect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_proxies(monkeypatch)
    cert, key = self_signed(tmp_path, "lms.test")
    with RecordingProxy() as proxy, Scripted(ok, tls=server_tls(cert, key)) as api:
        monkeypatch.setenv("https_proxy", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # trusted like a company CA
        client = ApiClient(f"https://lms.test:{api.port}", KEY)
        answer = client.post_activity(BODY)
        client.close()
    assert answer.status == 200 and api.received == 1
    assert len(proxy.seen) == 1
    assert proxy.seen[0].startswith(f"CONNECT lms.test:{api.port} ".encode())
    assert KEY.encode() not in proxy.seen[0]  # the key travels inside the tunnel only


def test_https_to_loopback_skips_the_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxies(monkeypatch)
    cert, key = self_signed(tmp_path, "127.0.0.1")
    with RecordingProxy() as proxy, Scripted(ok, tls=server_tls(cert, key)) as api:
        monkeypatch.setenv("https_proxy", proxy.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        client = ApiClient(api.url, KEY)
        answer = client.post_activity(BODY)
        client.close()
    assert answer.status == 200 and api.received == 1 and proxy.seen == []


def test_netrc_credentials_never_replace_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def record(n: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        seen.append(headers.get("Authorization", ""))
        return 200, {}, b""

    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login ana password hunter22\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with Scripted(record) as api:
        client = ApiClient(api.url, KEY)
        client.post_activity(BODY)
        client.close()
    assert seen == [f"Bearer {KEY}"]


# -- the total deadline -------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_a_trickling_server_is_cut_at_the_deadline(phase: str) -> None:
    with Trickle(phase, every=0.05) as slow:
        client = ApiClient(slow.url, KEY, read_timeout=0.5, deadline=1.5)
        started = time.monotonic()
        answer = client.post_activity(BODY)
        took = time.monotonic() - started
        client.close()
    assert answer.status is None and answer.failure == DEADLINE, answer
    assert "1.5s" in answer.errors[0]
    # A byte every 50 ms never trips the 0.5 s read timeout: the deadline ended it.
    assert 1.4 <= took < 4.0
    assert judge(answer).rule == "transient"


def test_ping_has_the_deadline_too() -> None:
    with Trickle("headers", every=0.05) as slow:
        client = ApiClient(slow.url, KEY, read_timeout=0.5, deadline=1.0)
        started = time.monotonic()
        with pytest.raises(ApiError, match="deadline"):
            client.ping()
        assert time.monotonic() - started < 3.0
        client.close()


def test_a_fast_answer_is_not_disturbed_by_the_deadline() -> None:
    with Scripted(ok) as api:
        client = ApiClient(api.url, KEY, deadline=0.3)
        answers = [client.post_activity(BODY) for _ in range(5)]
        time.sleep(0.5)  # every deadline has passed; the kept-alive connection is fine
        answers.append(client.post_activity(BODY))
        client.close()
    assert [a.status for a in answers] == [200] * 6


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Le",  # headers cut off
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",  # body shorter than said
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  # chunk cut
        b"HTTP/1.1 200",  # status line cut
        b"",  # closed without a word
        b"garbage\r\n\r\n",
    ],
)
def test_a_broken_answer_is_never_an_acceptance(raw: bytes) -> None:
    with OneShot(raw) as api:
        client = ApiClient(api.url, KEY, deadline=5)
        answer = client.post_activity(BODY)
        client.close()
    assert answer.status is None and answer.failure == DROPPED, answer
    assert judge(answer).rule == "transient"


def test_a_complete_answer_closed_by_the_server_is_fine() -> None:
    with OneShot(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as api:
        client = ApiClient(api.url, KEY)
        answer = client.post_activity(BODY)
        client.close()
    assert answer.status == 200 and judge(answer).result == lg.ACCEPTED


# -- TLS ----------------------------------------------------------------------------------


def test_an_unverifiable_certificate_is_a_tls_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = self_signed(tmp_path, "127.0.0.1")
    with Scripted(ok, tls=server_tls(cert, key)) as api:
        client = ApiClient(api.url, KEY)
        answer = client.post_activity(BODY)
        with pytest.raises(ApiError, match="TLS certificate"):
            client.ping()
        client.close()
    assert answer.status is None and answer.failure == TLS
    assert "CERTIFICATE_VERIFY_FAILED" in answer.errors[0] or "verify" in answer.errors[0]
    assert api.received == 0  # nothing, key included, reached the server
    verdict = judge(answer)
    assert verdict.step == STOP and isinstance(verdict.fatal, TlsError)


# -- the key and the terminal -------------------------------------------------------------


def test_short_keys_are_refused_without_echo() -> None:
    with pytest.raises(AuthError, match="shorter than") as caught:
        ApiClient("https://lms.example.com", "k3y-abc")
    assert "k3y-abc" not in str(caught.value)
    ApiClient("https://lms.example.com", "k" * MIN_KEY_LENGTH)
    ApiClient("https://lms.example.com", DEFAULT_KEY)  # the sandbox's own default key
    ApiClient("https://lms.example.com", KEY)


ODD_KEY = 'odd"key/with\\&<chars>+%='


@pytest.mark.parametrize(
    "echo",
    [
        ODD_KEY,
        ODD_KEY.upper(),
        json.dumps(ODD_KEY)[1:-1],
        json.dumps(ODD_KEY)[1:-1].replace("/", "\\/"),
        quote(ODD_KEY, safe=""),
        quote(ODD_KEY, safe="").lower(),
        escape(ODD_KEY),
        f"Bearer {ODD_KEY}",
    ],
)
def test_an_echoed_key_is_blanked_in_every_form(echo: str) -> None:
    client = ApiClient("https://lms.example.com", ODD_KEY)
    text = client.clean(f"you sent Authorization: {echo}; try again")
    assert "<API key>" in text
    for form in (ODD_KEY, json.dumps(ODD_KEY)[1:-1], quote(ODD_KEY, safe=""), escape(ODD_KEY)):
        assert form.lower() not in text.lower()


@given(prefix=st.integers(0, 1200), suffix=st.text(max_size=50))
def test_a_cut_never_leaves_part_of_the_key(prefix: int, suffix: str) -> None:
    client = ApiClient("https://lms.example.com", KEY)
    text = client.clean("x" * prefix + KEY + suffix, 500)
    assert len(text) <= 500
    assert KEY[: len(KEY) // 2] not in text


@given(st.text())
def test_printable_leaves_nothing_a_terminal_acts_on(text: str) -> None:
    shown = printable(text)
    assert not any(ch in shown for ch in "\x1b\r\n\b\x07\x00\x7f\x9b\u202e\u2028")
    assert printable(shown) == shown  # escaping is already safe text


def test_hostile_text_becomes_one_visible_line() -> None:
    client = ApiClient("https://lms.example.com", KEY)
    hostile = "\x1b[2J\x1b[H\raccepted   240\n\x08\x08ok\u202eevil"
    text = client.clean(hostile)
    assert text == "\\x1b[2J\\x1b[H\\x0daccepted   240\\x0a\\x08\\x08ok\\u202eevil"


def test_error_bodies_are_cleaned_where_they_become_messages() -> None:
    def echo(n: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        auth = headers["Authorization"]
        doc = {"errors": [f"bad token {auth}", "\x1b[31mred\x1b[0m\r\nline"]}
        return 400, {}, json.dumps(doc).encode()

    with Scripted(echo) as api:
        client = ApiClient(api.url, KEY)
        answer = client.post_activity(BODY)
        client.close()
    assert answer.errors == ["bad token Bearer <API key>", "\\x1b[31mred\\x1b[0m\\x0d\\x0aline"]
    assert KEY not in answer.body
