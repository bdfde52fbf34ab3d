"""`recon init`: a first recon.toml from the files themselves.

It reads each file the way a reconcile will (same encodings, delimiters, sheets), looks at
the header and a sample of the content, and writes a commented recon.toml. It guesses only
to *write a suggestion*: every decision is printed, what it could not decide is marked in
the file (``# TODO``), and the analyst runs the next command knowingly. With a preset, the
provider's columns and words come from the preset, and init says which expected columns
the file has and which it lacks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .config import toml_string
from .errors import InputError
from .presets import Preset, load_preset
from .validation import STATUSES

SAMPLE_ROWS = 5000

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")

DATE_CANDIDATES = (
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%d-%b-%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%d/%m/%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
)
"""strptime codes tried, in this order, for dates that are not ISO 8601."""

# Common names of the other three files' columns, compared without case, blanks, _ or -.
PROGRESS_NAMES = {
    "user_id": ("userid", "user", "learnerid"),
    "path_id": ("learningpathid", "pathid", "learningpath"),
    "status": ("status", "progressstatus"),
    "completion_date": ("completiondate", "completedat", "completedon", "completed"),
}
USERS_NAMES = {"email": ("email", "emailaddress", "mail"), "user_id": ("userid", "id")}
PATHS_NAMES = {
    "external_code": ("externalcode", "code", "coursecode", "sku", "courseid"),
    "learning_path_id": ("learningpathid", "pathid", "id"),
}
DEFAULTS = {
    "progress": {
        "user_id": "userId",
        "path_id": "learningPathId",
        "status": "status",
        "completion_date": "completionDate",
    },
    "users": {"email": "email", "user_id": "userId"},
    "paths": {"external_code": "externalCode", "learning_path_id": "learningPathId"},
}


def _fold(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name).lower()


def suggest_status(word: str) -> str | None:
    """The LMS status a provider's word most likely means; None when it cannot tell."""
    w = word.strip().lower()
    if w in STATUSES:
        return w
    if re.search(r"not[\s_-]*(yet[\s_-]*)?started|registered|enrolled|assigned|not attempted", w):
        return "not-started"
    if re.search(r"in[\s_-]*progress|started|attempted|browsed|ongoing|active", w):
        return "started"
    if re.search(r"fail", w):
        return "not-completed"
    if re.search(r"^(completed?|passed|done|finished|complete)$", w):
        return "completed"
    return None


def date_formats_for(values: Iterable[str]) -> tuple[list[str], list[str]]:
    """(strptime codes that read the non-ISO values, values none of them reads)."""
    rest = [v for v in values if v and not _ISO.match(v)]
    chosen: list[str] = []
    # Month or day first: whichever reads more of the values (a few bad dates must not
    # turn a US file around); a tie keeps month first and init says it could not tell.
    month_first = sum(1 for v in rest if _parses(v, "%m/%d/%Y"))
    day_first = sum(1 for v in rest if _parses(v, "%d/%m/%Y"))
    drop = "%m/%d" if day_first > month_first else "%d/%m"
    candidates = [c for c in DATE_CANDIDATES if not c.startswith(drop)]
    for fmt in candidates:
        if not rest:
            break
        readable = [v for v in rest if _parses(v, fmt)]
        if readable:
            chosen.append(fmt)
            rest = [v for v in rest if v not in set(readable)]
    return chosen, rest


def _parses(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _epoch_kind(values: Sequence[str]) -> str | None:
    if not values or not all(re.fullmatch(r"\d+(\.\d+)?", v) for v in values):
        return None
    numbers = [float(v) for v in values]
    if all(1e12 <= n < 1e14 for n in numbers):
        return "epoch_ms"
    if all(1e9 <= n < 1e11 for n in numbers):
        return "epoch_s"
    if all(20000 <= n < 80000 for n in numbers):
        return "excel_serial"
    return None


@dataclass
class ColumnGuess:
    """What init decided for one role, and why (printed and written as a comment)."""

    role: str
    column: str | None
    why: str


@dataclass
class ProviderPlan:
    """The [external] table init will write, with its reasons."""

    keys: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, str | None] = field(default_factory=dict)
    status_counts: Counter[str] = field(default_factory=Counter)
    reasons: list[ColumnGuess] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unreadable_dates: dict[str, list[str]] = field(default_factory=dict)
    preset: Preset | None = None


