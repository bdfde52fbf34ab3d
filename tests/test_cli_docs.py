"""Every command has help text and is documented in the README; the package's public
surface is what __all__ says."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import recon
from recon.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, prefix: str = "recon") -> list[tuple[str, str]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((f"{prefix} {name}", helps.get(name) or ""))
                found += _commands(sub, f"{prefix} {name}")
    return found


def test_every_command_has_help_and_is_in_the_readme() -> None:
    commands = _commands(build_parser())
    assert len(commands) >= 11
    for name, help_text in commands:
        assert help_text.strip(), f"{name} has no help text"
        assert f"`{name}" in README, f"{name} is not documented in README.md"


def test_every_option_has_help() -> None:
    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)
            elif action.option_strings and action.dest != "help":
                assert action.help, f"{parser.prog} {action.option_strings} has no help"

    walk(build_parser())


def test_public_surface() -> None:
    assert sorted(recon.__all__) == [
        "Config",
        "Ledger",
        "ReconError",
        "Result",
        "load_config",
        "proposal_key",
        "reconcile",
        "reconcile_run",
    ]
    # `from recon import *` gives exactly those names, each the object of that name
    # defined in recon's own modules (not a re-export of a library's, not a stale alias).
    namespace: dict[str, object] = {}
    exec("from recon import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == sorted(recon.__all__)
    for name in recon.__all__:
        thing = getattr(recon, name)
        assert thing.__name__ == name, name
        assert thing.__module__.startswith("recon."), (name, thing.__module__)
        assert getattr(sys.modules[thing.__module__], name) is thing, name


def test_readme_opens_with_one_sentence_then_the_two_commands() -> None:
    lines = [line for line in README.splitlines() if line.strip()]
    assert lines[0] == "# recon"
    assert lines[1].startswith("`recon` ") and lines[1].count(". ") == 0
    block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == [
        "make demo",
        "make test",
    ]
