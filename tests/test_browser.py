"""The review notebook in a real browser: JupyterLab driven through headless Chromium.

``make test-browser`` (and ``.ci/run``) runs this; ``make test`` skips it (the ``browser``
marker is deselected by the addopts in pyproject.toml).

What it does, as an analyst would:

1. Starts JupyterLab on 127.0.0.1 (a free port, a token, ``--allow-root``) serving the
   repository, with ``HOME``, the user settings (``JUPYTERLAB_SETTINGS_DIR``: no windowing,
   autosave off, no news), the checkpoints and the notebooks' working folder
   (``RECON_WORK_DIR``: it takes the config's default ledger, which would otherwise sit
   beside ``data/sample/recon.toml``) all in a temporary folder. ``TI_*`` is removed from
   the environment, so the notebook starts its own local sandbox.
2. Opens ``notebooks/02_review_and_submit.ipynb`` in Debian's Chromium (Playwright for
   Python, ``/usr/bin/chromium``, a fresh profile), waits until the kernel is really
   connected and idle, runs all cells.
3. Checks the ``LMS now`` column (never left ``reading…``; ``no record`` on the sample),
   filters the review widget on one kind, opens a row's evidence (right under the row),
   writes a Note,
   clicks "Approve all matching" and its "Confirm ..." button, checks the counters,
   clicks "Submit approved" and its "Confirm: submit N ... to practice sandbox ...",
   waits for the summary and checks it (accepted = the number approved, nothing rejected
   or failed), checks that no cell shows an error.
4. Checks the ledger in the working folder: the decisions and the accepted attempts are
   recorded, for exactly the approved proposals.
5. Saves screenshots in ``artifacts/browser/`` (git-ignored): ``02_widget.png`` (the
   widget after Run All), ``02_approved.png`` (after "Approve all matching"),
   ``02_evidence.png`` (a row's evidence open), ``02_confirm.png`` and
   ``02_confirm_submit.png`` (the questions), ``02_summary.png`` (the submission summary
   in view) and ``02_after_submit.png`` (the whole notebook, the viewport grown to its
   height); on a failure, ``02_failure.png``.
   The JupyterLab log and the browser console go there too.

The notebook file in the repository must come out byte for byte as it went in.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from recon.ledger import DEFAULT_NAME, Ledger

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NOTEBOOK = "notebooks/02_review_and_submit.ipynb"
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
# The kind the test approves: the bundled sample has 58 of them, two pages' worth.
KIND = "missing-progress"
NOTE = "checked with the provider"
VIEWPORT = {"width": 1400, "height": 1000}
MAX_SCREENSHOT_HEIGHT = 12_000

# JupyterLab user settings for the run (see reference: windowing, autosave, news).
SETTINGS = {
    # Every cell stays in the page: JupyterLab 4 otherwise defers off-screen cells.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # Never save: outputs must not land in the committed notebook.
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # No "get notified about Jupyter news?" toast over the screenshot, no web requests.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


# -- JupyterLab ---------------------------------------------------------------------------


@dataclass
class Lab:
    url: str
    token: str
    work: Path  # RECON_WORK_DIR: where the notebook's ledger goes (not beside the config)
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _lab_env(tmp: Path, work: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TI_", "RECON_", "JUPYTER", "IPYTHON")) and k != "MPLBACKEND"
    }
    env.update(
        HOME=str(tmp / "home"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
        RECON_WORK_DIR=str(work),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    return env


def _wait_until_up(lab: Lab, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            pytest.fail(
                f"JupyterLab exited with code {lab.process.returncode} while starting:\n"
                + lab.log_tail()
            )
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=2):
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.25)
    pytest.fail(f"JupyterLab did not answer within {timeout:.0f} s:\n" + lab.log_tail())


def _descendants(pid: int) -> list[Any]:
    try:
        import psutil

        return list(psutil.Process(pid).children(recursive=True))
    except Exception:  # psutil missing or the process already gone
        return []


def _stop(lab: Lab) -> None:
    """Stop JupyterLab and everything it started, even the kernels (own sessions)."""
    proc = lab.process
    children = _descendants(proc.pid)  # before they are orphaned
    if proc.poll() is None:
        # SIGTERM to the group: the server shuts its kernels down on its way out.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for child in children:
        # A kernel runs in a session of its own, so the group signal above misses it.
        with contextlib.suppress(Exception):  # gone already: fine
            if child.is_running():
                os.killpg(os.getpgid(child.pid), signal.SIGKILL)


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, or a clear failure (never a skip: CI must not pass without it)."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium "
            "(`apt-get update && apt-get install -y chromium`; .ci/run does it). "
            "Playwright's own browser downloads do not work here.",
            pytrace=False,
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"playwright is not installed ({exc}): pip install -e '.[dev]'", pytrace=False)
    return CHROMIUM


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    for name, values in SETTINGS.items():
        path = tmp_path / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    (tmp_path / "home").mkdir()
    work = tmp_path / "work"
    port, token = _free_port(), secrets.token_hex(24)
    log = tmp_path / "jupyterlab.log"
    command = [
        str(BIN / "jupyter"),
        "lab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",  # fail rather than quietly serve elsewhere
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={ROOT}",
        f"--FileCheckpoints.checkpoint_dir={tmp_path / 'checkpoints'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=_lab_env(tmp_path, work),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
        )
    running = Lab(f"http://127.0.0.1:{port}", token, work, log, process)
    try:
        _wait_until_up(running, timeout=60)
        yield running
    finally:
        _stop(running)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, ARTIFACTS / "jupyterlab.log")


# -- what the repository looks like, to show the test left it alone -----------------------


def _repo_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "notebook": (ROOT / NOTEBOOK).read_bytes(),
        "checkpoints": (ROOT / "notebooks" / ".ipynb_checkpoints").exists(),
        "work": sorted(
            (str(p.relative_to(ROOT)), p.stat().st_mtime_ns)
            for p in (ROOT / "work").rglob("*")
            if p.is_file()
        )
        if (ROOT / "work").is_dir()
        else None,
        # The default ledger's other place, git-ignored: beside the bundled config.
        "sample": sorted(
            (str(p.relative_to(ROOT)), p.stat().st_mtime_ns)
            for p in (ROOT / "data" / "sample").rglob("*")
        ),
    }
    if shutil.which("git") and (ROOT / ".git").exists():
        state["git status"] = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
    return state


# -- reading the page ---------------------------------------------------------------------


def _text(value: str) -> str:
    return value.replace("\xa0", " ").strip()


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _counters(page: Any) -> dict[str, int]:
    """``undecided N · approved N · rejected N`` as the widget shows it."""
    text = _text(page.locator(".recon-counters").inner_text())
    found = dict(re.findall(r"(undecided|approved|rejected) ([\d,]+)", text))
    assert set(found) == {"undecided", "approved", "rejected"}, f"counters read {text!r}"
    return {name: _number(n) for name, n in found.items()}


SUMMARY = re.compile(
    r"Submitted run (\d+): accepted ([\d,]+) · rejected ([\d,]+) · failed ([\d,]+) · "
    r"remaining ([\d,]+)"
)

ERROR_CHECK = """() => {
  const stderr = [...document.querySelectorAll(
    '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')];
  const errors = stderr.map(e => e.innerText)
    .filter(t => /Traceback|\\w+Error\\b|Exception/.test(t));
  const broken = [...document.querySelectorAll('.jp-OutputArea-output')]
    .map(e => e.innerText).filter(t => t.includes('Error displaying widget'));
  return {stderr: stderr.map(e => e.innerText), errors, broken};
}"""


def _errors_shown(page: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = page.evaluate(ERROR_CHECK)
    return found


def _prompts(page: Any) -> list[str]:
    prompts: list[str] = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()
    return [_text(p) for p in prompts]


def _run_all(page: Any) -> None:
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


def _any_cell_started(page: Any, timeout_ms: int) -> bool:
    try:
        page.wait_for_function(
            """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                 .some(e => /\\[(\\*|\\d+)\\]/.test(e.innerText))""",
            timeout=timeout_ms,
        )
        return True
    except Exception:
        return False


def _full_view(page: Any, path: Path) -> None:
    """Grow the viewport to the notebook panel's scroll height, then screenshot it all.

    JupyterLab scrolls inside its own panel, so a full-page screenshot alone would show
    only the viewport."""
    grow = page.evaluate(
        """() => {
          const panel = document.querySelector(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
          if (!panel) return 0;
          panel.scrollTop = 0;
          // Up to the last cell's bottom: the notebook's padding below it is blank.
          const cells = panel.querySelectorAll('.jp-Cell');
          const last = cells.length ? cells[cells.length - 1] : panel;
          return last.getBoundingClientRect().bottom - panel.getBoundingClientRect().bottom;
        }"""
    )
    height = min(VIEWPORT["height"] + max(0, int(grow)) + 24, MAX_SCREENSHOT_HEIGHT)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.wait_for_timeout(500)  # let JupyterLab lay itself out again
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)


# -- the test -----------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_review_notebook_approves_and_submits_in_a_real_browser(chromium: Path, lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    before = _repo_state()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("02_*.png"):
        old.unlink()
    console: list[str] = []
    started = time.monotonic()
    timings: dict[str, float] = {}

    def mark(step: str) -> None:
        timings[step] = round(time.monotonic() - started, 1)

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(lab.log.parent / "chromium-profile"),  # fresh: a new tmp_path per test
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
        )
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        try:
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
            page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=60_000)

            # The kernel-ready race: the toolbar says idle before a kernel is connected;
            # the status bar's kernel item reads "... | Idle" only once it is.
            kernel = page.locator('.jp-StatusBar-TextItem[title^="Change kernel"]')
            expect(kernel).to_have_text(re.compile(r"\|\s*Idle"), timeout=60_000)
            mark("kernel idle")

            _run_all(page)
            if not _any_cell_started(page, 10_000):
                _run_all(page)  # clicked a moment too early: once more
                assert _any_cell_started(page, 15_000), "Run All Cells started no cell"

            # Run All has finished: no cell queued or running ("[*]") any more. A cell that
            # raised stops it, leaving the cells after it unrun ("[ ]").
            page.wait_for_function(
                """() => {
                  const p = [...document.querySelectorAll(
                    '.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(e => e.innerText);
                  return p.some(t => /\\[\\d+\\]/.test(t)) && !p.some(t => t.includes('*'));
                }""",
                timeout=90_000,
            )
            shown = _errors_shown(page)
            assert not shown["errors"], f"a cell raised: {shown['errors']}"
            assert not shown["broken"], f"a widget failed to load: {shown['broken']}"
            prompts = _prompts(page)
            assert all(re.fullmatch(r"\[\d+\]:?", t) for t in prompts), f"not run: {prompts}"
            review = page.locator(".recon-review")
            expect(review).to_be_visible(timeout=30_000)
            expect(page.locator(".recon-counters")).to_contain_text("undecided")
            mark("widget shown")
            # The filters show "all" at first (they once showed blank: a None value is
            # "no selection" to ipywidgets).
            first_labels = page.evaluate(
                """() => ['kind', 'path', 'decision'].map(name => {
                  const s = document.querySelector(`.recon-filter-${name} select`);
                  return s && s.selectedIndex >= 0 ? s.options[s.selectedIndex].text : '';
                })"""
            )
            shown_labels = [label.replace("\xa0", " ") for label in first_labels]
            assert shown_labels == ["all kinds", "all paths", "any"], shown_labels

            # The notebook used the working folder given, and its own sandbox.
            outputs = _text(page.locator(".jp-Notebook").inner_text())
            assert re.search(r"(reconciled|reviewing) run 1 of ", outputs), outputs[:2000]
            ledger_path = (lab.work / DEFAULT_NAME).resolve()
            assert str(ledger_path) in outputs, "the ledger is not in RECON_WORK_DIR"
            assert "Submissions go to a local sandbox" in outputs

            before_counts = _counters(page)
            assert before_counts["approved"] == 0 and before_counts["rejected"] == 0
            total = sum(before_counts.values())

            # -- what the LMS holds now, per row: the sample has pairs it has no record of
            table = page.locator(".recon-table")
            expect(table).to_contain_text("LMS now")
            expect(table).to_contain_text("provider says")
            expect(table).to_contain_text("will send")
            # LMS now is read in the background ("reading…" meanwhile): it never stays so,
            # and the sample's export reads (no red note above the table).
            reading = page.locator(".recon-row:visible", has_text="reading…")
            expect(reading).to_have_count(0, timeout=30_000)
            expect(page.locator(".recon-lms-note")).to_be_hidden()
            first_rows = [_text(t) for t in page.locator(".recon-row:visible").all_inner_texts()]
            assert any("no record" in t for t in first_rows), first_rows[:5]

            review.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "02_widget.png"))

            # -- filter on one kind
            kind = page.locator(".recon-filter-kind select")
            labels = [_text(t) for t in kind.locator("option").all_inner_texts()]
            options = {
                m.group(1): (index, _number(m.group(2)))
                for index, label in enumerate(labels)
                if (m := re.fullmatch(r"(\S+) \(([\d,]+)\)", label))
            }
            assert KIND in options, f"no {KIND!r} in the kind filter: {labels}"
            index, expected = options[KIND]
            assert 0 < expected < total
            kind.select_option(index=index)
            status = page.locator(".recon-status")
            expect(status).to_contain_text(re.compile(rf"of {expected:,} matching"))
            pages = -(-expected // 50)
            expect(status).to_contain_text(f"page 1 of {pages}")
            rows = page.locator(".recon-row:visible")
            expect(rows).to_have_count(min(expected, 50))
            assert all(KIND in _text(t) for t in rows.all_inner_texts())
            expect(reading).to_have_count(0)  # a new page is drawn from what was read

            # -- the evidence of the first row opens right under it
            rows.first.locator("button.recon-row-preview").click()
            evidence = page.locator(".recon-evidence:visible")
            expect(evidence).to_have_count(1)
            expect(evidence).to_contain_text("Provider row(s)")
            expect(evidence).to_contain_text("LMS now")
            expect(evidence).to_contain_text('"learningPathId"')
            row_box = rows.first.bounding_box()
            panel_box = evidence.bounding_box()
            assert row_box and panel_box and 0 <= panel_box["y"] - row_box["y"] < 80, (
                row_box,
                panel_box,
            )
            evidence.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "02_evidence.png"))
            mark("evidence")

            # -- approve everything matching (every page, not only the one shown), with a
            #    note, after the question
            page.locator(".recon-note input").fill(NOTE)
            page.locator(".recon-note input").press("Tab")
            page.locator("button.recon-approve-matching").click()
            confirm = page.locator("button.recon-confirm")
            expect(confirm).to_be_visible()
            expect(confirm).to_contain_text(f"Confirm: approve {expected:,} proposal(s)")
            confirm.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "02_confirm.png"))
            assert _counters(page)["approved"] == 0, "decided before Confirm"
            confirm.click()
            counters = page.locator(".recon-counters")
            expect(counters).to_contain_text(f"approved {expected:,}")
            after_counts = _counters(page)
            assert after_counts == {
                "undecided": before_counts["undecided"] - expected,
                "approved": expected,
                "rejected": 0,
            }, after_counts
            expect(page.locator(".recon-summary")).to_contain_text(f"approved {expected:,}")
            decided = [_text(t) for t in rows.all_inner_texts()]
            assert all("approved" in t for t in decided), decided[:3]
            mark("approved")
            page.screenshot(path=str(ARTIFACTS / "02_approved.png"))

            # -- submit, in a thread of the kernel: wait for the final summary
            submit = page.locator("button.recon-submit")
            expect(submit).to_be_enabled()
            submit.click()
            expect(confirm).to_contain_text(
                f"Confirm: submit {expected:,} approved proposal(s) to practice sandbox"
            )
            expect(confirm).to_contain_text("about ")
            confirm.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "02_confirm_submit.png"))
            confirm.click()
            summary = page.locator(".recon-summary")
            expect(summary).to_contain_text("Submitted run", timeout=60_000)
            expect(submit).to_be_enabled(timeout=30_000)  # disabled while sending
            mark("submitted")
            text = _text(summary.inner_text())
            found = SUMMARY.search(text)
            assert found, f"summary reads {text!r}"
            run, accepted, rejected, failed, remaining = map(_number, found.groups())
            assert (run, accepted, rejected, failed, remaining) == (1, expected, 0, 0, 0), text
            assert "Rejected by the API" not in text
            expect(status).to_contain_text(f"sent: accepted {expected:,}")
            sent = [_text(t) for t in rows.all_inner_texts()]
            assert all(t.endswith("accepted") for t in sent), sent[:3]
            expect(page.locator(".recon-progress")).to_be_visible()

            shown = _errors_shown(page)
            assert not shown["errors"], f"a cell shows an error: {shown['errors']}"
            assert not shown["broken"], f"a widget failed to load: {shown['broken']}"

            # -- screenshots: the summary in view, and the whole notebook
            page.evaluate(
                "() => document.querySelector('.recon-summary').scrollIntoView({block: 'end'})"
            )
            page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / "02_summary.png"))
            _full_view(page, ARTIFACTS / "02_after_submit.png")
            mark("screenshots")
        except BaseException:
            with contextlib.suppress(Exception):
                _full_view(page, ARTIFACTS / "02_failure.png")
            raise
        finally:
            (ARTIFACTS / "console.log").write_text("\n".join(console) + "\n", encoding="utf-8")
            context.close()

    # -- the ledger in the working folder holds what the widget said
    with Ledger(lab.work / DEFAULT_NAME) as ledger:
        proposals = ledger.proposals(1)
        decisions = ledger.decisions()
        attempts = ledger.attempts(1)
    of_kind = set(proposals.loc[proposals["category"] == KIND, "key"])
    assert len(of_kind) == expected
    assert set(decisions["key"]) == of_kind and len(decisions) == expected
    assert set(decisions["decision"]) == {"approved"}
    assert set(decisions["note"]) == {NOTE}, "the Note is recorded with each decision"
    assert decisions["policy"].str.startswith(f"all matching: kind {KIND}").all()
    assert (decisions["run_id"] == 1).all()
    accepted_keys = set(attempts.loc[attempts["result"] == "accepted", "key"])
    assert accepted_keys == of_kind
    accepted = attempts[attempts["result"] == "accepted"]
    assert len(accepted) == expected, "each approved proposal is accepted exactly once"
    assert accepted["http_status"].between(200, 299).all()
    # Any other attempt is a paced retry (the sandbox's rate limit answered 429), never a
    # second acceptance.
    others = attempts[attempts["result"] != "accepted"]
    assert set(others["result"]) <= {"retry"} and set(others["http_status"]) <= {429}, others
    approved = proposals[proposals["decision"] == "approved"]
    assert set(approved["key"]) == of_kind
    assert (approved["submission"] == "accepted").all()
    assert (proposals.loc[proposals["decision"] == "undecided", "submission"] == "not-sent").all()

    # -- and the repository is as it was: notebook bytes, no checkpoints, no ledger
    after = _repo_state()
    assert after.pop("notebook") == before.pop("notebook"), f"the test modified {NOTEBOOK}"
    changed = {k: (before.get(k), after.get(k)) for k in before if before.get(k) != after.get(k)}
    assert not changed, f"the repository changed during the test (before, after): {changed}"
    print(f"browser test timings (s since start): {timings}")
    print(f"filters shown at first: {first_labels}")
