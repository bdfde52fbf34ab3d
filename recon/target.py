"""Where submissions go: a *target* is the base URL's scheme, host, port and path prefix.

Every submission attempt records its target (never the key), and an acceptance counts
only for the target that gave it. A target is either a real LMS or a *practice* sandbox:

* recon's sandbox (in-process :class:`recon.sandbox.Sandbox` or ``recon sandbox serve``)
  answers the ping with ``{"valid": true, "practice": true}``.
* A target is practice only when its ping says so **and** its host is loopback (the
  sandbox speaks plain http, which recon sends only to loopback). Anything else, a ping
  without the mark, or a target that was not pinged, is a real LMS: a practice target
  that cannot be recognised is treated as real, never the other way round.

``Target.url`` is normalised so that spellings of one address agree
(``https://LMS.example.com/`` and ``https://lms.example.com:443`` are one target): the
scheme and host in lower case, the port always written, the path prefix without its
trailing slash; user names, passwords, queries and fragments are never part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import ApiError

if TYPE_CHECKING:
    from .client import LmsApi

PRACTICE_LABEL = "practice sandbox: nothing reaches your LMS"
"""What the widget, the demo and ``recon submit`` say when submissions go to a sandbox."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def target_url(base_url: str) -> str:
    """``scheme://host:port[/prefix]`` of a base URL: its identity as a target."""
    try:
        parts = urlsplit(base_url.strip())
        port = parts.port
    except ValueError:
        raise ApiError("the base URL is not a valid URL") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        raise ApiError("the base URL must look like https://yourcompany.thoughtindustries.com")
    if ":" in host:
        host = f"[{host}]"
    port = port if port is not None else _DEFAULT_PORTS[scheme]
    return f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"


def is_loopback_url(url: str) -> bool:
    """True when the target's host is a loopback address (or ``localhost``)."""
    from .client import is_loopback_host

    return is_loopback_host(urlsplit(url).hostname or "")


@dataclass(frozen=True)
class Target:
    """Where one submission goes. ``url``: see :func:`target_url`; ``practice``: a
    recon sandbox, whose acceptances never count for a real LMS."""

    url: str
    practice: bool = False

    @classmethod
    def real(cls, base_url: str) -> Target:
        return cls(target_url(base_url), practice=False)

    @property
    def label(self) -> str:
        """What a person is told: the practice sentence, or the LMS's URL."""
        return PRACTICE_LABEL if self.practice else self.url

    @property
    def kind(self) -> str:
        return "practice" if self.practice else "LMS"

    def __str__(self) -> str:
        return f"practice sandbox {self.url}" if self.practice else self.url


def probe(client: LmsApi) -> Target:
    """Ping ``client``'s base URL and say what it is. Raises the ping's :class:`ApiError`
    (key refused, wrong URL, not the LMS API, unreachable): nothing should be sent then."""
    answer = client.ping()
    url = target_url(client.base_url)
    practice = answer.get("practice") is True and is_loopback_url(url)
    return Target(url, practice=practice)


def guess(client: LmsApi | None) -> Target | None:
    """What ``client`` talks to, without a request: practice only when a practice sandbox
    runs in this very process at that address; otherwise a real LMS (``probe`` may later
    find it is a sandbox elsewhere)."""
    if client is None:
        return None
    from .sandbox import practice_sandbox_at

    url = target_url(client.base_url)
    return Target(url, practice=practice_sandbox_at(url))


__all__ = ["PRACTICE_LABEL", "Target", "guess", "is_loopback_url", "probe", "target_url"]
