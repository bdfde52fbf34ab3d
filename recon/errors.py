"""The one exception tree of recon.

Every error a user can meet is a :class:`ReconError`; the CLI turns any of them into a
clear message and exit code 2, and nothing below it ever prints the API key.

::

    ReconError
     +-- InputError            a file, column or config value we cannot use
     |    +-- ConfigError      recon.toml itself is wrong
     +-- LedgerError           the SQLite ledger cannot be used
     |    +-- LedgerBusyError  another `recon submit` holds the ledger
     |    +-- TargetError      a submit to an LMS the ledger does not belong to
     +-- ApiError              the LMS API answered something that stops the run
          +-- AuthError        401/403: the API key was refused
          +-- NotFoundError    404: wrong base URL
          +-- FeatureOffError  the company's externalActivity feature is off
          +-- UnexpectedAnswerError  not an answer the API documents (a 200 with a body,
          |    |               a 202, a 4xx without `errors`...): not counted
          |    +-- RedirectError  a 3xx: redirects are never followed
          +-- TlsError         the server's TLS certificate could not be verified
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class ReconError(Exception):
    """Base of every error recon raises on purpose."""


class InputError(ReconError):
    """An input file, column or value that cannot be used.

    Carries the file and column it concerns, and the columns found, so the message can
    tell the analyst exactly what to fix.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        column: str | None = None,
        columns_found: Sequence[str] | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.column = column
        self.columns_found = list(columns_found) if columns_found is not None else None
        parts = [message]
        if self.columns_found is not None:
            found = ", ".join(repr(c) for c in self.columns_found) or "(none)"
            parts.append(f"columns found: {found}")
        super().__init__("; ".join(parts))


class ConfigError(InputError):
    """recon.toml is missing, unreadable or has a wrong value."""


class LedgerError(ReconError):
    """The ledger file cannot be opened, migrated or written."""


class LedgerBusyError(LedgerError):
    """Another `recon submit` is already running against this ledger."""


class TargetError(LedgerError):
    """A submit to a real LMS other than the one the ledger (or recon.toml) belongs to,
    or one that needs a decision about attempts of unknown target first."""


class ApiError(ReconError):
    """The LMS API answered in a way that stops the whole submission.

    ``status`` is the HTTP status (None for a transport failure), ``url`` the request
    URL and ``key`` the proposal key of the record whose answer stopped the run (None for
    the ping before sending); none of them ever contains the API key.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        key: str | None = None,
    ):
        self.status = status
        self.url = url
        self.key = key
        super().__init__(message)


class AuthError(ApiError):
    """401/403: the API key was refused."""


class NotFoundError(ApiError):
    """404: the base URL does not point at the LMS API."""


class FeatureOffError(ApiError):
    """The company's `externalActivity` feature is not enabled."""


class UnexpectedAnswerError(ApiError):
    """An answer the API does not document (a ``200`` with a body, a ``202``, a redirect,
    a ``4xx`` without ``errors``...): something other than the LMS may be answering, so
    nothing is counted and the run stops."""


class RedirectError(UnexpectedAnswerError):
    """A ``3xx``: recon never follows a redirect (a login page answering the redirected
    request would look like an accepted record). ``location`` is where it pointed,
    cleaned like any server text."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        key: str | None = None,
        location: str | None = None,
    ):
        self.location = location
        super().__init__(message, status=status, url=url, key=key)


class TlsError(ApiError):
    """The server's TLS certificate could not be verified: the key is not sent there."""
