"""`recon.toml`: where the four inputs are and which of their columns mean what.

Paths in the file are relative to the config file's folder. The format is a contract:
analysts and tests write it by hand (see the README for every key).
"""

from __future__ import annotations

import difflib
import json
import tomllib
import unicodedata
from dataclasses import dataclass, field, fields
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
    status: str | None
    completion_date: str
    learner_kind: str = "email"
    path_kind: str = "code"
    activity_date: str | None = None
    sheet: str | None = None
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    timezone: str = "UTC"
    statuses: dict[str, str] = field(default_factory=dict)
    # Derived statuses (README, "Your provider's export"): when the export says it in
    # other columns. A status column, when given and not blank on a row, wins.
    percent: str | None = None
    percent_completed: float = 100.0
    completed_flag: str | None = None
    success: str | None = None
    # For suggestions only (recon.suggest): compared with [users] and [paths] columns.
    learner_name: str | None = None
    employee_id: str | None = None
    path_title: str | None = None


@dataclass(frozen=True)
class ProgressSpec:
    """The LMS's learning-path progress export.

    ``statuses`` maps the LMS export's own words (e.g. "In Progress") to the four API
    statuses; ``timezone`` and ``date_formats`` read its dates, as in [external].
    """

    file: Path
    user_id: str = "userId"
    path_id: str = "learningPathId"
    status: str = "status"
    completion_date: str | None = None
    sheet: str | None = None
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    timezone: str = "UTC"
    statuses: dict[str, str] = field(default_factory=dict)

    def status_map(self) -> dict[str, str]:
        """LMS word (trimmed, lower case) -> API status; the four API words map to
        themselves (the loader refuses a table that says otherwise)."""
        mapping = {k.strip().lower(): v.strip().lower() for k, v in self.statuses.items()}
        mapping.update({s: s for s in STATUSES})
        return mapping


@dataclass(frozen=True)
class UsersSpec:
    """The learner directory: email -> LMS user id."""

    file: Path
    email: str = "email"
    user_id: str = "userId"
    sheet: str | None = None
    # For suggestions only: a full-name column, or first and last name columns.
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    employee_id: str | None = None
    # "file" (the default) or "lms": the ledger's latest `recon lms pull` of the users
    # (then `file` and `sheet` are not given and the columns name the API's fields).
    source: str = "file"


@dataclass(frozen=True)
class PathsSpec:
    """The provider's course code -> LMS learning path id."""

    file: Path
    external_code: str = "externalCode"
    learning_path_id: str = "learningPathId"
    sheet: str | None = None
    title: str | None = None  # for suggestions: compared with [external] path_title
    source: str = "file"  # or "lms": the latest pull of the learning paths, as [users]


@dataclass(frozen=True)
class LmsSpec:
    """The real LMS this config's ledger belongs to (optional ``[lms]`` table)."""

    base_url: str | None = None
    # `source = "lms"` runs warn when the pull they use is older than this (days).
    pull_max_age_days: float = 7.0
    # GET /incoming/v2/content's `types` value for learning paths (inferred, not
    # documented: see docs/api/lms-api-facts.md).
    content_type: str = "learningPath"


SOURCES = ("file", "lms")
"""Where [users] and [paths] come from: a file, or the ledger's latest LMS pull."""
LMS_USER_FIELDS = {"email": "email", "user_id": "id", "name": "name"}
"""Column defaults of a [users] table with ``source = "lms"``: the API's field names."""
LMS_PATH_FIELDS = {"external_code": "sku", "learning_path_id": "id", "title": "title"}
"""Column defaults of a [paths] table with ``source = "lms"``: the provider's code is the
learning path's ``sku`` unless ``external_code`` names another field (``slug``)."""


def lms_placeholder(config_path: Path, role: str) -> Path:
    """What ``file`` holds for a table read from the LMS pull: a name saying so, never an
    existing file, replaced by :func:`recon.lms_pull.use_pulls` before anything reads it."""
    return config_path.parent / f"(the ledger's latest LMS pull of {role}: recon lms pull)"


DOTS_IGNORED = ("gmail.com", "googlemail.com")
PLUS_TAGS_IGNORED = ("gmail.com", "googlemail.com")
MIN_SCORE = 0.5


