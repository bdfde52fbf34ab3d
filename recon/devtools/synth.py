"""Synthetic inputs, messy the way real exports are: for `recon bench` and the bundled sample.

Size: over 600 lines, on purpose: one generator whose parts (the name pools, the problem
shares, the LMS states and the DuckDB writer) only make sense together. It is tooling
(:mod:`recon.devtools`), not the product: nothing a reconcile runs imports it.

:func:`generate` writes the four inputs and their ``recon.toml`` into a folder:

- ``external.csv``: the provider's export (``Provider Ref, Learner Name, Email, Course
  Code, Course Title, Status, Completed On, Last Activity``);
- ``progress.csv``: the LMS's learning-path progress (``userId, learningPathId, status,
  completionDate``), about 0.8 rows per external row;
- ``users.csv``: the learner directory (``email, userId``);
- ``paths.csv``: the course-code mapping (``externalCode, learningPathId``).

Most rows agree with the LMS; the rest carry the mess real exports have, in realistic
proportions (see :data:`PROBLEM_SHARES`, :data:`LMS_STATES`): mixed date formats (ISO
date, ISO date-time with ``Z`` or an offset, ``3/14/2026``, ``14 Mar 2026``), email case
and stray spaces, duplicate rows for the same learner and course, unmapped course codes,
unknown or blank status words, unreadable and future dates, completions without a date,
learners missing from the directory, the LMS ahead of the provider, completion dates that
differ, and LMS records that are absent.

Every random choice is made by numpy from one seed, so a seed always gives the same
files; the text is assembled and written by DuckDB from Arrow columns, so a million rows
take a few seconds and ten million fit in a few GB.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ..inputs import run

__all__ = [
    "AS_OF",
    "DEFAULT_SEED",
    "DEFAULT_STATUSES",
    "EXTERNAL_COLUMNS",
    "config_text",
    "generate",
]

DEFAULT_SEED = 20261127
AS_OF = datetime(2026, 11, 27, tzinfo=UTC)
"""Default reference time: every ordinary date lies before it, every future date long after."""

EXTERNAL_COLUMNS = (
    "Provider Ref",
    "Learner Name",
    "Email",
    "Course Code",
    "Course Title",
    "Status",
    "Completed On",
    "Last Activity",
)
DATE_FORMATS = ("%m/%d/%Y", "%d %b %Y")
"""The non-ISO formats the generated export uses, as ``date_formats`` in the config."""

DEFAULT_STATUSES = {
    "Completed": "completed",
    "Passed": "completed",
    "In Progress": "started",
    "Failed": "not-completed",
    "Registered": "not-started",
}
"""The ``[external.statuses]`` table written for the generated export."""

DOMAINS = ("example.com", "example.org", "example.net")

# LMS status ranks, as in recon.validation.STATUSES.
NOT_STARTED, STARTED, NOT_COMPLETED, COMPLETED = 0, 1, 2, 3
LMS_WORDS = ("not-started", "started", "not-completed", "completed")

STATUS_SHARES = {NOT_STARTED: 0.16, STARTED: 0.17, NOT_COMPLETED: 0.05, COMPLETED: 0.62}
"""What the provider says, per distinct learner and course."""

# The provider's words for each status, with their shares: mostly the canonical word,
# sometimes another spelling a person or a second system typed.
PROVIDER_WORDS: dict[int, tuple[tuple[str, float], ...]] = {
    COMPLETED: (
        ("Completed", 0.90),
        ("Passed", 0.025),
        ("COMPLETED", 0.03),
        ("completed", 0.025),
        (" Completed ", 0.02),
    ),
    STARTED: (("In Progress", 0.93), ("In progress", 0.04), ("IN PROGRESS", 0.03)),
    NOT_COMPLETED: (("Failed", 0.95), ("failed", 0.05)),
    NOT_STARTED: (("Registered", 0.95), ("Registered ", 0.05)),
}
UNKNOWN_WORDS = ("Withdrawn", "Pending Approval", "Incomplete", "Expired", "Audit", "Waitlisted")
BAD_DATES = (
    "TBD",
    "n/a",
    "31/12/2025",
    "2026-02-30",
    "0000-00-00",
    "13/25/2026",
    "Sept 2026",
    "#VALUE!",
    "45231",
)
"""Cells that are not readable as dates under the generated config."""

LMS_STATES: dict[int, tuple[tuple[int, str, float], ...]] = {
    # provider status: (LMS status or -1 for no record, LMS completion date, share)
    COMPLETED: (
        (COMPLETED, "same", 0.64),  # in sync, the same instant
        (COMPLETED, "midnight", 0.13),  # in sync, the LMS keeps the day only
        (COMPLETED, "none", 0.035),  # in sync, the LMS holds no date
        (COMPLETED, "differs", 0.035),  # completion-date-differs
        (-1, "none", 0.10),  # missing-completion: the LMS has no record
        (STARTED, "none", 0.04),  # missing-completion: the LMS lags behind
        (NOT_COMPLETED, "none", 0.01),
        (NOT_STARTED, "none", 0.01),
    ),
    STARTED: (
        (STARTED, "none", 0.80),
        (-1, "none", 0.07),  # missing-progress
        (NOT_STARTED, "none", 0.03),  # missing-progress
        (COMPLETED, "past", 0.07),  # lms-ahead
        (NOT_COMPLETED, "none", 0.03),  # lms-ahead
    ),
    NOT_COMPLETED: (
        (NOT_COMPLETED, "none", 0.79),
        (-1, "none", 0.05),
        (STARTED, "none", 0.06),
        (NOT_STARTED, "none", 0.02),
        (COMPLETED, "past", 0.08),
    ),
    NOT_STARTED: (
        (-1, "none", 0.72),  # in sync: absent means the same as not-started
        (NOT_STARTED, "none", 0.18),
        (STARTED, "none", 0.05),  # lms-ahead
        (COMPLETED, "past", 0.05),  # lms-ahead
    ),
}
"""What the LMS knows about a learner and course, given what the provider says."""

DUPLICATE_SHARE = 0.04
"""Extra rows for a learner and course already in the export (re-exports, retakes)."""

PROBLEM_SHARES = {
    "unknown-status word": 0.008,
    "unknown-status blank": 0.002,
    "unknown-learner": 0.011,
    "unknown-learner blank": 0.001,
    "unknown-path": 0.011,
    "unknown-path blank": 0.001,
    "bad completion date": 0.004,
    "bad activity date": 0.002,
    "missing-completion-date": 0.008,
    "future-date": 0.004,
}
"""Share of external rows given each problem (one problem per row at most)."""

EXTRA_LMS_SHARE = 0.03
"""LMS records for courses the provider never mentions, at least this share of rows."""
LMS_DIRTY_SHARE = 0.001
"""LMS rows with a blank user id or a status word outside the four."""
LMS_REPEAT_SHARE = 0.002
"""LMS rows listing a learner and path a second time, with a lower status."""

EMAIL_STYLES = (0.90, 0.04, 0.03, 0.02, 0.01)  # as is, UPPER, Capitalised, spaces, trailing
CODE_STYLES = (0.95, 0.03, 0.02)  # as is, lower case, trailing space
# ISO date, ISO Z, ISO ms Z, ISO offset, m/d/Y, d Mon Y: one style per row, as when a
# provider merges exports from several systems
DATE_STYLES = (0.20, 0.27, 0.08, 0.10, 0.22, 0.13)
OFFSETS_MIN = (-480, -300, -240, 60, 120, 330, 600)

_DAY = 86_400


def _names(text: str) -> tuple[str, ...]:
    """Names separated by spaces; an underscore stands for a space inside a name."""
    return tuple(word.replace("_", " ") for word in text.split())


FIRST_NAMES = _names(
    "Aaliyah Adrian Aisha Alejandro Amara Amelia Anders Ananya Andrei Ángel Anika Aroha "
    "Astrid Ayumi Beatriz Benedikt Bianca Bongani Camille Carlos Chiara Chloé Chukwuemeka "
    "Dalia Daniel Dmitri Eamon Elena Elif Emeka Emil Esperanza Farah Felix Fatima Freya "
    "Gabriel Giulia Hamza Hana Hiroshi Ines Ingrid Isabela Ivan Jamal Javier Jin Joanna "
    "José Julia Kai Kalani Kamala Karim Katarzyna Kenji Kofi Lars Leila Liam Linnea Luca "
    "Łukasz Lucía Mahmoud Malia Marco Margarethe Maria Mateo Mei Miguel Mina Mohammed Nadia "
    "Naledi Nikolai Nina Noah Noor Olga Oliver Omar Pablo Paulo Priya Rafael Rania Ravi "
    "Renée Rohan Rosa Sakura Samir Sanjay Sara Sebastián Siobhán Sofia Søren Tamar Tariq "
    "Thandiwe Tomás Valentina Viktor Wei Yara Yusuf Zainab Zoë"
)
LAST_NAMES = _names(
    "Abara Acheampong Adeyemi Alvarez Andersen Bauer Becker Bergström Bianchi Brennan "
    "Castillo Chen Chowdhury Costa Dahl Dubois Eriksen Farouk Fernandes Fischer Fontaine "
    "García Gonzaga Gupta Haddad Hansen Herrera Hoffmann Horvath Ibrahim Ivanova Jansen "
    "Jovanović Kamau Kaplan Kawasaki Kelly Khan Kowalski Kuznetsov Larsen Laurent Lindqvist "
    "Lopes MacLeod Mahlangu Marino Medina Mensah Morales Moreau Murphy Müller Nakamura "
    "Navarro Nguyen Novak Nowak O'Brien O'Neill Okafor Okonkwo Ortiz Osei Park Patel "
    "Pereira Petrov Quispe Rahman Ramírez Reyes Rossi Ruiz Saito Santos Schmidt Schneider "
    "Sharma Silva Sokolov Suzuki Svensson Tanaka Teo Torres Tran Uchenna Varga Vasquez "
    "Verma Wagner Walsh Wanjiru Weber Wiśniewski Yamamoto Yilmaz Zhang Zielinski De_Luca "
    "Van_der_Berg"
)

COURSE_TOPICS = (
    ("CYB", "Cybersecurity Essentials"),
    ("PHI", "Phishing Awareness"),
    ("GDP", "Data Protection and GDPR"),
    ("AML", "Anti-Money Laundering"),
    ("ABC", "Anti-Bribery, Corruption and Gifts"),
    ("COC", "Code of Conduct"),
    ("HSW", "Health, Safety and Wellbeing"),
    ("FIR", "Fire Safety"),
    ("MAN", "Manual Handling"),
    ("DEI", "Inclusive Workplaces"),
    ("HAR", "Preventing Harassment"),
    ("LDR", "Leadership Foundations"),
    ("COA", "Coaching, Feedback and Growth"),
    ("CHG", "Leading Through Change"),
    ("NEG", "Negotiation Skills"),
    ("PRE", "Presenting with Confidence"),
    ("WRI", "Business Writing"),
    ("TIM", "Time and Priority Management"),
    ("PRJ", "Project Management Fundamentals"),
    ("AGL", "Agile Ways of Working"),
    ("SCR", "Scrum in Practice"),
    ("XLS", "Spreadsheet Modelling"),
    ("SQL", "SQL for Analysts"),
    ("PYT", "Python for Data Analysis"),
    ("VIS", "Data Visualisation"),
    ("STA", "Statistics for Decision Makers"),
    ("AIF", "AI Fundamentals"),
    ("PRM", "Prompting and Responsible AI"),
    ("CLD", "Cloud Foundations"),
    ("NET", "Networking Basics"),
    ("DEV", "DevOps Practices"),
    ("SEC", "Secure Coding"),
    ("CSX", "Customer Experience"),
    ("SAL", "Consultative Selling"),
    ("ACC", "Accessibility by Design"),
    ("FIN", "Finance for Non-Financial Managers"),
    ("BUD", "Budgeting and Forecasting"),
    ("PRO", "Procurement and Supplier Risk"),
    ("ESG", "Sustainability at Work"),
    ("ETH", "Ethics in Practice"),
    ("INT", "Interviewing and Hiring"),
    ("ONB", "New Joiner Onboarding"),
    ("MGR", "First-Time Manager"),
    ("WEL", "Resilience and Stress"),
    ("REM", "Remote Collaboration"),
    ("CON", "Conflict Resolution"),
    ("CRI", "Critical Thinking"),
    ("DES", "Design Thinking"),
    ("PRD", "Product Management"),
    ("QUA", "Quality Management"),
    ("LEA", "Lean Six Sigma Yellow Belt"),
    ("RSK", "Operational Risk"),
    ("BCP", "Business Continuity"),
    ("INC", "Incident Response"),
    ("IDM", "Identity and Access Management"),
    ("PRV", "Privacy by Design"),
    ("EXP", "Export Controls"),
    ("TAX", "Tax Compliance Basics"),
    ("FRD", "Fraud Awareness"),
    ("CMP", "Competition Law"),
)
_LEVELS = ("", ": Practitioner", ": Advanced", ": Expert")


# --------------------------------------------------------------------------- helpers


_FOLD = str.maketrans({"ł": "l", "ø": "o", "ß": "ss", "đ": "d"})


def _ascii(name: str) -> str:
    """The email form of a name: lower case ASCII letters only."""
    folded = name.lower().translate(_FOLD)
    folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded if ch.isalpha())


def _strings(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def _uuids(rng: np.random.Generator, count: int) -> pa.Array:
    """``count`` version-4 UUID strings, built as one byte matrix (no Python loop)."""
    raw = rng.integers(0, 256, (count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((count, 32), dtype=np.uint8)
    hexed[:, 0::2] = digits[raw >> 4]
    hexed[:, 1::2] = digits[raw & 0x0F]
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    for src, dst, width in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
        text[:, dst : dst + width] = hexed[:, src : src + width]
    offsets = np.arange(0, 36 * (count + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(text))
    )


def _dict(indices: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    """Text by index into ``dictionary`` (negative index = blank), without copying text."""
    idx = indices.astype(np.int32, copy=False)
    return pa.DictionaryArray.from_arrays(pa.array(idx, mask=idx < 0), dictionary)


def _timestamps(seconds: np.ndarray) -> pa.Array:
    """Seconds since the epoch (``_NONE`` = blank) as an Arrow timestamp column."""
    return pa.array(seconds, type=pa.timestamp("s"), mask=seconds == _NONE)


_NONE = np.iinfo(np.int64).min


def _pick(rng: np.random.Generator, shares: Sequence[float], size: int) -> np.ndarray:
    """Indices into ``shares`` (normalised), one per row."""
    p = np.asarray(shares, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum()).astype(np.int8)


def _unique_pairs(
    rng: np.random.Generator, need: int, learners: int, weights: np.ndarray
) -> np.ndarray:
    """``need`` distinct (learner, path) pairs as ``learner * paths + path``, in draw order."""
    paths = len(weights)
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < need:
        draw = int((need - len(keys)) * 1.3) + 16
        cand = rng.integers(0, learners, draw, dtype=np.int64) * paths + rng.choice(
            paths, draw, p=weights
        )
        keys = np.concatenate([keys, cand])
        # pandas hashes instead of sorting: keeps the first draw of each pair, in order.
        keys = keys[~pd.Series(keys).duplicated().to_numpy()]
    return keys[:need]


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def config_text(
    *,
    statuses: Mapping[str, str],
    notes: Mapping[str, str] | None = None,
    title: str = "",
) -> str:
    """The ``recon.toml`` for generated inputs, in the format of the README.

    ``notes`` puts a comment line above an ``[external.statuses]`` entry.
    """
    notes = notes or {}
    head = "".join(f"# {line}\n" for line in title.splitlines()) + ("\n" if title else "")
    words = ""
    for word, status in statuses.items():
        for line in notes.get(word, "").splitlines():
            words += f"# {line}\n"
        words += f"{_toml_str(word)} = {_toml_str(status)}\n"
    formats = ", ".join(_toml_str(f) for f in DATE_FORMATS)
    return f"""{head}[external]                      # the provider's export
