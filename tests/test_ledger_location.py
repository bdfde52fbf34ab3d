"""One ledger rule (issue 8 case 5): the CLI, the notebooks and the report find a config's
default ledger the same way (``recon.ledger.ledger_for``): beside the config, unless
``RECON_WORK_DIR`` or ``--ledger`` / ``ledger_path`` says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import AS_OF, ext

from recon import notebook as rn
from recon.cli import main
from recon.ledger import WORK_DIR_ENV, Ledger, ledger_for


@pytest.fixture(autouse=True)
def no_work_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORK_DIR_ENV, raising=False)


def cli_reconcile(config: Path, out: Path, capsys, *extra: str) -> Path:
    """``recon reconcile`` without --ledger; returns the ledger it says it recorded into."""
    args = ["reconcile", "--config", str(config), "--out", str(out), "--as-of", AS_OF, *extra]
    assert main(args) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if "recorded as run" in x)
    return Path(line.split(" in ", 1)[1])


def test_cli_and_notebook_helpers_find_the_same_ledger_for_a_config(
    write_case, tmp_path: Path, capsys
) -> None:
    provider_a = write_case([ext(completed="2026-01-10")])
    provider_b = write_case([ext("bob@example.com", completed="2026-01-11")])
    used_by_cli = cli_reconcile(provider_a, tmp_path / "out-a", capsys)
    assert used_by_cli == provider_a.parent / "recon-ledger.db"
    assert rn.resolve_ledger(provider_a) == used_by_cli.resolve()
    # A notebook that changes only config_path reviews the other provider's ledger.
    assert rn.resolve_ledger(provider_b) == (provider_b.parent / "recon-ledger.db").resolve()
    assert rn.resolve_ledger(provider_b) != rn.resolve_ledger(provider_a)
    with rn.open_ledger(provider_a) as ledger:
        assert rn.latest_or_reconcile(provider_a, ledger, as_of=None) == (1, False)
    with rn.open_ledger(provider_b) as ledger:
        assert ledger.runs().empty  # provider A's run is not here
        assert rn.latest_or_reconcile(provider_b, ledger, as_of=AS_OF) == (1, True)
    # And the CLI sees the notebook's run of provider B where it looks for it.
    assert main(["status", "--config", str(provider_b)]) == 0
    assert "run 1:" in capsys.readouterr().out
    report = tmp_path / "b.html"
    assert main(["report", "--config", str(provider_b), "--out", str(report)]) == 0
    text = report.read_text(encoding="utf-8")
    assert str(provider_b.parent) in text and str(provider_a.parent) not in text


def test_recon_work_dir_moves_every_default_ledger(
    write_case, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_case([ext(completed="2026-01-10")])
    work = tmp_path / "work"
    monkeypatch.setenv(WORK_DIR_ENV, str(work))
    used_by_cli = cli_reconcile(config, tmp_path / "out", capsys)
    assert used_by_cli == work / "recon-ledger.db"
    assert rn.resolve_ledger(config) == used_by_cli.resolve()
    assert not (config.parent / "recon-ledger.db").exists()
    assert main(["approve", "--config", str(config), "--all"]) == 0
    with Ledger(used_by_cli) as ledger:
        assert set(ledger.proposals()["decision"]) == {"approved"}


def test_an_explicit_ledger_wins_everywhere(
    write_case, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_case([ext(completed="2026-01-10")])
    monkeypatch.setenv(WORK_DIR_ENV, str(tmp_path / "work"))
    chosen = tmp_path / "mine.db"
    assert cli_reconcile(config, tmp_path / "o", capsys, "--ledger", str(chosen)) == chosen
    assert rn.resolve_ledger(config, chosen) == chosen.resolve()
    assert ledger_for(config, chosen) == chosen
    assert not (tmp_path / "work").exists()


def test_without_a_config_the_current_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ledger_for(None) == Path("recon-ledger.db")
    monkeypatch.setenv(WORK_DIR_ENV, "/srv/recon")
    assert ledger_for(None) == Path("/srv/recon/recon-ledger.db")
    assert ledger_for("/data/p/recon.toml", "") == Path("/srv/recon/recon-ledger.db")