@dataclass(frozen=True)
class IdentitySpec:
    """How suggestions for unknown learners and paths are found (optional ``[identity]``).

    ``dots_ignored`` / ``plus_tags_ignored``: mail domains that deliver ``j.doe+x@`` to
    ``jdoe@``; ``domain_aliases``: old or other domain -> the directory's domain;
    ``use_names``: compare names when both sides have name columns; ``min_score``: the
    lowest score offered.
    """

    dots_ignored: tuple[str, ...] = DOTS_IGNORED
    plus_tags_ignored: tuple[str, ...] = PLUS_TAGS_IGNORED
    domain_aliases: dict[str, str] = field(default_factory=dict)
    use_names: bool = True
    min_score: float = MIN_SCORE


@dataclass(frozen=True)
class Config:
    """A whole `recon.toml`, paths resolved."""

    external: ExternalSpec
    progress: ProgressSpec
    users: UsersSpec | None = None
    paths: PathsSpec | None = None
    source: Path | None = None
    lms: LmsSpec | None = None
    identity: IdentitySpec = field(default_factory=IdentitySpec)

    def status_map(self) -> dict[str, str]:
        """Provider word (trimmed, lower case) -> LMS status; the LMS names map to themselves."""
        mapping = {s: s for s in STATUSES}
        mapping.update({k.strip().lower(): v.strip() for k, v in self.external.statuses.items()})
        return mapping


TABLES: dict[str, type] = {
    "external": ExternalSpec,
    "progress": ProgressSpec,
    "users": UsersSpec,
    "paths": PathsSpec,
    "lms": LmsSpec,
    "identity": IdentitySpec,
}
"""Every table recon.toml may hold, and the dataclass that reads it."""

KEYS: dict[str, tuple[str, ...]] = {
    name: tuple(f.name for f in fields(spec)) for name, spec in TABLES.items()
}
"""Every key each table may hold: the dataclass's fields are the TOML keys."""

WORD_TABLES = frozenset({"statuses", "domain_aliases"})
"""Keys whose value is a table of free words (any key is fine inside)."""


def _distance(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), for names a few letters long."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def closest(word: str, valid: tuple[str, ...] | list[str]) -> str | None:
    """The valid name ``word`` most likely misspells, or None when none is close.

    difflib finds the candidates; among them the fewest edits wins, so that a typo of
    ``status`` is not taken for ``statuses`` merely because that one is longer.
    """
    folded = word.strip().lower()
    found = difflib.get_close_matches(folded, list(valid), n=len(valid), cutoff=0.6)
    if not found:
        return None
    return min(found, key=lambda name: _distance(folded, name))


def _unknown(what: str, valid: tuple[str, ...] | list[str], name: str, shown: str) -> str:
    guess = closest(name, valid)
    if guess is not None:
        return f"unknown {what}; did you mean {shown.format(guess)}?"
    listed = ", ".join(shown.format(v) for v in valid)
    return f"unknown {what}; valid: {listed}"


def check_names(doc: dict[str, Any], path: Path) -> None:
    """Refuse any table or key recon does not know, naming the closest valid one.

    A misspelt name would otherwise be ignored: an `activty_date` silently drops every
    activity date, a `[progres]` table the LMS's words. Inside a word table (the
    `statuses` of [external] and [progress]) every key is a word and is fine.
    """
    tables = list(TABLES)
    for name, value in doc.items():
        if name in TABLES:
            continue
        homes = [t for t in tables if name in KEYS[t]]
        if isinstance(value, dict):
            message = _unknown(f"table [{name}]", tables, name, "[{}]")
        elif homes:
            # A key written above every table header: a common slip, said plainly.
            places = " or ".join(f"[{t}]" for t in homes)
            message = f"unknown key '{name}' outside any table; it belongs in {places}"
        else:
            message = _unknown(f"key '{name}' outside any table", tables, name, "[{}]")
        raise ConfigError(f"{path}: {message}", file=path)
    for table, body in doc.items():
        if not isinstance(body, dict):
            continue  # reported by the loader: "[x] must be a table"
        valid = KEYS[table]
        for key, value in body.items():
            if key in valid:
                continue
            if isinstance(value, dict):
                subtables = tuple(k for k in valid if k in WORD_TABLES) or valid
                message = _unknown(f"table [{table}.{key}]", subtables, key, f"[{table}.{{}}]")
            else:
                message = _unknown(f"key '{key}' in [{table}]", valid, key, "'{}'")
            raise ConfigError(f"{path}: {message}", file=path)


