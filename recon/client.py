"""The LMS API client: one POST endpoint, one ping, a client-side token bucket.

Size: over 600 lines because the base-URL judgement, key redaction, proxy choice, the
total-deadline watchdog and defensive header parsing are one security boundary that must
agree with itself: a key blanked in one place and not another is the failure to
avoid, so they are kept together (the answer rules are :mod:`recon.submit`'s).

The client takes its base URL, key and timeouts as arguments; only the CLI and the
notebooks read the environment. The key lives in one private attribute and in the
``Authorization`` header of outgoing requests, nowhere else: not in ``repr``, not in an
exception message, not in the ledger. Whatever a server answers is turned into text in
one place (:meth:`ApiClient.clean`): the key blanked out (also when the server echoes it
escaped), control characters shown as escapes, cut to a bounded length.

Where a request goes is judged exactly as ``requests`` will send it
(:func:`check_base_url`); a loopback URL never goes through a proxy; every request has a
total deadline (:class:`_Watch`), because socket timeouts only bound the silence between
two bytes.
"""

from __future__ import annotations

import contextlib
import email.utils
import html
import ipaddress
import json
import math
import re
import socket
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Protocol
from urllib.parse import quote, quote_plus

import requests
import urllib3.connection
import urllib3.connectionpool
from requests.adapters import HTTPAdapter
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from .errors import ApiError, AuthError, NotFoundError, RedirectError

ACTIVITY_PATH = "/incoming/v2/learningPathExternalActivity"
PING_PATH = "/incoming/v2/ping"
USERS_PATH = "/incoming/v2/users"
CONTENT_PATH = "/incoming/v2/content"

MIN_KEY_LENGTH = 8
"""Shorter keys are refused. Blanking a key out of a server's text is only safe when the
key cannot occur there by chance: a 3-character key would also blank pieces of ordinary
words and numbers, and the blanks would then show where (and so what) the key is. Eight
characters of a random key make a chance occurrence in a few hundred characters of text
negligible (the sandbox's and the tests' keys are 9 or more)."""

MESSAGE_CHARS = 500
"""How much of one API message is kept (stored and printed)."""
PREVIEW_CHARS = 200
"""How much of an unexpected body is quoted in a message."""
MAX_BODY_BYTES = 1 << 20
"""Bodies are read up to this size; the rest is not needed to judge an answer."""


# -- text from a server -------------------------------------------------------------------

# Control (Cc), format (Cf: bidi overrides, zero-width...), surrogate, private and
# unassigned characters, and line/paragraph separators: a terminal may act on any of them.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` with every character a terminal could act on shown as an escape
    (``\\x1b``, ``\\x0d``, ``\\u202e``...): one visible line, nothing that moves the
    cursor, clears the screen or reorders text."""
    out = []
    for ch in text:
        if ch != " " and unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            code = ord(ch)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def _shown_url(url: str) -> str:
    """A base URL as an error message may quote it: never a ``user:pass@`` part, a query
    or a fragment (either may hold a secret), nothing a terminal acts on."""
    text = printable(url.strip())[:300]
    head, at, tail = text.rpartition("@")
    if at:
        scheme = head.split("://", 1)[0] + "://" if "://" in head else ""
        text = f"{scheme}<user:password hidden>@{tail}"
    for mark in "?#":
        if mark in text:
            text = text.split(mark, 1)[0] + mark + "..."
    return text


# -- the base URL -------------------------------------------------------------------------

_PATH_PREFIX = re.compile(r"(?:/(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})*)*")


def is_loopback_host(host: str, port: int | None = None) -> bool:
    """True when ``host`` (as the HTTP library hands it to the socket layer) names this
    machine only: ``localhost`` or a plainly written IP address, every address it resolves
    to being a loopback one. Odd spellings that some resolvers read as loopback
    (``127.1``, ``0x7f.0.0.1``, ``2130706433``, a trailing dot) are not accepted."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if name.lower() == "localhost":
        flags = 0
    else:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        flags = socket.AI_NUMERICHOST  # never a DNS query for a literal
    try:
        infos = socket.getaddrinfo(name, port or 80, type=socket.SOCK_STREAM, flags=flags)
    except (OSError, UnicodeError, ValueError):
        return False
    try:
        return bool(infos) and all(
            ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]).is_loopback for info in infos
        )
    except ValueError:
        return False


