"""The one path from the inputs to a recorded run: reconcile -> write outputs -> record.

Every entry point that makes a run goes through :func:`reconcile_run`: ``recon
reconcile``, notebook 01 (and :func:`recon.notebook.latest_or_reconcile`) and ``recon
demo``. The order is the point: a run is recorded in the ledger only once its outputs are
written, so a failed write leaves no run to approve (and says why), and a recorded run's
outputs always exist.

:func:`recon.engine.reconcile` is pure; what it needs from the ledger (the keys the
ledger's LMS has accepted, for ``already-submitted``) is read here and passed in as data.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd

from .aliases import engine_aliases, rejected
from .config import Config, load_config
from .engine import reconcile
from .errors import ReconError
from .ledger import Ledger
from .lms_pull import age_days, catalog_codes, record_run_pulls, use_pulls
from .outputs import OUTPUT_FILES, write_json, write_result
from .result import Result
from .suggest import Sources, load_sources, suggestions_for

RUN_FOLDER = "run-{run_id}"
"""``out`` meaning "beside the ledger, in a folder named after the run" (notebook 01):
``run-N/`` next to the ledger file, N being the run's id in that ledger."""


def run_folder(ledger_path: str | Path, run_id: int | None) -> Path:
    """The folder :data:`RUN_FOLDER` names for run ``run_id`` of the ledger at ``ledger_path``."""
    return Path(ledger_path).parent / RUN_FOLDER.format(run_id=run_id)


