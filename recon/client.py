"""The LMS API client: one POST endpoint, one ping, a client-side token bucket.

The client takes its base URL, key and timeouts as arguments; only the CLI and the
notebooks read the environment. The key lives in one private attribute and in the
``Authorization`` header of outgoing requests, nowhere else: not in ``repr``, not in an
exception message, not in the ledger.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from .errors import ApiError, AuthError, NotFoundError

ACTIVITY_PATH = "/incoming/v2/learningPathExternalActivity"
PING_PATH = "/incoming/v2/ping"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash; plain http only to a loopback host."""
    try:
        parts = urlsplit(base_url.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ApiError(f"the base URL {base_url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(
            f"the base URL must look like https://yourcompany.thoughtindustries.com, "
            f"not {base_url!r}"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ApiError(
            f"refusing plain http:// to {parts.hostname}: the API key would travel "
            "unencrypted; use https:// (http is allowed only for a loopback sandbox)"
        )
    return base_url.strip().rstrip("/")


class TokenBucket:
    """Client-side pacing: on average ``rate`` requests per second, at most ``burst`` at once.

    Thread safe. :meth:`pause_until` holds everyone back (after a 429, or when the server
    says no requests remain) and empties the bucket, so sending resumes at the steady rate
    rather than in a burst.
    """

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait for a token. False if ``stop`` was set while waiting."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._refill(now)
                if now < self._paused_until:
                    wait = self._paused_until - now
                elif self._tokens >= 1:
                    self._tokens -= 1
                    return True
                else:
                    wait = (1 - self._tokens) / self.rate
            if stop is not None:
                if stop.wait(wait):
                    return False
            else:
                time.sleep(wait)

    def pause_until(self, moment: float) -> None:
        """No request before ``moment`` (time.monotonic clock)."""
        with self._lock:
            self._paused_until = max(self._paused_until, moment)
            self._tokens = 0.0
            self._stamp = max(self._stamp, moment)


@dataclass
class Answer:
    """One HTTP answer, reduced to what the submission loop needs."""

    status: int
    errors: list[str] = field(default_factory=list)
    retry_after: float | None = None
    remaining: int | None = None
    reset_in: float | None = None
    latency_ms: float = 0.0


def _header_float(headers: Any, name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class ApiClient:
    """Talks to ``POST /incoming/v2/learningPathExternalActivity`` and ``GET /ping``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        pool_size: int = 16,
    ) -> None:
        api_key = api_key.strip() if api_key else ""
        if not api_key:
            raise AuthError("no API key: set TI_API_KEY")
        # A key that cannot travel in a header would make requests raise an error that
        # quotes the header, key included: refuse it here, without echoing it.
        if not all(" " < ch < "\x7f" for ch in api_key):
            raise AuthError(
                "the API key in TI_API_KEY contains spaces, control or non-ASCII characters; "
                "copy it again from the LMS"
            )
        self.base_url = check_base_url(base_url)
        self.__key = api_key
        self.timeout = (connect_timeout, read_timeout)
        self._pool_size = pool_size
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ApiClient(base_url={self.base_url!r}, api_key=<hidden>)"

    def redact(self, text: str) -> str:
        """``text`` with the key blanked out: for error messages that get stored."""
        return text.replace(self.__key, "<API key>")

    def _session(self) -> requests.Session:
        # requests.Session is not guaranteed thread safe: one per worker thread.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_maxsize=self._pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update(
                {
                    "Authorization": f"Bearer {self.__key}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "User-Agent": "recon/0.1",
                }
            )
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def post_activity(self, body: dict[str, str]) -> Answer:
        """POST one activity. Transport failures raise ``requests.RequestException``."""
        started = time.perf_counter()
        # Never follow a redirect: a login page answering 200 to the redirected GET would
        # look like an accepted record that the LMS never saw.
        response = self._session().post(
            self.base_url + ACTIVITY_PATH,
            data=json.dumps(body, separators=(",", ":")),
            timeout=self.timeout,
            allow_redirects=False,
        )
        latency = (time.perf_counter() - started) * 1000
        errors: list[str] = []
        if response.status_code >= 400 and response.content:
            try:
                doc = response.json()
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("errors"), list):
                errors = [str(e) for e in doc["errors"]]
            elif isinstance(doc, dict) and doc.get("error"):
                errors = [str(doc["error"])]
            else:
                errors = [response.text[:500]]
        reset = _header_float(response.headers, "X-RateLimit-Reset")
        remaining = _header_float(response.headers, "X-RateLimit-Remaining")
        return Answer(
            status=response.status_code,
            errors=errors,
            retry_after=_header_float(response.headers, "Retry-After"),
            remaining=int(remaining) if remaining is not None else None,
            reset_in=(reset - time.time()) if reset is not None else None,
            latency_ms=latency,
        )

    def ping(self) -> dict[str, Any]:
        """``GET /incoming/v2/ping``: checks the base URL and key before a long run."""
        url = self.base_url + PING_PATH
        try:
            response = self._session().get(url, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise ApiError(f"cannot reach {url}: {type(exc).__name__}", url=url) from None
        if response.status_code in (401, 403):
            raise AuthError(
                f"the API key was refused (HTTP {response.status_code})",
                status=response.status_code,
                url=url,
            )
        if response.status_code == 404:
            raise NotFoundError(f"{url} answered 404: check the base URL", status=404, url=url)
        if 300 <= response.status_code < 400:
            raise ApiError(
                f"{url} redirects to {response.headers.get('Location', '?')}: check the base URL",
                status=response.status_code,
                url=url,
            )
        if response.status_code != 200:
            raise ApiError(
                f"{url} answered HTTP {response.status_code}", status=response.status_code, url=url
            )
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or doc.get("valid") is not True:
            raise ApiError(f'{url} did not answer {{"valid": true}}: is this the LMS API?', url=url)
        return doc

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