file = "external.csv"
learner = "Email"
learner_kind = "email"
path = "Course Code"
path_kind = "code"
status = "Status"
completion_date = "Completed On"
activity_date = "Last Activity"
date_formats = [{formats}]   # tried after ISO 8601, in order
timezone = "UTC"

[external.statuses]             # provider's words -> LMS status
{words}
[progress]                      # the LMS's learning-path progress export
file = "progress.csv"
user_id = "userId"
path_id = "learningPathId"
status = "status"
completion_date = "completionDate"

[users]                         # learner directory: email -> LMS user id
file = "users.csv"
email = "email"
user_id = "userId"

[paths]                         # provider's course code -> LMS learning path id
file = "paths.csv"
external_code = "externalCode"
learning_path_id = "learningPathId"
"""


# --------------------------------------------------------------------------- generate


def generate(
    out_dir: str | Path,
    rows: int,
    *,
    seed: int = DEFAULT_SEED,
    learners: int | None = None,
    paths: int | None = None,
    progress: int | None = None,
    as_of: datetime = AS_OF,
    history_days: int = 730,
    ref_prefix: str = "ENR",
    code_prefix: str = "TRN",
    statuses: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """Write ``external.csv``, ``progress.csv``, ``users.csv``, ``paths.csv`` and
    ``recon.toml`` into ``out_dir`` (created if needed); return the config's path.

    ``rows`` external rows for ``learners`` learners (default ``rows / 10``) and ``paths``
    learning paths (default 200); about ``progress`` LMS rows (default ``0.8 * rows``).
    Ordinary dates fall in the ``history_days`` before ``as_of``; future dates fall 13 to
    25 months after it. ``ref_prefix`` and ``code_prefix`` start the provider's references
    and course codes. ``statuses`` is the config's ``[external.statuses]`` table (default
    :data:`DEFAULT_STATUSES`), ``notes`` comments on its entries, ``title`` a comment at
    the top of the config. The same arguments always write the same files.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    n_learners = max(1, round(rows / 10)) if learners is None else learners
    n_paths = 200 if paths is None else paths
    if n_learners < 1 or n_paths < 1:
        raise ValueError("learners and paths must be at least 1")
    target_progress = round(0.8 * rows) if progress is None else progress
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # Learners: the directory's, plus a few the directory does not know (left, or never
    # added). Paths: the mapped ones, plus retired codes the mapping no longer lists.
    n_ghosts = max(3, math.ceil(n_learners * 0.03))
    n_retired = max(3, math.ceil(n_paths * 0.08))
    people = _people(rng, n_learners + n_ghosts)
    user_ids = _uuids(rng, n_learners + n_ghosts)
    codes, titles = _catalogue(code_prefix, n_paths, n_retired)
    path_ids = _uuids(rng, n_paths)
    popularity = 1.0 / (np.arange(n_paths) + 3.0) ** 0.9
    popularity = popularity[rng.permutation(n_paths)]
    popularity /= popularity.sum()

    # Distinct learner/course pairs: the provider's rows, then LMS-only records.
    n_dups = round(rows * DUPLICATE_SHARE) if rows >= 20 else 0
    n_unique = rows - n_dups
    present_share = sum(
        STATUS_SHARES[s] * sum(share for lms, _, share in LMS_STATES[s] if lms >= 0)
        for s in STATUS_SHARES
    )
    n_dirty = round(target_progress * LMS_DIRTY_SHARE)
    n_repeat = round(n_unique * present_share * LMS_REPEAT_SHARE)
    n_extra = max(
        round(rows * EXTRA_LMS_SHARE),
        target_progress - round(n_unique * present_share) - n_dirty - n_repeat,
    )
    capacity = n_learners * n_paths
    if capacity < 2 * (n_unique + n_extra):
        raise ValueError(
            f"{n_learners} learners x {n_paths} paths is too few distinct pairs for "
            f"{rows} rows: use more learners or paths"
        )
    pairs = _unique_pairs(rng, n_unique + n_extra, n_learners, popularity)

    end = int(as_of.timestamp()) - 2 * _DAY
    start = end - history_days * _DAY
    ext = _provider_rows(rng, pairs[:n_unique], n_paths, start, end)
    lms = _lms_rows(rng, ext, pairs[n_unique:], n_paths, start, end, n_dirty, n_repeat)
    ext = _add_duplicates(rng, ext, n_dups, start, end)
    ext = _add_problems(rng, ext, n_learners, n_ghosts, n_paths, n_retired, as_of)
    order = rng.permutation(rows)
    ext = {k: v[order] for k, v in ext.items()}
    ext["word"] = _words(rng, ext["status"], ext.pop("word_override"))
    ext["date_style"] = _pick(rng, DATE_STYLES, rows)
    ext["offset"] = np.asarray(OFFSETS_MIN, dtype=np.int16)[rng.integers(0, len(OFFSETS_MIN), rows)]
    ext["email_style"] = _pick(rng, EMAIL_STYLES, rows)
    ext["code_style"] = _pick(rng, CODE_STYLES, rows)
    directory = _directory(rng, n_learners)

    con = _connect()
    try:
        _write_files(
            con,
            out,
            ext=ext,
            lms=lms,
            directory=directory,
            people=people,
            user_ids=user_ids,
            codes=codes,
            titles=titles,
            path_ids=path_ids,
            n_paths=n_paths,
            ref_prefix=ref_prefix,
        )
    finally:
        con.close()

    if title is None:
        title = (
            f"Synthetic inputs from recon.devtools.synth: seed {seed}, {rows:,} external rows, "
            f"{n_learners:,} learners, {n_paths:,} learning paths."
        )
    config = out / "recon.toml"
    config.write_text(
        config_text(
            statuses=DEFAULT_STATUSES if statuses is None else statuses,
            notes=notes,
            title=title,
        ),
        encoding="utf-8",
    )
    return config


