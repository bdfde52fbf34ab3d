"""`recon.toml`: where the four inputs are and which of their columns mean what.

Paths in the file are relative to the config file's folder. The format is a contract:
analysts and tests write it by hand (see the README for every key).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError
from .validation import STATUSES

DEFAULT_DATE_FORMATS = ("%m/%d/%Y", "%d %b %Y")


@dataclass(frozen=True)
class ExternalSpec:
    """The provider's export: one row per learner and course."""

    file: Path
    learner: str
    path: str
    status: str
    completion_date: str
    learner_kind: str = "email"
    path_kind: str = "code"
    activity_date: str | None = None
    sheet: str | None = None
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    timezone: str = "UTC"
    statuses: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgressSpec:
    """The LMS's learning-path progress export."""

    file: Path
    user_id: str = "userId"
    path_id: str = "learningPathId"
    status: str = "status"
    completion_date: str | None = None
    sheet: str | None = None


@dataclass(frozen=True)
class UsersSpec:
    """The learner directory: email -> LMS user id."""

    file: Path
    email: str = "email"
    user_id: str = "userId"
    sheet: str | None = None


@dataclass(frozen=True)
class PathsSpec:
    """The provider's course code -> LMS learning path id."""

    file: Path
    external_code: str = "externalCode"
    learning_path_id: str = "learningPathId"
    sheet: str | None = None


@dataclass(frozen=True)
class Config:
    """A whole `recon.toml`, paths resolved."""

    external: ExternalSpec
    progress: ProgressSpec
    users: UsersSpec | None = None
    paths: PathsSpec | None = None
    source: Path | None = None

    def status_map(self) -> dict[str, str]:
        """Provider word (trimmed, lower case) -> LMS status; the LMS names map to themselves."""
        mapping = {s: s for s in STATUSES}
        mapping.update({k.strip().lower(): v.strip() for k, v in self.external.statuses.items()})
        return mapping


def _table(doc: dict[str, Any], name: str, path: Path, required: bool = True) -> dict[str, Any]:
    value = doc.get(name)
    if value is None:
        if required:
            raise ConfigError(f"{path}: the [{name}] table is missing", file=path)
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{name}] must be a table", file=path)
    return value


def _str(table: dict[str, Any], key: str, section: str, path: Path, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{path}: [{section}] needs `{key}`", file=path)
        return default
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: [{section}] `{key}` must be a non-empty string", file=path)
    return value


def _file(table: dict[str, Any], section: str, path: Path) -> Path:
    return (path.parent / _str(table, "file", section, path)).resolve()


def _where(exc: UnicodeDecodeError) -> str:
    """Where the first byte that is not UTF-8 sits, as an editor shows it."""
    data = exc.object[: exc.start]
    line = data.count(b"\n") + 1
    column = exc.start - (data.rfind(b"\n") + 1) + 1
    byte = bytes(exc.object[exc.start : exc.start + 1]).hex()
    hint = " (UTF-16?)" if bytes(exc.object[:2]) in (b"\xff\xfe", b"\xfe\xff") else ""
    return f"byte 0x{byte} at line {line}, column {column}{hint}"


def load_config(path: str | Path) -> Config:
    """Read and check a `recon.toml`. Raises :class:`ConfigError` with the reason."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}", file=path) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc}", file=path) from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
        raise ConfigError(
            f"{path}: cannot read the config: it is not UTF-8 text ({_where(exc)}); "
            "save it as UTF-8",
            file=path,
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: cannot read the config: nested too deeply", file=path) from None

    ext = _table(doc, "external", path)
    learner_kind = _str(ext, "learner_kind", "external", path, "email")
    path_kind = _str(ext, "path_kind", "external", path, "code")
    if learner_kind not in ("email", "user_id"):
        raise ConfigError(f'{path}: learner_kind must be "email" or "user_id"', file=path)
    if path_kind not in ("code", "learning_path_id"):
        raise ConfigError(f'{path}: path_kind must be "code" or "learning_path_id"', file=path)
    formats = ext.get("date_formats", list(DEFAULT_DATE_FORMATS))
    if not isinstance(formats, list) or not all(isinstance(f, str) and f for f in formats):
        raise ConfigError(f"{path}: [external] date_formats must be a list of strings", file=path)
    tz = _str(ext, "timezone", "external", path, "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{path}: unknown timezone {tz!r} (use an IANA name)", file=path
        ) from None
    statuses = ext.get("statuses", {})
    if not isinstance(statuses, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in statuses.items()
    ):
        raise ConfigError(f"{path}: [external.statuses] must map words to strings", file=path)

    external = ExternalSpec(
        file=_file(ext, "external", path),
        sheet=ext.get("sheet"),
        learner=_str(ext, "learner", "external", path),
        learner_kind=learner_kind,
        path=_str(ext, "path", "external", path),
        path_kind=path_kind,
        status=_str(ext, "status", "external", path),
        completion_date=_str(ext, "completion_date", "external", path),
        activity_date=_str(ext, "activity_date", "external", path, None),
        date_formats=tuple(formats),
        timezone=tz,
        statuses=dict(statuses),
    )

    prog = _table(doc, "progress", path)
    progress = ProgressSpec(
        file=_file(prog, "progress", path),
        sheet=prog.get("sheet"),
        user_id=_str(prog, "user_id", "progress", path, "userId"),
        path_id=_str(prog, "path_id", "progress", path, "learningPathId"),
        status=_str(prog, "status", "progress", path, "status"),
        completion_date=_str(prog, "completion_date", "progress", path, None),
    )

    # The directory is only needed when learners are named by email, the mapping only
    # when paths are named by code; when present anyway they also vet the ids.
    usr = _table(doc, "users", path, required=learner_kind == "email")
    users = (
        UsersSpec(
            file=_file(usr, "users", path),
            sheet=usr.get("sheet"),
            email=_str(usr, "email", "users", path, "email"),
            user_id=_str(usr, "user_id", "users", path, "userId"),
        )
        if usr
        else None
    )
    pth = _table(doc, "paths", path, required=path_kind == "code")
    paths = (
        PathsSpec(
            file=_file(pth, "paths", path),
            sheet=pth.get("sheet"),
            external_code=_str(pth, "external_code", "paths", path, "externalCode"),
            learning_path_id=_str(pth, "learning_path_id", "paths", path, "learningPathId"),
        )
        if pth
        else None
    )
    return Config(external=external, progress=progress, users=users, paths=paths, source=path)
