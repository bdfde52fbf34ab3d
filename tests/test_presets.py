"""Every preset end to end: a file shaped as the vendor documents it, `recon init` with the
preset, then `recon reconcile` with the config init wrote, unedited.

Each fixture holds the same five learner-course situations, written in the vendor's own
words and formats, so one table of expected outcomes checks every preset and with them
each derived-status rule (percent: udemy-business; yes/no with the completion date:
coursera; completion + success pairs: scorm; statements: xapi).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from recon.presets import load_preset, names

AS_OF = "2026-06-01T00:00:00Z"
LEARNERS = {
    "ann": ("ann@example.com", "0b7c6f4e-1c1a-4d55-9a0e-000000000001"),
    "bob": ("bob@example.com", "0b7c6f4e-1c1a-4d55-9a0e-000000000002"),
    "cy": ("cy@example.com", "0b7c6f4e-1c1a-4d55-9a0e-000000000003"),
}
COURSES = {
    "SAFE-101": "7fe94a97-e505-451d-83da-000000000001",
    "DATA-200": "7fe94a97-e505-451d-83da-000000000002",
    "LEAD-300": "7fe94a97-e505-451d-83da-000000000003",
}
XAPI_IRI = "https://provider.example.com/activities/"

# (learner, course, what the provider means, completed at (UTC), last activity (UTC))
SITUATIONS = [
    ("ann", "SAFE-101", "completed", "2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z"),
    ("bob", "SAFE-101", "started", None, "2026-02-01T09:00:00Z"),
    ("cy", "DATA-200", "not-started", None, "2026-01-15T08:00:00Z"),
    ("ann", "DATA-200", "started", None, "2026-02-20T12:00:00Z"),
    ("bob", "LEAD-300", "completed", "2026-01-10T18:00:00Z", "2026-01-10T18:00:00Z"),
]
EXPECTED = ["missing-completion", "missing-progress", "in-sync", "lms-ahead", "in-sync"]
LMS_ROWS = [
    ("ann", "DATA-200", "completed", "2026-02-25T00:00:00.000Z"),
    ("bob", "LEAD-300", "completed", "2026-01-10T18:00:00.000Z"),
]


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _epoch_ms(text: str | None) -> str:
    moment = _dt(text)
    return "" if moment is None else str(int(moment.timestamp() * 1000))


def _la(text: str | None) -> str:
    """A UTC moment as a wall-clock time in Los Angeles, without offset."""
    from zoneinfo import ZoneInfo

    moment = _dt(text)
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo("America/Los_Angeles")).strftime("%Y-%m-%dT%H:%M:%S")


def _percent(meaning: str) -> str:
    return {"completed": "100", "started": "40", "not-started": "0"}[meaning]


def _words(completed: str, started: str, not_started: str) -> Callable[[str], str]:
    return lambda meaning: {
        "completed": completed,
        "started": started,
        "not-started": not_started,
    }[meaning]


Row = dict[str, str]


def pluralsight(learner: str, course: str, meaning: str, done: Any, seen: Any) -> Row:
    email, uid = LEARNERS[learner]
    return {
        "User ID": uid[-4:],
        "First name": learner.title(),
        "Last name": "Example",
        "Email": email,
        "Team name": "Ops",
        "Note": "",
        "Is on account": "Yes",
        "Course ID": course,
        "Course name": course.title(),
        "First view date": seen or "",
        "Completion date": done or "",
        "Completion status": _words("Completed", "In Progress", "Not Started")(meaning),
    }


def scorm(learner: str, course: str, meaning: str, done: Any, seen: Any) -> Row:
    email, uid = LEARNERS[learner]
    completion, success = {
        "completed": ("COMPLETED", "PASSED"),
        "started": ("INCOMPLETE", "UNKNOWN"),
        "not-started": ("UNKNOWN", "UNKNOWN"),
    }[meaning]
    return {
        "learner_id": uid,
        "learner_email": email,
        "learner_first_name": learner.title(),
        "learner_last_name": "Example",
        "course_id": course,
        "registration_completion": completion,
        "registration_success": success,
        "registration_completion_amount": {"completed": "1", "started": "0.4"}.get(meaning, "0"),
        "first_access_date": seen or "",
        "last_access_date": seen or "",
        "completed_date": done or "",
    }


def coursera(learner: str, course: str, meaning: str, done: Any, seen: Any) -> Row:
    return {
        "externalId": LEARNERS[learner][0],
        "contentId": course,
        "isCompleted": "true" if meaning == "completed" else "false",
        "enrolledAt": _epoch_ms(seen),
        "completedAt": _epoch_ms(done),
        "overallProgress": _percent(meaning),
    }


def udemy(learner: str, course: str, meaning: str, done: Any, seen: Any) -> Row:
    return {
        "Email": LEARNERS[learner][0],
        "External ID": learner,
        "Course ID": course,
        "Course Title": course.title(),
        "% Marked Completed": _percent(meaning),
        "Course Enroll Date": seen or "",
        "Course Completion Date": done or "",
    }


def linkedin(learner: str, course: str, meaning: str, done: Any, seen: Any) -> Row:
    return {
        "Name": learner.title(),
        "Email": LEARNERS[learner][0],
        "Unique User ID": learner,
        "Content Title": course.title(),
        "Content ID": course,
        "Completion Status": _words("Completed", "In Progress", "Not Started")(meaning),
        "Completion Date": _la(done),
        "First Engaged": _la(seen),
    }


def cornerstone(learner: str, course: str, meaning: str, done: Any, seen: Any) -> Row:
    return {
        "User Email": LEARNERS[learner][0],
        "Training Object ID": course,
        "Training Title": course.title(),
        "Transcript Status": _words("Completed", "In Progress", "Registered")(meaning),
        "Completion Date": done or "",
        "Registration Date": seen or "",
    }


def xapi_statement(i: int, learner: str, course: str, meaning: str, done: Any, seen: Any):
    verb = {"completed": "completed", "started": "progressed", "not-started": "registered"}
    return {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "actor": {"mbox": "mailto:" + LEARNERS[learner][0]},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/" + verb[meaning]},
        "object": {"id": XAPI_IRI + course, "objectType": "Activity"},
        "timestamp": done or seen,
    }


BUILDERS: dict[str, Callable[..., Row]] = {
    "pluralsight": pluralsight,
    "scorm": scorm,
    "coursera": coursera,
    "udemy-business": udemy,
    "linkedin-learning": linkedin,
    "cornerstone": cornerstone,
}


def _write_csv(path: Path, rows: list[Row]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _world(folder: Path, *, codes: dict[str, str]) -> dict[str, Path]:
    users = _write_csv(
        folder / "users.csv", [{"email": e, "userId": u} for e, u in LEARNERS.values()]
    )
    paths = _write_csv(
        folder / "paths.csv",
        [{"externalCode": code, "learningPathId": COURSES[c]} for c, code in codes.items()],
    )
    progress = _write_csv(
        folder / "progress.csv",
        [
            {
                "userId": LEARNERS[learner][1],
                "learningPathId": COURSES[course],
                "status": status,
                "completionDate": date,
            }
            for learner, course, status, date in LMS_ROWS
        ],
    )
    return {"users": users, "paths": paths, "progress": progress}


def _recon(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("recon")), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def _provider_file(folder: Path, preset: str) -> Path:
    if preset == "xapi":
        statements = [xapi_statement(i, *s) for i, s in enumerate(SITUATIONS, start=1)]
        path = folder / "statements.json"
        path.write_text(json.dumps({"statements": statements, "more": ""}), encoding="utf-8")
        return path
    rows = [BUILDERS[preset](*s) for s in SITUATIONS]
    assert list(rows[0]) == list(load_preset(preset).columns), "fixture = documented columns"
    return _write_csv(folder / f"{preset}.csv", rows)


def test_every_preset_has_a_fixture():
    assert sorted([*BUILDERS, "xapi"]) == names()


@pytest.mark.parametrize("preset", names())
def test_init_with_the_preset_then_reconcile_unedited(tmp_path, preset):
    codes = {c: (XAPI_IRI + c if preset == "xapi" else c) for c in COURSES}
    world = _world(tmp_path, codes=codes)
    provider = _provider_file(tmp_path, preset)
    init = _recon(
        "init",
        "--provider", str(provider),
        "--preset", preset,
        "--progress", str(world["progress"]),
        "--users", str(world["users"]),
        "--paths", str(world["paths"]),
        "--out", str(tmp_path / "recon.toml"),
        cwd=tmp_path,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert "expected columns found" in init.stdout
    assert "MISSING" not in init.stdout
    assert "recon reconcile" in init.stdout  # the next command
    done = _recon(
        "reconcile",
        "--config", str(tmp_path / "recon.toml"),
        "--out", str(tmp_path / "out"),
        "--as-of", AS_OF,
        "--no-ledger",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    with (tmp_path / "out" / "outcomes.csv").open(encoding="utf-8") as fh:
        outcomes = [r["outcome"] for r in csv.DictReader(fh)]
    assert outcomes == EXPECTED


def test_init_reports_missing_expected_columns(tmp_path):
    world = _world(tmp_path, codes={c: c for c in COURSES})
    rows = [pluralsight(*s) for s in SITUATIONS]
    for row in rows:
        del row["First view date"]
    provider = _write_csv(tmp_path / "ps.csv", rows)
    init = _recon(
        "init", "--provider", str(provider), "--preset", "pluralsight",
        "--progress", str(world["progress"]), "--out", str(tmp_path / "recon.toml"),
        cwd=tmp_path,
    )  # fmt: skip
    assert "MISSING: First view date" in init.stdout


def test_init_says_what_an_undocumented_preset_is_based_on(tmp_path):
    world = _world(tmp_path, codes={c: c for c in COURSES})
    provider = _provider_file(tmp_path, "udemy-business")
    init = _recon(
        "init", "--provider", str(provider), "--preset", "udemy-business",
        "--progress", str(world["progress"]), "--out", str(tmp_path / "recon.toml"),
        cwd=tmp_path,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert "the vendor does not document every column:" in init.stdout
    assert "% Marked Completed" in init.stdout  # the preset's own notes, printed


def test_init_never_overwrites_without_force(tmp_path):
    world = _world(tmp_path, codes={c: c for c in COURSES})
    provider = _provider_file(tmp_path, "pluralsight")
    target = tmp_path / "recon.toml"
    target.write_text("# mine\n", encoding="utf-8")
    args = ["init", "--provider", str(provider), "--progress", str(world["progress"])]
    refused = _recon(*args, "--out", str(target), cwd=tmp_path)
    assert refused.returncode == 2
    assert target.read_text(encoding="utf-8") == "# mine\n"
    forced = _recon(*args, "--out", str(target), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "[external]" in target.read_text(encoding="utf-8")


def test_fixture_dates_are_utc():
    # The expected table above relies on these being UTC instants.
    assert all(
        _dt(s[4]) is not None and _dt(s[4]).tzinfo == UTC  # type: ignore[union-attr]
        for s in SITUATIONS
    )