def check_base_url(base_url: str, *, redact: Callable[[str], str] | None = None) -> str:
    """The base URL as requests will send it (scheme, host, optional port and path prefix,
    no trailing slash); plain http only to a loopback host.

    Anything else is refused with a message that never quotes a ``user:pass@`` part, a
    query or a fragment: a query, fragment, ``;`` parameters, ``user:pass@``, a backslash,
    spaces or control characters. The host is judged after the same parsing and IDNA
    encoding requests applies, so the check and the connection cannot disagree.
    """
    raw = base_url.strip() if isinstance(base_url, str) else ""
    shown = _shown_url(raw)
    if redact is not None:
        shown = redact(shown)
    example = "https://yourcompany.thoughtindustries.com"
    if not raw:
        raise ApiError(f"no base URL: give one like {example}")
    if any(ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in raw):
        raise ApiError(f"the base URL {shown!r} contains spaces or control characters")
    if "@" in raw:
        raise ApiError(
            f"the base URL {shown!r} contains '@' (a user:password@ part?): recon sends the "
            f"key as a bearer token; give the URL alone, like {example}"
        )
    if "\\" in raw:
        raise ApiError(f"the base URL {shown!r} contains a backslash")
    for mark, what in (("?", "a query"), ("#", "a fragment"), (";", "parameters")):
        if mark in raw:
            raise ApiError(
                f"the base URL {shown!r} has {what} ({mark!r}); give scheme, host, optional "
                f"port and path only, like {example}"
            )
    try:
        given = parse_url(raw)
    except (LocationParseError, ValueError):
        raise ApiError(f"the base URL {shown!r} is not a valid URL") from None
    if given.scheme not in ("http", "https") or "://" not in raw or not given.host:
        raise ApiError(f"the base URL must look like {example}, not {shown!r}")
    if any(part in (".", "..") for part in raw.split("://", 1)[1].split("/")[1:]):
        raise ApiError(f"the base URL {shown!r} has '.' or '..' in its path")
    # What requests will put on the wire: its own parsing and IDNA encoding of the host.
    try:
        prepared = requests.Request("GET", raw.rstrip("/") + PING_PATH).prepare()
        sent = parse_url(prepared.url or "")
    except (requests.RequestException, LocationParseError, UnicodeError, ValueError):
        raise ApiError(f"the base URL {shown!r} has a host name that is not valid") from None
    path = sent.path or ""
    if given.port == 0:
        raise ApiError(f"the base URL {shown!r} has port 0")
    if (
        sent.scheme != given.scheme
        or sent.port != given.port
        or not sent.host
        or sent.auth is not None
        or sent.query is not None
        or sent.fragment is not None
        or not path.endswith(PING_PATH)
    ):
        raise ApiError(f"the base URL {shown!r} is not a valid URL")
    prefix = path[: -len(PING_PATH)]
    if not _PATH_PREFIX.fullmatch(prefix):
        raise ApiError(
            f"the base URL {shown!r} has characters recon does not accept in its path "
            "(letters, digits, '.', '_', '~', '-', '/' and %XX only)"
        )
    port = f":{sent.port}" if sent.port is not None else ""
    canonical = f"{sent.scheme}://{sent.host}{port}{prefix}"
    if sent.scheme == "http" and not is_loopback_host(sent.host, sent.port):
        raise ApiError(
            f"refusing plain http:// to {printable(sent.host)}: the API key would travel "
            "unencrypted; use https:// (http is allowed only for a loopback sandbox: "
            "localhost, 127.0.0.1 or [::1])"
        )
    return canonical


# -- answer headers -----------------------------------------------------------------------
# Each parser takes any string (or None) and returns a number or None; none may raise:
# a header the client cannot read is an unknown, never a reason to lose an answer.

_DIGITS = re.compile(r"[0-9]{1,15}")
_SECONDS = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,9})?")
EPOCH_FROM = 1_000_000_000
"""An ``X-RateLimit-Reset`` at or above this (September 2001) is a Unix time, below it a
number of seconds: nobody waits 31 years."""


def _http_date(value: str) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except Exception:  # noqa: BLE001 - any unreadable date is an unknown
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # RFC 9110 dates are GMT
    try:
        stamp = moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
    return stamp if math.isfinite(stamp) else None


