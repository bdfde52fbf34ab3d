"""Sending approved proposals to the LMS: paced, recorded, resumable.

Size: over 600 lines because the answer rules (:func:`judge`, the README's table row
by row), the one class that applies them (:class:`Sender`) and the report they fill are
read together; each part is small on its own.

For each approved proposal still to send (never sent, failed, or unknown after a
crash) a :class:`Sender` worker takes a token from the bucket, commits an attempt to the
ledger, posts, commits the answer, and only then acts on it. What each answer means is
one pure function, :func:`judge`, whose rules are the README's "Sending" table row by row
(:data:`RULES`):

* ``200`` with an empty body (the documented success) -> accepted (final; never sent
  again). A ``200`` with a body, any other ``2xx``, a redirect (:class:`RedirectError`),
  a ``4xx`` without the API's ``errors``, an unknown status -> the whole run stops (exit
  2); the record stays unsent.
* ``400`` (or another ``4xx``) with the API's ``errors`` -> rejected, messages stored, not
  retried. Except ``externalActivity feature is not enabled``: the run stops (exit 2).
* ``401``/``403`` -> stop: the API key was refused. ``404`` -> stop: wrong base URL.
* ``429`` -> everyone waits ``Retry-After`` (seconds or an HTTP date; capped), then
  retries; at most ``Pace.max_throttled`` per record and ``Pace.max_throttled_seconds``
  of waiting per run, then the run gives up (exit 1; a later submit goes on).
* ``408``, ``5xx``, timeouts, the total deadline, dropped connections -> retry with
  exponential backoff and jitter, at most ``Pace.max_tries`` times, then failed (a later
  submit retries it). A TLS certificate that cannot be verified -> stop at once.

Where: ``submit`` pings the base URL first (a refused key or a wrong URL stops before
anything is sent) and learns from the answer whether it is a practice sandbox; every
attempt records that target, "accepted is final" holds per target, and a real LMS other
than the one the ledger belongs to is refused before anything is sent (see
:mod:`recon.target` and :meth:`recon.ledger.Ledger.check_target`).

Why resending an unknown one is safe: the endpoint *sets* a learner's status on a
learning path, so the same body received twice leaves the LMS in the same state. A
confirmed accepted one is never resent.

Ctrl-C: requests in flight are finished and their answers recorded before ``submit``
returns (SIGINT only sets a flag while the workers run).
"""

from __future__ import annotations

import contextlib
import json
import queue
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from . import ledger as lg
from .client import MESSAGE_CHARS, TLS, UNSENDABLE, Answer, LmsApi, printable
from .errors import (
    ApiError,
    AuthError,
    FeatureOffError,
    NotFoundError,
    ReconError,
    RedirectError,
    TlsError,
    UnexpectedAnswerError,
)
from .fmt import duration as _duration
from .ledger import Ledger
from .progress import progress_bar, wanted
from .target import Target, guess, probe
from .validation import MSG_FEATURE_OFF, validate_activity


@dataclass(frozen=True)
class Pace:
    """How fast and how stubbornly to send.

    Defaults follow the vendor's published standard plan (120/min, burst 20); the
    enterprise plan is ``Pace(rate=10, burst=100)``. ``max_tries``: tries per record on
    transient failures (408, 5xx, timeouts, dropped connections); ``max_throttled``: 429s
    per record; ``retry_after_cap``: the longest single wait a 429 imposes;
    ``max_throttled_seconds``: all the waiting 429s may impose on one run before it gives
    up.
    """

    rate: float = 2.0
    burst: int = 20
    concurrency: int = 4
    max_tries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    max_throttled: int = 50
    max_throttled_seconds: float = 600.0

    def estimate_seconds(self, count: int) -> float:
        """The ideal time for ``count`` requests: the burst goes at once, the rest at rate."""
        return max(0, count - self.burst) / self.rate


