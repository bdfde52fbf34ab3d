"""The analyst notebooks: committed clean, parameterised alike, and they run.

Every notebook is run with nbval (``--nbval-lax``: no cell may raise) against the bundled
sample and a sandbox started here, then ``01`` again with papermill on other data. The
notebooks' working folder (``RECON_WORK_DIR``) and ``HOME`` point into a temporary folder,
so a test never writes into the repository.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AS_OF, ext, lms
from sandbox_inspect import requests_log

from recon import notebook as rn
from recon.cli import main
from recon.errors import ConfigError, ReconError
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.sandbox import Sandbox
from recon.submit import Pace

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SAMPLE = ROOT / "data" / "sample" / "recon.toml"
BIN = Path(sys.executable).parent
PARAMETERS = {"config_path", "ledger_path", "as_of"}
KEY = "notebook-test-key"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(notebook: dict) -> list[dict]:
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def test_the_four_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_reconcile.ipynb",
        "02_review_and_submit.ipynb",
        "03_history.ipynb",
        "04_resolve.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = load(path)
    dirty = [
        i
        for i, cell in enumerate(code_cells(notebook))
        if cell.get("outputs") or cell.get("execution_count") is not None
    ]
    assert not dirty, f"{path.name}: code cells {dirty} hold outputs; run nbstripout on it"
    # Saved widget state would be an output too (and may hold what the analyst saw).
    assert "widgets" not in notebook.get("metadata", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_the_papermill_parameters(path: Path) -> None:
    first = code_cells(load(path))[0]
    assert "parameters" in first.get("metadata", {}).get("tags", [])
    tree = ast.parse("".join(first["source"]))
    assigned = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert set(assigned) == PARAMETERS
    assert len(tree.body) == len(PARAMETERS)  # nothing else lives in that cell
    assert all(isinstance(v, ast.Constant) and v.value is None for v in assigned.values())


def test_notebooks_pass_ruff() -> None:
    done = subprocess.run(
        [str(BIN / "ruff"), "check", "--no-cache", *map(str, NOTEBOOKS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One HOME for every kernel here: tools cache there (matplotlib's font list, ...)."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(key=KEY, seed_progress=SAMPLE.parent / "progress.csv") as running:
        yield running


def kernel_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TI_", "RECON_"))}
    env.pop("MPLBACKEND", None)  # the kernel picks its inline backend itself
    env.update(HOME=str(home), **extra)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def sample_folder_state() -> list[tuple[str, int]]:
    return sorted((str(p), p.stat().st_mtime_ns) for p in SAMPLE.parent.rglob("*"))


@pytest.mark.skipif(not SAMPLE.is_file(), reason="the bundled sample is not generated yet")
def test_every_notebook_runs_against_the_bundled_sample_and_a_sandbox(
    tmp_path: Path, home: Path, sandbox: Sandbox
) -> None:
    work = tmp_path / "work"
    env = kernel_env(home, TI_BASE_URL=sandbox.url, TI_API_KEY=KEY, RECON_WORK_DIR=str(work))
    sample_before = sample_folder_state()
    done = subprocess.run(
        [
            str(BIN / "pytest"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            *map(str, NOTEBOOKS),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # 01 recorded a run in the working folder, not in the repository; 02 reviewed it
    # (same inputs) instead of reconciling again.
    with Ledger(work / "recon-ledger.db") as ledger:
        runs = ledger.runs()
    assert runs["run_id"].tolist() == [1]
    assert runs["rows_read"].iloc[0] > 0
    assert (work / "run-1" / "exceptions.csv").is_file()
    # RECON_WORK_DIR took the ledger: nothing was written beside the bundled config.
    assert sample_folder_state() == sample_before
    # 02 talked to the sandbox given in the environment (it pings nobody, sends nothing
    # until a person clicks), so the sandbox saw no request.
    assert requests_log(sandbox) == []


def test_01_reruns_with_papermill_parameters_on_other_data(
    write_case, tmp_path: Path, home: Path, capsys
) -> None:
    config = write_case(
        [
            ext("ann@example.com", "SAFE-101", "Completed", "2026-01-10"),
            ext("bob@example.com", "DATA-200", "In Progress", "", "2026-02-01"),
            ext("nobody@example.com", "SAFE-101", "Completed", "2026-01-10"),
        ],
        [lms("u-cy", "lp-lead", "completed", "2026-03-06")],
    )
    out = tmp_path / "01-out.ipynb"
    done = subprocess.run(
        [
            str(BIN / "papermill"),
            str(ROOT / "notebooks" / "01_reconcile.ipynb"),
            str(out),
            "-p",
            "config_path",
            str(config),
            "-p",
            "as_of",
            AS_OF,
            "-k",
            "python3",
            "--cwd",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=kernel_env(home),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # Only config_path was given: the run went to the ledger beside that config, the one
    # the CLI finds for it, and the output files beside the ledger.
    ledger_path = config.parent / "recon-ledger.db"
    assert (config.parent / "run-1" / "proposals.csv").is_file()
    assert main(["status", "--config", str(config)]) == 0
    assert "run 1:" in capsys.readouterr().out
    with Ledger(ledger_path) as ledger:
        runs = ledger.runs()
        proposals = ledger.proposals()
    assert runs["rows_read"].tolist() == [3]
    assert runs["as_of"].iloc[0].startswith("2026-06-01T00:00:00")
    assert sorted(proposals["userId"]) == ["u-ann", "u-bob"]
    executed = load(out)
    text = json.dumps(executed)
    assert "unknown-learner" in text  # the input-quality panel names the problem
    assert '"output_type": "error"' not in text


# -- the helpers the notebooks' cells call (recon.notebook) ---------------------------------


def test_default_ledger_is_beside_the_config_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(rn.WORK_DIR_ENV, raising=False)
    if SAMPLE.is_file():
        assert rn.resolve_config(None) == SAMPLE.resolve()
    assert rn.resolve_ledger(None) == (SAMPLE.parent / "recon-ledger.db").resolve()
    config = tmp_path / "provider" / "recon.toml"
    assert rn.resolve_ledger(config) == (tmp_path / "provider" / "recon-ledger.db").resolve()
    given = tmp_path / "x" / "l.db"
    assert rn.resolve_ledger(config, given) == given.resolve()
    assert (tmp_path / "x").is_dir()
    monkeypatch.setenv(rn.WORK_DIR_ENV, str(tmp_path / "w"))
    assert rn.resolve_ledger(config) == (tmp_path / "w" / "recon-ledger.db").resolve()
    assert (tmp_path / "w").is_dir()
    assert rn.resolve_ledger(config, given) == given.resolve()
    with pytest.raises(ConfigError, match="not found"):
        rn.resolve_config(tmp_path / "missing.toml")


def test_api_client_uses_the_environment_when_both_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TI_BASE_URL", "https://acme.example.com/")
    monkeypatch.setenv("TI_API_KEY", "secret-value")
    client = rn.api_client(None)
    assert client.base_url == "https://acme.example.com"
    assert rn.pace_for(client) == Pace()
    described = rn.describe_client(client)
    assert "https://acme.example.com" in described and "secret-value" not in described
    assert "secret-value" not in repr(client)


@pytest.mark.parametrize("only", ["TI_BASE_URL", "TI_API_KEY"])
def test_api_client_refuses_half_a_configuration(
    monkeypatch: pytest.MonkeyPatch, only: str
) -> None:
    monkeypatch.delenv("TI_BASE_URL", raising=False)
    monkeypatch.delenv("TI_API_KEY", raising=False)
    monkeypatch.setenv(only, "http://127.0.0.1:1" if only == "TI_BASE_URL" else "k")
    with pytest.raises(ReconError, match="set both TI_BASE_URL and TI_API_KEY"):
        rn.api_client(None)


def test_api_client_starts_a_sandbox_seeded_with_the_configs_progress(
    write_case, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TI_BASE_URL", raising=False)
    monkeypatch.delenv("TI_API_KEY", raising=False)
    # The config names the LMS columns its own way: the seed must still be read.
    config = write_case(
        [ext()],
        [{"User": "u-cy", "Path": "lp-lead", "State": "completed", "Done": "2026-03-06"}],
        config={
            "progress": {
                "user_id": "User",
                "path_id": "Path",
                "status": "State",
                "completion_date": "Done",
            }
        },
    )
    client = rn.api_client(config)
    sandbox = rn.sandbox_for(client)
    try:
        assert sandbox is not None and client.base_url == sandbox.url
        assert client.ping() is not None  # the random key works, over loopback HTTP
        seeded = sandbox.progress()
        assert seeded[["userId", "learningPathId", "status"]].values.tolist() == [
            ["u-cy", "lp-lead", "completed"]
        ]
        assert rn.pace_for(client) == rn.SANDBOX_PACE
        assert "local sandbox" in rn.describe_client(client)
    finally:
        client.close()
        if sandbox is not None:
            sandbox.stop()


def test_latest_or_reconcile_reuses_the_run_until_an_input_changes(
    write_case, tmp_path: Path
) -> None:
    config = write_case([ext(completed="2026-01-10")])
    with Ledger(tmp_path / "l.db") as ledger:
        assert rn.latest_or_reconcile(config, ledger) == (1, True)
        assert rn.latest_or_reconcile(config, ledger) == (1, False)
        assert rn.latest_or_reconcile(config, ledger, as_of=AS_OF) == (2, True)
        progress = config.parent / "progress.csv"
        progress.write_text(progress.read_text() + "u-ann,lp-safe,started,\n")
        assert rn.latest_or_reconcile(config, ledger) == (3, True)


def test_reports_for_the_reconcile_notebook(reconcile_case) -> None:
    result = reconcile_case(
        [
            ext(completed="2026-01-10"),
            ext("zed@example.com"),
            ext("bob@example.com", completed="soon"),
            ext("cy@example.com", "NOPE-1", completed="2026-01-10"),
        ]
    )
    quality = rn.input_quality(result)
    assert quality.loc["external", "rows read"] == 4
    assert quality.loc["external", "rows unusable"] == 3
    assert list(quality.index) == ["external", "progress", "users", "paths"]
    found = rn.problems(result)
    assert list(found.index) == ["unknown-learner", "unknown-path", "bad-date"]
    example = "row 3: completion date 'soon' is not a readable date"
    assert found.loc["bad-date", "examples"] == example
    assert list(rn.exceptions_by_kind(result)) == list(found.index)
    styled = rn.table(found).to_html()
    assert "&#x27;soon&#x27;" in styled or "&#39;soon&#39;" in styled  # escaped, whole


def test_still_open_lists_gaps_proposed_in_several_runs(write_case, tmp_path: Path) -> None:
    external = [ext(completed="2026-01-10"), ext("bob@example.com", completed="2026-01-11")]
    first = write_case(external)
    with Ledger(tmp_path / "l.db") as ledger:
        assert rn.still_open(ledger).empty
        reconcile_run(first, as_of=AS_OF, ledger=ledger)
        # The LMS caught up with bob; ann's gap stays open.
        later = write_case(external, [lms("u-bob", "lp-safe", "completed", "2026-01-11")])
        reconcile_run(later, as_of=AS_OF, ledger=ledger)
        reconcile_run(later, as_of=AS_OF, ledger=ledger)
        table = rn.still_open(ledger)
        assert table[["userId", "runs", "first_run"]].values.tolist() == [["u-ann", 3, 1]]
        assert table["path"].tolist() == ["SAFE-101"]  # the course code, beside the id
        assert rn.still_open(ledger, min_runs=4).empty
        overview = rn.runs_overview(ledger)
        assert overview["proposals"].tolist() == [2, 1, 1]
