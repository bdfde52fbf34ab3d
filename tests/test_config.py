"""`recon.toml`: the contract analysts write by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ext, outcomes_of, write_case_in
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import outcomes as oc
from recon.config import KEYS, check_names, load_config
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


# --- unknown names: every table and key has a fate ---------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            ISSUE_EXAMPLE.replace('activity_date = "Last Activity"', 'activty_date = "Last"'),
            "unknown key 'activty_date' in [external]; did you mean 'activity_date'?",
        ),
        (
            ISSUE_EXAMPLE.replace("[progress]", "[progres]"),
            "unknown table [progres]; did you mean [progress]?",
        ),
        (
            ISSUE_EXAMPLE.replace('user_id = "userId"\npath_id', 'userid = "userId"\npath_id'),
            "unknown key 'userid' in [progress]; did you mean 'user_id'?",
        ),
        (
            ISSUE_EXAMPLE.replace('email = "email"', 'emial = "email"'),
            "unknown key 'emial' in [users]; did you mean 'email'?",
        ),
        (
            ISSUE_EXAMPLE.replace('external_code = "externalCode"', 'externl_code = "x"'),
            "unknown key 'externl_code' in [paths]; did you mean 'external_code'?",
        ),
        (
            ISSUE_EXAMPLE + '\n[lms]\nbase_ur = "https://lms.example.com"\n',
            "unknown key 'base_ur' in [lms]; did you mean 'base_url'?",
        ),
        (
            ISSUE_EXAMPLE + '\n[lsm]\nbase_url = "https://lms.example.com"\n',
            "unknown table [lsm]; did you mean [lms]?",
        ),
        (
            ISSUE_EXAMPLE.replace("[external.statuses]", "[external.statusses]"),
            "unknown table [external.statusses]; did you mean [external.statuses]?",
        ),
        (
            ISSUE_EXAMPLE + '\n[progress.statuse]\n"Done" = "completed"\n',
            "unknown table [progress.statuse]; did you mean [progress.statuses]?",
        ),
        (
            ISSUE_EXAMPLE + "\n[provider]\nfile = 'x.csv'\n",
            "unknown table [provider]; valid: [external], [progress], [users], [paths], [lms], "
            "[identity]",
        ),
        (
            'timezone = "UTC"\n' + ISSUE_EXAMPLE,
            "unknown key 'timezone' outside any table; it belongs in [external] or [progress]",
        ),
        (
            ISSUE_EXAMPLE.replace('file = "users.csv"', 'file = "users.csv"\ncolour = "blue"'),
            "unknown key 'colour' in [users]; valid: 'file', 'email', 'user_id', 'sheet', "
            "'name', 'first_name', 'last_name', 'employee_id', 'source'",
        ),
    ],
    ids=[
        "case 4: activty_date",
        "case 4: [progres]",
        "progress key",
        "users key",
        "paths key",
        "lms key",
        "lms table",
        "external sub-table",
        "progress sub-table",
        "no close table",
        "key above every table",
        "no close key",
    ],
)
def test_unknown_names_are_refused_with_the_closest_valid_one(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, text))
    assert str(err.value) == f"{tmp_path / 'recon.toml'}: {message}"


def test_words_tables_take_any_key(tmp_path):
    text = ISSUE_EXAMPLE + '\n[progress.statuses]\n"Qqzx" = "started"\n" ünïcode " = "completed"\n'
    text = text.replace('"Registered" = "not-started"', '"Registered" = "not-started"\n"zz" = "x"')
    config = load_config(_config(tmp_path, text))
    assert config.external.statuses["zz"] == "x"
    assert config.progress.status_map()["qqzx"] == "started"
    assert config.progress.status_map()["ünïcode"] == "completed"


@pytest.mark.parametrize(
    ("text", "mention"),
    [
        (ISSUE_EXAMPLE.replace('file = "users.csv"', "file = 3"), "[users] `file`"),
        (ISSUE_EXAMPLE.replace('file = "external.csv"', "file = ['a']"), "not a list"),
        (ISSUE_EXAMPLE.replace('status = "Status"', "status = true"), "not a boolean"),
        (ISSUE_EXAMPLE.replace('learner = "Email"', 'learner = "Email"\nsheet = 2'), "`sheet`"),
        (ISSUE_EXAMPLE.replace('path_id = "learningPathId"', "path_id = 1.5"), "[progress]"),
        (ISSUE_EXAMPLE + "\n[lms]\nbase_url = 8080\n", "[lms] `base_url`"),
        (
            ISSUE_EXAMPLE.replace('status = "status"', 'status = "status"\nstatuses = "x"'),
            "[progress.statuses]",
        ),
        (ISSUE_EXAMPLE + "\n[progress.statuses]\n'Done' = 3\n", "[progress.statuses]"),
        (ISSUE_EXAMPLE + "\n[progress.statuses]\n'Done' = 'passed'\n", "'Done' = 'passed'"),
        (ISSUE_EXAMPLE + "\n[progress.statuses]\n'Started' = 'completed'\n", "'Started'"),
        (
            ISSUE_EXAMPLE + "\n[progress.statuses]\n'Done' = 'completed'\n' done' = 'started'\n",
            "two meanings",
        ),
        (
            ISSUE_EXAMPLE.replace('status = "status"', 'status = "status"\ntimezone = "Nowhere"'),
            "[progress] unknown timezone 'Nowhere'",
        ),
        (
            ISSUE_EXAMPLE.replace('status = "status"', 'status = "status"\ndate_formats = "%d"'),
            "[progress] date_formats",
        ),
        ("lms = 'https://x'\n" + ISSUE_EXAMPLE, "[lms] must be a table"),
    ],
    ids=[
        "file a number",
        "file a list",
        "column a boolean",
        "sheet a number",
        "progress column a float",
        "base_url a number",
        "statuses not a table",
        "LMS word to a number",
        "LMS word to no API status",
        "API word remapped",
        "one word twice",
        "progress timezone",
        "progress date_formats",
        "lms not a table",
    ],
)
def test_values_of_the_wrong_type_are_refused(tmp_path, text, mention):
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, text))
    assert mention in str(err.value)


def test_progress_words_timezone_and_formats_are_read(tmp_path):
    text = ISSUE_EXAMPLE.replace(
        'completion_date = "completionDate"   # optional',
        'completion_date = "completionDate"\ntimezone = "Europe/Berlin"\n'
        'date_formats = ["%d.%m.%Y"]\n\n[progress.statuses]\n" In Progress " = " Started "',
    )
    config = load_config(_config(tmp_path, text))
    assert config.progress.timezone == "Europe/Berlin"
    assert config.progress.date_formats == ("%d.%m.%Y",)
    assert config.progress.status_map()["in progress"] == "started"
    assert config.progress.status_map()["completed"] == "completed"
    default = load_config(_config(tmp_path, ISSUE_EXAMPLE)).progress
    assert default.timezone == "UTC" and default.date_formats == ("%m/%d/%Y", "%d %b %Y")
    assert default.status_map() == {
        s: s for s in ("not-started", "started", "not-completed", "completed")
    }


def test_the_lms_table_is_read(tmp_path):
    from recon.config import LmsSpec

    text = ISSUE_EXAMPLE + '\n[lms]\nbase_url = "https://lms.example.com"\n'
    assert load_config(_config(tmp_path, text)).lms == LmsSpec("https://lms.example.com")
    assert load_config(_config(tmp_path, ISSUE_EXAMPLE)).lms is None


def test_the_valid_names_are_the_dataclasses_fields():
    import dataclasses

    from recon.config import KEYS, TABLES, WORD_TABLES, Config

    assert set(TABLES) == {f.name for f in dataclasses.fields(Config)} - {"source"}
    for table, spec in TABLES.items():
        assert KEYS[table] == tuple(f.name for f in dataclasses.fields(spec))
    # every key the README documents is valid, and the README documents every key
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for table, keys in KEYS.items():
        assert f"[{table}]" in readme
        for key in keys:
            documented = f"[{table}.{key}]" if key in WORD_TABLES else f"\n{key} = "
            assert documented in readme, (table, key)


def _typos(word: str) -> st.SearchStrategy[str]:
    letters = "abcdefghijklmnopqrstuvwxyz_"
    i = st.integers(0, len(word) - 1)
    return st.one_of(
        i.map(lambda k: word[:k] + word[k + 1 :]),  # a letter left out
        st.tuples(i, st.sampled_from(letters)).map(lambda a: word[: a[0]] + a[1] + word[a[0] :]),
        st.tuples(i, st.sampled_from(letters)).map(
            lambda a: word[: a[0]] + a[1] + word[a[0] + 1 :]
        ),
    ).filter(lambda typo: typo != word)


_EVERY_KEY = [(table, key) for table, keys in KEYS.items() for key in keys]


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_a_one_letter_typo_of_any_key_is_refused_with_the_right_suggestion(data):
    from recon.config import _distance

    table, key = data.draw(st.sampled_from(_EVERY_KEY))
    typo = data.draw(_typos(key))
    valid = KEYS[table]
    if typo in valid:
        return  # another valid key, not a typo
    doc = {table: {typo: "x"}}
    with pytest.raises(ConfigError) as err:
        check_names(doc, Path("recon.toml"))
    message = str(err.value)
    assert f"unknown key '{typo}' in [{table}]; did you mean '" in message
    suggested = message.split("did you mean '")[1].split("'")[0]
    # the suggestion is one edit away, and it is the key meant unless the typo is one
    # edit away from another key too
    assert _distance(typo, suggested) == 1
    others = [k for k in valid if k != key and _distance(typo, k) <= 1]
    if not others:
        assert suggested == key


@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_a_one_letter_typo_of_any_table_is_refused_with_the_right_suggestion(data):
    table = data.draw(st.sampled_from(list(KEYS)))
    typo = data.draw(_typos(table))
    if typo in KEYS:
        return
    with pytest.raises(ConfigError) as err:
        check_names({typo: {"file": "x"}}, Path("recon.toml"))
    assert f"unknown table [{typo}]; did you mean [{table}]?" in str(err.value)


def test_case_4_cli_exits_2_names_the_key_and_writes_nothing(write_case, tmp_path, capsys):
    from recon.cli import main

    config = write_case([ext(completed="2026-01-15")])
    text = config.read_text(encoding="utf-8").replace('"activity_date"', '"activty_date"')
    assert "activty_date" in text
    config.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    ledger = tmp_path / "ledger.db"
    code = main(["reconcile", "--config", str(config), "--out", str(out), "--ledger", str(ledger)])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown key 'activty_date' in [external]; did you mean 'activity_date'?" in err
    assert not out.exists() and not ledger.exists()
    assert not (config.parent / "recon-ledger.db").exists()

    config.write_text(
        text.replace("activty_date", "activity_date").replace("[progress]", "[progres]"),
        encoding="utf-8",
    )
    assert main(["reconcile", "--config", str(config), "--out", str(out)]) == 2
    assert "unknown table [progres]; did you mean [progress]?" in capsys.readouterr().err
    assert not out.exists() and not (config.parent / "recon-ledger.db").exists()
