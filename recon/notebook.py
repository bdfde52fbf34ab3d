"""Small helpers the analyst notebooks call, so that no logic lives in their cells.

* Default paths: :func:`resolve_config` (the bundled sample), :func:`resolve_ledger`
  (the config's ledger by the rule every entry point follows,
  :func:`recon.ledger.ledger_for`: ``recon-ledger.db`` beside the config, or in
  ``$RECON_WORK_DIR`` when set, unless ``ledger_path`` names one).
* The API: :func:`api_client` is the one place the notebooks read the environment. With
  ``TI_BASE_URL`` and ``TI_API_KEY`` set it talks to the real LMS; otherwise it starts
  the local sandbox in this process, seeded with the config's LMS progress file. The key
  is never printed: :func:`describe_client` names the URL only.
* Reports the notebooks show: :func:`input_quality`, :func:`lms_words`, :func:`problems`,
  :func:`show_exceptions`, :func:`runs_overview`, :func:`still_open`.

``RECON_WORK_DIR`` moves the default ledger (and notebook 01's output files beside it)
elsewhere, e.g. for a scheduled rerun or a test that must not write into the repository.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import outcomes as oc
from .client import ApiClient
from .config import load_config
from .errors import ConfigError, ReconError
from .fmt import code_spellings
from .ledger import WORK_DIR_ENV, Ledger, ledger_for
from .submit import Pace
from .target import PRACTICE_LABEL

if TYPE_CHECKING:
    from .result import Result
    from .sandbox import Sandbox

__all__ = [
    "SAMPLE_CONFIG",
    "SANDBOX_PACE",
    "WORK_DIR_ENV",
    "api_client",
    "describe_client",
    "exceptions_by_kind",
    "input_quality",
    "latest_or_reconcile",
    "lms_words",
    "open_ledger",
    "pace_for",
    "problems",
    "repo_root",
    "resolve_config",
    "resolve_ledger",
    "resolve_table",
    "runs_overview",
    "sandbox_for",
    "show_exceptions",
    "still_open",
    "table",
]

SAMPLE_CONFIG = Path("data") / "sample" / "recon.toml"
SANDBOX_PACE = Pace(rate=50.0, burst=50, concurrency=4)
"""How fast the notebooks send to their own sandbox: it runs on this machine, so the
demo need not wait at the real API's 2 requests/s (the sandbox is started to allow it)."""

# Sandboxes started for this kernel, by base URL: kept alive while the kernel runs.
_SANDBOXES: dict[str, Sandbox] = {}


def repo_root() -> Path:
    """The repository holding this package (where ``data/sample`` and ``work/`` live).

    The package's parent when installed in place (``pip install -e .``); otherwise the
    first folder up from the current one that holds the bundled sample.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / SAMPLE_CONFIG).is_file():
        return here
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / SAMPLE_CONFIG).is_file():
            return folder
    return here


def resolve_config(config_path: str | Path | None = None) -> Path:
    """``config_path`` as an absolute path; None means the bundled sample's ``recon.toml``."""
    path = Path(config_path) if config_path is not None else repo_root() / SAMPLE_CONFIG
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", file=path)
    return path


