"""Shared test helpers: write a `recon.toml` and its four inputs from Python lists.

Two fixtures:

``write_case(external, progress=(), users=USERS, paths=PATHS, **options) -> Path``
    Writes a fresh folder (a new one on every call) holding ``recon.toml`` and the
    input files, and returns the config's path. Rows are either dicts (the header is
    the union of their keys, in first-seen order; a missing key is an empty cell) or
    sequences whose first item is the header. An empty list writes the role's default
    header only (see ``HEADERS``); ``users=None`` / ``paths=None`` leave the file and its
    table out of the config.

    Options:
    - ``fmt="csv"`` or ``"xlsx"``: the external file's format. In XLSX, ``date`` and
      ``datetime`` values become real date cells. ``sheet="Name"`` puts the data on a
      sheet of that name after a decoy first sheet and sets ``sheet`` in the config.
    - CSV (applied to every CSV file): ``delimiter=","``, ``encoding="utf-8"``,
      ``bom=False``, ``newline="\\n"`` (``"\\r\\n"`` for CRLF).
    - ``learner_kind="email"`` / ``"user_id"``, ``path_kind="code"`` /
      ``"learning_path_id"``.
    - ``statuses``: the ``[external.statuses]`` table (default ``STATUSES``).
    - ``config``: extra keys per table, merged over the defaults, e.g.
      ``{"external": {"timezone": "Europe/Berlin"}}``; a value of ``None`` removes the key.

``reconcile_case(external, ..., as_of=AS_OF, accepted_keys=(), **options) -> Result``
    ``write_case`` followed by :func:`recon.engine.reconcile`.

External rows are easiest to build with :func:`ext`, LMS rows with :func:`lms`; read a
result back with :func:`outcomes_of` (outcome per row, in row order) and
:func:`bodies_of` (the request body of each proposal).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from recon.engine import reconcile
from recon.result import Result, payload

AS_OF = "2026-06-01T00:00:00Z"
"""The as-of time every rule test runs at, so nothing depends on the clock."""

HEADERS = {
    "external": ["Email", "Course Code", "Status", "Completed On", "Last Activity"],
    "progress": ["userId", "learningPathId", "status", "completionDate"],
    "users": ["email", "userId"],
    "paths": ["externalCode", "learningPathId"],
}

USERS = [
    {"email": "ann@example.com", "userId": "u-ann"},
    {"email": "bob@example.com", "userId": "u-bob"},
    {"email": "cy@example.com", "userId": "u-cy"},
]
PATHS = [
    {"externalCode": "SAFE-101", "learningPathId": "lp-safe"},
    {"externalCode": "DATA-200", "learningPathId": "lp-data"},
    {"externalCode": "LEAD-300", "learningPathId": "lp-lead"},
]
STATUSES = {
    "Completed": "completed",
    "In Progress": "started",
    "Failed": "not-completed",
    "Registered": "not-started",
}

_BASE_CONFIG = {
    "external": {
        "file": None,  # filled in
        "learner": "Email",
        "learner_kind": "email",
        "path": "Course Code",
        "path_kind": "code",
        "status": "Status",
        "completion_date": "Completed On",
        "activity_date": "Last Activity",
        "date_formats": ["%m/%d/%Y", "%d %b %Y"],
        "timezone": "UTC",
    },
    "progress": {
        "file": None,
        "user_id": "userId",
        "path_id": "learningPathId",
        "status": "status",
        "completion_date": "completionDate",
    },
    "users": {"file": None, "email": "email", "user_id": "userId"},
    "paths": {"file": None, "external_code": "externalCode", "learning_path_id": "learningPathId"},
}


def ext(
    email: str | None = "ann@example.com",
    code: str | None = "SAFE-101",
    status: str | None = "Completed",
    completed: Any = "",
    activity: Any = "",
) -> dict[str, Any]:
    """One external row with the default column names."""
    return {
        "Email": email,
        "Course Code": code,
        "Status": status,
        "Completed On": completed,
        "Last Activity": activity,
    }


def lms(user: str, path: str, status: str, completed: str = "") -> dict[str, str]:
    """One LMS progress row with the default column names."""
    return {"userId": user, "learningPathId": path, "status": status, "completionDate": completed}


def outcomes_of(result: Result) -> list[str]:
    """The outcome of each external row, in row order."""
    return list(result.outcomes.sort_values("row")["outcome"])


def bodies_of(result: Result) -> list[dict[str, str]]:
    """The request body of each proposal (absent fields left out), in row order."""
    return [payload(p) for p in result.proposals.to_dict("records")]


def table(rows: Sequence[Any], default_header: Sequence[str]) -> list[list[Any]]:
    """Rows (dicts, or sequences with the header first) as header + data rows."""
    if not rows:
        return [list(default_header)]
    if isinstance(rows[0], Mapping):
        header: list[str] = []
        for row in rows:
            header += [k for k in row if k not in header]
        return [header] + [[row.get(k) for k in header] for row in rows]
    return [list(r) for r in rows]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_csv_file(
    path: Path,
    rows: list[list[Any]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    bom: bool = False,
    newline: str = "\n",
) -> Path:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator=newline).writerows(
        [[_cell(v) for v in r] for r in rows]
    )
    data = buf.getvalue().encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def write_xlsx_file(path: Path, rows: list[list[Any]], sheet: str | None = None) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    if sheet is not None:
        ws.title = "Notes"
        ws.append(["this sheet is not the data"])
        ws = book.create_sheet(sheet)
    for row in rows:
        # Blank strings become empty cells, as a spreadsheet has them.
        ws.append([None if v == "" else v for v in row])
    book.save(path)
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_text(doc: Mapping[str, Mapping[str, Any]]) -> str:
    """A small TOML writer: tables of scalars, lists and one level of sub-tables."""
    lines: list[str] = []
    for name, body in doc.items():
        lines.append(f"[{name}]")
        subs = {k: v for k, v in body.items() if isinstance(v, Mapping)}
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in body.items() if k not in subs]
        for sub, inner in subs.items():
            lines.append(f"[{name}.{sub}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in inner.items()]
        lines.append("")
    return "\n".join(lines)


def write_case_in(
    folder: Path,
    external: Sequence[Any],
    progress: Sequence[Any] = (),
    users: Sequence[Any] | None = USERS,
    paths: Sequence[Any] | None = PATHS,
    *,
    fmt: str = "csv",
    sheet: str | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    bom: bool = False,
    newline: str = "\n",
    learner_kind: str = "email",
    path_kind: str = "code",
    statuses: Mapping[str, str] | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``recon.toml`` and the inputs into ``folder``; see the module docstring."""
    folder.mkdir(parents=True, exist_ok=True)
    doc: dict[str, dict[str, Any]] = {k: dict(v) for k, v in _BASE_CONFIG.items()}
    doc["external"]["learner_kind"] = learner_kind
    doc["external"]["path_kind"] = path_kind
    csv_options = {"delimiter": delimiter, "encoding": encoding, "bom": bom, "newline": newline}
    inputs = {"external": external, "progress": progress, "users": users, "paths": paths}
    for role, rows in inputs.items():
        if rows is None:
            del doc[role]
            continue
        if role == "external" and fmt == "xlsx":
            name = "external.xlsx"
            write_xlsx_file(folder / name, table(rows, HEADERS[role]), sheet)
            if sheet is not None:
                doc[role]["sheet"] = sheet
        else:
            name = f"{role}.csv"
            write_csv_file(folder / name, table(rows, HEADERS[role]), **csv_options)
        doc[role]["file"] = name
    doc["external"]["statuses"] = dict(STATUSES if statuses is None else statuses)
    for role, extra in (config or {}).items():
        section = doc.setdefault(role, {})
        for key, value in extra.items():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
    path = folder / "recon.toml"
    path.write_text(toml_text(doc), encoding="utf-8")
    return path