def parse_retry_after(
    value: str | None, *, date: str | None = None, now: float | None = None
) -> float | None:
    """``Retry-After`` (RFC 9110): seconds, or an HTTP date. A date is measured against the
    answer's own ``Date`` header when it has a readable one (so a skewed local clock does
    not matter), else against ``now``. Never negative; None when unreadable."""
    try:
        if value is None:
            return None
        text = value.strip()
        if _SECONDS.fullmatch(text):
            seconds = float(text)
            return seconds if math.isfinite(seconds) else None
        moment = _http_date(text)
        if moment is None:
            return None
        reference = _http_date(date) if date else None
        if reference is None:
            reference = time.time() if now is None else now
        return max(0.0, moment - reference)
    except Exception:  # noqa: BLE001 - belt and braces: a header never raises
        return None


def parse_remaining(value: str | None) -> int | None:
    """``X-RateLimit-Remaining``: a whole number of requests, or None (``nan``, ``-1``,
    ``1e309``, ``5.0``, garbage...)."""
    try:
        if value is None:
            return None
        text = value.strip()
        return int(text) if _DIGITS.fullmatch(text) else None
    except Exception:  # noqa: BLE001
        return None


def parse_reset(value: str | None, *, now: float | None = None) -> float | None:
    """``X-RateLimit-Reset`` as seconds from now: a Unix time (the vendor's form) or a
    number of seconds (see :data:`EPOCH_FROM`). Never negative; None when unreadable."""
    try:
        if value is None:
            return None
        text = value.strip()
        if not _SECONDS.fullmatch(text):
            return None
        number = float(text)
        if not math.isfinite(number):
            return None
        if number >= EPOCH_FROM:
            number -= time.time() if now is None else now
        return max(0.0, number)
    except Exception:  # noqa: BLE001
        return None


# -- pacing -------------------------------------------------------------------------------


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
        """No request before ``moment`` (time.monotonic clock); one goes at ``moment``,
        the next ones at the steady rate."""
        with self._lock:
            self._paused_until = max(self._paused_until, moment)
            # Empty now, one token when the pause ends: the wait is the pause the server
            # asked for, not the pause plus an interval, and no burst follows it.
            self._tokens = 0.0
            self._stamp = self._paused_until - 1 / self.rate


# -- one answer ---------------------------------------------------------------------------

# Kinds of transport failure (``Answer.failure``).
TIMEOUT, DROPPED, DEADLINE, TLS, UNSENDABLE = "timeout", "dropped", "deadline", "tls", "unsendable"


@dataclass
class Answer:
    """One HTTP answer (or the lack of one), reduced to what the submission loop needs.

    ``status`` is None when no HTTP answer came: then ``failure`` says why (one of
    ``timeout``, ``dropped``, ``deadline``, ``tls``, ``unsendable``) and ``errors`` holds
    the cleaned exception text. ``errors`` otherwise holds the API's own messages (a
    ``{"errors": [...]}`` or ``{"error": "..."}`` body), ``body`` the first characters of
    the body as cleaned text and ``body_bytes`` its size; ``location`` a redirect's
    ``Location``. Every text is already cleaned (key blanked, control characters escaped).
    """

    status: int | None
    errors: list[str] = field(default_factory=list)
    retry_after: float | None = None
    remaining: int | None = None
    reset_in: float | None = None
    latency_ms: float = 0.0
    body: str = ""
    body_bytes: int = 0
    failure: str | None = None
    url: str = ""
    location: str = ""


def _api_messages(content: bytes, clean: Callable[[str], str]) -> list[str]:
    """The messages of a ``{"errors": [...]}`` or ``{"error": "..."}`` body; [] otherwise."""
    try:
        doc = json.loads(content)
    except Exception:  # noqa: BLE001 - not JSON, too deep, bad encoding: no messages
        return []
    if not isinstance(doc, dict):
        return []
    errors = doc.get("errors")
    if isinstance(errors, list) and errors:
        return [clean(e if isinstance(e, str) else json.dumps(e)) for e in errors[:100]]
    error = doc.get("error")
    if isinstance(error, str) and error:
        return [clean(error)]
    return []


