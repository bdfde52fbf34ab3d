"""Synthetic inputs (recon.devtools.synth), the bundled sample, and `recon bench`."""

from __future__ import annotations

import csv
import json
import re
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from recon import outcomes as oc
from recon.cli import main
from recon.devtools.bench import format_bench, run_bench
from recon.devtools.synth import AS_OF, EXTERNAL_COLUMNS, generate
from recon.engine import reconcile
from recon.ledger import Ledger

FILES = ("external.csv", "progress.csv", "users.csv", "paths.csv", "recon.toml")
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
FIXED_AS_OF = "2026-11-27T00:00:00Z"
# the sample's old domain alias is a subdomain: still only the reserved example domains
EXAMPLE_EMAIL = re.compile(r"^[^@\s]+@(old\.)?example\.(com|org|net)$")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _load_sample_generator() -> ModuleType:
    from recon.devtools import sample

    return sample


def test_generation_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", 800, seed=7).parent
    second = generate(tmp_path / "b", 800, seed=7).parent
    other = generate(tmp_path / "c", 800, seed=8).parent
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "external.csv").read_bytes() != (other / "external.csv").read_bytes()


def test_generated_files_have_the_documented_shape(tmp_path: Path) -> None:
    config = generate(tmp_path, 5_000, seed=3)
    external = _rows(tmp_path / "external.csv")
    progress = _rows(tmp_path / "progress.csv")
    users = _rows(tmp_path / "users.csv")
    paths = _rows(tmp_path / "paths.csv")
    assert len(external) == 5_000
    assert tuple(external[0]) == EXTERNAL_COLUMNS
    assert list(progress[0]) == ["userId", "learningPathId", "status", "completionDate"]
    assert list(users[0]) == ["email", "userId"]
    assert list(paths[0]) == ["externalCode", "learningPathId"]
    # The defaults: N/10 learners (a few listed twice), 200 paths, about 0.8 N LMS rows.
    assert 500 <= len(users) <= 505
    assert len(paths) == 200
    assert 0.75 * 5_000 <= len(progress) <= 0.85 * 5_000
    uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(uuid.match(r["userId"]) for r in users)
    assert all(uuid.match(r["learningPathId"]) for r in paths)
    emails = [r["Email"].strip().lower() for r in external if r["Email"].strip()]
    assert all(EXAMPLE_EMAIL.match(e) for e in emails)
    assert all(EXAMPLE_EMAIL.match(r["email"].lower()) for r in users)
    # The mess is there: stray spaces, other case, several date shapes.
    assert any(r["Email"] != r["Email"].strip() for r in external)
    assert any(r["Email"].strip() != r["Email"].strip().lower() for r in external)
    dates = {r["Completed On"] for r in external if r["Completed On"]}
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\d", d) for d in dates)
    assert any(d.endswith("Z") for d in dates)
    assert any(re.search(r"[+-]\d\d:\d\d$", d) for d in dates)
    assert any(re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", d) for d in dates)
    assert any(re.fullmatch(r"\d\d [A-Z][a-z]{2} \d{4}", d) for d in dates)
    assert tomllib.loads(config.read_text(encoding="utf-8"))["external"]["file"] == "external.csv"


def test_reconciling_generated_data_conserves_rows(tmp_path: Path) -> None:
    rows = 6_000
    result = reconcile(generate(tmp_path, rows, seed=11), as_of=FIXED_AS_OF)
    counts = result.counts
    assert result.rows_read == rows
    assert sum(counts.values()) == rows
    assert sorted(result.outcomes["row"]) == list(range(1, rows + 1))
    # Realistic proportions: most rows in sync, a gap of roughly a fifth.
    assert 0.65 <= counts[oc.IN_SYNC] / rows <= 0.85
    # every row the generator writes lines up with the header: no bad-row
    problems = [p for p in oc.ROW_PROBLEMS if p != oc.BAD_ROW]
    for name in (*oc.PROPOSED, *oc.REVIEW, *problems, oc.LMS_AHEAD, oc.DUPLICATE):
        assert counts[name] > 0, name
    assert counts[oc.BAD_ROW] == 0


@pytest.mark.parametrize("rows", [1, 7, 19, 20, 150])
def test_tiny_inputs_still_reconcile(tmp_path: Path, rows: int) -> None:
    result = reconcile(generate(tmp_path, rows, seed=rows), as_of=FIXED_AS_OF)
    assert result.rows_read == rows == sum(result.counts.values())


def test_only_the_injected_dates_are_in_the_future(tmp_path: Path) -> None:
    # Ordinary dates end before AS_OF and future ones lie 13 to 25 months after it, so the
    # count is the same at AS_OF and a year later: a demo run at the real "now" agrees.
    config = generate(tmp_path, 3_000, seed=5)
    at_as_of = reconcile(config, as_of=AS_OF).counts[oc.FUTURE_DATE]
    a_year_later = reconcile(config, as_of="2027-11-27T00:00:00Z").counts[oc.FUTURE_DATE]
    assert at_as_of == a_year_later > 0


def test_bundled_sample_exercises_every_outcome() -> None:
    result = reconcile(SAMPLE / "recon.toml", as_of=FIXED_AS_OF)
    counts = result.counts
    assert 1_900 <= result.rows_read <= 2_100
    assert sum(counts.values()) == result.rows_read
    # Not in the sample (yet): a first run has nothing accepted, the sample's LMS export
    # has no unreadable completion date (tests/test_lms_words.py covers it), and its rows
    # are written by the csv module, so none is ragged (tests/test_reading.py: bad-row),
    # and it is a CSV, not xAPI statements (tests/test_providers.py: voided).
    absent = (oc.ALREADY_SUBMITTED, oc.BAD_LMS_DATE, oc.BAD_ROW, oc.VOIDED)
    missing = [n for n in oc.ALL if n not in absent and counts[n] == 0]
    assert missing == []
    assert counts[oc.UNKNOWN_LMS_STATUS] > 0  # the LMS's own word "archived"
    invalid = result.outcomes[result.outcomes["outcome"] == oc.INVALID_PAYLOAD]
    assert set(invalid["status"]) == {"passed"}
    assert set(invalid["detail"]) == {"invalid status"}


def test_bundled_sample_looks_like_a_real_export() -> None:
    external = _rows(SAMPLE / "external.csv")
    users = _rows(SAMPLE / "users.csv")
    paths = _rows(SAMPLE / "paths.csv")
    assert len({r["Email"].strip().lower() for r in external if r["Email"].strip()}) >= 400
    assert 500 <= len(users) <= 505
    assert len(paths) == 50
    assert all(EXAMPLE_EMAIL.match(r["email"].lower()) for r in users)
    assert all(
        EXAMPLE_EMAIL.match(r["Email"].strip().lower()) for r in external if r["Email"].strip()
    )
    raw = (SAMPLE / "external.csv").read_text(encoding="utf-8")
    assert '"' in raw  # names and titles with commas are quoted
    config = (SAMPLE / "recon.toml").read_text(encoding="utf-8")
    assert tomllib.loads(config)["external"]["statuses"]["Passed"] == "passed"
    assert "deliberate config mistake" in config


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """The sample written afresh by its generator (once for this module)."""
    return _load_sample_generator().write(tmp_path_factory.mktemp("sample"))


def test_bundled_sample_is_what_its_generator_writes(regenerated: tuple[Path, list]) -> None:
    config, _ = regenerated
    assert config.name == "recon.toml"
    for name in FILES:
        assert (config.parent / name).read_bytes() == (SAMPLE / name).read_bytes(), (
            f"recon/sample/{name} (data/sample) is stale: run make sample"
        )


def test_bundled_sample_near_misses_get_the_right_suggestions(
    regenerated: tuple[Path, list],
) -> None:
    # Issue 14: near-miss learners and codes in the sample get their true value as the
    # best suggestion, those read as the same address or code at 0.95 (what the demo's
    # accept-above takes), typos below the demo's score, and a truly absent learner none.
    from recon.demo import ACCEPT_ABOVE
    from recon.pipeline import reconcile_run

    sample = _load_sample_generator()
    _, misses = regenerated
    assert [(m.kind, m.how) for m in misses] == list(sample.NEAR_MISSES)
    result = reconcile_run(SAMPLE / "recon.toml", as_of=FIXED_AS_OF, ledger=None)
    outcome = result.outcomes.set_index("row")["outcome"].astype(str)
    external = _rows(SAMPLE / "external.csv")
    users = {r["email"]: r["userId"] for r in _rows(SAMPLE / "users.csv")}
    paths = {r["externalCode"]: r["learningPathId"] for r in _rows(SAMPLE / "paths.csv")}
    found = result.suggestions
    for miss in misses:
        cell = external[miss.row - 1]["Email" if miss.kind == "learner" else "Course Code"]
        assert cell == miss.written != miss.was
        assert outcome[miss.row] == f"unknown-{miss.kind}", miss
        mine = found[(found["row"] == miss.row) & (found["kind"] == miss.kind)]
        if "absent" in miss.how:
            assert mine.empty, miss
            continue
        best = mine.iloc[0]
        assert best["candidate"] == miss.was, miss
        truth = users[miss.was] if miss.kind == "learner" else paths[miss.was]
        assert best["candidate_id"] == truth
        assert (best["score"] >= ACCEPT_ABOVE) == ("typo" not in miss.how), miss
        assert mine["score"].is_monotonic_decreasing and (mine["score"] < 1).all()


def test_generate_refuses_impossible_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rows"):
        generate(tmp_path, 0)
    with pytest.raises(ValueError, match="too few distinct pairs"):
        generate(tmp_path, 1_000, learners=2, paths=3)


def test_bench_command_prints_its_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep = tmp_path / "bench"
    assert main(["bench", "--rows", "2000", "--seed", "3", "--keep", str(keep)]) == 0
    out = capsys.readouterr().out
    for label in ("2,000 provider rows (CSV)", "`recon reconcile --no-ledger`", "peak memory"):
        assert label in out
    figures = json.loads((keep / "bench.json").read_text(encoding="utf-8"))
    assert figures["rows_read"] == 2_000
    assert sum(figures["counts"].values()) == 2_000
    for run in ("with_ledger", "second_run", "no_ledger"):
        assert figures[run]["exit"] == 1  # proposals: something to do
        assert figures[run]["peak_mb"] > 20 and figures[run]["s"] > 0
    # the ledger holds the two recorded runs; the second added less than the first (the
    # same lists: nothing but its line in runs, since schema 7)
    assert 0 <= figures["ledger_second_mb"] < figures["ledger_first_mb"]
    with Ledger(keep / "ledger.db") as ledger:
        assert ledger.runs()["run_id"].tolist() == [1, 2]
    assert (keep / "outputs" / "outcomes.csv").is_file()


def test_bench_xlsx_reads_the_same_rows_from_a_workbook(tmp_path: Path) -> None:
    keep = tmp_path / "bench"
    csv_figures = run_bench(1500, seed=5, keep=tmp_path / "csv")
    figures = run_bench(1500, seed=5, keep=keep, xlsx=True)
    assert (keep / "inputs" / "external.xlsx").is_file()
    assert figures["counts"] == csv_figures["counts"]
    assert "(XLSX)" in format_bench(figures)