@dataclass
class SubmitReport:
    """What a submission did; read by the CLI, the notebook and the HTML report."""

    run_id: int
    planned: int
    dry_run: bool = False
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    invalid: int = 0
    skipped: int = 0
    requests: int = 0
    throttled: int = 0
    elapsed: float = 0.0
    estimate: float = 0.0
    fatal: str | None = None
    gave_up: str | None = None
    preview: list[dict[str, str]] = field(default_factory=list)
    target: Target | None = None
    # The error behind ``fatal`` (else ``gave_up``): for an API answer, its ``url`` and the
    # ``key`` of the proposal whose answer stopped the run.
    error: ReconError | None = None

    @property
    def where(self) -> str:
        """Where the records go: the practice sentence or the LMS's URL."""
        return self.target.label if self.target is not None else "the LMS (not pinged in a dry run)"

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def remaining(self) -> int:
        done = self.accepted + self.rejected_total + self.failed + self.invalid + self.skipped
        return 0 if self.dry_run else max(0, self.planned - done)

    @property
    def exit_code(self) -> int:
        """0 all sent were accepted; 1 some rejected, failed or left (also when the run
        gave up on persistent throttling); 2 a fatal stop."""
        if self.fatal:
            return 2
        busy = self.rejected_total or self.failed or self.invalid or self.remaining
        return 1 if (busy or self.gave_up) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "planned": self.planned,
            "dry_run": self.dry_run,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "failed": self.failed,
            "invalid": self.invalid,
            "skipped": self.skipped,
            "remaining": self.remaining,
            "requests": self.requests,
            "throttled": self.throttled,
            "elapsed_s": round(self.elapsed, 3),
            "fatal": self.fatal,
            "gave_up": self.gave_up,
            "target": self.target.url if self.target is not None else None,
            "practice": self.target.practice if self.target is not None else None,
            "stopped_at": getattr(self.error, "key", None),
        }

    def render(self) -> str:
        if self.dry_run:
            lines = [
                f"dry run: {self.planned} approved proposal(s) of run {self.run_id} would be "
                f"sent; about {_duration(self.estimate)} at the chosen rate. Nothing was sent.",
                f"  to: {self.where}",
            ]
            if self.invalid:
                lines.append(f"  {self.invalid} would be refused by local validation")
            for body in self.preview:
                lines.append("  " + json.dumps(body))
            return "\n".join(lines)
        rate = self.requests / self.elapsed if self.elapsed else 0.0
        lines = [
            f"submitted run {self.run_id}: {self.requests} request(s) in "
            f"{_duration(self.elapsed)} ({rate:.1f}/s, {self.throttled} throttled)",
            f"  to: {self.where}",
            f"  accepted   {self.accepted:>7}",
            f"  rejected   {self.rejected_total:>7}",
        ]
        for message, count in self.rejected.most_common():
            lines.append(f"    {count:>7}  {message}")
        lines.append(f"  failed     {self.failed:>7}  (a later `recon submit` retries them)")
        if self.invalid:
            lines.append(f"  invalid    {self.invalid:>7}  (refused by local validation)")
        if self.skipped:
            lines.append(f"  skipped    {self.skipped:>7}  (no longer approved when sent)")
        lines.append(f"  remaining  {self.remaining:>7}")
        if self.gave_up:
            lines.append(f"  GAVE UP: {self.gave_up}")
        if self.fatal:
            lines.append(f"  STOPPED: {self.fatal}")
        return "\n".join(lines)


class _Stop(Exception):
    """A fatal answer (or the run giving up): carries the ApiError that says why."""

    def __init__(self, error: ApiError, *, gave_up: bool = False):
        self.error = error
        self.gave_up = gave_up


# -- what an answer means -----------------------------------------------------------------

# What happens next with the record (Verdict.step).
DONE, AGAIN, STOP, GIVE_UP = "done", "again", "stop", "give-up"

RULES: dict[str, str] = {
    "accepted": "`200` with an empty body",
    "body-on-200": "`200` with a body",
    "other-2xx": "`201`, `202`, `204`, any other `2xx` or `1xx`",
    "redirect": "`3xx`",
    "feature-off": "`400` `externalActivity feature is not enabled`",
    "rejected": "`400` (or another `4xx` below) with `errors`",
    "4xx-without-errors": "`400` (or another `4xx` below) without `errors`",
    "auth": "`401` / `403`",
    "not-found": "`404`",
    "throttled": "`429`",
    "throttled-too-long": "`429` after `max_throttled_seconds` of waiting in the run",
    "transient": "`408`, `5xx`, timeout, total deadline, dropped connection",
    "tls": "TLS certificate not verified",
    "unsendable": "a request that cannot be sent (invalid header or URL)",
    "unknown-status": "any other status",
}
"""Every rule :func:`judge` applies, by id, with the README's "answer" cell for it: the
README's "Sending" table has exactly these rows, in this order (a test checks)."""


