"""`recon bench`: how fast and how lean `recon reconcile` is, as the analyst runs it.

:func:`run_bench` generates synthetic inputs with :mod:`recon.devtools.synth` in a child process
(not timed, and so that the generator's memory is no one's peak), then runs the whole
``recon reconcile`` command, each time in a fresh process:

- recording into a fresh ledger (the default), then a second time on the same inputs
  into the same ledger: wall seconds, peak memory, and how much the ledger grew;
- with ``--no-ledger``: wall seconds and peak memory;
- with ``xlsx=True`` the provider's export is an XLSX workbook (real date cells) instead
  of a CSV.

Peak memory is the child's own high-water mark (``ru_maxrss`` from ``wait4``). Wall time
counts everything the analyst waits for: interpreter start, imports, reading, the rules,
writing the four outputs and recording. The engine's own split (read, rules) is taken
from the run's summary.json. With ``repeat`` > 1 each command runs that many times and
the best time is kept (a shared machine is noisy); the load average is reported.

It is a benchmark, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from ..errors import ReconError
from .synth import AS_OF, DEFAULT_SEED

GOAL_ROWS = 1_000_000
GOAL_SECONDS = 3.0
GOAL_SECONDS_NO_LEDGER = 2.0
GOAL_MB = 500
GOAL_LEDGER_MB = 40.0
GOAL_SECOND_RUN_MB = 5.0
"""The goals of issue 12 on a 2-core machine, whole command, 1M x 0.8M rows."""

__all__ = [
    "GOAL_MB",
    "GOAL_ROWS",
    "GOAL_SECONDS",
    "format_bench",
    "generate_inputs",
    "run_bench",
    "run_command",
    "write_xlsx",
]


def _env() -> dict[str, str]:
    # The children must import this very package, wherever it was imported from, and
    # draw no progress bar into the measurement.
    package_root = str(Path(__file__).resolve().parents[2])
    while not (Path(package_root) / "recon").is_dir():  # recon/devtools/bench.py too
        package_root = str(Path(package_root).parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env["RECON_NO_PROGRESS"] = "1"
    return env


def run_command(argv: Sequence[str]) -> dict[str, Any]:
    """Run ``argv`` as a fresh process; its wall seconds, peak RSS (MB), CPU seconds and
    exit code. The child's own rusage (``wait4``), not that of every child so far."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env()
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return {
        "s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / scale,
        "exit": proc.returncode,
        "stderr": err.decode("utf-8", "replace"),
    }


