"""`recon demo`: the whole loop on the bundled sample, against the local sandbox.

reconcile -> accept the identity suggestions scoring ACCEPT_ABOVE or more -> approve by
policy -> submit -> export the LMS's progress -> reconcile again (the accepted aliases in
use) -> report.html. Nothing to set up: the sandbox runs in this process on a free
loopback port with a throwaway key that is never shown.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import time
from importlib import resources
from pathlib import Path

import pandas as pd

from . import outcomes as oc
from .aliases import HOW_BULK, Resolved, accept_above
from .client import ApiClient
from .config import Config, load_config
from .fmt import duration
from .ledger import Ledger
from .pipeline import reconcile_run
from .report import write_report
from .result import Result
from .sandbox import PROGRESS_COLUMNS, Sandbox
from .submit import Pace, SubmitReport, submit
from .target import guess


def sample_config() -> Path:
    """The bundled sample's ``recon.toml``, shipped inside the package (``recon/sample``;
    ``data/sample`` in a checkout links to it), so the demo runs from any folder after a
    plain ``pip install``. A regular install is a folder, never a zip, so the resource is
    a real file whose CSVs sit beside it."""
    return Path(str(resources.files("recon") / "sample" / "recon.toml"))


SAMPLE_CONFIG = sample_config()

POLICY = "demo: approve every missing-completion and missing-progress proposal"

ACCEPT_ABOVE = 0.9
"""The demo's explicit bulk choice (`recon resolve --accept-above 0.9`): the sample's
suggestions from a rule that reads the same address or code (0.95) are taken, its typos
(0.9 x similarity, below 0.9) are left for an analyst to look at."""
THROUGH_ALIAS = "resolved through an alias"
"""What the outcome's detail of a row resolved through an alias says (recon.aliases)."""

# The demo's sandbox plays an enterprise-sized plan so the first minute is not spent
# waiting; the real API's standard plan is 2 requests/s with a burst of 20.
DEMO_PACE = Pace(rate=40.0, burst=40, concurrency=8)


@dataclasses.dataclass
class DemoResult:
    """What the demo did, for the CLI and the tests."""

    before: Result
    after: Result
    submission: SubmitReport
    report: Path
    out: Path
    resolved: Resolved = dataclasses.field(default_factory=Resolved)

    @property
    def gap_closed(self) -> bool:
        return all(self.after.counts[name] == 0 for name in oc.PROPOSED)

    @property
    def through_aliases(self) -> pd.DataFrame:
        """The rerun's outcomes of the rows resolved through an alias."""
        rows = self.after.outcomes
        return rows[rows["detail"].str.contains(THROUGH_ALIAS, regex=False, na=False)]


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, flush=True)


