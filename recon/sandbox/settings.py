"""How a sandbox behaves: its settings, the faults it injects, and its rate limit.

:class:`SandboxSettings` holds every knob a running sandbox reads (the token bucket, the
latency, the faults, the ``externalActivity`` feature) and rolls the fault dice for each
request, reproducibly with a ``seed``. :class:`TokenBucket` is the server's rate limit
and the ``X-RateLimit-*`` headers it answers with.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Plan:
    """What to do with one request: the settings it arrived under, and its faults."""

    rate: float
    burst: int
    feature_on: bool
    latency_s: float
    drop: bool = False
    fail: bool = False
    stall_s: float = 0.0
    drop_after_accept: bool = False


@dataclass
class SandboxSettings:
    """How a sandbox behaves; every field can be changed while it runs.

    Assignments are thread safe (``sandbox.settings.feature_on = False``) and checked;
    :meth:`update` changes several fields at once. Each request reads the settings once,
    when it arrives.

    ``rate``/``burst``: the token bucket (default: the vendor's standard plan, 120/min
    with a burst of 20). ``latency_ms``: added to every request. The fault fields apply to
    ``POST`` requests that passed authentication and the rate limit, in this order:
    ``drop_rate`` closes the connection without an answer and without storing;
    ``fail_first`` answers the next N with ``503`` (counted from when it is set);
    ``fail_rate`` answers that fraction with ``503``; ``stall_rate`` waits ``stall_ms``
    before going on (the activity is still stored, so a client that timed out meets an
    unknown outcome); ``drop_after_accept_rate`` stores the activity, then closes the
    connection without an answer. ``feature_on``: the company's ``externalActivity``
    feature. ``seed``: makes the random faults reproducible (setting it restarts the
    sequence); each ``POST`` draws the same number of random values whatever is on.
    ``page_shape``: how the learner and learning-path lists page (``pageInfo`` or
    ``meta``, see :mod:`recon.sandbox.directory`).
    """

    rate: float = 2.0
    burst: int = 20
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    fail_first: int = 0
    drop_rate: float = 0.0
    drop_after_accept_rate: float = 0.0
    stall_ms: float = 0.0
    stall_rate: float = 0.0
    feature_on: bool = True
    seed: int | None = None
    # How GET /incoming/v2/users and /content page: "pageInfo" or "meta", the two
    # shapes the vendor's pages document (recon.sandbox.directory).
    page_shape: str = "pageInfo"

    # Not settings: the lock that makes changes atomic, and the fault dice.
    _lock: threading.RLock = field(init=False, repr=False, compare=False)
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _fail_first_left: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(self.seed)
        self._fail_first_left = self.fail_first

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name not in _SETTING_NAMES:
            raise AttributeError(f"SandboxSettings has no setting {name!r}")
        value = _check_setting(name, value)
        lock = self.__dict__.get("_lock")
        if lock is None:  # still in __init__; __post_init__ does the rest
            object.__setattr__(self, name, value)
            return
        with lock:
            object.__setattr__(self, name, value)
            if name == "fail_first":
                self._fail_first_left = value
            elif name == "seed":
                self._rng.seed(value)

    def update(self, **changes: Any) -> None:
        """Change several settings at once: a request sees all of them or none."""
        for name, value in changes.items():
            if name not in _SETTING_NAMES:
                raise AttributeError(f"SandboxSettings has no setting {name!r}")
            _check_setting(name, value)
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def _plan(self) -> Plan:
        """The settings one request works with, read once when it arrives."""
        with self._lock:
            return Plan(
                rate=self.rate,
                burst=self.burst,
                feature_on=self.feature_on,
                latency_s=self.latency_ms / 1000,
            )

    def _roll(self, plan: Plan) -> Plan:
        """Roll the fault dice for a POST that passed the key and the rate limit.

        Atomic, so concurrent requests never share a draw or a ``fail_first`` slot.
        """
        with self._lock:
            # Always four draws, so a seed gives the same sequence whatever is switched on.
            d_drop, d_fail, d_stall, d_after = (self._rng.random() for _ in range(4))
            fail = d_fail < self.fail_rate
            if self._fail_first_left > 0:
                self._fail_first_left -= 1
                fail = True
            return dataclasses.replace(
                plan,
                drop=d_drop < self.drop_rate,
                fail=fail,
                stall_s=self.stall_ms / 1000 if d_stall < self.stall_rate else 0.0,
                drop_after_accept=d_after < self.drop_after_accept_rate,
            )


_SETTING_NAMES = tuple(f.name for f in dataclasses.fields(SandboxSettings) if f.init)


def _check_setting(name: str, value: Any) -> Any:
    if name == "page_shape":
        from .directory import PAGE_SHAPES

        if value not in PAGE_SHAPES:
            raise ValueError(f"page_shape must be one of {', '.join(PAGE_SHAPES)}, not {value!r}")
        return value
    if name == "feature_on":
        if not isinstance(value, bool):
            raise ValueError("feature_on must be True or False")
        return value
    if name == "seed":
        if value is not None and not isinstance(value, int):
            raise ValueError("seed must be an integer or None")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if name.endswith("_rate") and name != "rate":
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be between 0 and 1, not {value}")
        return float(value)
    if name == "rate":
        if not value > 0:
            raise ValueError(f"rate must be above 0 requests per second, not {value}")
        return float(value)
    if name in ("burst", "fail_first"):
        if int(value) != value or value < (1 if name == "burst" else 0):
            raise ValueError(f"{name} must be a whole number >= {1 if name == 'burst' else 0}")
        return int(value)
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {value}")
    return float(value)


# ----------------------------------------------------------------------- rate limit


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    headers: dict[str, str]
    retry_after: int


class TokenBucket:
    """The server's rate limit: ``rate`` tokens a second, at most ``burst`` saved up.

    Rate and burst are passed on each call so a settings change applies at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: float | None = None  # full on the first request
        self._stamp = time.monotonic()

    def take(self, rate: float, burst: int) -> Verdict:
        with self._lock:
            now = time.monotonic()
            if self._tokens is None:
                tokens = float(burst)
            else:
                tokens = min(float(burst), self._tokens + (now - self._stamp) * rate)
            self._stamp = now
            # A hair of tolerance: float refill must not turn an on-time request away.
            allowed = tokens >= 1 - 1e-9
            if allowed:
                tokens = max(0.0, tokens - 1)
            self._tokens = tokens
        wall = time.time()
        retry_after = 0 if allowed else max(1, math.ceil((1 - tokens) / rate))
        headers = {
            "X-RateLimit-Limit": str(burst),
            "X-RateLimit-Remaining": str(int(tokens)),
            "X-RateLimit-Reset": str(math.ceil(wall + (burst - tokens) / rate)),
        }
        return Verdict(allowed, headers, retry_after)
