"""What the tests read about a sandbox: the requests it answered and what it accepted.

Not part of :mod:`recon.sandbox`: nothing shipped (the CLI, the demo, the notebooks)
needs it. Every function reads the sandbox's SQLite file (``sandbox.db_path``) with a
connection of its own, as any reader of a WAL database may, while the sandbox runs.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections import Counter
from contextlib import closing
from typing import Any

from recon.sandbox import Sandbox, SandboxSettings


def _query(sb: Sandbox, sql: str) -> list[tuple[Any, ...]]:
    if not sb.db_path.is_file():  # sqlite3 would create an empty one
        raise FileNotFoundError(f"no sandbox database at {sb.db_path}")
    with closing(sqlite3.connect(sb.db_path, timeout=10)) as con:
        return con.execute(sql).fetchall()


def status_counts(sb: Sandbox) -> Counter[int]:
    """How many requests were answered with each HTTP status (drops not included)."""
    rows = _query(sb, "SELECT status, count(*) FROM requests WHERE status IS NOT NULL GROUP BY 1")
    return Counter({int(s): int(n) for s, n in rows})


def dropped_count(sb: Sandbox) -> int:
    """How many connections were closed without an answer (both drop faults)."""
    return int(_query(sb, "SELECT count(*) FROM requests WHERE status IS NULL")[0][0])


def requests_log(sb: Sandbox) -> list[dict[str, Any]]:
    """Every request received, oldest first: received_at, method, path, status (None
    when dropped), body, errors (a list) and fault."""
    names = ("received_at", "method", "path", "status", "body", "errors", "fault")
    rows = _query(sb, f"SELECT {', '.join(names)} FROM requests ORDER BY id")
    out = []
    for row in rows:
        entry = dict(zip(names, row, strict=True))
        entry["errors"] = json.loads(entry["errors"]) if entry["errors"] else []
        out.append(entry)
    return out


def accepted(sb: Sandbox) -> list[dict[str, Any]]:
    """The activities the endpoint accepted (seed rows not included), oldest first, as
    posted: received_at, userId, learningPathId, status (default filled in),
    completionDate, timeStampDate."""
    names = ("received_at", "userId", "learningPathId", "status", "completionDate")
    names += ("timeStampDate",)
    rows = _query(sb, f"SELECT {', '.join(names)} FROM activities WHERE source = 'api' ORDER BY id")
    return [dict(zip(names, row, strict=True)) for row in rows]


def accept_counts(sb: Sandbox) -> Counter[tuple[str, str, str]]:
    """How many times each (userId, learningPathId, status) was accepted."""
    rows = _query(
        sb,
        "SELECT userId, learningPathId, status, count(*) FROM activities "
        "WHERE source = 'api' GROUP BY 1, 2, 3",
    )
    return Counter({(u, p, s): int(n) for u, p, s, n in rows})


def setting_names() -> list[str]:
    """The names of every :class:`SandboxSettings` setting."""
    return [f.name for f in dataclasses.fields(SandboxSettings) if f.init]
