"""The `recon` command line: thin wrappers over the library, one function per command.

Exit codes (a contract): 0 nothing left to do, 1 something to do or some records
refused, 2 an error (bad input, refused key, feature off, ...). Library errors become a
one-line message here and nowhere else.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import ReconError

EXIT_OK, EXIT_TODO, EXIT_ERROR = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


def cmd_reconcile(args: argparse.Namespace) -> int:
    from .config import load_config
    from .engine import reconcile
    from .outputs import write_result

    config = load_config(args.config)
    result = reconcile(config, as_of=args.as_of)
    written = write_result(result, args.out)
    print(result.render())
    print(f"  written to {Path(args.out)}: " + ", ".join(p.name for p in written.values()))
    return result.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recon",
        description="Reconcile a training provider's records with the LMS's learning-path "
        "progress, and post the corrections.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "reconcile",
        help="compare the provider's export with the LMS and write outcomes and proposals",
        description="Compare the provider's export with the LMS's progress; write "
        "outcomes.csv, proposals.csv, exceptions.csv and summary.json into --out. Exit 0 "
        "when there is nothing to propose and no exception, 1 when there is, 2 on error.",
    )
    p.add_argument("--config", required=True, help="the recon.toml to use")
    p.add_argument("--out", required=True, help="folder for the outputs (created if needed)")
    p.add_argument("--as-of", help="the run's time, ISO 8601 (default: now)")
    p.set_defaults(handler=cmd_reconcile)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ReconError as exc:
        print(f"recon: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("recon: interrupted", file=sys.stderr)
        return EXIT_ERROR


def env(name: str) -> str | None:
    """The one place the CLI reads the environment."""
    value = os.environ.get(name)
    return value if value else None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