def _by_spelling(words: Iterable[str]) -> Counter[str]:
    """Counts of words compared without case (as the status map compares them), each
    under its most frequent spelling."""
    spellings: dict[str, Counter[str]] = {}
    for word in words:
        spellings.setdefault(word.strip().lower(), Counter())[word] += 1
    return Counter({c.most_common(1)[0][0]: sum(c.values()) for c in spellings.values()})


def _values(frame: pd.DataFrame, column: str) -> list[str]:
    series = frame[column].dropna().astype(str).str.strip()
    return [v for v in series if v]


def _share(values: Sequence[str], pattern: re.Pattern[str]) -> float:
    return sum(1 for v in values if pattern.match(v)) / len(values) if values else 0.0


def _is_date_column(values: Sequence[str]) -> bool:
    if not values:
        return False
    if _epoch_kind(values[:200]):
        return True
    readable = sum(
        1 for v in values[:200] if _ISO.match(v) or any(_parses(v, f) for f in DATE_CANDIDATES)
    )
    return readable / min(len(values), 200) >= 0.8


def plan_provider(frame: pd.DataFrame, preset: Preset | None = None) -> ProviderPlan:
    """Decide the [external] table from a sample of the provider's rows (all text)."""
    plan = ProviderPlan(preset=preset)
    columns = list(frame.columns)
    if preset is not None:
        plan.keys = {k: v for k, v in preset.external.items() if k != "statuses"}
        plan.statuses = dict(preset.statuses)
        folded = {_fold(c): c for c in columns}
        for expected in preset.columns:
            (plan.found if _fold(expected) in folded else plan.missing).append(expected)
        for key in (
            "learner",
            "path",
            "status",
            "completion_date",
            "activity_date",
            "percent",
            "completed_flag",
            "success",
        ):
            name = plan.keys.get(key)
            if name is not None and name not in columns and _fold(name) in folded:
                plan.keys[key] = folded[_fold(name)]
        plan.reasons.append(ColumnGuess("preset", preset.name, f"{preset.title} ({preset.source})"))
        if "date_formats" not in plan.keys:
            plan.keys["date_formats"] = _formats_of(plan, values_of(frame))
        status_column = plan.keys.get("status")
        if status_column in columns:
            words = _by_spelling(_values(frame, status_column))
            if plan.keys.get("success") in columns:
                success = frame[plan.keys["success"]].fillna("").astype(str).str.strip()
                completion = frame[status_column].fillna("").astype(str).str.strip()
                words = _by_spelling(
                    f"{c}/{s}" for c, s in zip(completion, success, strict=True) if c or s
                )
            plan.status_counts = words
            known = {k.strip().lower() for k in plan.statuses} | set(STATUSES)
            for word in words:
                if word.strip().lower() not in known:
                    plan.statuses[word] = suggest_status(word)
        return plan

    taken: set[str] = set()

    def pick(role: str, candidates: list[str], why: str) -> str | None:
        for c in candidates:
            if c not in taken:
                taken.add(c)
                plan.reasons.append(ColumnGuess(role, c, why))
                return c
        plan.reasons.append(ColumnGuess(role, None, "no column looks like it: fill it in"))
        return None

    values = {c: _values(frame, c) for c in columns}
    emails = sorted(
        (c for c in columns if _share(values[c][:500], _EMAIL) >= 0.8),
        key=lambda c: -_share(values[c][:500], _EMAIL),
    )
    uuids = [c for c in columns if _share(values[c][:500], _UUID) >= 0.8]
    if emails:
        plan.keys["learner"] = pick("learner", emails, "most of its values are emails")
        plan.keys["learner_kind"] = "email"
    else:
        learner_ids = [c for c in uuids if re.search(r"user|learner|person", c, re.I)]
        plan.keys["learner"] = pick("learner", learner_ids, "user ids (UUIDs) in a user column")
        plan.keys["learner_kind"] = "user_id"
    dates = [c for c in columns if c not in taken and _is_date_column(values[c])]
    completion = [c for c in dates if re.search(r"complet|finish|end|pass", c, re.I)]
    plan.keys["completion_date"] = pick(
        "completion_date", completion, "a date column named for completion"
    )
    activity = [
        c
        for c in dates
        if c not in taken
        and re.search(r"activ|start|enrol|first|view|access|last|regist|progress", c, re.I)
    ]
    activity_date = pick("activity_date", activity, "a date column named for activity")
    if activity_date is not None:
        plan.keys["activity_date"] = activity_date
    # Status: few distinct words, most of them words the LMS would recognise.
    candidates = []
    for c in columns:
        if c in taken or not values[c]:
            continue
        distinct = set(values[c])
        if len(distinct) > 30:
            continue
        named = re.search(r"status|state|progress|complet", c, re.I) is not None
        understood = sum(1 for w in distinct if suggest_status(w)) / len(distinct)
        if named or understood >= 0.5:
            candidates.append((not named, -understood, c))
    percent = [
        c
        for c in columns
        if c not in taken
        and re.search(r"%|percent|progress", c, re.I)
        and values[c]
        and all(_NUMBER.match(v.rstrip("% ")) for v in values[c][:500])
    ]
    flags = [
        c
        for c in columns
        if c not in taken
        and re.search(r"complet", c, re.I)
        and values[c]
        and {v.lower() for v in values[c]} <= {"yes", "no", "y", "n", "true", "false", "1", "0"}
    ]
    status_cols = [c for _, _, c in sorted(candidates) if c not in percent and c not in flags]
    if status_cols:
        plan.keys["status"] = pick("status", status_cols, "few distinct status-like words")
    if flags:
        plan.keys["completed_flag"] = pick("completed_flag", flags, "a yes/no completed column")
    if percent:
        plan.keys["percent"] = pick("percent", percent, "a 0-100 progress column")
    if not (status_cols or flags or percent):
        plan.keys["status"] = None
        plan.reasons.append(ColumnGuess("status", None, "no status column found: fill it in"))
    codes = [
        c
        for c in columns
        if c not in taken
        and re.search(r"course|path|content|training|program|code|sku", c, re.I)
        and re.search(r"id|code|sku|key|ref", c, re.I)
    ]
    titled = [c for c in columns if c not in taken and re.search(r"course|path|content", c, re.I)]
    plan.keys["path"] = pick("path", codes or titled, "named for a course code or id")
    path_values = values.get(plan.keys["path"] or "", [])
    plan.keys["path_kind"] = (
        "learning_path_id" if path_values and _share(path_values[:500], _UUID) >= 0.8 else "code"
    )
    if plan.keys.get("status"):
        plan.status_counts = _by_spelling(values[plan.keys["status"]])
        for word in plan.status_counts:
            if word.strip().lower() not in STATUSES:
                plan.statuses[word] = suggest_status(word)
    plan.keys["date_formats"] = _formats_of(plan, values)
    return plan