def check_out(out: str | Path) -> Path:
    """``out`` as a folder to write into; :class:`ReconError` when a file is in its place.

    Checked before reconciling, so a typo costs no reconciliation."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ReconError(f"--out {folder} is a file; give a folder")
    return folder


def reconcile_run(
    config: Config | str | Path,
    *,
    out: str | Path | None = None,
    ledger: Ledger | str | Path | None = None,
    as_of: datetime | str | None = None,
) -> Result:
    """Reconcile, write the four outputs into ``out``, record the run in ``ledger``.

    ``out``: a folder (created when missing; the files are :data:`recon.outputs.
    OUTPUT_FILES`), :data:`RUN_FOLDER` for ``run-N/`` beside the ledger, or None to write
    nothing. ``ledger``: a :class:`Ledger`, a ledger's path (opened and closed here), or
    None to record nothing. Returns the :class:`Result`, its ``run_id`` set when recorded.

    Recorded only once the outputs are written: when writing fails (a read-only folder,
    a folder where a file belongs) the :class:`ReconError` says where, and the ledger
    holds no new run. Once recorded, ``summary.json`` is rewritten to name its run.
    """
    if ledger is not None and not isinstance(ledger, Ledger):
        with Ledger(ledger) as opened:
            return reconcile_run(config, out=out, ledger=opened, as_of=as_of)
    staging: Path | None = None
    if out == RUN_FOLDER:
        if ledger is None:
            raise ValueError("RUN_FOLDER needs a ledger: the folder is named after the run")
        # The run's id is known once it is recorded, and it is recorded once its outputs
        # are written: they are written beside the ledger first, then moved into run-N.
        staging = ledger.path.parent / f".run-pending-{secrets.token_hex(4)}"
        out = staging
    elif out is not None:
        out = check_out(out)
    if not isinstance(config, Config):
        config = load_config(config)
    with tempfile.TemporaryDirectory(prefix="recon-pull-") as scratch:
        result, suggest = _reconcile(config, ledger, Path(scratch), as_of)
    try:
        written = _write_while_suggesting(result, suggest, out, config)
        if ledger is None:
            return result
        mark = time.perf_counter()
        run_id = ledger.record_run(result)  # with its suggestions
        record_run_pulls(ledger, run_id, result.lms_pulls)
        result.timings["ledger"] = time.perf_counter() - mark
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    if staging is not None:
        written = _move(written, run_folder(ledger.path, result.run_id))
        staging.rmdir()
    if "summary" in written:
        try:
            write_json(result.to_dict(), written["summary"])
        except OSError as exc:
            raise ReconError(
                f"recorded as run {result.run_id}, but {written['summary']} could not be "
                f"updated to name it: {exc}"
            ) from None
    return result


def _write_while_suggesting(
    result: Result,
    suggest: Callable[[], pd.DataFrame],
    out: str | Path | None,
    config: Config,
) -> dict[str, Path]:
    """Find the run's suggestions (``suggest``) and write its outputs into ``out`` (None:
    write nothing), the suggestions once found.

    The outputs that do not hold suggestions are written by a second thread meanwhile:
    Arrow's CSV writing leaves the interpreter free, so the two share the machine's cores
    (a million rows: about a second less). Either one failing fails the whole."""
    if out is None:
        result.suggestions = suggest()
        return {}
    others = [kind for kind in OUTPUT_FILES if kind != "suggestions"]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recon-write") as pool:
        writing = pool.submit(write_result, result, out, config, kinds=others)
        try:
            result.suggestions = suggest()
        finally:
            written = writing.result()  # its error first: it names the folder
    written.update(write_result(result, out, config, kinds=["suggestions"]))
    return {kind: written[kind] for kind in OUTPUT_FILES}


def _reconcile(
    config: Config, ledger: Ledger | None, scratch: Path, as_of: datetime | str | None
) -> tuple[Result, Callable[[], pd.DataFrame]]:
    """The engine's run, with what the ledger holds for it, and how to find its
    suggestions (run by the caller, while it writes the outputs)."""
    # [users]/[paths] with source = "lms": the ledger's latest pull, as the engine's input.
    config, pulls, warnings = use_pulls(config, ledger, scratch)
    # What the ledger's LMS accepted earlier: already-submitted rather than proposed; the
    # aliases the analyst accepted: looked up before the directory and mapping.
    accepted = ledger.accepted_keys() if ledger is not None else set()
    aliases = engine_aliases(ledger) if ledger is not None else None
    result = reconcile(config, as_of=as_of, accepted_keys=accepted, aliases=aliases)
    for role, info in pulls.items():
        if role in result.inputs:  # named for what it is, not the scratch file
            result.inputs[role] = replace(
                result.inputs[role], path=f"LMS pull {info['pull_id']} ({info['target']})"
            )
    # Candidates for the unknown learners and paths: offered, never applied; what the
    # analyst turned down is not offered again. The LMS catalog's sku and slug (latest
    # pull) are candidates for provider codes too.
    sources = None
    if ledger is not None:
        codes, catalog_pull = catalog_codes(ledger, config)
        if catalog_pull is not None and not codes.empty:
            found = load_sources(config)
            sources = Sources(found.directory, pd.concat([found.catalog, codes], ignore_index=True))
            if "paths" not in pulls:
                pulls["suggestions"] = {
                    "pull_id": catalog_pull["id"],
                    "target": catalog_pull["target"],
                    "practice": catalog_pull["practice"],
                    "pulled_at": catalog_pull["finished_at"],
                    "age_days": round(age_days(catalog_pull["finished_at"]), 2),
                    "rows": catalog_pull["rows"],
                }
    result.lms_pulls, result.warnings = pulls, warnings
    turned_down = rejected(ledger) if ledger is not None else ()

    def suggest() -> pd.DataFrame:
        return suggestions_for(config, result.exceptions, turned_down, sources)

    return result, suggest


def _move(written: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Move the written files into ``folder`` (created when missing; a file of the same
    name there is replaced, as writing into it would)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        moved = {}
        for kind, path in written.items():
            moved[kind] = folder / OUTPUT_FILES[kind]
            os.replace(path, moved[kind])
    except OSError as exc:
        staging = next(iter(written.values())).parent
        raise ReconError(
            f"the run is recorded, but its outputs could not be moved from {staging} "
            f"into {folder}: {exc}"
        ) from None
    return moved
