"""What ledger tests read of a ledger file directly, past recon's own API: raw rows of a
query and the bytes it holds (shared by the storage and the list tests)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def raw_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows, read with plain sqlite3."""
    db = sqlite3.connect(path)
    try:
        return [tuple(r) for r in db.execute(sql)]
    finally:
        db.close()


def used_bytes(path: Path) -> int:
    """Bytes the ledger holds (its pages in use, the -wal copied in)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, free, size = (
            db.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("page_count", "freelist_count", "page_size")
        )
        return int((pages - free) * size)
    finally:
        db.close()