def values_of(frame: pd.DataFrame) -> dict[str, list[str]]:
    return {c: _values(frame, c) for c in frame.columns}


def _formats_of(plan: ProviderPlan, values: dict[str, list[str]]) -> list[str]:
    """The date formats that read the date columns' values (after ISO 8601); values none
    reads are kept in ``plan.unreadable_dates`` for a TODO line."""
    formats: list[str] = []
    for key in ("completion_date", "activity_date"):
        column = plan.keys.get(key)
        if not column or column not in values:
            continue
        kind = _epoch_kind(values[column][:500])
        if kind:
            if kind not in formats:
                formats.append(kind)
            continue
        found, unreadable = date_formats_for(values[column])
        for fmt in found:
            if fmt not in formats:
                formats.append(fmt)
        if unreadable:
            plan.unreadable_dates[column] = unreadable[:5]
    return formats


def plan_table(
    columns: Sequence[str], names: dict[str, tuple[str, ...]], role: str
) -> dict[str, Any]:
    """Column names for the progress, users or paths table: (key -> column or None)."""
    folded = {_fold(c): c for c in columns}
    chosen: dict[str, Any] = {}
    for key, aliases in names.items():
        default = DEFAULTS[role][key]
        hit = next((folded[a] for a in (_fold(default), *aliases) if a in folded), None)
        chosen[key] = hit
    return chosen