def _table(doc: dict[str, Any], name: str, path: Path, required: bool = True) -> dict[str, Any]:
    value = doc.get(name)
    if value is None:
        if required:
            raise ConfigError(f"{path}: the [{name}] table is missing", file=path)
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{name}] must be a table", file=path)
    return value


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _str(table: dict[str, Any], key: str, section: str, path: Path, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{path}: [{section}] needs `{key}`", file=path)
        return default
    value = table[key]
    if not isinstance(value, str):
        raise ConfigError(
            f"{path}: [{section}] `{key}` must be a non-empty string, not {_type_name(value)}",
            file=path,
        )
    if not value.strip():
        raise ConfigError(f"{path}: [{section}] `{key}` must be a non-empty string", file=path)
    return value


def _file(table: dict[str, Any], section: str, path: Path) -> Path:
    return (path.parent / _str(table, "file", section, path)).resolve()


def _formats(table: dict[str, Any], section: str, path: Path) -> tuple[str, ...]:
    formats = table.get("date_formats", list(DEFAULT_DATE_FORMATS))
    if not isinstance(formats, list) or not all(isinstance(f, str) and f for f in formats):
        raise ConfigError(f"{path}: [{section}] date_formats must be a list of strings", file=path)
    return tuple(formats)


def _timezone(table: dict[str, Any], section: str, path: Path) -> str:
    tz = _str(table, "timezone", section, path, "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{path}: [{section}] unknown timezone {tz!r} (use an IANA name)", file=path
        ) from None
    return str(tz)


def _words(table: dict[str, Any], section: str, path: Path) -> dict[str, str]:
    statuses = table.get("statuses", {})
    if not isinstance(statuses, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in statuses.items()
    ):
        raise ConfigError(f"{path}: [{section}.statuses] must map words to strings", file=path)
    return dict(statuses)


def _lms_words(table: dict[str, Any], path: Path) -> dict[str, str]:
    """[progress.statuses]: each LMS word must mean one of the four API statuses, and
    the API words keep their meaning (an export that says "completed" means it)."""
    statuses = _words(table, "progress", path)
    seen: dict[str, tuple[str, str]] = {}
    for word, status in statuses.items():
        meaning = status.strip().lower()
        if meaning not in STATUSES:
            raise ConfigError(
                f"{path}: [progress.statuses] {word!r} = {status!r}: an LMS word must mean "
                f"one of {', '.join(STATUSES)}",
                file=path,
            )
        key = word.strip().lower()
        if key in STATUSES and meaning != key:
            raise ConfigError(
                f"{path}: [progress.statuses] {word!r} is an API status and always means itself",
                file=path,
            )
        if key in seen and seen[key][1] != meaning:
            raise ConfigError(
                f"{path}: [progress.statuses] {seen[key][0]!r} and {word!r} are the same word "
                "(trimmed, any case) with two meanings",
                file=path,
            )
        seen[key] = (word, meaning)
    return statuses


def _where(exc: UnicodeDecodeError) -> str:
    """Where the first byte that is not UTF-8 sits, as an editor shows it."""
    data = exc.object[: exc.start]
    line = data.count(b"\n") + 1
    column = exc.start - (data.rfind(b"\n") + 1) + 1
    byte = bytes(exc.object[exc.start : exc.start + 1]).hex()
    hint = " (UTF-16?)" if bytes(exc.object[:2]) in (b"\xff\xfe", b"\xfe\xff") else ""
    return f"byte 0x{byte} at line {line}, column {column}{hint}"


LEARNER_KINDS = ("email", "user_id", "email_or_user_id")
"""How the provider names learners; ``email_or_user_id`` (xAPI: an mbox or an account)
looks a value with ``@`` up as an email and any other as a user id."""

EPOCH_FORMATS = ("epoch_ms", "epoch_s", "excel_serial")
"""Date formats that are numbers, beside strptime codes: Unix time in milliseconds or
seconds, and Excel's day numbers (days since 1899-12-30, in the file's timezone)."""


def _number(table: dict[str, Any], key: str, section: str, path: Path, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{path}: [{section}] `{key}` must be a number above 0", file=path)
    return float(value)


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string that parses back to exactly ``text``: JSON escapes
    what TOML needs, and control, format (bidi, zero-width) and separator characters are
    written as escapes, so a line recon writes for recon.toml shows what it says."""
    return "".join(
        (f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")
        else c
        for c in json.dumps(text, ensure_ascii=False)
    )


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
    check_names(doc, path)

    ext = _table(doc, "external", path)
    learner_kind = _str(ext, "learner_kind", "external", path, "email")
    path_kind = _str(ext, "path_kind", "external", path, "code")
    if learner_kind not in LEARNER_KINDS:
        raise ConfigError(
            f"{path}: learner_kind must be one of {', '.join(map(repr, LEARNER_KINDS))}",
            file=path,
        )
    if path_kind not in ("code", "learning_path_id"):
        raise ConfigError(f'{path}: path_kind must be "code" or "learning_path_id"', file=path)

    external = ExternalSpec(
        file=_file(ext, "external", path),
        sheet=_str(ext, "sheet", "external", path, None),
        learner=_str(ext, "learner", "external", path),
        learner_kind=learner_kind,
        path=_str(ext, "path", "external", path),
        path_kind=path_kind,
        status=_str(ext, "status", "external", path, None),
        completion_date=_str(ext, "completion_date", "external", path),
        activity_date=_str(ext, "activity_date", "external", path, None),
        date_formats=_formats(ext, "external", path),
        timezone=_timezone(ext, "external", path),
        statuses=_words(ext, "external", path),
        percent=_str(ext, "percent", "external", path, None),
        percent_completed=_number(ext, "percent_completed", "external", path, 100.0),
        completed_flag=_str(ext, "completed_flag", "external", path, None),
        success=_str(ext, "success", "external", path, None),
        learner_name=_str(ext, "learner_name", "external", path, None),
        employee_id=_str(ext, "employee_id", "external", path, None),
        path_title=_str(ext, "path_title", "external", path, None),
    )
    if external.status is None and not (external.percent or external.completed_flag):
        raise ConfigError(
            f"{path}: [external] needs `status` (or a derived status: `percent` or "
            "`completed_flag`)",
            file=path,
        )
    if external.success is not None and external.status is None:
        raise ConfigError(
            f"{path}: [external] `success` pairs with `status` (the completion column)",
            file=path,
        )

    prog = _table(doc, "progress", path)
    progress = ProgressSpec(
        file=_file(prog, "progress", path),
        sheet=_str(prog, "sheet", "progress", path, None),
        user_id=_str(prog, "user_id", "progress", path, "userId"),
        path_id=_str(prog, "path_id", "progress", path, "learningPathId"),
        status=_str(prog, "status", "progress", path, "status"),
        completion_date=_str(prog, "completion_date", "progress", path, None),
        date_formats=_formats(prog, "progress", path),
        timezone=_timezone(prog, "progress", path),
        statuses=_lms_words(prog, path),
    )

    # The directory is only needed when learners are named by email, the mapping only
    # when paths are named by code; when present anyway they also vet the ids.
    usr = _table(doc, "users", path, required=learner_kind == "email")
    users = None
    if usr:
        source = _source(usr, "users", path)
        lms_fields = source == "lms"
        users = UsersSpec(
            file=lms_placeholder(path, "users") if lms_fields else _file(usr, "users", path),
            sheet=_str(usr, "sheet", "users", path, None),
            email=_str(usr, "email", "users", path, "email"),
            user_id=_str(usr, "user_id", "users", path, "id" if lms_fields else "userId"),
            name=_str(usr, "name", "users", path, "name" if lms_fields else None),
            first_name=_str(usr, "first_name", "users", path, None),
            last_name=_str(usr, "last_name", "users", path, None),
            employee_id=_str(usr, "employee_id", "users", path, None),
            source=source,
        )
    pth = _table(doc, "paths", path, required=path_kind == "code")
    paths = None
    if pth:
        source = _source(pth, "paths", path)
        lms_fields = source == "lms"
        paths = PathsSpec(
            file=lms_placeholder(path, "paths") if lms_fields else _file(pth, "paths", path),
            sheet=_str(pth, "sheet", "paths", path, None),
            external_code=_str(
                pth, "external_code", "paths", path, "sku" if lms_fields else "externalCode"
            ),
            learning_path_id=_str(
                pth, "learning_path_id", "paths", path, "id" if lms_fields else "learningPathId"
            ),
            title=_str(pth, "title", "paths", path, "title" if lms_fields else None),
            source=source,
        )
    lms_table = _table(doc, "lms", path, required=False)
    lms = _lms(lms_table, path) if lms_table else None
    if lms is not None and lms.base_url is not None:
        from .errors import ApiError
        from .target import target_url

        try:
            target_url(lms.base_url)
        except ApiError:
            raise ConfigError(
                f"{path}: [lms] base_url must look like https://yourcompany.thoughtindustries.com",
                file=path,
            ) from None
    return Config(
        external=external,
        progress=progress,
        users=users,
        paths=paths,
        source=path,
        lms=lms,
        identity=_identity(_table(doc, "identity", path, required=False), path),
    )


def _source(table: dict[str, Any], section: str, path: Path) -> str:
    """[users]/[paths] ``source``: "file" (needs ``file``) or "lms" (takes no ``file``)."""
    source = _str(table, "source", section, path, "file")
    if source not in SOURCES:
        raise ConfigError(
            f'{path}: [{section}] `source` must be "file" or "lms", not {source!r}', file=path
        )
    if source == "lms":
        given = [k for k in ("file", "sheet") if k in table]
        if given:
            raise ConfigError(
                f'{path}: [{section}] has source = "lms" and `{given[0]}`: the LMS pull is '
                f"read instead of a file; remove `{given[0]}`, or the source line",
                file=path,
            )
    return source


def _lms(table: dict[str, Any], path: Path) -> LmsSpec:
    age = table.get("pull_max_age_days", 7.0)
    if isinstance(age, bool) or not isinstance(age, int | float) or not age > 0:
        raise ConfigError(f"{path}: [lms] `pull_max_age_days` must be a number above 0", file=path)
    return LmsSpec(
        base_url=_str(table, "base_url", "lms", path, None),
        pull_max_age_days=float(age),
        content_type=_str(table, "content_type", "lms", path, "learningPath"),
    )


def _domains(table: dict[str, Any], key: str, path: Path, default: tuple[str, ...]) -> tuple:
    value = table.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{path}: [identity] `{key}` must be a list of mail domains", file=path)
    return tuple(v.strip().lower() for v in value)


def _identity(table: dict[str, Any], path: Path) -> IdentitySpec:
    """[identity]: how suggestions are found (README, "Identity")."""
    aliases = table.get("domain_aliases", {})
    if not isinstance(aliases, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip()
        for k, v in aliases.items()
    ):
        raise ConfigError(
            f"{path}: [identity.domain_aliases] must map a domain to a domain", file=path
        )
    use_names = table.get("use_names", True)
    if not isinstance(use_names, bool):
        raise ConfigError(f"{path}: [identity] `use_names` must be true or false", file=path)
    min_score = table.get("min_score", MIN_SCORE)
    if (
        isinstance(min_score, bool)
        or not isinstance(min_score, int | float)
        or not (0 <= min_score <= 1)
    ):
        raise ConfigError(f"{path}: [identity] `min_score` must be a number from 0 to 1", file=path)
    return IdentitySpec(
        dots_ignored=_domains(table, "dots_ignored", path, DOTS_IGNORED),
        plus_tags_ignored=_domains(table, "plus_tags_ignored", path, PLUS_TAGS_IGNORED),
        domain_aliases={k.strip().lower(): v.strip().lower() for k, v in aliases.items()},
        use_names=use_names,
        min_score=float(min_score),
    )