@pytest.fixture
def write_case(tmp_path: Path) -> Callable[..., Path]:
    """Write a case into a fresh folder under ``tmp_path``; returns the config path."""
    counter = itertools.count(1)

    def write(*args: Any, **kwargs: Any) -> Path:
        return write_case_in(tmp_path / f"case{next(counter)}", *args, **kwargs)

    return write


@pytest.fixture
def reconcile_case(write_case: Callable[..., Path]) -> Callable[..., Result]:
    """Write a case and reconcile it at ``AS_OF``; returns the :class:`Result`."""

    def run(
        *args: Any, as_of: str = AS_OF, accepted_keys: Sequence[str] = (), **kwargs: Any
    ) -> Result:
        return reconcile(write_case(*args, **kwargs), as_of=as_of, accepted_keys=accepted_keys)

    return run


def reconcile_into(config: Path, out: Path, ledger: Path | str, *extra: str) -> int:
    """``recon reconcile`` at ``AS_OF`` recording into ``ledger``; returns the exit code."""
    from recon.cli import main

    args = ["reconcile", "--config", str(config), "--out", str(out), "--ledger", str(ledger)]
    return main([*args, "--as-of", AS_OF, *extra])


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    """One ``recon demo`` run (``run_demo``) for every test that reads one: its result and
    what it printed. Tests must not change its folder (copy it first)."""
    import contextlib

    from recon.demo import run_demo

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = run_demo(tmp_path_factory.mktemp("demo") / "demo", progress=False)
    return result, printed.getvalue()


def read_rows(path: Path) -> list[list[str]]:
    """A CSV recon wrote, as a spreadsheet's rows of text (the header first)."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def starts_a_formula(cell: str) -> bool:
    """Whether a spreadsheet would run ``cell`` as a formula (OWASP's starts, tab and
    carriage return included; a number such as -5 is a number)."""
    number = re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", cell)
    return bool(cell) and cell[0] in "=+-@\t\r" and not number