def _is_cert_failure(exc: BaseException) -> bool:
    """True when a TLS error is a certificate that could not be verified (anywhere in the
    chain of causes requests and urllib3 wrap it in)."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError):
            return True
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _framed(headers: Any) -> bool:
    """True when the answer says where its body ends (a length, or chunks): only then
    does a complete read prove the whole answer arrived."""
    length = str(headers.get("Content-Length", "")).strip()
    chunked = "chunked" in str(headers.get("Transfer-Encoding", "")).lower()
    return chunked or length.isdigit()


class _DeadlinePassed(Exception):
    """The total deadline fired while the answer was being read."""


def _headers_complete(response: requests.Response) -> bool:
    """False when http.client met the end of the stream inside the headers (it then
    returns what it got as if complete; urllib3 only logs the defect)."""
    message = getattr(getattr(response.raw, "_original_response", None), "msg", None)
    return not getattr(message, "defects", None)


def _failure_kind(exc: Exception) -> str:
    if isinstance(exc, requests.exceptions.SSLError):
        return TLS if _is_cert_failure(exc) else DROPPED
    if isinstance(exc, requests.Timeout):
        return TIMEOUT
    if isinstance(
        exc,
        requests.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError,
    ):
        return DROPPED
    return UNSENDABLE  # an invalid header or URL: sending again cannot help


# -- the total deadline of one request ----------------------------------------------------

_CURRENT = threading.local()


def _shutdown(sock: Any) -> None:
    # Already closed, or detached by the TLS layer: nothing to stop.
    with contextlib.suppress(OSError, AttributeError, ValueError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watch:
    """One request's total deadline.

    requests' timeouts bound each wait for the next bytes, so a server trickling a byte a
    second holds a request forever (the requests docs: "timeout is not a time limit on the
    entire response download"). The usual remedy (seen in several projects: a watchdog
    that shuts the socket down at the deadline) is used here: a timer shuts down the socket
    the request is using, which ends any blocking read at once, in the headers phase as in
    the body. The connection classes below tell the watch of the current thread which
    socket that is.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._done = False
        self._sock: Any = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watch:
        _CURRENT.watch = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            self._done = True
            self._sock = None
        _CURRENT.watch = None

    def follow(self, sock: Any) -> None:
        with self._lock:
            if self._done:
                return
            self._sock = sock
            if self.fired:
                _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            if self._sock is not None:
                _shutdown(self._sock)


def _follow(sock: Any) -> None:
    watch = getattr(_CURRENT, "watch", None)
    if watch is not None and sock is not None:
        watch.follow(sock)


class _WatchedMixin:
    sock: Any

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _follow(sock)  # covers a proxy's CONNECT answer
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _follow(self.sock)  # a kept-alive connection
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        _follow(self.sock)  # the socket the headers and body come from (TLS or not)
        return super().getresponse()  # type: ignore[misc]


class WatchedHTTPConnection(_WatchedMixin, urllib3.connection.HTTPConnection):
    pass


class WatchedHTTPSConnection(_WatchedMixin, urllib3.connection.HTTPSConnection):
    pass


class WatchedHTTPConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSConnectionPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


_POOLS = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}


class _Adapter(HTTPAdapter):
    """requests' adapter with watched connections, no retries, and proxies only where
    they may be: never for a loopback host (a proxy would reach *its* loopback, and would
    see a plain-http request, key included), through CONNECT for https as usual."""

    def __init__(self, *, direct: bool, pool_size: int) -> None:
        self.direct = direct
        super().__init__(pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        url = str(request.url or "")
        if self.direct or not url.lower().startswith("https://"):
            kwargs["proxies"] = {}
        return super().send(request, *args, **kwargs)


class _Bearer(requests.auth.AuthBase):
    """Sets the bearer header on each request. Being the session's ``auth``, it also
    keeps requests from replacing the header with credentials from ``~/.netrc``."""

    def __init__(self, key: str) -> None:
        self.__key = key

    def __repr__(self) -> str:
        return "_Bearer(<hidden>)"

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self.__key}"
        return request


# -- the client ---------------------------------------------------------------------------


class LmsApi(Protocol):
    """What sending needs of an API client: :class:`ApiClient` is one; a test's scripted
    stand-in implements these four and is accepted as it is.

    ``post_activity`` never raises for a transport failure (the :class:`Answer` says what
    happened); ``ping`` raises an :class:`~recon.errors.ApiError` when the base URL or key
    is wrong; ``redact`` blanks the key out of any text before it is stored or printed.
    """

    base_url: str

    def ping(self) -> dict[str, Any]: ...

    def post_activity(self, body: dict[str, str]) -> Answer: ...

    def redact(self, text: str) -> str: ...


