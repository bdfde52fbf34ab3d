"""Progress bars: drawn where a person watches (a terminal's stderr, a notebook), never
into a pipe or a log the CLI's tests read."""

from __future__ import annotations

import fcntl
import io
import os
import select
import struct
import sys
import termios
from pathlib import Path

import pytest

from recon import progress
from recon.cli import main


def test_a_bar_is_drawn_on_a_terminal_and_nowhere_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    leader, follower = os.openpty()
    # a terminal 80 columns wide (a new pty has none: tqdm would draw nothing)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with os.fdopen(follower, "w") as tty:
        monkeypatch.setattr(sys, "stderr", tty)
        assert progress.wanted()
        with progress.progress_bar(3, "recording", delay=0) as bar:
            bar.update(3)
            assert not bar.disable
        tty.flush()
        assert select.select([leader], [], [], 5)[0], "nothing was drawn"
        drawn = os.read(leader, 4096).decode("utf-8", "replace")
        assert "recording" in drawn
        monkeypatch.setenv(progress.QUIET_ENV, "1")  # a way to turn them off
        assert not progress.wanted()
    os.close(leader)
    monkeypatch.delenv(progress.QUIET_ENV)
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    assert not progress.wanted()
    with progress.progress_bar(3, "recording", delay=0) as bar:
        bar.update(3)
        assert bar.disable
    assert pipe.getvalue() == ""
    assert not progress.in_notebook()


def test_the_cli_writes_no_bar_into_a_captured_stderr(
    write_case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import ext

    config = write_case([ext(), ext("bob@example.com")])
    out = tmp_path / "out"
    code = main(
        [
            "reconcile",
            "--config",
            str(config),
            "--out",
            str(out),
            "--ledger",
            str(tmp_path / "l.db"),
        ]
    )
    assert code in (0, 1)
    err = capsys.readouterr().err
    assert "reading" not in err and "recording" not in err and "\r" not in err
