"""`recon.toml`: the contract analysts write by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ext, outcomes_of, write_case_in

from recon import outcomes as oc
from recon.config import load_config
from recon.engine import reconcile
from recon.errors import ConfigError, InputError

ISSUE_EXAMPLE = """
[external]                      # the provider's export
file = "external.csv"           # .csv or .xlsx (first sheet, or `sheet = "Name"`)
learner = "Email"               # column naming the learner
learner_kind = "email"          # "email" (looked up in [users]) or "user_id" (already LMS ids)
path = "Course Code"            # column naming the learning path
path_kind = "code"              # "code" (looked up in [paths]) or "learning_path_id"
status = "Status"
completion_date = "Completed On"
activity_date = "Last Activity" # optional
date_formats = ["%m/%d/%Y", "%d %b %Y"]   # tried after ISO 8601, in order
timezone = "UTC"                # zone of values that carry no offset (IANA name)

[external.statuses]             # provider's words -> LMS status
"Completed" = "completed"
"In Progress" = "started"
"Failed" = "not-completed"
"Registered" = "not-started"

[progress]                      # the LMS's learning-path progress export
file = "progress.csv"
user_id = "userId"
path_id = "learningPathId"
status = "status"
completion_date = "completionDate"   # optional

[users]                         # learner directory: email -> LMS user id
file = "users.csv"
email = "email"
user_id = "userId"

[paths]                         # provider's course code -> LMS learning path id
file = "paths.csv"
external_code = "externalCode"
learning_path_id = "learningPathId"
"""


def test_the_example_from_the_issue(tmp_path):
    write_case_in(tmp_path, [ext(completed="2026-01-15")])
    (tmp_path / "recon.toml").write_text(ISSUE_EXAMPLE, encoding="utf-8")
    config = load_config(tmp_path / "recon.toml")
    assert config.external.file == (tmp_path / "external.csv").resolve()
    assert config.external.date_formats == ("%m/%d/%Y", "%d %b %Y")
    assert config.status_map()["in progress"] == "started"
    result = reconcile(config, as_of="2026-06-01")
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]


def test_optional_keys_may_be_left_out(write_case):
    config = write_case(
        [ext(status="In Progress")],
        config={
            "external": {"activity_date": None, "date_formats": None, "timezone": None},
            "progress": {"completion_date": None},
        },
    )
    loaded = load_config(config)
    assert loaded.external.activity_date is None
    assert loaded.external.timezone == "UTC"
    assert loaded.progress.completion_date is None
    assert outcomes_of(reconcile(loaded, as_of="2026-06-01")) == [oc.MISSING_PROGRESS]


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recon.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _without(text: str, table: str) -> str:
    """The example with one table (and its sub-tables) removed."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith("["):
            name = line.split("]")[0].strip("[")
            skipping = name == table or name.startswith(table + ".")
        if not skipping:
            out.append(line)
    return "\n".join(out)


@pytest.mark.parametrize(
    ("text", "mention"),
    [
        (_without(ISSUE_EXAMPLE, "external"), "[external]"),
        (_without(ISSUE_EXAMPLE, "progress"), "[progress]"),
        (_without(ISSUE_EXAMPLE, "users"), "[users]"),
        (_without(ISSUE_EXAMPLE, "paths"), "[paths]"),
        (ISSUE_EXAMPLE.replace('learner_kind = "email"', 'learner_kind = "mail"'), "learner_kind"),
        (ISSUE_EXAMPLE.replace('path_kind = "code"', 'path_kind = "id"'), "path_kind"),
        (ISSUE_EXAMPLE.replace('timezone = "UTC"', 'timezone = "Mars/Olympus"'), "Mars/Olympus"),
        (ISSUE_EXAMPLE.replace('timezone = "UTC"', 'timezone = "CEST+2"'), "CEST+2"),
        (ISSUE_EXAMPLE.replace('timezone = "UTC"', 'timezone = ""'), "timezone"),
        (ISSUE_EXAMPLE.replace('learner = "Email"', ""), "learner"),
        (ISSUE_EXAMPLE.replace('file = "external.csv"', ""), "file"),
        (ISSUE_EXAMPLE.replace('status = "Status"', "status = 3"), "status"),
        (ISSUE_EXAMPLE.replace('["%m/%d/%Y", "%d %b %Y"]', '"%m/%d/%Y"'), "date_formats"),
        (ISSUE_EXAMPLE.replace('"Failed" = "not-completed"', '"Failed" = 3'), "statuses"),
        (ISSUE_EXAMPLE.replace('file = "external.csv"', 'file = "external.csv'), "recon.toml"),
        ("external = 3\n" + _without(ISSUE_EXAMPLE, "external"), "[external]"),
    ],
    ids=[
        "no [external]",
        "no [progress]",
        "no [users] for emails",
        "no [paths] for codes",
        "bad learner_kind",
        "bad path_kind",
        "unknown timezone",
        "not an IANA timezone",
        "blank timezone",
        "no learner column",
        "no file",
        "status not a string",
        "date_formats not a list",
        "status mapped to a number",
        "not TOML",
        "external not a table",
    ],
)
def test_config_errors(tmp_path, text, mention):
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, text))
    assert mention in str(err.value)
    assert "recon.toml" in str(err.value)
    assert isinstance(err.value, InputError)  # the CLI's exit 2