def _people(rng: np.random.Generator, count: int) -> dict[str, pa.Array]:
    """Names and unique emails for ``count`` learners."""
    first = rng.integers(0, len(FIRST_NAMES), count)
    last = rng.integers(0, len(LAST_NAMES), count)
    people = pa.table(
        {
            "i": pa.array(np.arange(count, dtype=np.int64)),
            "first": _dict(first, _strings(FIRST_NAMES)),
            "last": _dict(last, _strings(LAST_NAMES)),
            "first_a": _dict(first, _strings([_ascii(n) for n in FIRST_NAMES])),
            "last_a": _dict(last, _strings([_ascii(n) for n in LAST_NAMES])),
            # how the company builds addresses, and whether the provider writes the
            # name "Last, First" (a quoted CSV field)
            "style": pa.array(_pick(rng, (0.75, 0.15, 0.10), count)),
            "comma": pa.array(rng.random(count) < 0.2),
            "domain": _dict(_pick(rng, (0.8, 0.12, 0.08), count), _strings(DOMAINS)),
        }
    )
    con = _connect()
    try:
        con.register("people", people)
        table = con.sql(
            """
            WITH base AS (
                SELECT i, first, last, comma, domain,
                       CASE style WHEN 0 THEN first_a || '.' || last_a
                                  WHEN 1 THEN first_a[1] || last_a
                                  ELSE first_a || '_' || last_a END AS local
                FROM people
            ), numbered AS (
                SELECT *, row_number() OVER (PARTITION BY local, domain ORDER BY i) AS n
                FROM base
            )
            SELECT local || CASE WHEN n > 1 THEN n::VARCHAR ELSE '' END || '@' || domain
                       AS email,
                   CASE WHEN comma THEN last || ', ' || first ELSE first || ' ' || last END
                       AS name
            FROM numbered ORDER BY i
            """
        ).to_arrow_table()
    finally:
        con.close()
    return {"email": table.column("email").combine_chunks(), "name": table["name"].combine_chunks()}


