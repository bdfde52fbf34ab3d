"""`recon reconcile` against a naive pandas script of the same core rules, same inputs,
same run: the ratio survives a noisy machine better than either time alone.

Usage (from the repository root):
    .venv/bin/python benchmarks/reconcile.py [--rows N] [--repeat K] [--seed S]

The naive script reads the four CSVs with pandas, matches learners by e-mail and paths by
course code (trimmed, case-folded), maps the status words, reads ISO 8601 dates, keeps
one row per learner and path (the furthest status, the latest date), compares with the
LMS's progress and counts what recon calls missing-completion and missing-progress. It
writes nothing and checks nothing else (no look-alikes, no line accounting, no
exceptions, no outputs, no ledger): the floor a plain script would have.

A third process, "DuckDB floor", does the least any tool must do with these inputs: it
reads the provider's and the LMS's exports as text with DuckDB (on every core), folds the
LMS per learner and path, joins them and writes one CSV of the provider's rows. No rule,
no check: what reading and writing the data alone costs on this machine, so a speed
goal can be set against it. Each runs as a fresh process, interleaved; best of K.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from recon.devtools.bench import generate_inputs, run_command

NAIVE = r"""
import sys, tomllib
from pathlib import Path
import pandas as pd

config = Path(sys.argv[1])
cfg = tomllib.loads(config.read_text())
folder = config.parent
ext_cfg, prog_cfg = cfg["external"], cfg["progress"]

def read(name):
    return pd.read_csv(folder / name, dtype=str, keep_default_na=False)

def fold(s):
    return s.str.strip().str.lower()

ext, users = read(ext_cfg["file"]), read(cfg["users"]["file"])
paths, prog = read(cfg["paths"]["file"]), read(prog_cfg["file"])
users_by_email = users.assign(k=fold(users[cfg["users"]["email"]])).drop_duplicates("k")
paths_by_code = paths.assign(k=fold(paths[cfg["paths"]["external_code"]])).drop_duplicates("k")
ext["userId"] = fold(ext[ext_cfg["learner"]]).map(
    users_by_email.set_index("k")[cfg["users"]["user_id"]])
ext["pathId"] = fold(ext[ext_cfg["path"]]).map(
    paths_by_code.set_index("k")[cfg["paths"]["learning_path_id"]])
words = {k.strip().lower(): v for k, v in ext_cfg["statuses"].items()}
ext["st"] = fold(ext[ext_cfg["status"]]).map(words)
ext["done"] = pd.to_datetime(ext[ext_cfg["completion_date"]], format="ISO8601", utc=True,
                             errors="coerce")
for fmt in ext_cfg.get("date_formats", []):
    again = pd.to_datetime(ext[ext_cfg["completion_date"]], format=fmt, utc=True, errors="coerce")
    ext["done"] = ext["done"].fillna(again)
rank = {"not-started": 0, "not-completed": 1, "started": 2, "completed": 3}
ext = ext.dropna(subset=["userId", "pathId", "st"])
ext = ext[(ext["st"] != "completed") | ext["done"].notna()]
ext["rank"] = ext["st"].map(rank)
ext = ext.sort_values(["rank", "done"], ascending=False).drop_duplicates(["userId", "pathId"])
lms_words = {k.strip().lower(): v for k, v in prog_cfg.get("statuses", {}).items()}
prog["lms"] = fold(prog[prog_cfg["status"]])
prog["lms"] = prog["lms"].map(lms_words).fillna(prog["lms"])
prog["u"], prog["p"] = fold(prog[prog_cfg["user_id"]]), fold(prog[prog_cfg["path_id"]])
prog = prog.drop_duplicates(["u", "p"])
ext["u"], ext["p"] = fold(ext["userId"]), fold(ext["pathId"])
both = ext.merge(prog[["u", "p", "lms"]], on=["u", "p"], how="left")
missing_completion = (both["st"] == "completed") & (both["lms"] != "completed")
missing_progress = (both["st"] == "started") & (both["lms"].isna() | (both["lms"] == "not-started"))
print(int(missing_completion.sum()), int(missing_progress.sum()))
"""

FLOOR = r"""
import sys, tomllib
from pathlib import Path
import duckdb

config = Path(sys.argv[1])
cfg = tomllib.loads(config.read_text())
folder = config.parent
ext, prog = cfg["external"], cfg["progress"]
con = duckdb.connect()
def q(name):
    return '"' + name.replace('"', '""') + '"'
def text(name):
    return "read_csv(" + repr(str(folder / name)) + ", all_varchar = true, header = true)"
con.execute(f"CREATE TABLE e AS SELECT * FROM {text(ext['file'])}")
con.execute(f"CREATE TABLE p AS SELECT * FROM {text(prog['file'])}")
con.execute(
    f"COPY (SELECT e.*, l.status AS lms FROM e LEFT JOIN ("
    f"SELECT {q(prog['user_id'])} AS u, {q(prog['path_id'])} AS c, max({q(prog['status'])}) "
    f"AS status FROM p GROUP BY ALL) l ON l.u = e.{q(ext['learner'])} "
    f"AND l.c = e.{q(ext['path'])}) TO {repr(sys.argv[2])} (HEADER)"
)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recon-vs-pandas-") as tmp:
        work = Path(tmp)
        config = generate_inputs(work / "inputs", args.rows, args.seed)
        script = work / "naive.py"
        script.write_text(NAIVE, encoding="utf-8")
        recon = [
            sys.executable,
            "-c",
            "import sys; from recon.cli import main; sys.exit(main())",
            "reconcile",
            "--config",
            str(config),
            "--out",
            str(work / "out"),
            "--no-ledger",
        ]
        naive = [sys.executable, str(script), str(config)]
        floor_script = work / "floor.py"
        floor_script.write_text(FLOOR, encoding="utf-8")
        floor = [sys.executable, str(floor_script), str(config), str(work / "floor.csv")]
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.repeat):  # interleaved: all see the same load
            for name, argv in (("recon", recon), ("pandas", naive), ("floor", floor)):
                run = run_command(argv)
                if run["exit"] not in (0, 1):
                    print(run["stderr"], file=sys.stderr)
                    return 2
                if name not in best or run["s"] < best[name]["s"]:
                    best[name] = run
    print(f"{args.rows:,} provider rows, best of {args.repeat}, whole processes:")
    for name, label in (
        ("recon", "recon reconcile --no-ledger"),
        ("pandas", "naive pandas"),
        ("floor", "DuckDB floor"),
    ):
        r = best[name]
        print(f"  {label:<30} {r['s']:7.2f} s  {r['cpu_s']:7.2f} s CPU  {r['peak_mb']:7,.0f} MB")
    ratio, cpu = (
        best["recon"]["s"] / best["pandas"]["s"],
        best["recon"]["cpu_s"] / best["pandas"]["cpu_s"],
    )
    print(f"  recon / pandas: {ratio:.2f}x wall, {cpu:.2f}x CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