def resolve_ledger(config_path: str | Path | None, ledger_path: str | Path | None = None) -> Path:
    """The ledger of ``config_path`` (None: the bundled sample) as an absolute path, its
    folder created: ``ledger_path`` when given, else ``recon-ledger.db`` in
    ``$RECON_WORK_DIR`` when set, else beside the config, as the CLI finds it
    (:func:`recon.ledger.ledger_for`)."""
    config = Path(config_path) if config_path is not None else repo_root() / SAMPLE_CONFIG
    path = ledger_for(config, ledger_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def open_ledger(config_path: str | Path | None, ledger_path: str | Path | None = None) -> Ledger:
    """Open (creating if needed) the ledger :func:`resolve_ledger` finds."""
    return Ledger(resolve_ledger(config_path, ledger_path))


# -- runs ---------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _input_files(config_path: Path) -> dict[str, Path]:
    config = load_config(config_path)
    files = {"external": config.external.file, "progress": config.progress.file}
    # A table read from the LMS pull has no file: a new pull is told apart by its id
    # (see latest_or_reconcile).
    if config.users is not None and config.users.source == "file":
        files["users"] = config.users.file
    if config.paths is not None and config.paths.source == "file":
        files["paths"] = config.paths.file
    return files


def latest_or_reconcile(
    config_path: str | Path, ledger: Ledger, as_of: Any = None
) -> tuple[int, bool]:
    """The run to review: the ledger's latest, or a fresh reconciliation.

    A fresh run is reconciled (and recorded) when the ledger has none, when ``as_of`` is
    given, or when an input file differs from the latest run's (by sha256) or a table
    read from the LMS has a newer ``recon lms pull`` than the run read: reviewing a
    run made from other files would approve corrections the data no longer supports.
    Returns ``(run_id, reconciled)``.
    """
    from .pipeline import reconcile_run

    config_path = resolve_config(config_path)
    runs = ledger.runs()
    if as_of is None and not runs.empty:
        from .lms_pull import latest_pull, run_pulls

        recorded = runs["inputs"].iloc[-1]
        current = {role: _sha256(path) for role, path in _input_files(config_path).items()}
        config = load_config(config_path)
        # Tables read from the LMS pull: the same when the run read the latest pull.
        pulled = {
            role
            for role, spec in (("users", config.users), ("paths", config.paths))
            if spec is not None and spec.source == "lms"
        }
        used = run_pulls(ledger, int(runs["run_id"].iloc[-1]))
        same = (
            set(recorded) - pulled == set(current)
            and all(recorded[role].get("sha256") == sha for role, sha in current.items())
            and all(used.get(r) == (latest_pull(ledger, r) or {}).get("id") for r in pulled)
        )
        if same:
            return int(runs["run_id"].iloc[-1]), False
    result = reconcile_run(config_path, ledger=ledger, as_of=as_of)
    assert result.run_id is not None  # set by record_run
    return result.run_id, True


# -- the API ------------------------------------------------------------------------------


def api_client(config_path: str | Path | None = None) -> ApiClient:
    """A client for the LMS API, or for a local sandbox when none is configured.

    With both ``TI_BASE_URL`` and ``TI_API_KEY`` set: the real API. With neither: a
    sandbox started in this process (loopback, a random key nobody sees), seeded with
    the config's LMS progress file, kept running until the kernel stops. With only one
    of them set: :class:`ReconError`, rather than quietly using the sandbox.
    """
    base_url = os.environ.get("TI_BASE_URL", "").strip()
    key = os.environ.get("TI_API_KEY", "").strip()
    if base_url and key:
        client = ApiClient(base_url, key)
        _check_configured_lms(config_path, client)
        return client
    if base_url or key:
        missing = "TI_API_KEY" if base_url else "TI_BASE_URL"
        raise ReconError(
            f"{missing} is not set: set both TI_BASE_URL and TI_API_KEY to use the LMS "
            "API, or neither to use the local sandbox"
        )
    from .sandbox import Sandbox

    config_path = resolve_config(config_path)
    key = secrets.token_urlsafe(24)
    # Its database is a temporary file it removes when it stops.
    sandbox = Sandbox(
        key=key,
        seed_progress=load_config(config_path).progress,
        rate=SANDBOX_PACE.rate,
        burst=SANDBOX_PACE.burst,
    ).start()
    atexit.register(sandbox.stop)
    _SANDBOXES[sandbox.url] = sandbox
    return ApiClient(sandbox.url, key)


def _check_configured_lms(config_path: str | Path | None, client: ApiClient) -> None:
    """Stop early when recon.toml's ``[lms] base_url`` names another LMS than
    ``TI_BASE_URL``, as ``recon submit --config`` would (the widget's submit does not
    know the config). A loopback address may be a practice sandbox, which is allowed:
    its ping decides; one that cannot be pinged now is left to submit's own ping."""
    from .errors import ApiError, TargetError
    from .target import is_loopback_url, probe, target_url

    spec = load_config(resolve_config(config_path)).lms
    if spec is None or spec.base_url is None:
        return
    named, given = target_url(spec.base_url), target_url(client.base_url)
    if named == given:
        return
    if is_loopback_url(given):
        try:
            if probe(client).practice:
                return
        except ApiError:
            return  # submit pings first and stops on the same failure
    raise TargetError(
        f"TI_BASE_URL is {given}, but recon.toml's [lms] base_url names {named}: "
        "correct one of them (a ledger belongs to one LMS)"
    )


def sandbox_for(client: ApiClient) -> Sandbox | None:
    """The sandbox :func:`api_client` started for ``client``, if it did."""
    return _SANDBOXES.get(client.base_url)


def pace_for(client: ApiClient | None) -> Pace:
    """How fast to send: quick to a sandbox started here, the vendor's standard plan
    (2 requests/s, burst 20) to anything else."""
    if client is not None and sandbox_for(client) is not None:
        return SANDBOX_PACE
    return Pace()


def describe_client(client: ApiClient | None) -> str:
    """Where submissions go, in one sentence; never the key."""
    if client is None:
        return "No API client: dry runs only."
    sandbox = sandbox_for(client)
    if sandbox is not None:
        return (
            f"{PRACTICE_LABEL}. Submissions go to a local sandbox at {client.base_url}, "
            "started for this "
            f"notebook and seeded with the config's LMS progress (it allows "
            f"{SANDBOX_PACE.rate:g} requests/s). Set TI_BASE_URL and TI_API_KEY before "
            "starting Jupyter to talk to the LMS instead."
        )
    return (
        f"Submissions go to the LMS API at {client.base_url} "
        f"(key from TI_API_KEY, not shown), paced at {Pace().rate:g} requests/s."
    )


# -- reports ------------------------------------------------------------------------------


def input_quality(result: Result) -> pd.DataFrame:
    """Rows read per input file, with how each was read and how many rows are unusable."""
    unusable = {
        "external": result.problems,
        "progress": result.progress_ignored
        + sum(result.lms_words_unknown.values())
        + result.lms_bad_dates,
    }
    records = [
        {
            "input": role,
            "file": Path(info.path).name,
            "rows read": info.rows,
            "rows unusable": unusable.get(role, 0),
            "encoding": info.encoding,
            "delimiter": {",": "comma", ";": "semicolon", "\t": "tab"}.get(
                info.delimiter or "", info.delimiter or ""
            ),
            "sha256": info.sha256[:12],
        }
        for role, info in result.inputs.items()
    ]
    return pd.DataFrame(records).set_index("input")


def lms_words(result: Result) -> pd.DataFrame:
    """The LMS export's status words recon did not understand, most frequent first: the
    word ('' for a blank status), its rows, and the `[progress.statuses]` line that maps
    it (a ``"?"`` placeholder, marked, when the meaning is not obvious)."""
    from .result import status_line

    records = [
        {"word": word, "rows": rows, "line for [progress.statuses]": status_line(word)}
        for word, rows in result.lms_words_unknown.items()
    ]
    return pd.DataFrame(records, columns=["word", "rows", "line for [progress.statuses]"])


def problems(result: Result, examples: int = 3) -> pd.DataFrame:
    """The outcomes to fix at the source, one line per kind: rows, what to do, examples.

    Each example is ``row N: detail``, N being the data row in the provider's file.
    """
    frame = result.exceptions
    records = []
    for kind in oc.PROBLEMS:
        rows = frame[frame["outcome"] == kind]
        if rows.empty:
            continue
        sample = rows.head(examples)
        records.append(
            {
                "outcome": kind,
                "rows": len(rows),
                "what to do": oc.ADVICE[kind],
                "examples": "; ".join(
                    f"row {r}: {d}" for r, d in zip(sample["row"], sample["detail"], strict=True)
                ),
            }
        )
    columns = ["outcome", "rows", "what to do", "examples"]
    return pd.DataFrame(records, columns=columns).set_index("outcome")


def table(frame: pd.DataFrame) -> Any:
    """``frame`` for display: whole cell texts (no ``...``), left-aligned, HTML-escaped
    (the cells hold the provider's text, which must not become markup)."""
    return frame.style.format(escape="html", na_rep="").set_table_styles(
        [
            {"selector": "td", "props": [("text-align", "left"), ("white-space", "pre-wrap")]},
            {"selector": "th", "props": [("text-align", "left")]},
        ]
    )


# LMS ids: kept in notebook 04's tables, but after the columns in the analyst's words.
_ID_COLUMNS = ("candidate_id", "target_id", "run_id")


def resolve_table(frame: pd.DataFrame) -> Any:
    """Notebook 04's suggestions and aliases for display (every column kept): the
    emails, course codes, scores and reasons first, the LMS ids last as detail; scores
    to two decimals, times to the minute (UTC)."""
    shown = frame.copy()
    ids = [c for c in _ID_COLUMNS if c in shown.columns]
    shown = shown[[c for c in shown.columns if c not in ids] + ids]
    if "score" in shown.columns:
        shown["score"] = [
            "" if pd.isna(v) else f"{float(v):.2f}" for v in shown["score"].astype(object)
        ]
    if "at" in shown.columns:
        shown["at"] = [
            f"{str(v)[:10]} {str(v)[11:16]} UTC" if isinstance(v, str) and len(v) >= 16 else v
            for v in shown["at"]
        ]
    return table(shown)


def exceptions_by_kind(result: Result) -> dict[str, pd.DataFrame]:
    """The exceptions (rows to fix at the source) split by outcome, in report order."""
    frame = result.exceptions
    return {
        kind: frame[frame["outcome"] == kind].reset_index(drop=True)
        for kind in oc.PROBLEMS
        if (frame["outcome"] == kind).any()
    }


def show_exceptions(result: Result, limit: int = 20) -> None:
    """Display one table per kind of exception (the first ``limit`` rows of each)."""
    from IPython.display import Markdown, display

    tables = exceptions_by_kind(result)
    if not tables:
        display(Markdown("No exceptions: every provider row could be used."))
        return
    for kind, rows in tables.items():
        more = f", first {limit} shown" if len(rows) > limit else ""
        display(Markdown(f"**{kind}**: {len(rows):,} row(s){more}. {oc.ADVICE[kind]}"))
        display(table(rows.head(limit)))


def runs_overview(ledger: Ledger) -> pd.DataFrame:
    """Every run in the ledger, one line each: what it found, and what was decided and
    accepted during it (each decision and acceptance counted once, in its own run)."""
    runs = ledger.runs_by_activity()
    columns = [
        "as_of",
        "created_at",
        "rows_read",
        "problems",
        "proposals",
        "approved",
        "declined",
        "accepted",
        "refused",
    ]
    if runs.empty:
        return pd.DataFrame(columns=["run_id", *columns]).set_index("run_id")
    return runs.set_index("run_id")[columns]


def still_open(ledger: Ledger, min_runs: int = 2) -> pd.DataFrame:
    """Learner and path pairs proposed in the latest run and in at least ``min_runs``
    runs in all: the gaps that stay open, most persistent first.

    A pair rather than a key: the same gap can be proposed with another date in a later
    run, and it is still the same gap.
    """
    columns = [
        "learner",
        "path",
        "userId",
        "learningPathId",
        "category",
        "runs",
        "first_run",
        "decision",
        "submission",
        "api_errors",
    ]
    runs = ledger.runs()
    if runs.empty:
        return pd.DataFrame(columns=columns)
    pair = ["userId", "learningPathId"]
    seen = pd.concat(
        [ledger.proposals(int(r))[[*pair, "run_id"]] for r in runs["run_id"]],
        ignore_index=True,
    )
    history = seen.groupby(pair).agg(runs=("run_id", "nunique"), first_run=("run_id", "min"))
    latest = ledger.proposals(int(runs["run_id"].iloc[-1]))
    frame = latest.merge(history.reset_index(), on=pair, how="left")
    frame = frame[frame["runs"] >= min_runs].copy()
    # The course code as analysts know it (one spelling per code), the id beside it.
    spellings = code_spellings(latest)
    frame["path"] = [spellings.get(str(p).lower(), "") for p in frame["learningPathId"]]
    return frame.sort_values(["runs", "first_run"], ascending=[False, True])[columns].reset_index(
        drop=True
    )


def to_review(result: Result, config_path: str | Path | None = None) -> pd.DataFrame:
    """The rows to review (``completion-date-differs``), as review.csv lists them: both
    completion days in the provider's timezone, and why they differ (with the UTC times);
    review.csv has the instants too."""
    from .config import load_config
    from .outputs import review_frame, review_view
    from .sources import read_sources, sources_of

    config = load_config(resolve_config(config_path or result.config_path))
    zone = config.external.timezone
    # The engine's own rows when it made the Result (no file read again); else the files.
    sources = sources_of(result) or read_sources(config)
    return review_view(review_frame(result, sources, zone), zone)