def _toml_str(value: str) -> str:
    return toml_string(value)


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path.resolve())


@dataclass
class InitResult:
    text: str
    messages: list[str]
    todo: int


def render_config(
    provider: Path,
    plan: ProviderPlan,
    out: Path,
    *,
    timezone: str | None,
    progress: tuple[Path, dict[str, Any]] | None,
    users: tuple[Path, dict[str, Any]] | None,
    paths: tuple[Path, dict[str, Any]] | None,
) -> InitResult:
    """The recon.toml text, with a comment for every decision and ``# TODO`` for gaps."""
    folder = out.parent
    lines = [
        "# Written by `recon init`; check every TODO, then run the command it printed.",
        "",
        "[external]                      # the provider's export",
        f"file = {_toml_str(_relative(provider, folder))}",
    ]
    todo = 0
    why = {g.role: g.why for g in plan.reasons}
    order = (
        "learner",
        "learner_kind",
        "path",
        "path_kind",
        "status",
        "completed_flag",
        "percent",
        "percent_completed",
        "success",
        "completion_date",
        "activity_date",
    )
    for key in order:
        if key not in plan.keys:
            continue
        value = plan.keys[key]
        if value is None:
            if key in ("learner", "path", "completion_date") or (
                key == "status"
                and not plan.keys.get("completed_flag")
                and not plan.keys.get("percent")
            ):
                lines.append(f'{key} = ""   # TODO: {why.get(key, "fill in the column name")}')
                todo += 1
            continue
        comment = f"   # {why[key]}" if key in why and plan.preset is None else ""
        rendered = _toml_str(value) if isinstance(value, str) else repr(value)
        lines.append(f"{key} = {rendered}{comment}")
    formats = plan.keys.get("date_formats", [])
    lines.append(
        "date_formats = [" + ", ".join(_toml_str(f) for f in formats) + "]"
        "   # tried after ISO 8601, in order"
    )
    tz = timezone or plan.keys.get("timezone") or "UTC"
    tz_note = "" if timezone or plan.keys.get("timezone") else "   # TODO: the provider's zone"
    lines.append(f"timezone = {_toml_str(tz)}{tz_note}")
    for column, samples in plan.unreadable_dates.items():
        lines.append(
            f"# TODO: dates in {column!r} that no format reads, e.g. "
            + ", ".join(repr(s) for s in samples)
        )
        todo += 1
    if plan.statuses or plan.status_counts:
        lines += ["", "[external.statuses]             # provider's words -> LMS status"]
        for word, status in plan.statuses.items():
            count = plan.status_counts.get(word)
            counted = f"   # {count} row(s)" if count else ""
            if status is None:
                lines.append(
                    f'# {_toml_str(word)} = ""   # TODO: one of {", ".join(STATUSES)}{counted}'
                )
                todo += 1
            else:
                lines.append(f"{_toml_str(word)} = {_toml_str(status)}{counted}")
    for role, table, comment in (
        ("progress", progress, "the LMS's learning-path progress export"),
        ("users", users, "learner directory: email -> LMS user id"),
        ("paths", paths, "provider's course code -> LMS learning path id"),
    ):
        lines.append("")
        if table is None:
            needed = (
                (role == "users" and plan.keys.get("learner_kind") == "email")
                or (role == "paths" and plan.keys.get("path_kind") == "code")
                or role == "progress"
            )
            if needed:
                lines.append(f"[{role}]   # {comment}")
                lines.append('file = ""   # TODO: give --' + role + " FILE or fill in")
                todo += 1
            continue
        file, chosen = table
        lines.append(f"[{role}]{' ' * max(1, 24 - len(role))}# {comment}")
        lines.append(f"file = {_toml_str(_relative(file, folder))}")
        for key, column in chosen.items():
            if column is None:
                lines.append(f'{key} = ""   # TODO: no column named like {DEFAULTS[role][key]!r}')
                todo += 1
            else:
                lines.append(f"{key} = {_toml_str(column)}")
    messages = []
    if plan.preset is not None:
        messages.append(f"preset {plan.preset.name}: {plan.preset.title}")
        messages.append(f"  source: {plan.preset.source}")
        if not plan.preset.documented:
            messages.append("  the vendor does not document every column:")
            messages.extend(f"    {line}" for line in plan.preset.notes.splitlines())
        messages.append(f"  expected columns found: {', '.join(plan.found) or '(none)'}")
        if plan.missing:
            messages.append(f"  expected columns MISSING: {', '.join(plan.missing)}")
    for guess in plan.reasons:
        if guess.role != "preset":
            messages.append(f"  {guess.role}: {guess.column or '(not found)'} - {guess.why}")
    for word, count in plan.status_counts.most_common():
        if word.strip().lower() in STATUSES:
            messages.append(
                f"  status word {word!r} ({count} row(s)) -> {word.strip().lower()} "
                "(an LMS status: read as itself)"
            )
    for word, status in plan.statuses.items():
        count = plan.status_counts.get(word, 0)
        messages.append(
            f"  status word {word!r} ({count} row(s)) -> {status or 'UNDECIDED (TODO)'}"
        )
    return InitResult(text="\n".join(lines) + "\n", messages=messages, todo=todo)