def _catalogue(prefix: str, n_paths: int, n_retired: int) -> tuple[pa.Array, pa.Array]:
    """Course codes and titles: the mapped paths first, then the retired codes."""
    codes, titles = [], []
    topics = len(COURSE_TOPICS)
    for i in range(n_paths):
        abbr, name = COURSE_TOPICS[i % topics]
        level = i // topics
        suffix = _LEVELS[level] if level < len(_LEVELS) else f": Module {level + 1}"
        codes.append(f"{prefix}-{abbr}-{101 + 100 * level}")
        titles.append(name + suffix)
    for j in range(n_retired):
        abbr, name = COURSE_TOPICS[j % topics]
        codes.append(f"{prefix}-{abbr}-{90 - j // topics:03d}")
        titles.append(f"{name} (2023 edition)")
    return _strings(codes), _strings(titles)


def _provider_rows(
    rng: np.random.Generator, pairs: np.ndarray, n_paths: int, start: int, end: int
) -> dict[str, np.ndarray]:
    """One row per distinct pair: what the provider says, and when."""
    n = len(pairs)
    status = np.asarray(list(STATUS_SHARES))[_pick(rng, list(STATUS_SHARES.values()), n)]
    status = status.astype(np.int8)
    # Working hours in UTC-ish: the time of day matters only for offsets and midnight.
    moment = start + rng.integers(0, end - start - 3 * _DAY, n) // _DAY * _DAY
    moment += rng.integers(6 * 3600, 20 * 3600, n)
    done = status == COMPLETED
    completion = np.where(done, moment, _NONE)
    # A completed row's last activity is its completion, or a look back a day or two later.
    later = rng.integers(0, 3, n) * _DAY * (rng.random(n) < 0.3)
    activity = np.where(done, moment + later, moment)
    registered_only = (status == NOT_STARTED) & (rng.random(n) < 0.65)
    activity[registered_only] = _NONE
    return {
        "learner": (pairs // n_paths).astype(np.int32),
        "path": (pairs % n_paths).astype(np.int32),
        "status": status,
        "completion": completion,
        "activity": activity,
        "word_override": np.full(n, -1, dtype=np.int8),
        "bad_completion": np.full(n, -1, dtype=np.int8),
        "bad_activity": np.full(n, -1, dtype=np.int8),
    }


def _lms_rows(
    rng: np.random.Generator,
    ext: dict[str, np.ndarray],
    extra_pairs: np.ndarray,
    n_paths: int,
    start: int,
    end: int,
    n_dirty: int,
    n_repeat: int,
) -> dict[str, np.ndarray]:
    """The LMS's progress: per provider pair as :data:`LMS_STATES` says, then LMS-only
    records, repeated pairs and a few dirty rows."""
    n = len(ext["status"])
    lms_status = np.full(n, -1, dtype=np.int8)
    completion = np.full(n, _NONE, dtype=np.int64)
    random_past = start + rng.integers(0, end - start, n)
    for provider_status, states in LMS_STATES.items():
        rows = np.flatnonzero(ext["status"] == provider_status)
        choice = _pick(rng, [share for _, _, share in states], len(rows))
        for option, (rank, date, _) in enumerate(states):
            sel = rows[choice == option]
            lms_status[sel] = rank
            when = ext["completion"][sel]
            if date == "same":
                completion[sel] = when
            elif date == "midnight":
                completion[sel] = when // _DAY * _DAY
            elif date == "differs":
                # Another calendar day, usually earlier: a first attempt the LMS kept.
                shift = rng.integers(1, 90, len(sel)) * _DAY
                sign = np.where(rng.random(len(sel)) < 0.7, -1, 1)
                completion[sel] = when + sign * shift
            elif date == "past":
                completion[sel] = random_past[sel]
    keep = lms_status >= 0
    user = ext["learner"][keep]
    path = ext["path"][keep]
    status = lms_status[keep]
    completion = completion[keep]

    # Courses the provider never mentions (internal paths, other providers).
    k = len(extra_pairs)
    extra_status = _pick(rng, (0.15, 0.25, 0.05, 0.55), k)
    extra_completion = np.where(
        extra_status == COMPLETED, start + rng.integers(0, end - start, k), _NONE
    )
    user = np.concatenate([user, (extra_pairs // n_paths).astype(np.int32)])
    path = np.concatenate([path, (extra_pairs % n_paths).astype(np.int32)])
    status = np.concatenate([status, extra_status])
    completion = np.concatenate([completion, extra_completion])

    # The same pair listed twice (a re-enrolment): a lower status, no date. recon counts
    # the furthest status, so these change no outcome.
    again = rng.integers(0, len(status), n_repeat if len(status) else 0)
    user = np.concatenate([user, user[again]])
    path = np.concatenate([path, path[again]])
    status = np.concatenate([status, np.minimum(status[again], STARTED).astype(np.int8)])
    completion = np.concatenate([completion, np.full(len(again), _NONE)])

    # Dirty rows the LMS export really contains: no user id, or a status of its own.
    dirt = rng.integers(0, len(status), n_dirty if len(status) else 0)
    blank_user = rng.random(len(dirt)) < 0.5
    user = np.concatenate([user, np.where(blank_user, -1, user[dirt]).astype(np.int32)])
    path = np.concatenate([path, path[dirt]])
    # 4 = "archived", 5 = "enrolled": not LMS statuses
    status = np.concatenate(
        [
            status,
            np.where(blank_user, status[dirt], 4 + rng.integers(0, 2, len(dirt))).astype(np.int8),
        ]
    )
    completion = np.concatenate([completion, np.full(len(dirt), _NONE)])

    order = rng.permutation(len(status))
    # A few LMS rows spell the status with a capital: the export is not always consistent.
    capital = rng.random(len(status)) < 0.01
    return {
        "user": user[order],
        "path": path[order],
        "status": np.where(capital, status + 6, status)[order].astype(np.int8),
        "completion": completion[order],
    }


def _add_duplicates(
    rng: np.random.Generator, ext: dict[str, np.ndarray], count: int, start: int, end: int
) -> dict[str, np.ndarray]:
    """Append ``count`` more rows for pairs already present: a re-export of the same row,
    an earlier attempt, or a later retake. The original stays the survivor by the rules."""
    n = len(ext["status"])
    if count == 0 or n == 0:
        return ext
    src = rng.integers(0, n, count)
    dup = {k: v[src].copy() for k, v in ext.items()}
    kind = _pick(rng, (0.5, 0.3, 0.2), count)
    shift = rng.integers(7, 120, count) * _DAY
    status = dup["status"]

    # An earlier attempt: a lower status, last active before the original.
    earlier = (kind == 1) & (status > NOT_STARTED)
    before = np.where(status == COMPLETED, dup["completion"], dup["activity"])
    new_status = np.where(
        status == COMPLETED,
        rng.integers(STARTED, NOT_COMPLETED + 1, count),
        rng.integers(NOT_STARTED, np.maximum(status, 1), count),
    ).astype(np.int8)
    dup["status"] = np.where(earlier, new_status, status)
    dup["activity"] = np.where(earlier, np.maximum(before - shift, start), dup["activity"])
    dup["completion"] = np.where(earlier, _NONE, dup["completion"])

    # A retake: completed again later; the earliest completion date wins.
    retake = (kind == 2) & (status == COMPLETED)
    again = np.minimum(dup["completion"] + shift, end)
    dup["completion"] = np.where(retake, again, dup["completion"])
    dup["activity"] = np.where(retake, again, dup["activity"])
    return {k: np.concatenate([ext[k], dup[k]]) for k in ext}


def _add_problems(
    rng: np.random.Generator,
    ext: dict[str, np.ndarray],
    n_learners: int,
    n_ghosts: int,
    n_paths: int,
    n_retired: int,
    as_of: datetime,
) -> dict[str, np.ndarray]:
    """Give some rows one problem each, as :data:`PROBLEM_SHARES` says."""
    n = len(ext["status"])
    names = list(PROBLEM_SHARES)
    shares = list(PROBLEM_SHARES.values())
    problem = _pick(rng, [1.0 - sum(shares), *shares], n) - 1  # -1: none

    def rows(name: str) -> np.ndarray:
        return np.flatnonzero(problem == names.index(name))

    sel = rows("unknown-status word")
    ext["word_override"][sel] = 100 + rng.integers(0, len(UNKNOWN_WORDS), len(sel))
    ext["word_override"][rows("unknown-status blank")] = 99
    sel = rows("unknown-learner")
    ext["learner"][sel] = n_learners + rng.integers(0, n_ghosts, len(sel))
    ext["learner"][rows("unknown-learner blank")] = -1
    sel = rows("unknown-path")
    ext["path"][sel] = n_paths + rng.integers(0, n_retired, len(sel))
    ext["path"][rows("unknown-path blank")] = -1
    sel = rows("bad completion date")
    ext["bad_completion"][sel] = rng.integers(0, len(BAD_DATES), len(sel))
    sel = rows("bad activity date")
    ext["bad_activity"][sel] = rng.integers(0, len(BAD_DATES), len(sel))
    # Completed, but the date column is empty: the plain "Completed" word, so that a
    # status mapped elsewhere cannot hide the problem.
    sel = rows("missing-completion-date")
    ext["status"][sel] = COMPLETED
    ext["completion"][sel] = _NONE
    ext["word_override"][sel] = 0
    # A date 13 to 25 months ahead: a typo'd year, or a planned date in the wrong column.
    sel = rows("future-date")
    ahead = int(as_of.timestamp()) + rng.integers(400, 760, len(sel)) * _DAY
    ahead += rng.integers(8 * 3600, 18 * 3600, len(sel))
    done = ext["status"][sel] == COMPLETED
    ext["completion"][sel] = np.where(done, ahead, ext["completion"][sel])
    ext["activity"][sel] = ahead
    return ext


def _words(rng: np.random.Generator, status: np.ndarray, override: np.ndarray) -> np.ndarray:
    """Index into :func:`_word_list` per row: a provider word for the row's status, or
    the override (0: "Completed", 99: blank, 100+: an unknown word)."""
    word = np.empty(len(status), dtype=np.int16)
    base = 0
    for s in (COMPLETED, STARTED, NOT_COMPLETED, NOT_STARTED):
        choices = PROVIDER_WORDS[s]
        sel = np.flatnonzero(status == s)
        word[sel] = base + _pick(rng, [share for _, share in choices], len(sel))
        base += len(choices)
    unknown = override >= 100
    word[unknown] = base + override[unknown] - 100
    word[override == 0] = 0
    word[override == 99] = -1
    return word


def _word_list() -> list[str]:
    words = [
        w for s in (COMPLETED, STARTED, NOT_COMPLETED, NOT_STARTED) for w, _ in PROVIDER_WORDS[s]
    ]
    return words + list(UNKNOWN_WORDS)


def _directory(rng: np.random.Generator, n_learners: int) -> dict[str, np.ndarray]:
    """The directory's rows: every known learner once (a few twice), in its own order."""
    order = rng.permutation(n_learners)
    again = rng.integers(0, n_learners, round(n_learners * 0.002))
    learner = np.concatenate([order, again]).astype(np.int32)
    # Some directories keep the address as the person typed it; recon compares lower case.
    capital = rng.random(len(learner)) < 0.03
    return {"learner": learner, "capital": capital}


_DATE_SQL = """
CREATE OR REPLACE TEMP MACRO synth_date(t, style, minutes) AS CASE
    WHEN t IS NULL THEN NULL
    WHEN style = 0 THEN strftime(t, '%Y-%m-%d')
    WHEN style = 1 THEN strftime(t, '%Y-%m-%dT%H:%M:%SZ')
    WHEN style = 2 THEN strftime(t, '%Y-%m-%dT%H:%M:%S.000Z')
    WHEN style = 3 THEN strftime(t + to_minutes(minutes::INTEGER), '%Y-%m-%dT%H:%M:%S')
         || CASE WHEN minutes < 0 THEN '-' ELSE '+' END
         || lpad((abs(minutes) // 60)::VARCHAR, 2, '0') || ':'
         || lpad((abs(minutes) % 60)::VARCHAR, 2, '0')
    WHEN style = 4 THEN strftime(t, '%-m/%-d/%Y')
    ELSE strftime(t, '%d %b %Y')
END
"""


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # A progress bar on the terminal is noise for a library call.
    run(con, "SET enable_progress_bar = false")
    return con


def _copy(con: duckdb.DuckDBPyConnection, select: str, path: Path) -> None:
    target = str(path).replace("'", "''")
    run(con, f"COPY ({select}) TO '{target}' (HEADER, DELIMITER ',', QUOTE '\"')")


def _write_files(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    *,
    ext: dict[str, np.ndarray],
    lms: dict[str, np.ndarray],
    directory: dict[str, np.ndarray],
    people: dict[str, pa.Array],
    user_ids: pa.Array,
    codes: pa.Array,
    titles: pa.Array,
    path_ids: pa.Array,
    n_paths: int,
    ref_prefix: str,
) -> None:
    run(con, _DATE_SQL)
    # A stable enrolment reference, increasing down the file as in a sorted export.
    external = pa.table(
        {
            "ref": pa.array(np.arange(1, len(ext["status"]) + 1, dtype=np.int64) * 7 + 100_000),
            "name": _dict(np.abs(ext["learner"]), people["name"]),
            "email": _dict(ext["learner"], people["email"]),
            "email_style": pa.array(ext["email_style"]),
            "code": _dict(ext["path"], codes),
            "title": _dict(np.abs(ext["path"]), titles),
            "code_style": pa.array(ext["code_style"]),
            "word": _dict(ext["word"], _strings(_word_list())),
            "completion": _timestamps(ext["completion"]),
            "activity": _timestamps(ext["activity"]),
            "bad_completion": _dict(ext["bad_completion"], _strings(BAD_DATES)),
            "bad_activity": _dict(ext["bad_activity"], _strings(BAD_DATES)),
            "date_style": pa.array(ext["date_style"]),
            "offset": pa.array(ext["offset"]),
        }
    )
    con.register("external_rows", external)
    prefix = ref_prefix.replace("'", "''")
    _copy(
        con,
        f"""
        SELECT '{prefix}-' || lpad(ref::VARCHAR, 8, '0') AS "Provider Ref",
               name AS "Learner Name",
               CASE email_style WHEN 1 THEN upper(email)
                                WHEN 2 THEN upper(email[1]) || email[2:]
                                WHEN 3 THEN ' ' || email || ' '
                                WHEN 4 THEN email || '  '
                                ELSE email END AS "Email",
               CASE code_style WHEN 1 THEN lower(code) WHEN 2 THEN code || ' '
                               ELSE code END AS "Course Code",
               title AS "Course Title",
               word AS "Status",
               coalesce(bad_completion, synth_date(completion, date_style, "offset"))
                   AS "Completed On",
               coalesce(bad_activity, synth_date(activity, date_style, "offset"))
                   AS "Last Activity"
        FROM external_rows
        """,
        out / "external.csv",
    )
    con.unregister("external_rows")

    lms_words = [*LMS_WORDS, "archived", "enrolled"]
    lms_words += [w.capitalize() for w in lms_words]
    progress = pa.table(
        {
            "user": _dict(lms["user"], user_ids),
            "path": _dict(lms["path"], path_ids),
            "status": _dict(lms["status"], _strings(lms_words)),
            "completion": _timestamps(lms["completion"]),
        }
    )
    con.register("progress_rows", progress)
    _copy(
        con,
        """
        SELECT "user" AS userId, path AS learningPathId, status,
               strftime(completion, '%Y-%m-%dT%H:%M:%S.') || '000Z' AS completionDate
        FROM progress_rows
        """,
        out / "progress.csv",
    )
    con.unregister("progress_rows")

    users = pa.table(
        {
            "email": _dict(directory["learner"], people["email"]),
            "user_id": _dict(directory["learner"], user_ids),
            "capital": pa.array(directory["capital"]),
        }
    )
    con.register("directory_rows", users)
    _copy(
        con,
        """
        SELECT CASE WHEN capital THEN upper(email[1]) || email[2:] ELSE email END AS email,
               user_id AS userId
        FROM directory_rows
        """,
        out / "users.csv",
    )
    con.unregister("directory_rows")

    mapping = pa.table({"code": codes.slice(0, n_paths), "path_id": path_ids})
    con.register("mapping_rows", mapping)
    _copy(
        con,
        "SELECT code AS externalCode, path_id AS learningPathId FROM mapping_rows",
        out / "paths.csv",
    )
    con.unregister("mapping_rows")
