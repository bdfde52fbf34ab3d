"""What suggestions add to a reconcile: 10,000 unknown rows against a 100,000-learner
directory (not a test: figures). The goal is at most 2 s.

Usage: .venv/bin/python benchmarks/suggest.py [UNKNOWN] [LEARNERS]   (from the repository root)
"""

import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from recon.engine import reconcile
from recon.suggest import suggestions_for

UNKNOWN = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
LEARNERS = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
PATHS = 200
rng = random.Random(14)
FIRST = [
    f"{a}{b}"
    for a in ("an", "be", "ca", "do", "el", "fi", "go", "ha", "jo", "ka")
    for b in ("na", "ri", "to", "mo", "la", "se", "vi", "de", "ko", "zu")
]
LAST = [
    f"{a}{b}{c}"
    for a in ("s", "m", "b", "k", "t", "p", "r", "l")
    for b in ("mi", "ol", "ar", "ue", "an", "er")
    for c in ("th", "son", "er", "ez", "ov", "ski", "ing")
]


def typo(local: str) -> str:
    i = rng.randrange(len(local))
    kind = rng.randrange(3)
    if kind == 0:
        return local[:i] + local[i + 1 :]
    if kind == 1:
        return local[:i] + rng.choice("abcdefghij") + local[i:]
    return local[:i] + rng.choice("xyzqw") + local[i + 1 :]


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


with tempfile.TemporaryDirectory() as folder:
    root = Path(folder)
    emails = []
    seen = set()
    while len(emails) < LEARNERS:
        local = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(1000)}"
        if local not in seen:
            seen.add(local)
            emails.append(f"{local}@example.com")
    write(root / "users.csv", ["email", "userId"], [[e, f"u{i:06d}"] for i, e in enumerate(emails)])
    codes = [f"CRS-{i:04d}" for i in range(PATHS)]
    write(
        root / "paths.csv",
        ["externalCode", "learningPathId"],
        [[c, f"p{i:04d}"] for i, c in enumerate(codes)],
    )
    write(
        root / "progress.csv",
        ["userId", "learningPathId", "status"],
        [["u000000", "p0000", "started"]],
    )
    rows = []
    for i in range(UNKNOWN):
        local = rng.choice(emails).split("@")[0]
        shape = i % 4
        if shape == 0:
            email = typo(local) + "@example.com"
        elif shape == 1:
            email = local.replace(".", "_") + "@example.com"
        elif shape == 2:
            email = f"nobody{i}@elsewhere.org"
        else:
            email = typo(typo(local)) + "@example.com"
        rows.append([email, rng.choice(codes), "Completed", "2026-01-15"])
    write(root / "external.csv", ["Email", "Code", "Status", "Done"], rows)
    (root / "recon.toml").write_text(
        '[external]\nfile = "external.csv"\nlearner = "Email"\npath = "Code"\n'
        'status = "Status"\ncompletion_date = "Done"\n'
        '[progress]\nfile = "progress.csv"\n'
        '[users]\nfile = "users.csv"\n[paths]\nfile = "paths.csv"\n',
        encoding="utf-8",
    )
    start = time.perf_counter()
    result = reconcile(root / "recon.toml", as_of="2026-12-01T00:00:00Z")
    reconciled = time.perf_counter() - start
    unknown = int((result.outcomes["outcome"] == "unknown-learner").sum())
    start, cpu = time.perf_counter(), time.process_time()
    found = suggestions_for(
        result.config_path and __import__("recon.config").config.load_config(root / "recon.toml"),
        result.exceptions,
    )
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    with_candidates = found[found["candidate_id"].notna()]["row"].nunique()
    print(f"directory {LEARNERS:,} learners; {unknown:,} unknown-learner rows")
    print(f"reconcile()            {reconciled:6.2f} s")
    print(f"suggestions (added)    {took:6.2f} s, {cpu:.2f} CPU-s (reading the directory included)")
    print(f"load average           {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"rows with candidates   {with_candidates:,}; lines {len(found):,}")
