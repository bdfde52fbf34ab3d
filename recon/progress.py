"""Progress bars for long steps (reading a big file, recording a run, a pull).

Shown only where a person watches: on a terminal (stderr is a TTY) or in a notebook
(an IPython kernel, where :mod:`tqdm.auto` draws a widget). Anywhere else (a pipe, a
log, the tests that read stderr, papermill without a kernel display) the bar is
disabled and costs nothing. A bar is updated per chunk or step, never per row.
"""

from __future__ import annotations

import os
import sys
from typing import Any

QUIET_ENV = "RECON_NO_PROGRESS"
"""Set to anything but '' or 0 to never draw a bar."""


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a plain IPython terminal)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # an IPython too old or half imported
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def wanted() -> bool:
    """Whether a bar would be seen by someone: a terminal's stderr, or a notebook."""
    if os.environ.get(QUIET_ENV, "").strip() not in ("", "0"):
        return False
    if in_notebook():
        return True
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stderr
        return False


def progress_bar(total: float | None, desc: str, *, unit: str = "it", **options: Any) -> Any:
    """A :mod:`tqdm.auto` bar (a context manager with ``update(n)``), disabled unless
    :func:`wanted`. Bytes: ``unit="B"`` scales to kB/MB. It appears only after half a
    second, so quick steps draw nothing, and clears itself when done."""
    from tqdm.auto import tqdm

    scaled = unit == "B"
    settings: dict[str, Any] = {
        "total": total,
        "desc": desc,
        "unit": unit,
        "unit_scale": scaled,
        "unit_divisor": 1024 if scaled else 1000,
        "disable": not wanted(),
        "leave": False,
        "delay": 0.5,
        "file": sys.stderr,
        "dynamic_ncols": True,
    }
    settings.update(options)
    return tqdm(**settings)


__all__ = ["QUIET_ENV", "in_notebook", "progress_bar", "wanted"]
