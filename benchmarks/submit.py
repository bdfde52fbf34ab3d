"""Benchmark of `recon submit` against the local sandbox (not a timed test).

Two scenarios from issue 3:
  A. 100 ms latency, concurrency 8, no rate limit to speak of: 400 proposals, ideal
     400 x 0.1 s / 8 = 5 s.
  B. a limit of 5 requests/s with a burst of 5 on both sides: the achieved rate should be
     at least 95 % of it, with at most a few 429s.

Run: .venv/bin/python benchmarks/submit.py [--b-proposals 150]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from recon.client import ApiClient
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.sandbox import Sandbox
from recon.submit import Pace, submit

# The count of answers by status is the tests' inspection of a sandbox (not shipped).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sandbox_inspect import status_counts  # noqa: E402

KEY = "bench-key"


def ledger_with(folder: Path, proposals: int) -> Path:
    """A ledger holding ``proposals`` approved missing-completion proposals."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "users.csv").open("w") as fh:
        fh.write("email,userId\n")
        fh.writelines(f"l{i}@example.com,u-{i:05d}\n" for i in range(proposals))
    (folder / "paths.csv").write_text("externalCode,learningPathId\nSAFE-101,lp-safe\n")
    (folder / "progress.csv").write_text("userId,learningPathId,status,completionDate\n")
    with (folder / "external.csv").open("w") as fh:
        fh.write("Email,Course Code,Status,Completed On\n")
        fh.writelines(f"l{i}@example.com,SAFE-101,Completed,2026-03-01\n" for i in range(proposals))
    (folder / "recon.toml").write_text(
        '[external]\nfile = "external.csv"\nlearner = "Email"\npath = "Course Code"\n'
        'status = "Status"\ncompletion_date = "Completed On"\n'
        '[progress]\nfile = "progress.csv"\n[users]\nfile = "users.csv"\n'
        '[paths]\nfile = "paths.csv"\n'
    )
    path = folder / "ledger.db"
    with Ledger(path) as ledger:
        reconcile_run(folder / "recon.toml", ledger=ledger)
        ledger.decide(ledger.select(everything=True), "approved", by="bench")
    return path


def scenario(name: str, folder: Path, proposals: int, sandbox: dict, pace: Pace) -> dict:
    path = ledger_with(folder / name, proposals)
    with Sandbox(key=KEY, **sandbox) as sb, Ledger(path) as ledger:
        client = ApiClient(sb.url, KEY)
        started = time.perf_counter()
        report = submit(ledger, client, pace=pace, progress=False)
        elapsed = time.perf_counter() - started
        client.close()
        codes = status_counts(sb)
    return {
        "name": name,
        "proposals": proposals,
        "accepted": report.accepted,
        "elapsed": elapsed,
        "requests": report.requests,
        "429s": codes.get(429, 0),
        "rate": report.accepted / elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--a-proposals", type=int, default=400)
    parser.add_argument("--b-proposals", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as tmp:
        a = scenario(
            "A-latency",
            Path(tmp),
            args.a_proposals,
            {"rate": 10_000, "burst": 10_000, "latency_ms": 100},
            Pace(rate=10_000, burst=10_000, concurrency=8),
        )
        ideal = args.a_proposals * 0.1 / 8
        print(
            f"A: {a['accepted']} accepted in {a['elapsed']:.2f} s with 100 ms latency, "
            f"concurrency 8; ideal {ideal:.2f} s -> {a['elapsed'] / ideal:.2f}x ideal "
            f"(goal <= 1.3x)"
        )
        b = scenario(
            "B-limit",
            Path(tmp),
            args.b_proposals,
            {"rate": 5, "burst": 5, "latency_ms": 100},
            Pace(rate=5, burst=5, concurrency=8),
        )
        # The first `burst` requests go at once; the steady rate is what follows them.
        steady = (b["accepted"] - 5) / b["elapsed"]
        print(
            f"B: {b['accepted']} accepted in {b['elapsed']:.2f} s against 5 req/s (burst 5): "
            f"steady rate {steady:.2f}/s = {steady / 5:.1%} of the limit (goal >= 95 %), "
            f"overall {b['rate']:.2f}/s, {b['429s']} x 429, {b['requests']} requests"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