def run_demo(
    out: str | Path = "out/demo",
    *,
    config: str | Path | None = None,
    pace: Pace = DEMO_PACE,
    progress: bool = True,
    quiet: bool = False,
) -> DemoResult:
    """Run the whole loop into ``out`` (its ledger and sandbox are started afresh)."""
    out = Path(out)
    for stale in ("ledger", "sandbox"):
        shutil.rmtree(out / stale, ignore_errors=True)
    (out / "ledger").mkdir(parents=True, exist_ok=True)
    (out / "sandbox").mkdir(parents=True, exist_ok=True)
    cfg: Config = load_config(config or SAMPLE_CONFIG)
    key = secrets.token_urlsafe(24)
    started = time.perf_counter()

    with (
        Ledger(out / "ledger" / "recon-ledger.db") as ledger,
        Sandbox(
            key=key,
            db=out / "sandbox" / "lms.db",
            seed_progress=cfg.progress,
            rate=pace.rate,
            burst=pace.burst,
            latency_ms=20,
        ) as lms,
    ):
        _say(f"1. sandbox LMS API on {lms.url} (seeded with {cfg.progress.file.name})", quiet)

        before = reconcile_run(cfg, out=out / "run-1", ledger=ledger)
        _say(f"2. reconciled {before.rows_read:,} provider rows -> run {before.run_id}", quiet)
        _say(_indent(before.render()), quiet)

        # An explicit bulk choice, recorded as such: the rerun uses these aliases.
        resolved = accept_above(ledger, ACCEPT_ABOVE, run=before.run_id, by="recon demo")
        _say(
            f"   accepted the suggestions scoring {ACCEPT_ABOVE:g} or more: {resolved.accepted:,} "
            f"alias(es), recorded as '{HOW_BULK.format(score=ACCEPT_ABOVE)}' by recon demo\n"
            f"   (recon resolve --accept-above {ACCEPT_ABOVE:g}); {resolved.skipped:,} row(s) "
            "scoring less or without a single candidate are left for an analyst",
            quiet,
        )

        # Every proposal is a missing-completion or a missing-progress one.
        keys = ledger.select(before.run_id, everything=True)
        ledger.decide(keys, "approved", run=before.run_id, by="recon demo", policy=POLICY)
        _say(f"3. approved {len(keys):,} proposals by policy ({POLICY})", quiet)

        client = ApiClient(lms.url, key)
        try:
            where = guess(client)
            _say(
                f"4. submitting to {where.label if where else client.base_url} at "
                f"{pace.rate:g} requests/s (burst {pace.burst}, {pace.concurrency} in flight)",
                quiet,
            )
            report = submit(ledger, client, run=before.run_id, pace=pace, progress=progress)
        finally:
            client.close()
        _say(_indent(report.render()), quiet)

        exported = out / "lms-progress-after.csv"
        lms.export_progress(exported)
        _say(f"5. exported the LMS's progress after the submission -> {exported}", quiet)

    user, path, status, completion = PROGRESS_COLUMNS
    after_cfg = dataclasses.replace(
        cfg,
        progress=dataclasses.replace(
            cfg.progress,
            file=exported.resolve(),
            sheet=None,
            user_id=user,
            path_id=path,
            status=status,
            completion_date=completion,
        ),
    )
    with Ledger(out / "ledger" / "recon-ledger.db") as ledger:
        after = reconcile_run(after_cfg, out=out / "run-2", ledger=ledger)
        report_path = write_report(ledger, out / "report.html", run=after.run_id)
    result = DemoResult(before, after, report, report_path, out, resolved)
    _say(f"6. reconciled again -> run {after.run_id}", quiet)
    _say(_before_after(before, after), quiet)
    _say(_through_aliases(result.through_aliases), quiet)
    verdict = (
        "the gap is closed: no missing-completion and no missing-progress left"
        if result.gap_closed
        else "the gap is NOT closed: see the report"
    )
    _say(f"\n{verdict}. ({duration(time.perf_counter() - started)})", quiet)
    _say(
        f"\nreport:    {report_path}\n"
        f"outputs:   {out / 'run-1'} and {out / 'run-2'} "
        "(outcomes, proposals, exceptions, review, suggestions)\n"
        f"ledger:    {out / 'ledger' / 'recon-ledger.db'}  (try: recon status --ledger ...)\n"
        "notebooks: `make lab`, then notebooks/01_reconcile.ipynb, "
        "02_review_and_submit.ipynb, 03_history.ipynb, 04_resolve.ipynb",
        quiet,
    )
    return result


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


def _through_aliases(rows: pd.DataFrame) -> str:
    counts = rows["outcome"].astype(str).value_counts()
    shown = ", ".join(f"{n:,} {name}" for name, n in counts.items() if n) or "none"
    return f"   {len(rows):,} row(s) {THROUGH_ALIAS} on this run (the detail says so): {shown}"


def _before_after(before: Result, after: Result) -> str:
    names = [n for n in oc.ALL if before.counts[n] or after.counts[n]]
    width = max(len(n) for n in names)
    lines = [f"   {'outcome':<{width}}  {'before':>8}  {'after':>8}"]
    for name in names:
        lines.append(f"   {name:<{width}}  {before.counts[name]:>8,}  {after.counts[name]:>8,}")
    return "\n".join(lines)
