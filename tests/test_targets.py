"""Targets (issue 8, case 1): every attempt knows where it went, an acceptance counts only
for the target that gave it, practice never counts for a real LMS, and a ledger belongs to
one real LMS. Real loopback HTTP: recon's sandbox (practice), and the same sandbox in its
tests-only "real LMS" mode or a scripted server as the real LMS."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import AS_OF, PATHS, ext, write_case_in
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_inspect import requests_log
from test_submit import KEY, ScriptedApi

from recon import ledger as lg
from recon import outcomes as oc
from recon.cli import main
from recon.client import ApiClient
from recon.errors import ConfigError, TargetError
from recon.ledger import Ledger
from recon.pipeline import reconcile_run
from recon.sandbox import Sandbox
from recon.submit import Pace, submit
from recon.target import PRACTICE_LABEL, Target, guess, probe, target_url

FAST = Pace(rate=500, burst=500, concurrency=4, backoff_base=0.01, backoff_cap=0.05)
LEARNERS = 8


@contextmanager
def real_lms(**options: object) -> Iterator[Sandbox]:
    """The sandbox playing a real LMS: its ping carries no practice mark (tests only)."""
    sb = Sandbox(key=KEY, rate=1000, burst=1000, **options)  # type: ignore[arg-type]
    sb._practice = False
    with sb:
        yield sb


@contextmanager
def practice_sandbox() -> Iterator[Sandbox]:
    with Sandbox(key=KEY, rate=1000, burst=1000) as sb:
        yield sb


def write_inputs(folder: Path, lms: str | None = None) -> Path:
    users = [{"email": f"l{i}@example.com", "userId": f"u-{i:04d}"} for i in range(LEARNERS)]
    external = [
        ext(f"l{i}@example.com", "SAFE-101", "Completed", "2026-03-01") for i in range(LEARNERS)
    ]
    config = {"lms": {"base_url": lms}} if lms else None
    return write_case_in(folder / "inputs", external, (), users, PATHS, config=config)


def approved_ledger(folder: Path, lms: str | None = None) -> tuple[Path, Path]:
    """A config and a ledger whose one run's proposals are all approved."""
    config = write_inputs(folder, lms)
    path = lg.default_path(config)
    with Ledger(path) as ledger:
        reconcile_run(config, as_of=AS_OF, ledger=ledger)
        ledger.decide(ledger.select(everything=True), "approved", by="ana")
    return config, path


def posts(sb: Sandbox) -> int:
    return sum(1 for r in requests_log(sb) if r["method"] == "POST")


# -- what a target is ---------------------------------------------------------------------


def test_spellings_of_one_address_are_one_target() -> None:
    one = "https://lms.example.com:443"
    for spelling in (
        "https://lms.example.com",
        "https://LMS.Example.COM/",
        " https://lms.example.com:443/ ",
        "HTTPS://lms.example.com.",
        "https://user:secret@lms.example.com",
    ):
        assert target_url(spelling) == one, spelling
    assert target_url("http://127.0.0.1") == "http://127.0.0.1:80"
    assert target_url("https://lms.example.com/tenant/") == "https://lms.example.com:443/tenant"
    assert target_url("http://[::1]:8765") == "http://[::1]:8765"


@settings(max_examples=200, deadline=None)
@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,12}(\.[a-z][a-z0-9-]{0,8}){0,2}", fullmatch=True),
    port=st.integers(1, 65535),
    prefix=st.from_regex(r"(/[a-z0-9]{1,6}){0,2}", fullmatch=True),
    user=st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
)
def test_a_target_is_scheme_host_port_prefix_and_never_credentials(
    host: str, port: int, prefix: str, user: str
) -> None:
    url = target_url(f"https://{user}:pw-{user}@{host.upper()}:{port}{prefix}/")
    assert url == f"https://{host}:{port}{prefix}"
    assert "@" not in url and f"pw-{user}" not in url
    # Another port, scheme or prefix is another target.
    assert target_url(f"https://{host}:{port % 65535 + 1}{prefix}") != url
    assert target_url(f"http://{host}:{port}{prefix}") != url
    assert target_url(f"https://{host}:{port}{prefix}/x") != url


@pytest.mark.parametrize(
    ("answer", "practice"),
    [
        ({"valid": True, "practice": True}, True),
        ({"valid": True}, False),
        ({"valid": True, "practice": False}, False),
        ({"valid": True, "practice": "true"}, False),
        ({"valid": True, "practice": 1}, False),
        ({"valid": True, "practice": [True]}, False),
    ],
)
def test_only_an_explicit_practice_mark_makes_a_practice_target(
    answer: dict[str, object], practice: bool
) -> None:
    with ScriptedApi(lambda n: (200, {}, None), ping=answer) as api:
        assert probe(ApiClient(api.url, KEY)) == Target(target_url(api.url), practice)


