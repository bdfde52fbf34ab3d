"""Responsiveness of the review widget with 100,000 proposals (not a test: figures).

Usage: .venv/bin/python benchmarks/review.py [N] [KEEP.db]   (from the repository root)
"""

import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, "tests")
from conftest import write_case_in  # noqa: E402

from recon.ledger import Ledger  # noqa: E402
from recon.pipeline import reconcile_run  # noqa: E402
from recon.review import ReviewWidget  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
PATHS = 50
LEARNERS = N // PATHS


def timed(label, action, repeat=1):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    shown = f"median {statistics.median(times) * 1000:7.1f} ms, max {max(times) * 1000:7.1f} ms"
    print(f"  {label:<48} {shown}  (x{repeat})")
    return times


KEEP = Path(sys.argv[2]) if len(sys.argv) > 2 else None  # keep the ledger there
with tempfile.TemporaryDirectory() as folder:
    folder = Path(folder)
    users = [
        {"email": f"learner{i:06d}@example.com", "userId": f"u{i:06d}"} for i in range(LEARNERS)
    ]
    paths = [
        {"externalCode": f"CODE-{p:03d}", "learningPathId": f"lp-{p:03d}"} for p in range(PATHS)
    ]
    rows = []
    for i in range(LEARNERS):
        for p in range(PATHS):
            if (i + p) % 3:
                rows.append(
                    {
                        "Email": users[i]["email"],
                        "Course Code": f"CODE-{p:03d}",
                        "Status": "Completed",
                        "Completed On": f"2026-{1 + (i + p) % 12:02d}-{1 + i % 28:02d}",
                        "Last Activity": "",
                    }
                )
            else:
                rows.append(
                    {
                        "Email": users[i]["email"],
                        "Course Code": f"CODE-{p:03d}",
                        "Status": "In Progress",
                        "Completed On": "",
                        "Last Activity": f"2026-{1 + (i + p) % 12:02d}-{1 + i % 28:02d}",
                    }
                )
    config = write_case_in(folder / "case", rows, [], users=users, paths=paths)
    ledger = Ledger(folder / "ledger.db")
    start = time.perf_counter()
    result = reconcile_run(config, as_of="2026-12-31T00:00:00Z", ledger=ledger)
    print(
        f"{len(result.proposals):,} proposals; reconcile + record in the ledger "
        f"{time.perf_counter() - start:.1f} s"
    )

    start = time.perf_counter()
    widget = ReviewWidget(ledger, None, by="bench")
    took = time.perf_counter() - start
    print(f"  {'open the widget (read the run, build 50 rows)':<48} {took:.2f} s")

    timed("page change (next page)", widget.next_page, repeat=50)
    timed("page change (jump to last page)", lambda: widget.go_to(10**9), repeat=20)
    timed("page change (previous)", widget.previous_page, repeat=50)

    kinds = ["missing-completion", "missing-progress", None]
    k = iter(kinds * 10)
    timed("filter: kind", lambda: setattr(widget.kind, "value", next(k)), repeat=30)
    ps = iter(["lp-007", "lp-031", None] * 10)
    timed("filter: learning path", lambda: setattr(widget.path, "value", next(ps)), repeat=30)
    texts = iter(["l", "le", "lea", "learner0001", "learner00012", "u0004", "", "x"] * 5)
    timed(
        "filter: learner search (each keystroke)",
        lambda: setattr(widget.learner, "value", next(texts)),
        repeat=40,
    )
    days = iter([date(2026, m, 1) for m in range(1, 13)] * 3)
    timed("filter: date from", lambda: setattr(widget.date_from, "value", next(days)), repeat=30)
    widget.date_from.value = None
    ds = iter(["undecided", "approved", "rejected", None] * 8)
    timed("filter: decision", lambda: setattr(widget.decision, "value", next(ds)), repeat=32)
    widget.decision.value = None

    timed(
        "decide one row (row toggle)",
        lambda: setattr(
            widget.rows[7].toggle,
            "value",
            "rejected" if widget.rows[7].toggle.value == "approved" else "approved",
        ),
        repeat=20,
    )

    widget.path.value = "lp-007"
    print(f"  matching with path lp-007: {len(widget.matching()):,}")
    timed(f"approve all matching ({len(widget.matching()):,} rows)", widget.approve_matching)
    widget.path.value = None
    widget.kind.value = "missing-completion"
    n = len(widget.matching())
    timed(f"approve all matching ({n:,} rows)", widget.approve_matching)
    widget.kind.value = None
    n = len(widget.matching())
    timed(f"reject all matching ({n:,} rows)", widget.reject_matching)
    timed("refresh (reread the run from the ledger)", widget.reload)
    print("  counters:", widget.counters_text())
    ledger.close()
    if KEEP is not None:
        import shutil

        shutil.copyfile(folder / "ledger.db", KEEP)