def _recon(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from recon.cli import main; sys.exit(main())", *args]


def generate_inputs(inputs: Path, rows: int, seed: int = DEFAULT_SEED) -> Path:
    """The synthetic inputs, made in a child process (see the module docstring)."""
    module = __name__.rsplit(".", 1)[0] + ".synth"
    code = (
        f"import sys; from {module} import generate; "
        "print(generate(sys.argv[1], int(sys.argv[2]), seed=int(sys.argv[3])))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(inputs), str(rows), str(seed)],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise ReconError(f"generating the benchmark's inputs failed:\n{tail}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _column_letters(n: int) -> list[str]:
    letters = []
    for i in range(n):
        name, k = "", i + 1
        while k:
            k, r = divmod(k - 1, 26)
            name = chr(65 + r) + name
        letters.append(name)
    return letters


_EPOCH = datetime(1899, 12, 30)


def write_xlsx(csv_path: Path, xlsx_path: Path, date_columns: Sequence[str] = ()) -> Path:
    """Copy a CSV into a one-sheet XLSX workbook: text cells, and real date cells for
    ``date_columns`` wherever the value is ISO 8601 (others stay text, as in real
    exports). Text is in a shared-string table, as Excel and openpyxl write it (inline
    strings take a reader twice as long). A small writer of its own: openpyxl needs
    minutes for a million rows."""
    import csv

    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        letters = _column_letters(len(header))
        dated = {i for i, name in enumerate(header) if name in date_columns}
        shared: dict[str, int] = {}
        with zipfile.ZipFile(xlsx_path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
            book.writestr("[Content_Types].xml", _CONTENT_TYPES)
            book.writestr("_rels/.rels", _RELS)
            book.writestr("xl/workbook.xml", _WORKBOOK)
            book.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
            book.writestr("xl/styles.xml", _STYLES)
            with book.open("xl/worksheets/sheet1.xml", "w") as raw:
                out = _Buffered(raw)
                out.write(_SHEET_HEAD)
                for number, row in enumerate([header, *reader], start=1):
                    cells = []
                    for i, value in enumerate(row):
                        if value == "":
                            continue
                        ref = f"{letters[i]}{number}"
                        if i in dated and number > 1 and value[:4].isdigit() and "T" in value:
                            try:
                                when = datetime.fromisoformat(value.replace("Z", ""))
                            except ValueError:
                                when = None
                            if when is not None and when.tzinfo is None:  # UTC only
                                serial = (when - _EPOCH).total_seconds() / 86400
                                cells.append(f'<c r="{ref}" s="1"><v>{serial!r}</v></c>')
                                continue
                        index = shared.setdefault(value, len(shared))
                        cells.append(f'<c r="{ref}" t="s"><v>{index}</v></c>')
                    out.write(f'<row r="{number}">{"".join(cells)}</row>')
                out.write("</sheetData></worksheet>")
                out.flush()
            with book.open("xl/sharedStrings.xml", "w") as raw:
                out = _Buffered(raw)
                out.write(
                    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                    '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                    f'uniqueCount="{len(shared)}">'
                )
                for text in shared:  # in insertion order: the indices written above
                    out.write(f'<si><t xml:space="preserve">{escape(text)}</t></si>')
                out.write("</sst>")
                out.flush()
    return xlsx_path


class _Buffered:
    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > 1 << 20:
            self.flush()

    def flush(self) -> None:
        self.raw.write("".join(self.parts).encode("utf-8"))
        self.parts, self.size = [], 0


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Export" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/styles" Target="styles.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
    '<fonts count="1"><font/></fonts><fills count="1"><fill/></fills>'
    '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164" applyNumberFormat="1"/>'
    "</cellXfs></styleSheet>"
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    "<sheetData>"
)


def _to_xlsx(config: Path) -> Path:
    """Point ``config``'s provider file at an XLSX copy of it (date cells real dates)."""
    folder = config.parent
    write_xlsx(folder / "external.csv", folder / "external.xlsx", ["Completed On"])
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('file = "external.csv"', 'file = "external.xlsx"', 1), encoding="utf-8"
    )
    return config


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(runs, key=lambda r: r["s"])
    return {**best, "runs_s": [round(r["s"], 2) for r in runs]}


def _checked(figures: dict[str, Any], what: str) -> dict[str, Any]:
    if figures["exit"] not in (0, 1):
        tail = "\n".join(figures["stderr"].strip().splitlines()[-15:])
        raise ReconError(f"the benchmark's {what} failed (exit {figures['exit']}):\n{tail}")
    figures.pop("stderr", None)
    return figures


def _size_mb(path: Path) -> float:
    total = 0
    for suffix in ("", "-wal"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            total += part.stat().st_size
    return total / 1e6


def run_bench(
    rows: int,
    *,
    seed: int = DEFAULT_SEED,
    keep: str | Path | None = None,
    xlsx: bool = False,
    repeat: int = 1,
) -> dict[str, Any]:
    """Generate ``rows`` external rows with ``seed`` and time ``recon reconcile``.

    The inputs, outputs and ledgers go to a temporary folder, or to ``keep`` (kept
    afterwards, with bench.json). Returns the figures (see :func:`format_bench`).
    Raises :class:`ReconError` when a measured process fails.
    """
    if rows < 1:
        raise ReconError("--rows must be at least 1")
    if repeat < 1:
        raise ReconError("--repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as tmp:
        work = Path(keep) if keep is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        inputs, out = work / "inputs", work / "outputs"
        started = time.perf_counter()
        config = generate_inputs(inputs, rows, seed)
        if xlsx:
            _to_xlsx(config)
        generate_s = time.perf_counter() - started
        as_of = AS_OF.isoformat().replace("+00:00", "Z")
        base = ["reconcile", "--config", str(config), "--out", str(out), "--as-of", as_of]
        load_before = _load()
        # Recording: a fresh ledger each time for the first run, then a second run into
        # the ledger of the last first run.
        first_runs, second_runs = [], []
        ledger = work / "ledger.db"
        for _ in range(repeat):
            for suffix in ("", "-wal", "-shm"):
                ledger.with_name(ledger.name + suffix).unlink(missing_ok=True)
            first_runs.append(_checked(run_command(_recon(*base, "--ledger", str(ledger))), "run"))
            first_mb = _size_mb(ledger)
        for _ in range(repeat):
            before = _size_mb(ledger)
            second_runs.append(
                _checked(run_command(_recon(*base, "--ledger", str(ledger))), "second run")
            )
            second_mb = _size_mb(ledger) - before
        plain_runs = [
            _checked(run_command(_recon(*base, "--no-ledger")), "run without the ledger")
            for _ in range(repeat)
        ]
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        sizes = {p.name: round(p.stat().st_size / 1e6, 1) for p in sorted(inputs.iterdir())}
        figures: dict[str, Any] = {
            "rows": rows,
            "seed": seed,
            "xlsx": xlsx,
            "repeat": repeat,
            "generate_s": generate_s,
            "input_mb": sizes,
            "rows_read": summary["rows_read"],
            "counts": summary["counts"],
            "proposals": summary["proposals"]["total"],
            "exceptions": summary["problems"],
            "progress_rows": summary["inputs"]["progress"]["rows"],
            "timings_s": summary["timings_s"],
            "with_ledger": _best(first_runs),
            "second_run": _best(second_runs),
            "no_ledger": _best(plain_runs),
            "ledger_first_mb": first_mb,
            "ledger_second_mb": second_mb,
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": _load(),
            "kept": str(work) if keep is not None else None,
        }
        if keep is not None:
            (work / "bench.json").write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
    return figures


def _mb(value: float) -> str:
    return f"{value / 1024:.1f} GB" if value >= 1024 else f"{value:,.0f} MB"


def format_bench(figures: dict[str, Any]) -> str:
    """The figures of :func:`run_bench` as a table for the terminal (Markdown, so the
    README's speed section is pasted from it)."""
    f = figures
    kind = "XLSX" if f["xlsx"] else "CSV"
    load = (
        f"load average {f['load_before']:.1f} -> {f['load_after']:.1f}, "
        if f.get("load_before") is not None
        else ""
    )
    lines = [
        f"recon bench: {f['rows']:,} provider rows ({kind}) x {f['progress_rows']:,} LMS rows "
        f"-> {f['proposals']:,} proposals, {f['exceptions']:,} exceptions "
        f"(seed {f['seed']}; {f['cpus']} CPUs, {load}best of {f['repeat']})",
        "",
        "| command | time | CPU | peak memory | ledger grew |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = (
        (
            "`recon reconcile` (records into a fresh ledger, the default)",
            "with_ledger",
            f["ledger_first_mb"],
        ),
        ("`recon reconcile` again, same inputs, same ledger", "second_run", f["ledger_second_mb"]),
        ("`recon reconcile --no-ledger`", "no_ledger", None),
    )
    for label, name, grew in rows:
        m = f[name]
        grown = "" if grew is None else f"{grew:,.{1 if grew >= 1 else 2}f} MB"
        lines.append(
            f"| {label} | {m['s']:.2f} s | {m['cpu_s']:.2f} s | {_mb(m['peak_mb'])} | {grown} |"
        )
    t = f["timings_s"]
    lines += [
        "",
        f"inside the no-ledger run: read {t.get('read', 0):.2f} s, rules "
        f"{t.get('rules', 0):.2f} s (the engine's own timings); generating the inputs "
        f"{f['generate_s']:.1f} s, not counted",
    ]
    if f["rows"] >= GOAL_ROWS // 10 and not f["xlsx"]:
        scale = f["rows"] / GOAL_ROWS
        checks = [
            (
                "with the ledger",
                f["with_ledger"]["s"] <= GOAL_SECONDS * scale,
                f"<= {GOAL_SECONDS * scale:.2f} s",
            ),
            (
                "without",
                f["no_ledger"]["s"] <= GOAL_SECONDS_NO_LEDGER * scale,
                f"<= {GOAL_SECONDS_NO_LEDGER * scale:.2f} s",
            ),
            (
                "peak",
                f["with_ledger"]["peak_mb"] <= GOAL_MB * max(scale, 1.0),
                f"<= {GOAL_MB * max(scale, 1.0):,.0f} MB",
            ),
            (
                "ledger, first run",
                f["ledger_first_mb"] <= GOAL_LEDGER_MB * scale,
                f"<= {GOAL_LEDGER_MB * scale:.1f} MB",
            ),
            (
                "second run",
                f["ledger_second_mb"] <= GOAL_SECOND_RUN_MB * scale,
                f"<= {GOAL_SECOND_RUN_MB * scale:.1f} MB",
            ),
        ]
        lines.append(
            f"goals (issue 12, scaled from {GOAL_ROWS:,} rows): "
            + "; ".join(f"{what} {goal} {'met' if ok else 'missed'}" for what, ok, goal in checks)
        )
    if f.get("kept"):
        lines.append(f"inputs, outputs and ledger kept in {f['kept']}")
    return "\n".join(lines)
