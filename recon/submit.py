"""Sending approved proposals to the LMS: paced, recorded, resumable.

For each approved proposal still to send (never sent, failed, or unknown after a
crash) a worker takes a token from the bucket, commits an attempt to the ledger, posts,
and commits the answer:

* ``200`` -> accepted (final; never sent again).
* ``400`` with ``errors`` -> rejected, messages stored, not retried. Except
  ``externalActivity feature is not enabled``: the whole run stops (exit 2).
* ``401``/``403`` -> stop: the API key was refused. ``404`` -> stop: wrong base URL.
* ``429`` -> wait ``Retry-After`` (capped), everyone pauses, then retry.
* ``5xx``, timeouts, dropped connections -> retry with exponential backoff and jitter,
  at most ``Pace.max_tries`` times, then failed (a later submit retries it).

Where: ``submit`` pings the base URL first (a refused key or a wrong URL stops before
anything is sent) and learns from the answer whether it is a practice sandbox; every
attempt records that target, "accepted is final" holds per target, and a real LMS other
than the one the ledger belongs to is refused before anything is sent (see
:mod:`recon.target` and :meth:`recon.ledger.Ledger.check_target`).

Why resending an unknown one is safe: the endpoint *sets* a learner's status on a
learning path, so the same body received twice leaves the LMS in the same state. A
confirmed accepted one is never resent.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from . import ledger as lg
from .client import Answer, ApiClient
from .errors import ApiError, AuthError, FeatureOffError, NotFoundError, ReconError
from .ledger import Ledger
from .target import Target, guess, probe
from .validation import MSG_FEATURE_OFF, validate_activity


@dataclass(frozen=True)
class Pace:
    """How fast and how stubbornly to send.

    Defaults follow the vendor's published standard plan (120/min, burst 20); the
    enterprise plan is ``Pace(rate=10, burst=100)``.
    """

    rate: float = 2.0
    burst: int = 20
    concurrency: int = 4
    max_tries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    max_throttled: int = 50

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
    preview: list[dict[str, str]] = field(default_factory=list)
    target: Target | None = None

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
        """0 all sent were accepted; 1 some rejected or failed; 2 a fatal stop."""
        if self.fatal:
            return 2
        return 1 if (self.rejected_total or self.failed or self.invalid or self.remaining) else 0

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
            "target": self.target.url if self.target is not None else None,
            "practice": self.target.practice if self.target is not None else None,
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
        if self.fatal:
            lines.append(f"  STOPPED: {self.fatal}")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {sec:02d}s"


class _Stop(Exception):
    """A fatal answer: carries the ApiError that stops the run."""

    def __init__(self, error: ApiError):
        self.error = error


def _send_one(
    ledger: Ledger,
    client: ApiClient,
    bucket: Any,
    pace: Pace,
    run_id: int,
    target: Target,
    key: str,
    body: dict[str, str],
    stop: threading.Event,
    report: SubmitReport,
    lock: threading.Lock,
) -> str | None:
    """Send one proposal until it has a final answer. Returns accepted/rejected/failed,
    or None when the run was stopped before it finished."""
    tries = throttled = 0
    while not stop.is_set():
        if not bucket.acquire(stop):
            return None
        if not ledger.still_to_send(key, target):
            return SKIPPED  # rejected by a person (or settled) since this submit started
        attempt = ledger.begin_attempt(key, run_id, target)
        with lock:
            report.requests += 1
        try:
            answer: Answer = client.post_activity(body)
        except requests.RequestException as exc:
            tries += 1
            final = tries >= pace.max_tries
            # Stored redacted: some transport errors quote the request's headers.
            ledger.finish_attempt(
                attempt,
                lg.FAILED if final else lg.RETRY,
                errors=[client.redact(f"{type(exc).__name__}: {exc}")],
            )
            if final:
                return lg.FAILED
            _backoff(pace, tries, stop)
            continue
        status, errors = answer.status, answer.errors
        if answer.remaining == 0 and status != 429:
            # The server has no allowance left: drop our local burst and wait one interval
            # (or until its reset, when sooner) instead of walking into a 429.
            wait = 1 / bucket.rate
            if answer.reset_in is not None:
                wait = min(wait, max(answer.reset_in, 0.0))
            bucket.pause_until(time.monotonic() + wait)
        if 300 <= status < 400:
            # Not followed (see ApiClient.post_activity): the base URL is wrong, or a login
            # page stands in front of the API. Nothing was recorded by the LMS.
            ledger.finish_attempt(attempt, lg.STOPPED, http_status=status, errors=errors)
            raise _Stop(
                NotFoundError(
                    f"{client.base_url} answered {status} (a redirect) for the endpoint: "
                    "check the base URL",
                    status=status,
                )
            )
        if status == 200:
            ledger.finish_attempt(
                attempt, lg.ACCEPTED, http_status=200, latency_ms=answer.latency_ms
            )
            return lg.ACCEPTED
        if status == 429:
            throttled += 1
            with lock:
                report.throttled += 1
            wait = answer.retry_after if answer.retry_after is not None else answer.reset_in
            wait = min(max(wait if wait is not None else 1.0, 0.0), pace.retry_after_cap)
            bucket.pause_until(time.monotonic() + wait)
            final = throttled >= pace.max_throttled
            ledger.finish_attempt(
                attempt,
                lg.FAILED if final else lg.RETRY,
                http_status=429,
                errors=errors,
                latency_ms=answer.latency_ms,
            )
            if final:
                return lg.FAILED
            continue
        if status == 400 and MSG_FEATURE_OFF in errors:
            ledger.finish_attempt(attempt, lg.STOPPED, http_status=400, errors=errors)
            raise _Stop(
                FeatureOffError(
                    "the LMS answered 'externalActivity feature is not enabled': ask the "
                    "LMS administrator to enable the externalActivity feature for the company",
                    status=400,
                )
            )
        if status in (401, 403):
            ledger.finish_attempt(attempt, lg.STOPPED, http_status=status, errors=errors)
            raise _Stop(AuthError(f"the API key was refused (HTTP {status})", status=status))
        if status == 404:
            ledger.finish_attempt(attempt, lg.STOPPED, http_status=404, errors=errors)
            raise _Stop(
                NotFoundError(
                    f"{client.base_url} answered 404 for the endpoint: check the base URL",
                    status=404,
                )
            )
        if status >= 500:
            tries += 1
            final = tries >= pace.max_tries
            ledger.finish_attempt(
                attempt,
                lg.FAILED if final else lg.RETRY,
                http_status=status,
                errors=errors or [f"HTTP {status}"],
                latency_ms=answer.latency_ms,
            )
            if final:
                return lg.FAILED
            _backoff(pace, tries, stop)
            continue
        # Any other answer (400 with messages, 409, 422, ...) is this record's final word.
        errors = errors or [f"HTTP {status}"]
        ledger.finish_attempt(
            attempt, lg.REJECTED, http_status=status, errors=errors, latency_ms=answer.latency_ms
        )
        with lock:
            for message in errors:
                report.rejected[message] += 1
        return lg.REJECTED
    return None


def _backoff(pace: Pace, tries: int, stop: threading.Event) -> None:
    # Full jitter: spreads retries of many workers so they do not hit a recovering server
    # at the same moment.
    ceiling = min(pace.backoff_cap, pace.backoff_base * (2 ** (tries - 1)))
    stop.wait(random.uniform(ceiling / 2, ceiling))


SKIPPED = "skipped"

ProgressCallback = Callable[[SubmitReport], None]


def submit(
    ledger: Ledger,
    client: ApiClient | None,
    *,
    run: str | int | None = "latest",
    pace: Pace | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
    bucket: Any = None,
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
    from .client import TokenBucket

    pace = pace or Pace()
    run_id = ledger.resolve_run(run)
    if dry_run:
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
    if client is None:
        raise ApiError("no API client: give a base URL and set TI_API_KEY")
    try:
        target = probe(client)
    except Exception as exc:  # a refused key, a wrong URL, or a broken environment
        why = str(exc) if isinstance(exc, ApiError) else f"unexpected {type(exc).__name__}: {exc}"
        # Nothing was sent: what would have gone stays to send.
        unknown = guess(client)
        planned = len(ledger.to_send(run_id, unknown))
        return SubmitReport(
            run_id=run_id,
            planned=planned if limit is None else min(planned, limit),
            fatal=client.redact(f"{why} (the ping before sending; nothing was sent)"),
            target=unknown,
        )

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
        work: queue.Queue[tuple[str, dict[str, str]]] = queue.Queue()
        for key, text in zip(todo["key"], todo["payload"], strict=True):
            body = json.loads(text)
            if validate_activity(body):
                report.invalid += 1  # cannot happen for proposals recon wrote; never sent
                continue
            work.put((key, body))
        bucket = bucket or TokenBucket(pace.rate, pace.burst)
        stop = threading.Event()
        lock = threading.Lock()
        fatal: list[ReconError] = []
        bar = _progress_bar(report.planned, progress)
        started = time.perf_counter()

        def worker() -> None:
            while not stop.is_set():
                try:
                    key, body = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcome = _send_one(
                        ledger,
                        client,
                        bucket,
                        pace,
                        run_id,
                        target,
                        key,
                        body,
                        stop,
                        report,
                        lock,
                    )
                except _Stop as exc:
                    with lock:
                        fatal.append(exc.error)
                    stop.set()
                    return
                except ReconError as exc:  # the ledger cannot be written: stop, loudly
                    with lock:
                        fatal.append(exc)
                    stop.set()
                    return
                except Exception as exc:  # a bug or a broken environment: stop, loudly
                    with lock:
                        fatal.append(
                            ApiError(client.redact(f"unexpected {type(exc).__name__}: {exc}"))
                        )
                    stop.set()
                    return
                if outcome is None:
                    return
                with lock:
                    if outcome == lg.ACCEPTED:
                        report.accepted += 1
                    elif outcome == lg.FAILED:
                        report.failed += 1
                    elif outcome == SKIPPED:
                        report.skipped += 1
                    report.elapsed = time.perf_counter() - started
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(
                            accepted=report.accepted,
                            rejected=report.rejected_total,
                            failed=report.failed,
                            refresh=False,
                        )
                    if on_progress is not None:
                        on_progress(report)

        threads = [
            threading.Thread(target=worker, name=f"recon-submit-{i}", daemon=True)
            for i in range(max(1, pace.concurrency))
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            # Let in-flight requests finish and be recorded, then report what is left.
            stop.set()
            for t in threads:
                t.join()
            report.fatal = "interrupted; run `recon submit` again to send the rest"
        finally:
            if bar is not None:
                bar.close()
        report.elapsed = time.perf_counter() - started
        if fatal:
            report.fatal = str(fatal[0])
        if on_progress is not None:
            on_progress(report)
        return report


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="proposal", desc="submitting", dynamic_ncols=True)
