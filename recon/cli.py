"""The `recon` command line: thin wrappers over the library, one function per command.

Size: over 600 lines because it holds the parser of every command beside the code
that reads each option (a test checks the two and the README agree); the parser is not split
from the handlers because each option's meaning would then live in two files.

Exit codes (a contract): 0 nothing left to do, 1 something to do or some records
refused, 2 an error (bad input, refused key, feature off, ...) and anything unexpected, so
a scheduler never takes a crash for "something to do". Every error becomes one line on
stderr here and nowhere else, with the API key blanked out; ``recon --debug`` adds the
traceback (blanked out too).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import traceback
import unicodedata
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ReconError

if TYPE_CHECKING:
    from .client import ApiClient
    from .ledger import Ledger

EXIT_OK, EXIT_TODO, EXIT_ERROR = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


def cmd_reconcile(args: argparse.Namespace) -> int:
    from .config import load_config
    from .ledger import Ledger, ledger_for
    from .outputs import OUTPUT_FILES
    from .pipeline import check_out, reconcile_run
    from .suggest import describe

    config = load_config(args.config)
    out = check_out(args.out)
    ledger = None if args.no_ledger else Ledger(ledger_for(args.config, args.ledger))
    try:
        # Reconcile, write the outputs, then record: a failed write records no run.
        result = reconcile_run(config, out=out, ledger=ledger, as_of=args.as_of)
        waiting = ledger.unattributed() if ledger is not None else {}
    finally:
        if ledger is not None:
            ledger.close()
    print(result.render())
    print(f"  written to {out}: " + ", ".join(OUTPUT_FILES.values()))
    print(f"  {describe(result.suggestions)}")
    if ledger is not None:
        print(f"  recorded as run {result.run_id} in {ledger.path}")
        if waiting:
            print(
                f"  note: {waiting.get('accepted', 0):,} acceptance(s) recorded before recon "
                "recorded targets are not counted as already-submitted until the first real "
                "`recon submit` asks where they went (see `recon status`)"
            )
    return result.exit_code


def cmd_resolve(args: argparse.Namespace) -> int:
    """Suggestions: list, accept, reject, accept above a score; aliases: list, export,
    remove (issue 14)."""
    from . import aliases as al
    from .ledger import default_analyst
    from .outputs import write_csv

    by = args.by if args.by is not None else default_analyst()
    with _open_ledger(args) as ledger:
        if args.accept is not None:
            done = al.accept(
                ledger, args.accept, run=args.run, kind=args.kind, candidate=args.candidate, by=by
            )
        elif args.reject is not None:
            done = al.reject(
                ledger, args.reject, run=args.run, kind=args.kind, candidate=args.candidate, by=by
            )
        elif args.accept_above is not None:
            done = al.accept_above(ledger, args.accept_above, run=args.run, by=by)
        elif args.remove_alias is not None:
            gone = al.remove(ledger, args.remove_alias, by=by)
            print(
                f"removed alias {args.remove_alias}: {gone['kind']} '{gone['value']}' -> "
                f"{gone['target_id']} (the next reconcile looks it up as before)"
            )
            return EXIT_OK
        elif args.export_aliases is not None:
            frame = al.active(ledger)
            write_csv(frame[al.ALIAS_COLUMNS], args.export_aliases)
            print(f"{len(frame)} alias(es) written to {args.export_aliases}")
            return EXIT_OK
        elif args.aliases:
            frame = al.active(ledger)
            if frame.empty:
                print("no aliases yet")
            for r in frame.to_dict("records"):
                print(
                    f"  {r['id']:>4}  {r['kind']:<7}  {r['value']}  ->  {r['candidate'] or ''} "
                    f"{r['target_id']}  ({r['how']} by {r['by']}, {str(r['at'])[:10]})"
                )
            return EXIT_OK
        else:
            frame = al.suggestions(ledger, args.run)
            run_id = ledger.resolve_run(args.run)
            if frame.empty:
                print(f"run {run_id}: no open suggestions")
                return EXIT_OK
            print(
                f"run {run_id}: open suggestions (accept with --accept ROW, reject with "
                "--reject ROW)"
            )
            for r in frame.to_dict("records"):
                score = (
                    "    "
                    if r["score"] is None or r["score"] != r["score"]
                    else (f"{r['score']:.2f}")
                )
                shown = f"{r['candidate']} ({r['candidate_id']})" if r["candidate_id"] else "-"
                print(
                    f"  row {r['row']:>6}  {r['kind']:<7}  {r['value']}  {score}  {shown}  "
                    f"{r['reason']}"
                )
            return EXIT_OK
    print(done.describe())
    return EXIT_OK


def _open_ledger(args: argparse.Namespace) -> Ledger:
    """The ledger of ``ledger_for``: --ledger, else $RECON_WORK_DIR, else beside --config,
    else ./recon-ledger.db. It must exist: only `recon reconcile` starts a ledger."""
    from .errors import LedgerError
    from .ledger import Ledger, ledger_for

    path = ledger_for(getattr(args, "config", None), args.ledger)
    if not path.exists():
        raise LedgerError(f"no ledger at {path}: run `recon reconcile` first (or give --ledger)")
    return Ledger(path)


def _decide(args: argparse.Namespace, decision: str) -> int:
    from .ledger import default_analyst

    # By key, a person names each proposal: it gets the decision whatever it had. Any
    # other filter is a bulk decision: only undecided proposals change, unless --override.
    bulk = not args.key
    with _open_ledger(args) as ledger:
        keys = ledger.select(
            args.run,
            categories=args.category or (),
            paths=args.path or (),
            keys=args.key or (),
            everything=args.all,
        )
        decided = ledger.decide(
            keys,
            decision,
            run=args.run,
            by=args.by if args.by is not None else default_analyst(),
            note=args.note,
            only_undecided=bulk and not args.override,
        )
        run_id = ledger.resolve_run(args.run)
    print(decided.describe(f" proposal(s) of run {run_id}", "--override to change decided ones"))
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide(args, "approved")


def cmd_reject(args: argparse.Namespace) -> int:
    return _decide(args, "rejected")


def cmd_status(args: argparse.Namespace) -> int:
    from .status import render_status

    with _open_ledger(args) as ledger:
        print(render_status(ledger))
    return EXIT_OK


def _client(args: argparse.Namespace) -> ApiClient:
    from .client import ApiClient
    from .errors import ApiError

    base_url = args.base_url or env("TI_BASE_URL")
    if not base_url:
        raise ApiError("no base URL: give --base-url or set TI_BASE_URL")
    key = env("TI_API_KEY")
    if not key:
        raise ApiError("no API key: set the environment variable TI_API_KEY")
    # --timeout bounds each request in all (connecting, the headers, the body), however
    # slowly a server trickles its answer.
    return ApiClient(base_url, key, read_timeout=args.timeout, deadline=args.timeout)


def cmd_submit(args: argparse.Namespace) -> int:
    from .submit import Pace, submit

    pace = Pace(rate=args.rate, burst=args.burst, concurrency=args.concurrency)
    lms = None
    if args.config:  # its [lms] base_url, if any, names the one LMS this ledger is for
        from .config import load_config

        spec = load_config(args.config).lms
        lms = spec.base_url if spec is not None else None
    client = None if args.dry_run else _client(args)
    with _open_ledger(args) as ledger:
        try:
            report = submit(
                ledger,
                client,
                run=args.run,
                pace=pace,
                limit=args.limit,
                dry_run=args.dry_run,
                lms=lms,
                legacy_attempts=args.legacy_attempts,
            )
        finally:
            if client is not None:
                client.close()
    print(report.render())
    return report.exit_code


def cmd_lms_pull(args: argparse.Namespace) -> int:
    from .lms_pull import PullPace, pull

    lms, content_type = None, "learningPath"
    if args.config:  # its [lms] names the one LMS this ledger is for, and the content type
        from .config import load_config

        spec = load_config(args.config).lms
        if spec is not None:
            lms, content_type = spec.base_url, spec.content_type
    from .ledger import Ledger, ledger_for

    what = [w for w in args.what.split(",") if w.strip()]
    client = _client(args)
    try:
        # A pull may come first (source = "lms" needs one before any reconcile): it
        # starts the ledger when there is none yet.
        with Ledger(ledger_for(args.config, args.ledger)) as ledger:
            report = pull(
                ledger,
                client,
                what=what,
                pace=PullPace(rate=args.rate, burst=args.burst, per_page=args.per_page),
                content_type=content_type,
                lms=lms,
            )
    finally:
        client.close()
    print(report.render().replace("stored in the ledger", f"stored in {ledger.path}"))
    return EXIT_OK


def cmd_ping(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        answer = client.ping()
    finally:
        client.close()
    print(f"{client.base_url}: the API answered {answer or 'OK'}; the key works")
    return EXIT_OK


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from .sandbox import DEFAULT_KEY, SandboxSettings, serve

    settings = {
        "rate": args.rate,
        "burst": args.burst,
        "latency_ms": args.latency_ms,
        "fail_rate": args.fail_rate,
        "fail_first": args.fail_first,
        "drop_rate": args.drop_rate,
        "drop_after_accept_rate": args.drop_after_accept_rate,
        "stall_ms": args.stall_ms,
        "stall_rate": args.stall_rate,
        "feature_on": not args.feature_off,
        "seed": args.seed,
        "page_shape": args.page_shape,
    }
    try:
        SandboxSettings(**settings)  # refuse a bad value before binding the port
    except ValueError as exc:
        raise ReconError(f"sandbox: {exc}") from None
    if Path(args.db).is_dir():
        raise ReconError(f"--db {args.db} is a folder; give the SQLite file to keep the LMS in")
    seed: Any = args.seed_progress
    lists: dict[str, Any] = {}
    if args.config:
        from .config import load_config
        from .sandbox.directory import from_config

        if args.seed_progress:
            raise ReconError("sandbox: give --config or --seed-progress, not both")
        # The LMS starts as the config's [progress] export says: its columns and words;
        # its learners and learning paths are the config's directory and mapping.
        config = load_config(args.config)
        seed = config.progress
        lists["learners"], lists["paths"] = from_config(config)
    serve(
        host=args.host,
        port=args.port,
        db=args.db,
        key=args.key or env("TI_API_KEY") or DEFAULT_KEY,
        seed_progress=seed,
        **lists,
        **settings,
    )
    return EXIT_OK


def cmd_sandbox_export(args: argparse.Namespace) -> int:
    from .sandbox import export_progress

    spec = None
    if args.config:
        from .config import load_config

        spec = load_config(args.config).progress
    count = export_progress(args.db, args.out, spec)
    print(f"wrote {count} row(s) of LMS progress to {args.out}")
    if spec is not None:
        print(
            f"  in the shape of {args.config}'s [progress]; to reconcile against it, point "
            f'[progress] file at it (file = "{Path(args.out).resolve()}")'
        )
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    with _open_ledger(args) as ledger:
        path = write_report(ledger, args.out, run=args.run)
    print(f"report written to {path}")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from .init import init_config

    result = init_config(
        args.provider,
        out=args.out,
        preset=args.preset,
        progress=args.progress,
        users=args.users,
        paths=args.paths,
        timezone=args.timezone,
        force=args.force,
    )
    for line in result.messages:
        print(line)
    print(f"wrote {args.out}" + (f" with {result.todo} TODO(s) to check" if result.todo else ""))
    print(f"next: recon reconcile --config {args.out} --out out")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    result = run_demo(args.out)
    return EXIT_OK if result.gap_closed else EXIT_TODO


def cmd_bench(args: argparse.Namespace) -> int:
    from .devtools.bench import format_bench, run_bench

    figures = run_bench(
        args.rows, seed=args.seed, keep=args.keep, xlsx=args.xlsx, repeat=args.repeat
    )
    print(format_bench(figures))
    return EXIT_OK


def _positive(kind: type) -> Callable[[str], Any]:
    """An argparse type: a number above zero (a rate of 0 would never send)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be above zero, not {text}")
        return value

    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {text}")
    return value


