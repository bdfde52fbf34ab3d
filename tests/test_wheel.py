"""The package as an analyst installs it (issue 10): a wheel built from this checkout,
installed with a plain (not editable) ``pip install`` into a fresh venv, runs ``recon
demo`` from a folder that is no checkout: the bundled sample ships inside the package.

Nothing is downloaded: the wheel is built with this venv's setuptools
(``--no-build-isolation``) and installed with ``--no-deps``; the fresh venv reaches the
dependencies (pandas, duckdb, ...) through a ``.pth`` line naming this venv's
site-packages, after its own, so ``recon`` itself comes from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import resources
from pathlib import Path

import pytest

from recon.demo import sample_config

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_a_plain_install_runs_the_demo_from_any_folder(tmp_path: Path) -> None:
    # A clean environment: no checkout on the path, no real LMS, no key.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TI_", "PYTHON", "VIRTUAL_ENV", "PIP_", "RECON_"))
    }
    # Build from a copy, so the checkout gets no build/ or egg-info of this test's.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    junk = shutil.ignore_patterns("__pycache__", "run-*", "*.db", "*.db-*", "*.lock")
    shutil.copytree(ROOT / "recon", source / "recon", ignore=junk)
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation"]
        + ["--no-index", "-q", "-w", dist],
        cwd=tmp_path,
        env=env,
    )
    (wheel,) = dist.glob("recon-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_run([python, "-c", purelib], tmp_path, env).strip())
    (site / "dev-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index"]
        + ["-q", wheel],
        cwd=tmp_path,
        env=env,
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([python, "-c", "import recon; print(recon.__file__)"], elsewhere, env)
    assert Path(where.strip()).is_relative_to(site)  # the wheel's recon, not the checkout's
    out = _run([venv / "bin" / "recon", "demo", "--out", "demo"], elsewhere, env)
    assert "the gap is closed" in out and "NOT closed" not in out
    assert (elsewhere / "demo" / "report.html").is_file()


def test_data_sample_is_the_packaged_sample() -> None:
    # Analysts and the notebooks find the sample at data/sample; it is the one that ships.
    packaged = Path(str(resources.files("recon") / "sample"))
    assert (ROOT / "data" / "sample").resolve() == packaged.resolve()
    assert sample_config() == packaged / "recon.toml"
    assert sample_config().is_file()