@dataclass(frozen=True)
class Verdict:
    """What one answer means for its record and for the run (see :func:`judge`)."""

    rule: str  # the id in RULES, i.e. the README row followed
    result: str  # the attempt's result in the ledger
    step: str  # DONE (final for this run), AGAIN (send again), STOP or GIVE_UP (the run)
    errors: tuple[str, ...] = ()  # stored with the attempt; counted when rejected
    backoff: float = 0.0  # AGAIN: this record waits up to this long (jittered)
    pause: float = 0.0  # everyone holds back this long before the next request
    throttled: bool = False  # a 429: counts against max_throttled(_seconds)
    transient: bool = False  # counts against max_tries
    fatal: ApiError | None = None  # STOP / GIVE_UP: why


def _stored(answer: Answer) -> tuple[str, ...]:
    """What the ledger keeps of an answer: the API's messages, else its status and the
    first characters of its body."""
    if answer.errors:
        return tuple(answer.errors)
    if answer.status is None:
        return (answer.failure or "no answer",)
    return (f"HTTP {answer.status}: {answer.body}" if answer.body else f"HTTP {answer.status}",)


def judge(
    answer: Answer,
    *,
    tries: int = 0,
    throttled: int = 0,
    throttled_seconds: float = 0.0,
    pace: Pace | None = None,
) -> Verdict:
    """What to do after ``answer``: the README's "Sending" table as one pure function.

    ``tries``: this record's transient failures before this answer; ``throttled``: its
    429s before this answer; ``throttled_seconds``: the waiting 429s have imposed on the
    whole run so far. Nothing here does I/O, so the caller records the answer first and
    acts on the verdict afterwards.
    """
    pace = pace or Pace()
    status = answer.status
    where = answer.url or "the endpoint"
    url = answer.url or None
    stored = _stored(answer)

    def stop(rule: str, error: ApiError) -> Verdict:
        return Verdict(rule, lg.STOPPED, STOP, stored, fatal=error)

    def transient() -> Verdict:
        final = tries + 1 >= pace.max_tries
        backoff = min(pace.backoff_cap, pace.backoff_base * (2**tries))
        if final:
            return Verdict("transient", lg.FAILED, DONE, stored, transient=True)
        return Verdict("transient", lg.RETRY, AGAIN, stored, backoff=backoff, transient=True)

    if status is None:
        if answer.failure == TLS:
            return stop(
                "tls",
                TlsError(
                    f"the TLS certificate of {where} could not be verified ({stored[0]}); the "
                    "key is not sent to a server recon cannot verify (behind a proxy that "
                    "inspects TLS? set REQUESTS_CA_BUNDLE to your company's CA file)",
                    url=url,
                ),
            )
        if answer.failure == UNSENDABLE:
            return stop(
                "unsendable", ApiError(f"the request could not be sent: {stored[0]}", url=url)
            )
        return transient()  # timeout, the total deadline, a dropped connection

    # The server says no requests remain: hold everyone back one interval (or until its
    # reset, when sooner) instead of walking into a 429.
    pause = 0.0
    if answer.remaining == 0 and status != 429:
        pause = 1 / pace.rate
        if answer.reset_in is not None:
            pause = min(pause, answer.reset_in)

    if status == 200:
        if answer.body_bytes == 0:
            return Verdict("accepted", lg.ACCEPTED, DONE, pause=pause)
        return stop(
            "body-on-200",
            UnexpectedAnswerError(
                f"{where} answered 200 with a body ({answer.body_bytes} bytes: "
                f"{answer.body!r}) where the LMS answers 200 with an empty one: not counted "
                "as accepted (something else may be answering: a login page, a portal, a "
                "proxy); check the base URL",
                status=200,
                url=url,
            ),
        )
    if status < 300:
        return stop(
            "other-2xx",
            UnexpectedAnswerError(
                f"{where} answered HTTP {status}, not the 200 with an empty body the LMS "
                "documents: not counted as accepted; check the base URL",
                status=status,
                url=url,
            ),
        )
    if status < 400:
        # Not followed (see ApiClient): the base URL is wrong, or a login page stands in
        # front of the API. Nothing was recorded by the LMS.
        to = f" to {answer.location}" if answer.location else ""
        return stop(
            "redirect",
            RedirectError(
                f"{where} answered {status} (a redirect{to}) for the endpoint: check the base URL",
                status=status,
                url=url,
                location=answer.location or None,
            ),
        )
    if status == 400 and MSG_FEATURE_OFF in answer.errors:
        return stop(
            "feature-off",
            FeatureOffError(
                "the LMS answered 'externalActivity feature is not enabled': ask the "
                "LMS administrator to enable the externalActivity feature for the company",
                status=400,
                url=url,
            ),
        )
    if status in (401, 403):
        return stop(
            "auth", AuthError(f"the API key was refused (HTTP {status})", status=status, url=url)
        )
    if status == 404:
        return stop(
            "not-found",
            NotFoundError(
                f"{where} answered 404 for the endpoint: check the base URL", status=404, url=url
            ),
        )
    if status == 429:
        left = pace.max_throttled_seconds - throttled_seconds
        if left <= 0:
            return Verdict(
                "throttled-too-long",
                lg.FAILED,
                GIVE_UP,
                stored,
                throttled=True,
                fatal=ApiError(
                    f"the LMS kept answering 429 (too many requests): gave up after "
                    f"{pace.max_throttled_seconds:g}s of waiting in this run; run `recon "
                    "submit` again later, or with a lower --rate",
                    status=429,
                    url=url,
                ),
            )
        wait = answer.retry_after if answer.retry_after is not None else answer.reset_in
        wait = min(max(wait if wait is not None else 1.0, 0.0), pace.retry_after_cap, left)
        final = throttled + 1 >= pace.max_throttled
        return Verdict(
            "throttled",
            lg.FAILED if final else lg.RETRY,
            DONE if final else AGAIN,
            stored,
            pause=wait,
            throttled=True,
        )
    if status == 408 or 500 <= status < 600:
        return replace(transient(), pause=pause)
    if status < 500:
        # A 4xx is this record's final word only in the API's own words ({"errors": [...]}):
        # a gateway's HTML 400 must not make records final that the LMS never judged.
        if answer.errors:
            return Verdict("rejected", lg.REJECTED, DONE, stored, pause=pause)
        return stop(
            "4xx-without-errors",
            UnexpectedAnswerError(
                f"{where} answered HTTP {status} without the API's errors "
                f"({answer.body or 'empty body'!s}): not counted as rejected; check the base URL",
                status=status,
                url=url,
            ),
        )
    return stop(
        "unknown-status",
        UnexpectedAnswerError(
            f"{where} answered HTTP {status}: not an HTTP status", status=status, url=url
        ),
    )