def test_the_sandbox_says_practice_and_its_test_mode_does_not() -> None:
    with practice_sandbox() as sb:
        client = ApiClient(sb.url, KEY)
        assert probe(client) == Target(target_url(sb.url), practice=True)
        assert guess(client) == Target(target_url(sb.url), practice=True)  # no request
        assert probe(client).label == PRACTICE_LABEL
    with real_lms() as lms:
        client = ApiClient(lms.url, KEY)
        assert probe(client) == Target(target_url(lms.url), practice=False)
        assert guess(client) == Target(target_url(lms.url), practice=False)
        assert probe(client).label == target_url(lms.url)


# -- case 1: practice, then the real LMS ---------------------------------------------------


def test_practice_acceptances_never_count_for_the_real_lms(tmp_path: Path) -> None:
    config, path = approved_ledger(tmp_path)
    with Ledger(path) as ledger:
        with practice_sandbox() as sb:
            report = submit(ledger, ApiClient(sb.url, KEY), pace=FAST, progress=False)
            assert report.accepted == LEARNERS and report.target.practice  # type: ignore[union-attr]
            assert "to: " + PRACTICE_LABEL in report.render()
            practice = report.target
        assert ledger.lms() is None  # practice binds nothing
        assert ledger.accepted_keys() == set()  # nothing counts for a real LMS
        assert len(ledger.accepted_keys(practice)) == LEARNERS
        # A reconcile in between does not call them already-submitted.
        between = reconcile_run(config, as_of=AS_OF, ledger=ledger)
        assert between.counts[oc.ALREADY_SUBMITTED] == 0
        assert between.counts[oc.MISSING_COMPLETION] == LEARNERS
        # Decisions made while practising are kept: the real submit sends every one.
        assert len(ledger.to_send()) == LEARNERS
        with real_lms() as lms:
            real = submit(ledger, ApiClient(lms.url, KEY), pace=FAST, progress=False)
            assert real.accepted == LEARNERS and posts(lms) == LEARNERS
            assert real.target == Target(target_url(lms.url), practice=False)
        assert ledger.lms() == real.target
        after = reconcile_run(config, as_of=AS_OF, ledger=ledger)
        assert after.counts[oc.ALREADY_SUBMITTED] == LEARNERS  # now, for the real LMS
        assert set(ledger.attempts()["practice"]) == {0, 1}


