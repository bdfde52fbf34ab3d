"""Exits (issue 9): whatever goes wrong, the real `recon` command exits 2 with one line on
stderr (exit 1 means "something to do", and a scheduler must not take a crash for it);
the traceback only with `--debug`; the API key in neither.

Every test runs the installed `recon` command in a subprocess, as a scheduler would.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import AS_OF, ext, reconcile_into
from hypothesis import given
from hypothesis import strategies as st

from recon.cli import _one_line, _redact
from recon.engine import _parse_as_of
from recon.errors import InputError

RECON = str(Path(sys.executable).with_name("recon"))
KEY = "exit-test-key-Zq7/Vb+9"
NOBODY = 65534


def run(*args: str, env: dict[str, str] | None = None, user: int | None = None, cwd=None):
    """The real `recon` command; ``user``: as that user (via setpriv, from root)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TI_", "RECON_"))}
    full_env.update({"TI_API_KEY": KEY, **(env or {})})
    prefix = []
    if user is not None:
        ids = [f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        prefix = [str(shutil.which("setpriv")), *ids]
    return subprocess.run(
        [*prefix, RECON, *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def assert_one_line_error(done: subprocess.CompletedProcess, *expected: str) -> str:
    """Exit 2, exactly one line on stderr, no traceback, no key; returns the line."""
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("recon: error: ")
    assert "Traceback" not in done.stderr
    assert KEY not in done.stderr + done.stdout
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def config(write_case) -> Path:
    return write_case(
        [
            ext("ann@example.com", "SAFE-101", "Completed", "2026-01-10"),
            ext("bob@example.com", "DATA-200", "In Progress", "", "2026-02-01"),
        ]
    )


@pytest.fixture
def ledger(config: Path, tmp_path: Path) -> Path:
    path = config.parent / "recon-ledger.db"
    assert reconcile_into(config, tmp_path / "first", path) == 1
    return path


# -- the ledger: read-only, damaged -----------------------------------------------------------


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another user may enter (pytest's own temporary folders are private)."""
    folder = Path(tempfile.mkdtemp(prefix="recon-exit-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def as_someone_else() -> int | None:
    """Root may write any file: run as nobody then, so read-only means read-only."""
    if os.geteuid() != 0:
        return None
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: a read-only file is writable to root")
    return NOBODY


@pytest.mark.parametrize(
    "command",
    [
        ["approve", "--all"],
        ["reject", "--category", "missing-progress", "--note", "n"],
        ["reconcile", "--out", "{folder}/out", "--as-of", AS_OF],
    ],
    ids=["approve", "reject", "reconcile"],
)
def test_a_read_only_ledger_is_one_line_exit_2(
    config: Path, ledger: Path, shared_folder: Path, command: list[str]
) -> None:
    # A copy of the case in a folder the other user may write, the ledger itself not.
    case = shared_folder / "case"
    shutil.copytree(config.parent, case)
    for path in [case, *case.iterdir()]:
        path.chmod(0o777 if path.is_dir() else 0o644)
    (case / "recon-ledger.db").chmod(0o444)
    args = [a.format(folder=shared_folder) for a in command]
    user = as_someone_else()
    done = run(*args, "--config", str(case / "recon.toml"), user=user, cwd=shared_folder)
    line = assert_one_line_error(done, "read-only")
    assert str(case / "recon-ledger.db") in line
    with sqlite3.connect(case / "recon-ledger.db") as db:
        assert db.execute("SELECT count(*) FROM decisions").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


LEDGER_COMMANDS = [
    ["status"],
    ["approve", "--all"],
    ["reject", "--key", "k"],
    ["submit", "--dry-run"],
    ["report", "--out", "{folder}/r.html"],
    ["reconcile", "--out", "{folder}/out", "--as-of", AS_OF],
]


# Every command on the two kinds of damage that differ (refused on opening; found only
# when a page is read), the others with one command.
DAMAGES = [
    *((damage, command) for damage in ("garbage", "a damaged page") for command in LEDGER_COMMANDS),
    ("zeros", ["status"]),
    ("cut in half", ["approve", "--all"]),
]


@pytest.mark.parametrize("damage, command", DAMAGES, ids=[f"{d}-{c[0]}" for d, c in DAMAGES])
def test_a_damaged_ledger_is_one_line_exit_2(
    config: Path, ledger: Path, tmp_path: Path, command: list[str], damage: str
) -> None:
    data = bytearray(ledger.read_bytes())
    noise = random.Random(damage).randbytes  # the same damage on every run
    if damage == "garbage":
        data = bytearray(noise(20_000))
    elif damage == "zeros":
        data = bytearray(8192)
    elif damage == "a damaged page":  # the header is fine: found only when read
        # the pages of the runs every command reads (not pages a migration freed)
        with sqlite3.connect(ledger) as db:
            size = db.execute("PRAGMA page_size").fetchone()[0]
            root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()
        db.close()
        start = (root[0] - 1) * size
        data[start : start + 2 * size] = noise(2 * size)
    else:
        data = data[: len(data) // 2]
    ledger.write_bytes(bytes(data))
    args = [a.format(folder=tmp_path) for a in command]
    done = run(*args, "--config", str(config))
    assert_one_line_error(done, str(ledger))


def test_a_ledger_holding_what_recon_never_writes_is_unexpected_yet_exit_2(
    config: Path, ledger: Path
) -> None:
    """A case nobody foresaw (a ledger edited by another tool): still exit 2, one line;
    --debug shows where it happened."""
    with sqlite3.connect(ledger) as db:
        db.execute("UPDATE runs SET counts = 'not json'")
    db.close()
    line = assert_one_line_error(run("status", "--config", str(config)), "unexpected")
    assert "--debug" in line
    for debug in (["--debug", "status"], ["status", "--debug"]):
        done = run(*debug, "--config", str(config))
        assert done.returncode == 2
        assert done.stderr.startswith("Traceback (most recent call last):")
        assert done.stderr.splitlines()[-1] == line
        assert KEY not in done.stderr + done.stdout


# -- recon.toml -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode, where",
    [
        (lambda text: text.replace("[progress]", "[progress] # prövider").encode("cp1252"), "line"),
        (lambda text: text.encode("utf-16"), "UTF-16"),
        (lambda text: text.encode("utf-8") + b"\n# \xff\xfe\n", "line"),
    ],
    ids=["cp1252", "utf-16", "a stray byte"],
)
def test_a_config_not_in_utf8_is_one_line_exit_2(
    config: Path, tmp_path: Path, encode, where: str
) -> None:
    config.write_bytes(encode(config.read_text(encoding="utf-8")))
    out = tmp_path / "out"
    done = run("reconcile", "--config", str(config), "--out", str(out))
    assert_one_line_error(done, "not UTF-8", where, str(config))
    assert not out.exists() and not (config.parent / "recon-ledger.db").exists()


def test_a_config_nested_too_deeply_is_one_line_exit_2(config: Path, tmp_path: Path) -> None:
    with config.open("a", encoding="utf-8") as fh:
        fh.write("deep = " + "[" * 5000 + "]" * 5000 + "\n")
    done = run("reconcile", "--config", str(config), "--out", str(tmp_path / "o"))
    assert_one_line_error(done, "nested too deeply")


# -- --as-of at the ends of the calendar ------------------------------------------------------


@pytest.mark.parametrize(
    "as_of, zone",
    [
        ("0001-01-01T00:00:00+05:00", "UTC"),
        ("9999-12-31T23:00:00-05:00", "UTC"),
        ("0001-01-01", "Asia/Tokyo"),
        ("9999-12-31T23:30:00", "America/New_York"),
        ("0001-01-01T00:00:00+14:00", "UTC"),
    ],
)
def test_as_of_outside_the_calendar_in_utc_is_one_line_exit_2(
    write_case, tmp_path: Path, as_of: str, zone: str
) -> None:
    config = write_case([ext(completed="2026-01-10")], config={"external": {"timezone": zone}})
    done = run("reconcile", "--config", str(config), "--out", str(tmp_path / "o"), "--as-of", as_of)
    assert_one_line_error(done, "--as-of", "outside the calendar")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "as_of, zone",
    [
        ("0001-01-01", "UTC"),
        ("0001-01-01T00:00:00-05:00", "UTC"),
        ("9999-12-31", "America/New_York"),  # midnight there is 05:00 UTC, same day
        ("9999-12-31T23:59:59.999999Z", "UTC"),
    ],
)
def test_as_of_at_the_ends_but_inside_runs(
    write_case, tmp_path: Path, as_of: str, zone: str
) -> None:
    config = write_case([ext(completed="2026-01-10")], config={"external": {"timezone": zone}})
    done = run("reconcile", "--config", str(config), "--out", str(tmp_path / "o"), "--as-of", as_of)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = run("report", "--config", str(config), "--out", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr[-3000:]


@given(
    moment=st.datetimes(min_value=datetime.min, max_value=datetime.max),
    minutes=st.integers(-14 * 60, 14 * 60),
    zone=st.sampled_from(["UTC", "Asia/Tokyo", "Pacific/Kiritimati", "America/New_York"]),
    with_offset=st.booleans(),
)
def test_any_as_of_is_an_instant_or_an_input_error(
    moment: datetime, minutes: int, zone: str, with_offset: bool
) -> None:
    """The class: every date-time the calendar holds, with any offset or zone, is either
    a UTC instant or an InputError (the CLI's exit 2), never another exception."""
    value = moment.replace(tzinfo=timezone(timedelta(minutes=minutes))) if with_offset else moment
    for as_of in (value, value.isoformat()):
        try:
            parsed = _parse_as_of(as_of, zone)
        except InputError as exc:
            assert "outside the calendar" in str(exc)
        else:
            assert parsed.tzinfo is UTC


# -- paths that are folders, and other files that are not what they should be ---------------


@pytest.mark.parametrize(
    "command",
    [
        ["sandbox", "serve", "--db", "/", "--port", "0"],
        ["sandbox", "serve", "--db", "{folder}", "--port", "0"],
        ["sandbox", "serve", "--db", "{config}", "--port", "0"],
        ["sandbox", "export-progress", "--db", "{folder}", "--out", "{folder}/p.csv"],
        ["sandbox", "export-progress", "--db", "{config}", "--out", "{folder}/p.csv"],
        ["status", "--ledger", "{folder}"],
        ["approve", "--all", "--ledger", "{folder}"],
        ["reconcile", "--config", "{folder}", "--out", "{folder}/o"],
        ["reconcile", "--config", "{config}", "--out", "{config}"],
        ["reconcile", "--config", "{config}", "--out", "{folder}/o", "--ledger", "{folder}"],
        ["report", "--config", "{config}", "--out", "{folder}"],
        ["bench", "--rows", "10", "--keep", "{config}"],
        ["demo", "--out", "{config}"],
    ],
    ids=lambda c: " ".join(c[:4]),
)
def test_a_folder_or_a_wrong_file_where_a_file_belongs_is_one_line_exit_2(
    config: Path, ledger: Path, tmp_path: Path, command: list[str]
) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    args = [a.format(folder=folder, config=config) for a in command]
    assert_one_line_error(run(*args))


def test_recon_work_dir_naming_a_file_is_one_line_exit_2(config: Path, tmp_path: Path) -> None:
    done = run(
        "reconcile",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "o"),
        env={"RECON_WORK_DIR": str(config)},
    )
    assert_one_line_error(done, "ledger")


# -- the API key ------------------------------------------------------------------------------


def test_the_key_never_appears_in_the_line_or_the_traceback(tmp_path: Path) -> None:
    # A message that would carry the key: a path, and a base URL, holding it.
    missing = tmp_path / KEY.replace("/", "_") / "recon.toml"
    key = KEY.replace("/", "_")
    for debug in ([], ["--debug"]):
        done = run(
            *debug,
            "reconcile",
            "--config",
            str(missing),
            "--out",
            str(tmp_path / "o"),
            env={"TI_API_KEY": key},
        )
        assert done.returncode == 2
        assert key not in done.stderr + done.stdout
        assert "<API key>" in done.stderr.splitlines()[-1]
        if debug:
            assert "Traceback" in done.stderr
        done = run(
            *debug,
            "ping",
            "--base-url",
            f"http://127.0.0.1:9/{key}",
            "--timeout",
            "2",
            env={"TI_API_KEY": key},
        )
        assert done.returncode == 2
        assert key not in done.stderr + done.stdout


def test_redact_covers_encoded_forms_and_only_keys() -> None:
    args = argparse.Namespace(command="sandbox", key="s3cr3t/k+y")
    os.environ.pop("TI_API_KEY", None)
    text = "a s3cr3t/k+y b s3cr3t%2Fk%2By c s3cr3t%2Fk%2By"
    assert _redact(text, args) == "a <API key> b <API key> c <API key>"
    # approve/reject use --key for proposal keys: those are not secrets.
    decided = argparse.Namespace(command="approve", key=["abc"])
    assert _redact("abc", decided) == "abc"


def test_the_last_line_redacts_the_key_in_every_form_the_client_does(monkeypatch) -> None:
    """The CLI's last line blanks the key as ApiClient.redact does: in another letter
    case, JSON- or HTML-escaped (a ping error quoting a URL that holds the key upper-cased
    printed it)."""
    key = "Ab<c>d/e+f\\g12"
    monkeypatch.setenv("TI_API_KEY", key)
    args = argparse.Namespace(command="ping")
    forms = [key, key.upper(), key.lower(), json.dumps(key)[1:-1], html.escape(key)]
    text = " | ".join(forms)
    assert _redact(text, args) == " | ".join(["<API key>"] * len(forms))


def test_ping_never_prints_the_key_in_another_case(tmp_path: Path) -> None:
    key = "real-lms-key-123456"
    done = run(
        "ping",
        "--base-url",
        f"http://127.0.0.1:9/{key.upper()}",
        "--timeout",
        "2",
        env={"TI_API_KEY": key},
    )
    assert done.returncode == 2
    assert key.upper() not in done.stderr + done.stdout


def test_one_line_shows_control_characters_instead_of_obeying_them() -> None:
    assert _one_line("a\nb\r\nc\td") == "a b  c d"
    assert _one_line("x\x1b[2Jy\u2028z\u200e") == "x\\x1b[2Jy\\u2028z\\u200e"


def test_a_closed_pipe_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # `recon status | head`: the reader has gone before recon writes. One line on
    # stderr that says what happened, not "[Errno 32]" and a second traceback at exit.
    from recon.ledger import Ledger

    with Ledger(tmp_path / "recon-ledger.db"):
        pass
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe now fails
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TI_", "RECON_"))}
        done = subprocess.run(
            [RECON, "status", "--ledger", str(tmp_path / "recon-ledger.db")],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        os.close(write_end)
    done.stdout = ""
    line = assert_one_line_error(done, "standard output was closed")
    assert "Errno" not in line and "Exception ignored" not in done.stderr