class _Throttle:
    """How long 429s have held the whole run back: the union of the pauses, so four
    workers told to wait the same 30 s count 30 s, not 120 s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0
        self.seconds = 0.0

    def hold(self, wait: float) -> None:
        now = time.monotonic()
        end = now + max(0.0, wait)
        with self._lock:
            self.seconds += max(0.0, end - max(now, self._until))
            self._until = max(self._until, end)


SKIPPED = "skipped"

ProgressCallback = Callable[[SubmitReport], None]


class Sender:
    """One submission's sending: up to ``pace.concurrency`` workers take proposals from a
    queue, send each until it has a final answer, and count into ``report``.

    Every step of one record is in :meth:`send_one`: a token from the bucket, the attempt
    committed, the request, the answer committed, and only then :func:`judge`'s verdict
    acted on. The first fatal verdict (or ledger failure) sets ``stop``: the other workers
    finish the request they have in flight, record its answer, and end.
    """

    def __init__(
        self,
        ledger: Ledger,
        client: LmsApi,
        target: Target,
        report: SubmitReport,
        *,
        pace: Pace,
        on_progress: ProgressCallback | None = None,
        bar: Any = None,
    ) -> None:
        from .client import TokenBucket

        self.ledger = ledger
        self.client = client
        self.target = target
        self.report = report
        self.pace = pace
        self.on_progress = on_progress
        self.bar = bar
        self.bucket = TokenBucket(pace.rate, pace.burst)
        self.throttle = _Throttle()
        self.stop = threading.Event()
        self.lock = threading.Lock()  # guards report, fatal and gave_up
        self.fatal: list[ReconError] = []
        self.gave_up: list[ApiError] = []
        self.started = time.perf_counter()

    def send_one(self, key: str, body: dict[str, str]) -> str | None:
        """Send one proposal until it has a final answer. Returns accepted, rejected,
        failed or skipped; None when the run was stopped before it finished. Raises
        :class:`_Stop` on a fatal verdict."""
        tries = throttled = 0
        while not self.stop.is_set():
            if not self.bucket.acquire(self.stop):
                return None
            if not self.ledger.still_to_send(key, self.target):
                return SKIPPED  # rejected by a person (or settled) since this submit started
            attempt = self.ledger.begin_attempt(key, self.report.run_id, self.target)
            with self.lock:
                self.report.requests += 1
            answer = self.client.post_activity(body)  # never raises for a transport failure
            verdict = self._judge_and_record(attempt, answer, tries=tries, throttled=throttled)
            self._act_on(verdict, key)
            tries += verdict.transient
            throttled += verdict.throttled
            if verdict.step == DONE:
                return verdict.result
            _backoff(verdict.backoff, self.stop)
        return None

    def _judge_and_record(
        self, attempt: int, answer: Answer, *, tries: int, throttled: int
    ) -> Verdict:
        """The verdict on ``answer``, recorded with it before anything else is done."""
        try:
            verdict = judge(
                answer,
                tries=tries,
                throttled=throttled,
                throttled_seconds=self.throttle.seconds,
                pace=self.pace,
            )
        except Exception:
            # A bug in judging must not lose the answer: keep what came, then stop.
            self.ledger.finish_attempt(
                attempt, lg.STOPPED, http_status=answer.status, errors=_stored(answer)
            )
            raise
        self.ledger.finish_attempt(
            attempt,
            verdict.result,
            http_status=answer.status,
            errors=verdict.errors,
            latency_ms=answer.latency_ms if answer.status is not None else None,
        )
        return verdict

    def _act_on(self, verdict: Verdict, key: str) -> None:
        """Pace and count as ``verdict`` says; raise :class:`_Stop` when it stops the run,
        naming ``key``, the proposal whose answer did."""
        if verdict.pause > 0:
            self.bucket.pause_until(time.monotonic() + verdict.pause)
        if verdict.throttled:
            self.throttle.hold(verdict.pause)
        with self.lock:
            self.report.throttled += verdict.throttled
            if verdict.result == lg.REJECTED:
                for message in verdict.errors:
                    self.report.rejected[message] += 1
        if verdict.fatal is not None:  # STOP or GIVE_UP
            verdict.fatal.key = key
            raise _Stop(verdict.fatal, gave_up=verdict.step == GIVE_UP)

    def run(self, work: list[tuple[str, dict[str, str]]]) -> None:
        """Send ``work`` (key, body) with the workers; returns when every started worker
        has ended, Ctrl-C or not. The report then says what happened."""
        todo: queue.Queue[tuple[str, dict[str, str]]] = queue.Queue()
        for item in work:
            todo.put(item)
        finished = threading.Semaphore(0)
        threads = [
            threading.Thread(
                target=self._worker, args=(todo, finished), name=f"recon-submit-{i}", daemon=True
            )
            for i in range(max(1, self.pace.concurrency))
        ]
        with _interrupts_stop(self.stop) as interrupted:
            try:
                for t in threads:
                    t.start()
            finally:
                # Wait for every started worker, whatever happens: each one finishes its
                # request in flight (bounded by the client's deadline) and records the
                # answer before it ends.
                _wait_for(finished, sum(1 for t in threads if t.ident is not None), self.stop)
                if self.bar is not None:
                    self.bar.close()
        for t in threads:
            if t.ident is not None:
                t.join(1.0)
        report = self.report
        report.elapsed = time.perf_counter() - self.started
        if self.gave_up:
            report.gave_up = str(self.gave_up[0])
            report.error = self.gave_up[0]
        if self.fatal:
            report.fatal = str(self.fatal[0])
            report.error = self.fatal[0]
        elif interrupted.is_set():
            report.fatal = "interrupted; run `recon submit` again to send the rest"
        if self.on_progress is not None:
            self.on_progress(report)

    def _worker(
        self, todo: queue.Queue[tuple[str, dict[str, str]]], finished: threading.Semaphore
    ) -> None:
        try:
            self._work_through(todo)
        except Exception as exc:  # a bug or a broken environment: stop, loudly
            text = printable(self.client.redact(f"unexpected {type(exc).__name__}: {exc}"))
            with self.lock:
                self.fatal.append(ApiError(text[:MESSAGE_CHARS]))
            self.stop.set()
        finally:
            finished.release()

    def _work_through(self, todo: queue.Queue[tuple[str, dict[str, str]]]) -> None:
        while not self.stop.is_set():
            try:
                key, body = todo.get_nowait()
            except queue.Empty:
                return
            try:
                outcome = self.send_one(key, body)
            except _Stop as exc:
                with self.lock:
                    if exc.gave_up:
                        self.report.failed += 1
                        self.gave_up.append(exc.error)
                    else:
                        self.fatal.append(exc.error)
                self.stop.set()
                return
            except ReconError as exc:  # the ledger cannot be written: stop, loudly
                with self.lock:
                    self.fatal.append(exc)
                self.stop.set()
                return
            if outcome is None:
                return
            self._count(outcome)

    def _count(self, outcome: str) -> None:
        with self.lock:
            report = self.report
            if outcome == lg.ACCEPTED:
                report.accepted += 1
            elif outcome == lg.FAILED:
                report.failed += 1
            elif outcome == SKIPPED:
                report.skipped += 1
            report.elapsed = time.perf_counter() - self.started
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix(
                    accepted=report.accepted,
                    rejected=report.rejected_total,
                    failed=report.failed,
                    refresh=False,
                )
            if self.on_progress is not None:
                self.on_progress(report)


def _backoff(ceiling: float, stop: threading.Event) -> None:
    # Full jitter: spreads retries of many workers so they do not hit a recovering server
    # at the same moment.
    if ceiling > 0:
        stop.wait(random.uniform(ceiling / 2, ceiling))


def submit(
    ledger: Ledger,
    client: LmsApi | None,
    *,
    run: str | int | None = "latest",
    pace: Pace | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
    lms: str | None = None,
    legacy_attempts: str | None = None,
) -> SubmitReport:
    """Send a run's approved proposals that still need sending to the client's target.

    ``client`` may be None for a dry run (which then counts for the ledger's LMS). The
    target is pinged first: a failed ping stops the run before anything is sent (the
    report's ``fatal``, exit code 2). ``lms``: the LMS recon.toml's ``[lms] base_url``
    names, if any; ``legacy_attempts``: what attempts recorded before targets were
    (``"this-lms"`` or ``"practice"``), asked once. Raises :class:`TargetError` when the
    target is a real LMS the ledger (or ``lms``) does not belong to, or the question about
    old attempts is open; :class:`LedgerBusyError` when another submit holds the ledger.
    A fatal answer (key refused, wrong URL, feature off) stops the run: the report's
    ``fatal`` says why and its ``exit_code`` is 2; what was answered before is kept.
    """
    pace = pace or Pace()
    run_id = ledger.resolve_run(run)
    if dry_run:
        return _dry_run(ledger, client, run_id, pace, limit)
    if client is None:
        raise ApiError("no API client: give a base URL and set TI_API_KEY")
    try:
        target = probe(client)
    except Exception as exc:  # a refused key, a wrong URL, or a broken environment
        return _ping_failed(ledger, client, run_id, limit, exc)

    with ledger.submission_lock():
        # Before anything is sent: a real LMS must be the ledger's (binding it the first
        # time), and the question about attempts of unknown target must be answered.
        ledger.check_target(target, configured=lms, legacy=legacy_attempts)
        # Read what to send only once holding the lock: a submit that just finished may
        # have settled some of them.
        todo = ledger.to_send(run_id, target)
        if limit is not None:
            todo = todo.head(limit)
        report = SubmitReport(run_id=run_id, planned=len(todo), target=target)
        report.estimate = pace.estimate_seconds(len(todo))
        work: list[tuple[str, dict[str, str]]] = []
        for key, text in zip(todo["key"], todo["payload"], strict=True):
            body = json.loads(text)
            if validate_activity(body):
                report.invalid += 1  # cannot happen for proposals recon wrote; never sent
                continue
            work.append((key, body))
        bar = _progress_bar(report.planned, progress)
        Sender(ledger, client, target, report, pace=pace, on_progress=on_progress, bar=bar).run(
            work
        )
        return report


def _dry_run(
    ledger: Ledger, client: LmsApi | None, run_id: int, pace: Pace, limit: int | None
) -> SubmitReport:
    """What a submit would send, counted and previewed; nothing is sent or pinged."""
    target = guess(client) if client is not None else ledger.lms()
    todo = ledger.to_send(run_id, target)
    if limit is not None:
        todo = todo.head(limit)
    report = SubmitReport(run_id=run_id, planned=len(todo), dry_run=True, target=target)
    bodies = [json.loads(p) for p in todo["payload"]]
    report.invalid = sum(1 for b in bodies if validate_activity(b))
    report.estimate = pace.estimate_seconds(len(bodies) - report.invalid)
    report.preview = bodies[:3]
    return report


def _ping_failed(
    ledger: Ledger, client: LmsApi, run_id: int, limit: int | None, exc: Exception
) -> SubmitReport:
    """The report of a submit whose ping failed: nothing was sent, what would have gone
    stays to send."""
    why = str(exc) if isinstance(exc, ApiError) else f"unexpected {type(exc).__name__}: {exc}"
    unknown = guess(client)
    planned = len(ledger.to_send(run_id, unknown))
    return SubmitReport(
        run_id=run_id,
        planned=planned if limit is None else min(planned, limit),
        fatal=client.redact(f"{why} (the ping before sending; nothing was sent)"),
        target=unknown,
        error=exc if isinstance(exc, ApiError) else None,
    )


def _wait_for(finished: threading.Semaphore, count: int, stop: threading.Event) -> None:
    """Wait until ``count`` workers have released ``finished``. A KeyboardInterrupt that
    still gets here (no handler could be installed) stops the run but not the wait: the
    requests in flight must be recorded. A semaphore, not Thread.join: an interrupt
    arriving inside join can leave the thread's state wrong."""
    done = 0
    while done < count:
        try:
            if finished.acquire(timeout=0.2):
                done += 1
        except KeyboardInterrupt:
            stop.set()


@contextlib.contextmanager
def _interrupts_stop(stop: threading.Event) -> Iterator[threading.Event]:
    """While the workers run, Ctrl-C (SIGINT) sets ``stop`` instead of raising: a
    KeyboardInterrupt could otherwise land anywhere in the main thread (starting a
    worker, waiting for one) and end the process before the answers in flight are
    recorded. Yields an Event that tells whether Ctrl-C was pressed. Only the main
    thread can handle signals; elsewhere Ctrl-C does not reach this thread anyway."""
    interrupted = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        again = interrupted.is_set()
        interrupted.set()
        stop.set()
        if again:
            print(
                "recon: stopping; waiting for the requests in flight to be answered and recorded",
                file=sys.stderr,
            )

    previous: Any = None
    installed = False
    if threading.current_thread() is threading.main_thread():
        try:
            previous = signal.signal(signal.SIGINT, on_sigint)
            installed = True
        except (ValueError, OSError):  # not the main interpreter
            installed = False
    try:
        yield interrupted
    finally:
        if installed:
            # None: the old handler was not set from Python; Python's own is the default.
            signal.signal(signal.SIGINT, previous or signal.default_int_handler)


def _progress_bar(total: int, enabled: bool) -> Any:
    # Drawn only where someone watches (a terminal or a notebook): never into a pipe or a log.
    if not enabled or total == 0 or not wanted():
        return None
    return progress_bar(total, "submitting", unit="proposal", delay=0)