class ApiClient:
    """Talks to ``POST /incoming/v2/learningPathExternalActivity`` and ``GET /ping``.

    ``connect_timeout`` bounds connecting, ``read_timeout`` each wait for the next bytes,
    and ``deadline`` (default: both added) the whole request, however slowly a server
    trickles its answer.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        pool_size: int = 16,
        deadline: float | None = None,
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
        if len(api_key) < MIN_KEY_LENGTH:
            raise AuthError(
                f"the API key in TI_API_KEY is shorter than {MIN_KEY_LENGTH} characters: "
                "too short to be kept out of messages safely; copy the whole key from the LMS"
            )
        self.__key = api_key
        self.__variants = _key_variants(api_key)
        self.base_url = check_base_url(base_url, redact=self.redact)
        host = parse_url(self.base_url).host or ""
        self._direct = self.base_url.startswith("http://") or is_loopback_host(host)
        self.timeout = (connect_timeout, read_timeout)
        self.deadline = float(deadline) if deadline is not None else connect_timeout + read_timeout
        self._pool_size = pool_size
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ApiClient(base_url={getattr(self, 'base_url', None)!r}, api_key=<hidden>)"

    def redact(self, text: str) -> str:
        """``text`` with the key blanked out, also where a server echoed it JSON-, URL- or
        HTML-escaped, in any letter case: for anything that gets stored or printed."""
        return self.__variants.sub("<API key>", text)

    def clean(self, text: str, limit: int = MESSAGE_CHARS) -> str:
        """Server text made safe to store and print: key blanked (before anything is cut,
        so a cut cannot leave half a key), control characters escaped, at most ``limit``
        characters."""
        text = self.redact(text)[: limit * 2]
        text = self.redact(printable(text))
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def _session(self) -> requests.Session:
        # requests.Session is not guaranteed thread safe: one per worker thread.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = _Adapter(direct=self._direct, pool_size=self._pool_size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.auth = _Bearer(self.__key)
            session.headers.update(
                {
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "User-Agent": "recon/0.1",
                }
            )
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _exchange(self, method: str, url: str, data: str | None) -> tuple[Any, bytes] | Answer:
        """One request under the total deadline: (response, body) or an Answer saying why
        no HTTP answer came. The body is read here, to at most MAX_BODY_BYTES."""
        started = time.perf_counter()
        watch = _Watch(self.deadline)
        try:
            with watch:
                # Never follow a redirect: a login page answering 200 to the redirected
                # request would look like an accepted record that the LMS never saw.
                response = self._session().request(
                    method,
                    url,
                    data=data,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                )
                try:
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in response.iter_content(65536):
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > MAX_BODY_BYTES:
                            break
                finally:
                    response.close()
                # The shutdown at the deadline looks like the server closing: headers cut
                # short parse as complete and a body without a length ends there. So an
                # answer read while the deadline fired is never trusted, and neither is
                # one whose headers were cut off.
                if watch.fired:
                    raise _DeadlinePassed
                if not _headers_complete(response):
                    raise requests.ConnectionError("the answer's headers were cut off")
        except (requests.RequestException, _DeadlinePassed) as exc:
            latency = (time.perf_counter() - started) * 1000
            kind = DEADLINE if watch.fired else _failure_kind(exc)
            if kind == DEADLINE:
                text = f"no complete answer within {self.deadline:g}s (the total deadline)"
            else:
                text = f"{type(exc).__name__}: {exc}"
            return Answer(
                status=None,
                errors=[self.clean(text)],
                latency_ms=latency,
                failure=kind,
                url=url,
            )
        return response, b"".join(chunks)

    def post_activity(self, body: dict[str, str]) -> Answer:
        """POST one activity. Never raises for a transport failure: the Answer says what
        happened (``failure``). Nothing read from the answer can raise either."""
        url = self.base_url + ACTIVITY_PATH
        started = time.perf_counter()
        got = self._exchange("POST", url, json.dumps(body, separators=(",", ":")))
        if isinstance(got, Answer):
            return got
        response, content = got
        latency = (time.perf_counter() - started) * 1000
        status = int(response.status_code)
        headers = response.headers
        if status == 200 and not _framed(headers):
            # Without a length or chunks the body ends where the connection does, so a
            # server that died after "HTTP/1.1 200" would pass for an empty body.
            return Answer(
                status=None,
                errors=["HTTP 200 without Content-Length or chunked framing: not known whole"],
                latency_ms=latency,
                failure=DROPPED,
                url=url,
            )
        text = content.decode("utf-8", "replace")
        return Answer(
            status=status,
            errors=_api_messages(content, self.clean) if status >= 400 and content else [],
            retry_after=parse_retry_after(headers.get("Retry-After"), date=headers.get("Date")),
            remaining=parse_remaining(headers.get("X-RateLimit-Remaining")),
            reset_in=parse_reset(headers.get("X-RateLimit-Reset")),
            latency_ms=latency,
            body=self.clean(text, PREVIEW_CHARS) if content else "",
            body_bytes=len(content),
            url=url,
            location=self.clean(headers.get("Location", ""), PREVIEW_CHARS),
        )

    def get(self, path: str, params: dict[str, str]) -> tuple[Answer, bytes]:
        """``GET {base}{path}?params`` (``recon lms pull``): the :class:`Answer` (status,
        rate-limit headers, the body's first characters cleaned) and the raw body, read
        to at most :data:`MAX_BODY_BYTES` (``Answer.body_bytes`` above it: cut short).
        Never raises for a transport failure: ``Answer.failure`` says what happened."""
        from urllib.parse import urlencode

        url = self.base_url + path + ("?" + urlencode(params) if params else "")
        started = time.perf_counter()
        got = self._exchange("GET", url, None)
        if isinstance(got, Answer):
            return got, b""
        response, content = got
        headers = response.headers
        text = content.decode("utf-8", "replace")
        answer = Answer(
            status=int(response.status_code),
            errors=_api_messages(content, self.clean) if response.status_code >= 400 else [],
            retry_after=parse_retry_after(headers.get("Retry-After"), date=headers.get("Date")),
            remaining=parse_remaining(headers.get("X-RateLimit-Remaining")),
            reset_in=parse_reset(headers.get("X-RateLimit-Reset")),
            latency_ms=(time.perf_counter() - started) * 1000,
            body=self.clean(text, PREVIEW_CHARS) if content else "",
            body_bytes=len(content),
            url=url,
            location=self.clean(headers.get("Location", ""), PREVIEW_CHARS),
        )
        return answer, content

    def ping(self) -> dict[str, Any]:
        """``GET /incoming/v2/ping``: checks the base URL and key before a long run."""
        url = self.base_url + PING_PATH
        got = self._exchange("GET", url, None)
        if isinstance(got, Answer):
            if got.failure == TLS:
                raise ApiError(
                    f"cannot reach {url}: its TLS certificate could not be verified "
                    f"({got.errors[0]})",
                    url=url,
                )
            raise ApiError(f"cannot reach {url}: {got.errors[0]}", url=url)
        response, content = got
        status = int(response.status_code)
        if status in (401, 403):
            raise AuthError(f"the API key was refused (HTTP {status})", status=status, url=url)
        if status == 404:
            raise NotFoundError(f"{url} answered 404: check the base URL", status=404, url=url)
        if 300 <= status < 400:
            location = self.clean(response.headers.get("Location", "?"), PREVIEW_CHARS)
            raise RedirectError(
                f"{url} redirects to {location}: check the base URL",
                status=status,
                url=url,
                location=location,
            )
        if status != 200:
            raise ApiError(f"{url} answered HTTP {status}", status=status, url=url)
        try:
            doc = json.loads(content)
        except Exception:  # noqa: BLE001 - not JSON: said below
            doc = None
        if not isinstance(doc, dict) or doc.get("valid") is not True:
            preview = self.clean(content.decode("utf-8", "replace"), PREVIEW_CHARS)
            raise ApiError(
                f'{url} did not answer {{"valid": true}} but {preview!r}: is this the LMS API?',
                url=url,
            )
        return doc

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()


def _key_variants(key: str) -> re.Pattern[str]:
    """One pattern for the key as a server might echo it: as is, JSON-escaped,
    percent-encoded (either form) or HTML-escaped; letter case ignored."""
    escaped = json.dumps(key)[1:-1]
    forms = {
        key,
        escaped,
        escaped.replace("/", "\\/"),
        quote(key, safe=""),
        quote_plus(key, safe=""),
        html.escape(key),
    }
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)), re.I)