def _ledger_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ledger",
        help="the ledger file (default: recon-ledger.db beside --config, or in "
        "$RECON_WORK_DIR when set)",
    )
    p.add_argument("--config", help="a recon.toml: its folder holds the default ledger")


def _api_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--base-url", help="e.g. https://yourcompany.thoughtindustries.com (default: $TI_BASE_URL)"
    )
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=30.0,
        help="seconds each request may take in all, however slowly the answer comes (default 30)",
    )


def _preset_names() -> list[str]:
    from .presets import names

    return names()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recon",
        description="Reconcile a training provider's records with the LMS's learning-path "
        "progress, and post the corrections.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an error, print the traceback as well (the API key blanked out)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "reconcile",
        help="compare the provider's export with the LMS and write outcomes and proposals",
        description="Compare the provider's export with the LMS's progress; write "
        "outcomes.csv, proposals.csv, exceptions.csv, review.csv and summary.json into --out. "
        "Exit 0 when there is nothing to propose and no exception, 1 when there is, 2 on error.",
    )
    p.add_argument("--config", required=True, help="the recon.toml to use")
    p.add_argument("--out", required=True, help="folder for the outputs (created if needed)")
    p.add_argument("--as-of", help="the run's time, ISO 8601 (default: now)")
    p.add_argument(
        "--ledger",
        help="record the run in this ledger (default: recon-ledger.db beside the config, "
        "or in $RECON_WORK_DIR when set)",
    )
    p.add_argument("--no-ledger", action="store_true", help="do not record the run in a ledger")
    p.set_defaults(handler=cmd_reconcile)

    p = sub.add_parser(
        "init",
        help="write a first recon.toml from the files themselves",
        description="Inspect the provider's export (and the LMS progress export, the "
        "directory and the course mapping when given) and write a commented recon.toml: the "
        "columns, date formats and status words it found, what it could not decide marked "
        "TODO. With --preset the provider's columns and words come from the preset, and init "
        "says which expected columns the file has and which it lacks. Never overwrites a "
        "file without --force.",
    )
    p.add_argument("--provider", required=True, help="the provider's export (CSV, XLSX, xAPI)")
    p.add_argument("--preset", help="a provider preset: " + ", ".join(_preset_names()))
    p.add_argument("--progress", help="the LMS's learning-path progress export")
    p.add_argument("--users", help="the learner directory (email -> LMS user id)")
    p.add_argument("--paths", help="the course-code -> learning-path mapping")
    p.add_argument("--timezone", help="the provider's timezone, an IANA name (default UTC)")
    p.add_argument("--out", default="recon.toml", help="the config to write (default recon.toml)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(handler=cmd_init)

    for name, handler, verb in (
        ("approve", cmd_approve, "approve"),
        ("reject", cmd_reject, "reject"),
    ):
        p = sub.add_parser(
            name,
            help=f"{verb} proposals of a run (only approved ones are ever sent)",
            description=f"{verb.capitalize()} the proposals of a run that match every "
            "filter given (several values of one filter are alternatives). The decision is "
            "written to the ledger at once. With --key it applies whatever the proposal had; "
            "with --all, --category or --path only undecided proposals change (the others "
            "are counted), unless --override.",
        )
        _ledger_args(p)
        p.add_argument("--run", default="latest", help="'latest' (default) or a run id")
        p.add_argument("--category", action="append", help="missing-completion or missing-progress")
        p.add_argument(
            "--path",
            action="append",
            help="a learning path: its LMS id or the provider's course code (any case)",
        )
        p.add_argument("--key", action="append", help="a proposal key")
        p.add_argument("--all", action="store_true", help="every proposal of the run")
        p.add_argument(
            "--override",
            action="store_true",
            help="with --all/--category/--path: change proposals decided earlier too "
            "(without it they are left as they are and counted)",
        )
        p.add_argument("--by", help="who decides (default: $RECON_ANALYST, else the login name)")
        p.add_argument("--note", help="why, for the record")
        p.set_defaults(handler=handler)

    p = sub.add_parser(
        "resolve",
        help="suggestions for unknown learners and paths: list, accept, reject; aliases",
        description="Without an action: list the run's open suggestions. --accept ROW makes "
        "the row's best candidate (or --candidate ID) an alias of the provider's value, used "
        "by every later run before the directory and the mapping; --reject ROW turns it down "
        "for good; --accept-above SCORE accepts every row whose best candidate scores that "
        "or more (recorded as that bulk choice). --aliases lists the aliases, "
        "--export-aliases FILE writes them as CSV, --remove-alias ID stops using one.",
    )
    _ledger_args(p)
    p.add_argument("--run", default="latest", help="'latest' (default) or a run id")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--accept", type=int, metavar="ROW", help="accept the row's suggestion")
    action.add_argument("--reject", type=int, metavar="ROW", help="reject the row's suggestion")
    action.add_argument(
        "--accept-above",
        type=float,
        metavar="SCORE",
        help="accept every open row whose best candidate scores SCORE or more (bulk)",
    )
    action.add_argument("--aliases", action="store_true", help="list the aliases in use")
    action.add_argument("--export-aliases", metavar="FILE", help="write the aliases as CSV")
    action.add_argument("--remove-alias", type=int, metavar="ID", help="stop using an alias")
    p.add_argument(
        "--kind", choices=["learner", "path"], help="with --accept/--reject: which suggestion"
    )
    p.add_argument(
        "--candidate", metavar="ID", help="with --accept/--reject: another of the row's candidates"
    )
    p.add_argument("--by", help="who decides (default: $RECON_ANALYST, else the login name)")
    p.set_defaults(handler=cmd_resolve)

    p = sub.add_parser(
        "status",
        help="runs, decisions and submission results at a glance",
        description="Show every run in the ledger, its decisions and submission results.",
    )
    _ledger_args(p)
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser(
        "submit",
        help="send the approved proposals to the LMS, paced, recorded and resumable",
        description="Send a run's approved proposals to POST "
        "/incoming/v2/learningPathExternalActivity. The key comes from TI_API_KEY, the base "
        "URL from --base-url or TI_BASE_URL. Exit 0 when all sent were accepted, 1 when some "
        "were rejected or failed, 2 on a fatal stop (key refused, wrong URL, feature off).",
    )
    _ledger_args(p)
    p.add_argument("--run", default="latest", help="'latest' (default) or a run id")
    _api_args(p)
    p.add_argument(
        "--rate", type=_positive(float), default=2.0, help="requests per second (default 2)"
    )
    p.add_argument(
        "--burst", type=_positive(int), default=20, help="requests allowed at once (default 20)"
    )
    p.add_argument(
        "--concurrency",
        type=_positive(int),
        default=4,
        help="requests in flight at most (default 4)",
    )
    p.add_argument("--dry-run", action="store_true", help="validate and estimate; send nothing")
    p.add_argument("--limit", type=_positive(int), help="send at most this many proposals")
    p.add_argument(
        "--legacy-attempts",
        choices=["this-lms", "practice"],
        help="asked once, for a ledger with answers recorded before recon recorded targets: "
        "they went to this LMS (not sent again), or to a practice sandbox (sent again)",
    )
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser(
        "lms",
        help="read the LMS's own directory and catalog (recon lms pull)",
        description="Read from the LMS API what recon otherwise reads from files.",
    )
    lms_sub = p.add_subparsers(dest="lms_command", required=True, metavar="ACTION")
    p = lms_sub.add_parser(
        "pull",
        help="read the LMS's learners and learning paths into the ledger",
        description="GET /incoming/v2/users and GET /incoming/v2/content (learning paths), "
        "every page, paced, into the ledger with the time and target of the pull; "
        'recon.toml\'s [users] / [paths] with source = "lms" then read it. The key comes '
        "from TI_API_KEY, the base URL from --base-url or TI_BASE_URL.",
    )
    _ledger_args(p)
    _api_args(p)
    p.add_argument(
        "--what",
        default="users,paths",
        help="users, paths or users,paths (default: both)",
    )
    p.add_argument(
        "--rate", type=_positive(float), default=2.0, help="requests per second (default 2)"
    )
    p.add_argument(
        "--burst", type=_positive(int), default=20, help="requests allowed at once (default 20)"
    )
    p.add_argument(
        "--per-page",
        type=_positive(int),
        default=100,
        help="items per page (default 100, the documented maximum)",
    )
    p.set_defaults(handler=cmd_lms_pull)

    p = sub.add_parser(
        "ping",
        help="check the base URL and API key (GET /incoming/v2/ping)",
        description="Call GET /incoming/v2/ping to check the base URL and the key in TI_API_KEY.",
    )
    _api_args(p)
    p.set_defaults(handler=cmd_ping)

    p = sub.add_parser(
        "report",
        help="write one self-contained HTML report of a run",
        description="Write one self-contained HTML file (charts inline, readable offline): "
        "the run's summary, outcomes, exceptions, submissions and the trend over runs.",
    )
    _ledger_args(p)
    p.add_argument("--run", default="latest", help="'latest' (default) or a run id")
    p.add_argument("--out", default="report.html", help="the HTML file to write")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser(
        "demo",
        help="the whole loop on the bundled sample against a local sandbox",
        description="Reconcile the bundled sample, approve the missing-completion and "
        "missing-progress proposals by policy, submit them to an in-process sandbox of the "
        "API, export its progress, reconcile again and write report.html.",
    )
    p.add_argument("--out", default="out/demo", help="folder for everything the demo writes")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser(
        "sandbox",
        help="a local stand-in for the LMS API, for demos and tests",
        description="Run a local HTTP server that answers as the LMS API does (bearer key, "
        "feature flag, validation messages, rate limit), and export what it received as "
        "the LMS progress CSV.",
    )
    sandbox = p.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    p = sandbox.add_parser(
        "serve",
        help="serve the sandbox API until Ctrl-C",
        description="Serve POST /incoming/v2/learningPathExternalActivity, GET "
        "/incoming/v2/ping, and (with --config: its directory and mapping) GET "
        "/incoming/v2/users and GET /incoming/v2/content. Prints 'listening on "
        "http://HOST:PORT'. The key is $TI_API_KEY when set, else 'sandbox-key'; it is "
        "never printed.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0: a free one)")
    p.add_argument(
        "--db",
        default="recon-sandbox.db",
        help="SQLite file to store in (default recon-sandbox.db)",
    )
    p.add_argument(
        "--key", help="the API key to require (default: $TI_API_KEY, else 'sandbox-key')"
    )
    p.add_argument(
        "--rate",
        type=_positive(float),
        default=2.0,
        help="requests allowed per second (default 2)",
    )
    p.add_argument(
        "--burst", type=_positive(int), default=20, help="requests allowed at once (default 20)"
    )
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every request")
    p.add_argument("--fail-rate", type=float, default=0.0, help="fraction of POSTs answered 503")
    p.add_argument("--fail-first", type=int, default=0, help="answer the first N POSTs with 503")
    p.add_argument(
        "--drop-rate", type=float, default=0.0, help="fraction of POSTs dropped without an answer"
    )
    p.add_argument(
        "--drop-after-accept-rate",
        type=float,
        default=0.0,
        help="fraction of POSTs stored, then dropped without an answer",
    )
    p.add_argument("--stall-ms", type=float, default=0.0, help="how long a stalled POST waits")
    p.add_argument("--stall-rate", type=float, default=0.0, help="fraction of POSTs stalled")
    p.add_argument(
        "--feature-off", action="store_true", help="answer as if externalActivity were disabled"
    )
    p.add_argument("--seed", type=int, help="random seed, for reproducible faults")
    p.add_argument(
        "--seed-progress", help="an LMS progress CSV to start from (userId, learningPathId, ...)"
    )
    p.add_argument(
        "--config",
        help="a recon.toml: start from its [progress] export (its file, columns, words, "
        "timezone and date formats); list its directory and mapping as the LMS's learners "
        "and learning paths",
    )
    p.add_argument(
        "--page-shape",
        choices=["pageInfo", "meta"],
        default="pageInfo",
        help="how GET /incoming/v2/users and /content page: the two documented shapes "
        "(default pageInfo)",
    )
    p.set_defaults(handler=cmd_sandbox_serve)
    p = sandbox.add_parser(
        "export-progress",
        help="write the sandbox's LMS progress view as CSV",
        description="Write userId, learningPathId, status (latest) and completionDate (of "
        "the first completion) per learner and path, as the LMS progress export.",
    )
    p.add_argument("--db", required=True, help="the sandbox's SQLite file")
    p.add_argument("--out", required=True, help="the CSV to write")
    p.add_argument(
        "--config",
        help="a recon.toml: write its [progress] shape (column names, status words)",
    )
    p.set_defaults(handler=cmd_sandbox_export)

    p = sub.add_parser(
        "bench",
        help="measure `recon reconcile` speed, memory and ledger growth on synthetic inputs",
        description="Generate N synthetic external rows (about 0.8 N LMS progress rows, N/10 "
        "learners, 200 paths, messy as real exports are), run the whole `recon reconcile` "
        "command in fresh processes (into a fresh ledger, again into the same ledger, and "
        "with --no-ledger) and print a table of wall and CPU seconds, peak memory and the "
        "ledger's growth. A benchmark, not a test.",
    )
    p.add_argument("--rows", type=_positive(int), required=True, help="external rows to generate")
    p.add_argument("--seed", type=int, default=20261127, help="random seed (default 20261127)")
    p.add_argument("--keep", help="keep the generated inputs and the outputs in this folder")
    p.add_argument("--xlsx", action="store_true", help="the provider's export as an XLSX workbook")
    p.add_argument(
        "--repeat", type=_positive(int), default=1, help="runs per command, best kept (default 1)"
    )
    p.set_defaults(handler=cmd_bench)

    # --debug after the command too (`recon submit ... --debug`); SUPPRESS keeps a value
    # given before the command.
    for command in [*sub.choices.values(), *sandbox.choices.values()]:
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not as noise after the exit
        return code
    except BrokenPipeError as exc:  # `recon status | head`: the reader left early
        # Nothing more can reach stdout; Python's own flush at exit must not try again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _fail(
            args,
            exc,
            "standard output was closed before recon finished writing to it (a pipe "
            "into head?): it stopped there, and what it had done stands",
        )
    except ReconError as exc:
        return _fail(args, exc, str(exc))
    except OSError as exc:  # a folder where a file should be, a full disk, no permission
        return _fail(args, exc, str(exc))
    except sqlite3.Error as exc:  # a read-only or damaged ledger, found after it opened
        return _fail(args, exc, f"{_database(args)} cannot be used: {exc}{_sqlite_hint(exc)}")
    except KeyboardInterrupt:
        print("recon: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug or a case nobody foresaw: still exit 2, never 1
        return _fail(
            args,
            exc,
            f"unexpected {type(exc).__name__}: {exc} (a recon bug? `recon --debug "
            f"{args.command} ...` shows where)",
        )


def _fail(args: argparse.Namespace, exc: BaseException, message: str) -> int:
    """Print one line (and with --debug the traceback first), the key blanked out."""
    if getattr(args, "debug", False):
        print(_redact("".join(traceback.format_exception(exc)), args), file=sys.stderr, end="")
    print(f"recon: error: {_one_line(_redact(message, args))}", file=sys.stderr)
    return EXIT_ERROR


def _redact(text: str, args: argparse.Namespace) -> str:
    """``text`` without any key this run knows (TI_API_KEY, the sandbox's --key), also
    URL-encoded: an exception's text may quote a header or a URL."""
    # `--key` is the sandbox's API key; approve/reject use it for proposal keys.
    from .client import _key_variants

    sandbox_key = getattr(args, "key", None) if getattr(args, "command", "") == "sandbox" else None
    for secret in (env("TI_API_KEY"), sandbox_key):
        if not isinstance(secret, str) or not secret.strip():
            continue
        # The forms ApiClient.redact blanks (any letter case, JSON- and HTML-escaped).
        text = _key_variants(secret.strip()).sub("<API key>", text)
        for form in {
            secret,
            secret.strip(),
            urllib.parse.quote(secret, safe=""),
            urllib.parse.quote_plus(secret),
        }:
            text = text.replace(form, "<API key>")
    return text


def _one_line(text: str) -> str:
    """``text`` as one terminal line: line breaks become spaces, other control characters
    are shown escaped (a message must not move the cursor or clear the screen)."""
    out = []
    for ch in text.strip():
        if ch in "\r\n\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _database(args: argparse.Namespace) -> str:
    """The SQLite file a command works on, named for an error message."""
    if getattr(args, "command", None) == "sandbox":
        return f"the sandbox database {args.db}"
    if hasattr(args, "ledger"):
        from .ledger import ledger_for

        return f"the ledger {ledger_for(getattr(args, 'config', None), args.ledger)}"
    return "a database"


def _sqlite_hint(exc: sqlite3.Error) -> str:
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return " (it is read-only: check who may write the file and its folder)"
    if "malformed" in text or "not a database" in text:
        return " (it is damaged or not a recon ledger: restore it from a backup)"
    return ""


def env(name: str) -> str | None:
    """The one place the CLI reads the environment."""
    value = os.environ.get(name)
    return value if value else None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