def test_cli_submit_after_practising_in_the_notebook_sends_everything(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """Notebook 02 with no credentials practises against its own sandbox; `recon submit`
    to the LMS afterwards has everything to send."""
    import recon.notebook as rn

    config, path = approved_ledger(tmp_path)
    monkeypatch.delenv("TI_BASE_URL", raising=False)
    monkeypatch.delenv("TI_API_KEY", raising=False)
    client = rn.api_client(config)  # no environment: a practice sandbox in this process
    assert rn.describe_client(client).startswith(PRACTICE_LABEL)
    with Ledger(path) as ledger:
        report = submit(ledger, client, pace=rn.pace_for(client), progress=False)
    assert report.accepted == LEARNERS and report.target.practice  # type: ignore[union-attr]
    rn.sandbox_for(client).stop()  # type: ignore[union-attr]
    with real_lms() as lms:
        monkeypatch.setenv("TI_API_KEY", KEY)
        args = ["submit", "--config", str(config), "--base-url", lms.url]
        assert main([*args, "--dry-run"]) == 0
        assert f"{LEARNERS} approved proposal(s) of run 1 would be sent" in capsys.readouterr().out
        assert main(args) == 0
        out = capsys.readouterr().out
        assert f"to: {target_url(lms.url)}" in out and f"accepted   {' ' * 6}{LEARNERS}" in out
        assert posts(lms) == LEARNERS
        where = target_url(lms.url)
    assert main(["status", "--config", str(config)]) == 0
    status = capsys.readouterr().out
    assert f"LMS: {where}" in status
    assert f"{LEARNERS:>9,} accepted" in status and PRACTICE_LABEL in status


# -- one ledger, one real LMS --------------------------------------------------------------


def test_a_submit_to_another_real_lms_stops_before_sending(tmp_path: Path, monkeypatch, capsys):
    config, path = approved_ledger(tmp_path)
    monkeypatch.setenv("TI_API_KEY", KEY)
    with real_lms() as first, real_lms() as second:
        assert main(["submit", "--ledger", str(path), "--base-url", first.url, "--limit", "3"]) == 0
        capsys.readouterr()
        code = main(["submit", "--ledger", str(path), "--base-url", second.url])
        err = capsys.readouterr().err
        assert code == 2
        assert target_url(first.url) in err and target_url(second.url) in err
        assert "Nothing was sent" in err and "new ledger" in err
        assert posts(second) == 0
        # Practice stays allowed, and counts for nothing real.
        with practice_sandbox() as sb:
            assert main(["submit", "--ledger", str(path), "--base-url", sb.url]) == 0
            assert posts(sb) == LEARNERS
        # The bound LMS still gets the rest.
        assert main(["submit", "--ledger", str(path), "--base-url", first.url]) == 0
        assert posts(first) == LEARNERS
        where = target_url(first.url)
    with Ledger(path) as ledger:
        assert ledger.binding()["target"] == where  # type: ignore[index]
        assert len(ledger.accepted_keys()) == LEARNERS
        # Even past the check, the ledger itself refuses an attempt to another LMS.
        with pytest.raises(TargetError, match="belongs to the LMS"):
            ledger.begin_attempt("k", 1, Target.real("https://other.example.com"))


def test_recon_toml_names_the_lms_up_front(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TI_API_KEY", KEY)
    with real_lms() as named, real_lms() as other:
        config, path = approved_ledger(tmp_path, lms=named.url + "/")
        code = main(["submit", "--config", str(config), "--base-url", other.url])
        err = capsys.readouterr().err
        assert code == 2 and "[lms] base_url" in err
        assert target_url(named.url) in err and target_url(other.url) in err
        assert posts(other) == 0
        with Ledger(path) as ledger:
            assert ledger.lms() is None  # a refused submit binds nothing
        with practice_sandbox() as sb:  # practice is not the LMS: allowed
            assert main(["submit", "--config", str(config), "--base-url", sb.url]) == 0
        assert main(["submit", "--config", str(config), "--base-url", named.url]) == 0
        assert posts(named) == LEARNERS
    bad = write_inputs(tmp_path / "bad", lms="ftp://lms.example.com")
    with pytest.raises(ConfigError, match=r"\[lms\] base_url"):
        from recon.config import load_config

        load_config(bad)


# -- ledgers from before targets -----------------------------------------------------------


def version_2_ledger(folder: Path) -> tuple[Path, Path, list[str]]:
    """A ledger written by recon before targets: all proposals approved, the first five
    accepted and one rejected somewhere recon did not record."""
    config = write_inputs(folder)
    path = folder / "old.db"
    db = sqlite3.connect(path)
    for script in lg.MIGRATIONS[:2]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    # Fill it through today's code, then strip the targets as an old recon left them.
    with Ledger(path) as ledger:
        reconcile_run(config, as_of=AS_OF, ledger=ledger)
        keys = ledger.select(everything=True)
        ledger.decide(keys, "approved", by="ana")
        sandbox = Target("http://127.0.0.1:1", practice=True)
        for key in keys[:5]:
            ledger.finish_attempt(
                ledger.begin_attempt(key, 1, sandbox), lg.ACCEPTED, http_status=200
            )
        ledger.finish_attempt(
            ledger.begin_attempt(keys[5], 1, sandbox), lg.REJECTED, http_status=400, errors=["no"]
        )
    db = sqlite3.connect(path)
    db.execute("UPDATE attempts SET target = NULL, practice = NULL")
    db.commit()
    db.close()
    return config, path, keys


def test_a_version_2_ledger_migrates_with_its_attempts_of_unknown_target(tmp_path: Path) -> None:
    _, path, keys = version_2_ledger(tmp_path)
    with Ledger(path) as ledger:
        assert ledger.schema_version == len(lg.MIGRATIONS)
        assert len(ledger.attempts()) == 6  # nothing lost
        assert ledger.unattributed() == {"accepted": 5, "rejected": 1}
        # They count for no target until someone says where they went...
        assert ledger.accepted_keys() == set()
        assert len(ledger.to_send()) == LEARNERS
        # ...but views of a ledger that knows nothing else still show them, so labelled.
        assert ledger.home_target() == lg.BEFORE_TARGETS
        assert set(ledger.proposals()["target"]) == {lg.BEFORE_TARGETS.url}
        assert (ledger.proposals()["submission"] == "accepted").sum() == 5


def test_the_first_real_submit_asks_where_old_attempts_went(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    config, path, keys = version_2_ledger(tmp_path)
    monkeypatch.setenv("TI_API_KEY", KEY)
    args = ["submit", "--ledger", str(path)]
    with real_lms() as lms:
        assert main([*args, "--base-url", lms.url]) == 2
        err = capsys.readouterr().err
        assert "--legacy-attempts this-lms" in err and "--legacy-attempts practice" in err
        assert "5 accepted" in err and posts(lms) == 0
        # Practising needs no answer and changes nothing about the question.
        with practice_sandbox() as sb:
            assert main([*args, "--base-url", sb.url]) == 0 and posts(sb) == LEARNERS
        # "They went to this LMS": the accepted and the rejected one are not sent again.
        assert main([*args, "--base-url", lms.url, "--legacy-attempts", "this-lms"]) == 0
        assert posts(lms) == LEARNERS - 6
    with Ledger(path) as ledger:
        assert ledger.binding()["legacy"] == "this-lms"  # type: ignore[index]
        assert ledger.unattributed() == {}
        assert ledger.accepted_keys() >= set(keys[:5])
        again = reconcile_run(config, as_of=AS_OF, ledger=ledger)
        assert again.counts[oc.ALREADY_SUBMITTED] == LEARNERS - 1  # all but the rejected one


def test_old_attempts_declared_practice_are_sent_to_the_lms(tmp_path: Path, monkeypatch) -> None:
    _, path, _ = version_2_ledger(tmp_path)
    monkeypatch.setenv("TI_API_KEY", KEY)
    with real_lms() as lms:
        args = ["submit", "--ledger", str(path), "--base-url", lms.url]
        assert main([*args, "--legacy-attempts", "practice"]) == 0
        assert posts(lms) == LEARNERS
    with Ledger(path) as ledger:
        assert ledger.binding()["legacy"] == "practice"  # type: ignore[index]
        assert len(ledger.accepted_keys()) == LEARNERS
        targets = ledger.targets()
        assert "practice (recorded before targets)" in set(targets["target"])
        assert targets.loc[targets["bound"], "accepted"].tolist() == [LEARNERS]


# -- where it goes, said where the analyst looks -------------------------------------------


def test_widget_says_where_submissions_go(tmp_path: Path) -> None:
    from recon.review import ReviewWidget

    _, path = approved_ledger(tmp_path)
    with Ledger(path) as ledger:
        with practice_sandbox() as sb:
            widget = ReviewWidget(ledger, ApiClient(sb.url, KEY), pace=FAST)
            assert PRACTICE_LABEL in widget.target_label.value
            report = widget.submit()
            assert report.accepted == LEARNERS
            assert f"Sent to: {PRACTICE_LABEL}" in widget.summary.value
            assert set(widget.frame["submission"]) == {"accepted"}
        with real_lms() as lms:
            widget = ReviewWidget(ledger, ApiClient(lms.url, KEY), pace=FAST)
            assert target_url(lms.url) in widget.target_label.value
            assert PRACTICE_LABEL not in widget.target_label.value
            # Practice acceptances are not this LMS's: everything is still to send.
            assert set(widget.frame["submission"]) == {"not-sent"}
            assert widget.submit().accepted == LEARNERS
            assert f"Sent to: {target_url(lms.url)}" in widget.summary.value


def test_demo_says_it_practises(demo_run) -> None:
    result, out = demo_run
    assert f"submitting to {PRACTICE_LABEL}" in out and f"to: {PRACTICE_LABEL}" in out
    assert result.submission.target is not None and result.submission.target.practice
    page = result.report.read_text(encoding="utf-8")
    assert "accepted by the practice sandbox" in page and "LMS: none yet" in page


def test_the_notebooks_client_honours_recon_tomls_lms_on_loopback_too(
    tmp_path: Path, monkeypatch
) -> None:
    """Notebook 02 with TI_BASE_URL at a loopback address other than recon.toml's
    `[lms] base_url`: a practice sandbox there is allowed, a real LMS is refused before
    the widget can send anything (as `recon submit --config` refuses it)."""
    import recon.notebook as rn
    from recon.review import ReviewWidget

    monkeypatch.setenv("TI_API_KEY", KEY)
    with real_lms() as named, real_lms() as other:
        config, path = approved_ledger(tmp_path, lms=named.url)
        monkeypatch.setenv("TI_BASE_URL", other.url)
        with pytest.raises(TargetError, match=r"\[lms\] base_url"):
            client = rn.api_client(config)
            with Ledger(path) as ledger:
                ReviewWidget(ledger, client, run=1, pace=FAST).submit()
        assert posts(other) == 0
        with practice_sandbox() as sb:
            monkeypatch.setenv("TI_BASE_URL", sb.url)
            assert rn.api_client(config).base_url == sb.url
        monkeypatch.setenv("TI_BASE_URL", named.url)
        assert rn.api_client(config).base_url == named.url