def sample(path: Path, role: str, sheet: str | None = None) -> pd.DataFrame:
    """The first rows of a file as text, read the way reconcile reads it."""
    from . import xapi

    if role == "external" and xapi.is_xapi_file(path):
        return xapi.read_statements(path).head(SAMPLE_ROWS)
    import duckdb

    from .inputs import load_table

    con = duckdb.connect()
    try:
        info, _ = load_table(con, "t", role, path, {}, sheet=sheet, allow_no_rows=True)
        # The file's own header names (recon keeps columns under positional names).
        picked = ", ".join(f'"{n}"' for n in info.sql_columns)
        frame = con.execute(f"SELECT {picked} FROM t LIMIT {SAMPLE_ROWS}").df()
    finally:
        con.close()
    frame.columns = list(info.columns)
    return frame.astype(object).where(frame.notna(), None)


def init_config(
    provider: str | Path,
    *,
    out: str | Path = "recon.toml",
    preset: str | None = None,
    progress: str | Path | None = None,
    users: str | Path | None = None,
    paths: str | Path | None = None,
    timezone: str | None = None,
    force: bool = False,
) -> InitResult:
    """Inspect the files and write a commented recon.toml at ``out``."""
    out = Path(out)
    if out.exists() and not force:
        raise InputError(f"{out} exists; give --force to overwrite it, or another --out")
    provider = Path(provider)
    chosen = load_preset(preset) if preset else None
    plan = plan_provider(sample(provider, "external"), chosen)
    tables: dict[str, tuple[Path, dict[str, Any]] | None] = {}
    for role, file, names in (
        ("progress", progress, PROGRESS_NAMES),
        ("users", users, USERS_NAMES),
        ("paths", paths, PATHS_NAMES),
    ):
        if file is None:
            tables[role] = None
            continue
        columns = list(sample(Path(file), role).columns)
        tables[role] = (Path(file), plan_table(columns, names, role))
    if timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown timezone {timezone!r} (use an IANA name)") from None
    result = render_config(
        provider,
        plan,
        out,
        timezone=timezone,
        progress=tables["progress"],
        users=tables["users"],
        paths=tables["paths"],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.text, encoding="utf-8")
    return result