@pytest.mark.parametrize(
    ("extra", "mention"),
    [
        ({"timezone": "localtime"}, "localtime"),  # a zone file, but no IANA name
        ({"date_formats": ["%m/%d/%Y", "%Q"]}, "%Q"),
        ({"date_formats": ["%Y-%m-%d %"]}, "%Y-%m-%d %"),
    ],
)
def test_values_the_engine_cannot_use_are_config_errors(write_case, tmp_path, extra, mention):
    from recon.cli import main

    config = write_case([ext(completed="2026-01-15")], config={"external": extra})
    with pytest.raises(ConfigError) as err:
        reconcile(config, as_of="2026-06-01")
    assert mention in str(err.value) and "recon.toml" in str(err.value)
    out = tmp_path / "out"
    assert main(["reconcile", "--config", str(config), "--out", str(out)]) == 2
    assert not out.exists()


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nowhere.toml")
    assert "nowhere.toml" in str(err.value)


def test_users_and_paths_are_optional_for_ids(tmp_path):
    text = ISSUE_EXAMPLE.replace('learner_kind = "email"', 'learner_kind = "user_id"')
    text = text.replace('path_kind = "code"', 'path_kind = "learning_path_id"')
    text = _without(_without(text, "users"), "paths")
    config = load_config(_config(tmp_path, text))
    assert config.users is None and config.paths is None


def test_paths_are_relative_to_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project" / "config"
    write_case_in(folder, [ext(completed="2026-01-15")])
    data = tmp_path / "project" / "data"
    data.mkdir()
    (folder / "external.csv").rename(data / "external.csv")
    (folder / "users.csv").rename(tmp_path / "project" / "users.csv")
    text = (folder / "recon.toml").read_text()
    text = text.replace('"external.csv"', '"../data/external.csv"')
    text = text.replace('"users.csv"', '"../users.csv"')
    (folder / "recon.toml").write_text(text)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("../project/config/recon.toml"))
    assert config.external.file == (data / "external.csv").resolve()
    assert config.users is not None
    assert config.users.file == (tmp_path / "project" / "users.csv").resolve()
    assert config.progress.file == (folder / "progress.csv").resolve()
    assert config.external.file.is_absolute()
    result = reconcile("../project/config/recon.toml", as_of="2026-06-01")
    assert outcomes_of(result) == [oc.MISSING_COMPLETION]


def test_an_absolute_path_stays_as_it_is(tmp_path):
    write_case_in(tmp_path / "a", [ext(completed="2026-01-15")])
    config_path = write_case_in(tmp_path / "b", [ext(status="Nope")])
    absolute = (tmp_path / "a" / "external.csv").resolve()
    text = config_path.read_text().replace('"external.csv"', f'"{absolute}"')
    config_path.write_text(text)
    assert load_config(config_path).external.file == absolute
    assert outcomes_of(reconcile(config_path, as_of="2026-06-01")) == [oc.MISSING_COMPLETION]


def test_sheet_and_statuses_are_read(write_case):
    config = load_config(
        write_case([ext()], statuses={" Done ": " completed "}, config={"external": {"sheet": "S"}})
    )
    assert config.external.sheet == "S"
    assert config.status_map()["done"] == "completed"
    # the LMS names are always there
    for name in ("not-started", "started", "not-completed", "completed"):
        assert config.status_map()[name] == name
