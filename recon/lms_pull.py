"""The LMS's own directory and catalog: ``recon lms pull`` (issue 14).

Size: just over 600 lines because reading both documented page shapes, the checks that
stop on any other, pacing and retries, storing a pull whole, and a run's use of the
latest pull (``source = "lms"``, its age) are one feature an analyst reasons about as
one; the HTTP session and pacing themselves are :mod:`recon.client`'s.

:func:`pull` reads the learners (``GET /incoming/v2/users``) and the learning paths
(``GET /incoming/v2/content`` with the learning-path content type), every page, paced
like ``recon submit`` (the same :class:`~recon.client.ApiClient`, token bucket, timeouts
and target rules), and stores them in the ledger with the time of the pull and its
target. A recon.toml table ``[users]`` / ``[paths]`` with ``source = "lms"`` then reads
the latest pull instead of a file (:func:`use_pulls`), the run records which pull it used
and warns when that pull is older than ``[lms] pull_max_age_days``.

The vendor's pages disagree about the shape of a page (``docs/api/lms-api-facts.md``,
"Reading the LMS's directory and catalog"); both documented shapes are read, nothing
else is guessed (:func:`read_page`):

- ``pageInfo``: the list beside ``pageInfo {hasMore, ...}``. Users nest it as
  ``data.APIUsers.users[]`` with ``pageInfo {perPage, currentPage, total, hasMore}``
  (the next page is ``page`` + 1); content answers ``contentItems[]`` with ``pageInfo
  {cursor, hasMore}`` (the next page is that ``cursor``).
- ``meta``: the list (``users[]`` or ``contentItems[]``) beside ``meta {page, perPage,
  totalCount, totalPages, nextCursor}``: the next page is ``nextCursor`` when given, else
  ``page`` + 1 up to ``totalPages``.

Any other answer stops the pull with an error quoting its first 200 characters, and
nothing of that pull is stored.

The migration (:data:`MIGRATION`) is appended to the ledger's list as its own step.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import ApiError, ConfigError, ReconError
from .progress import progress_bar, wanted

if TYPE_CHECKING:
    from .client import ApiClient, TokenBucket
    from .config import Config
    from .ledger import Ledger
    from .target import Target

# Appended to recon.ledger.MIGRATIONS after every other step. IF NOT EXISTS: harmless
# whatever order branches are merged in. No ';' in comments: the ledger splits at them.
MIGRATION = """
    CREATE TABLE IF NOT EXISTS lms_pulls (
        id           INTEGER PRIMARY KEY,
        target       TEXT NOT NULL,
        practice     INTEGER NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT NOT NULL,
        what         TEXT NOT NULL,
        users        INTEGER,
        paths        INTEGER,
        pages        TEXT,
        notes        TEXT
    );
    CREATE TABLE IF NOT EXISTS lms_users (
        pull_id               INTEGER NOT NULL REFERENCES lms_pulls(id),
        id                    TEXT NOT NULL,
        email                 TEXT,
        firstName             TEXT,
        lastName              TEXT,
        name                  TEXT,
        externalCustomerId    TEXT,
        lastActiveAt          TEXT
    );
    CREATE INDEX IF NOT EXISTS lms_users_pull ON lms_users(pull_id);
    CREATE TABLE IF NOT EXISTS lms_paths (
        pull_id  INTEGER NOT NULL REFERENCES lms_pulls(id),
        id       TEXT NOT NULL,
        title    TEXT,
        sku      TEXT,
        slug     TEXT,
        kind     TEXT,
        status   TEXT
    );
    CREATE INDEX IF NOT EXISTS lms_paths_pull ON lms_paths(pull_id);
    CREATE TABLE IF NOT EXISTS run_pulls (
        run_id   INTEGER NOT NULL REFERENCES runs(id),
        role     TEXT NOT NULL,
        pull_id  INTEGER NOT NULL REFERENCES lms_pulls(id)
    )
"""

USERS, PATHS = "users", "paths"
WHAT = (USERS, PATHS)
USER_FIELDS = (
    "id",
    "email",
    "firstName",
    "lastName",
    "name",
    "externalCustomerId",
    "lastActiveAt",
)
"""The API's user fields recon keeps (``lms_users``; the columns a ``source = "lms"``
[users] table names)."""
PATH_FIELDS = ("id", "title", "sku", "slug", "kind", "status")
"""The API's content fields recon keeps (``lms_paths``; the columns of [paths])."""
PER_PAGE = 100
"""The documented maximum ``perPage`` (default 25): fewest requests."""
MAX_PAGES = 100_000
PAGE_INFO, META = "pageInfo", "meta"
SHAPES = (PAGE_INFO, META)
"""The two documented shapes of a page (see the module's docstring)."""
RETRY_AFTER_CAP = 120.0
MAX_THROTTLED = 50
MAX_TRIES = 5


# -- reading one page (pure) --------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page as read: its items, its shape, the query of the next page (None: the
    last page) and the total the API announced, when it did."""

    items: list[dict[str, Any]]
    shape: str
    next: dict[str, str] | None
    total: int | None = None


class ShapeError(ApiError):
    """An answer in neither documented shape: the pull stops, nothing is stored."""


def _unknown(what: str, why: str, preview: str) -> ShapeError:
    return ShapeError(
        f"GET {what}: the answer is in neither documented shape ({why}); nothing of this "
        f"pull was stored. It begins: {preview!r}"
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_page(kind: str, doc: Any, sent: dict[str, str], preview: str) -> Page:
    """Read one page of ``kind`` (``users`` or ``paths``) in either documented shape.

    ``sent``: the query of this page (for ``page`` + 1); ``preview``: the answer's first
    200 characters, quoted by the error when the shape is neither (:class:`ShapeError`).
    """
    what = "/incoming/v2/users" if kind == USERS else "/incoming/v2/content"
    list_key = "users" if kind == USERS else "contentItems"
    if not isinstance(doc, dict):
        raise _unknown(what, "not a JSON object", preview)
    container = doc
    data = doc.get("data")
    if isinstance(data, dict):
        nested = data.get("APIUsers") if kind == USERS else data
        if isinstance(nested, dict) and list_key in nested:
            container = nested
    items = container.get(list_key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _unknown(what, f"no list of objects under {list_key!r}", preview)
    page_info = container.get("pageInfo")
    meta = doc.get("meta", container.get("meta"))
    if isinstance(page_info, dict) and isinstance(meta, dict):
        raise _unknown(what, "both pageInfo and meta: which one pages is not known", preview)
    if isinstance(page_info, dict):
        more = page_info.get("hasMore")
        if not isinstance(more, bool):
            raise _unknown(what, "pageInfo without a true/false hasMore", preview)
        total = _int(page_info.get("total"))
        if not more:
            return Page(items, PAGE_INFO, None, total)
        cursor = page_info.get("cursor")
        if isinstance(cursor, str) and cursor:
            return Page(items, PAGE_INFO, {"cursor": cursor}, total)
        current = _int(page_info.get("currentPage"))
        if current is None:
            raise _unknown(what, "hasMore without a cursor or a currentPage", preview)
        return Page(items, PAGE_INFO, {"page": str(current + 1)}, total)
    if isinstance(meta, dict):
        total = _int(meta.get("totalCount"))
        cursor = meta.get("nextCursor")
        if isinstance(cursor, str) and cursor:
            return Page(items, META, {"cursor": cursor}, total)
        page, pages = _int(meta.get("page")), _int(meta.get("totalPages"))
        if page is not None and pages is not None:
            return Page(items, META, {"page": str(page + 1)} if page < pages else None, total)
        if "nextCursor" in meta:  # null: the last page
            return Page(items, META, None, total)
        raise _unknown(what, "meta without nextCursor or page and totalPages", preview)
    raise _unknown(what, "neither pageInfo nor meta", preview)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value)


# -- one pull -----------------------------------------------------------------------------


@dataclass
class PullReport:
    """What one pull did, for the terminal, the notebook and the tests."""

    target: Target
    pull_id: int | None = None
    rows: dict[str, int] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def render(self) -> str:
        lines = [f"recon lms pull: pull {self.pull_id} from {self.target}"]
        for kind in self.rows:
            noun = "learner(s)" if kind == USERS else "learning path(s)"
            lines.append(
                f"  {kind}: {self.rows[kind]:,} {noun} in {self.pages[kind]:,} page(s) "
                f"({self.shapes.get(kind, '-')} paging)"
            )
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(f"  stored in the ledger ({self.seconds:.1f}s)")
        return "\n".join(lines)


@dataclass(frozen=True)
class PullPace:
    """How fast to read: the same defaults as ``recon submit`` (the standard plan)."""

    rate: float = 2.0
    burst: int = 20
    per_page: int = PER_PAGE


def _fetch(
    client: ApiClient, bucket: TokenBucket, path: str, params: dict[str, str]
) -> tuple[Any, str]:
    """One page's JSON and its first 200 characters, paced and retried like a submit:
    429 waits ``Retry-After`` (at most 120 s, 50 times), 408/5xx/transport failures retry
    with backoff (5 tries); anything else that is not ``200`` stops the pull."""
    from .client import MAX_BODY_BYTES, TLS, UNSENDABLE
    from .errors import AuthError, NotFoundError, RedirectError, TlsError, UnexpectedAnswerError

    tries = throttled = 0
    while True:
        bucket.acquire()
        answer, content = client.get(path, params)
        url = answer.url
        if answer.remaining == 0:
            wait = 1 / bucket.rate
            if answer.reset_in is not None:
                wait = min(wait, answer.reset_in)
            bucket.pause_until(time.monotonic() + wait)
        status = answer.status
        if status is None:
            why = answer.errors[0] if answer.errors else answer.failure
            if answer.failure == TLS:
                raise TlsError(f"cannot reach {url}: {why}", url=url)
            if answer.failure == UNSENDABLE:
                raise ApiError(f"cannot send GET {url}: {why}", url=url)
            tries += 1
            if tries >= MAX_TRIES:
                raise ApiError(f"GET {url} failed {tries} times: {why}; nothing stored", url=url)
            time.sleep(random.uniform(0.25, 0.5) * 2**tries)
            continue
        if status == 200:
            if answer.body_bytes > MAX_BODY_BYTES:
                raise ApiError(
                    f"GET {url}: a page larger than {MAX_BODY_BYTES:,} bytes; use a smaller "
                    "--per-page",
                    url=url,
                )
            try:
                return json.loads(content), answer.body
            except ValueError:
                raise UnexpectedAnswerError(
                    f"GET {url} answered 200 with a body that is not JSON; nothing of this "
                    f"pull was stored. It begins: {answer.body!r}",
                    status=200,
                    url=url,
                ) from None
        if status == 429:
            throttled += 1
            if throttled > MAX_THROTTLED:
                raise ApiError(f"GET {url}: throttled {MAX_THROTTLED} times; try later", url=url)
            wait = min(answer.retry_after if answer.retry_after is not None else 1.0, 120.0)
            bucket.pause_until(time.monotonic() + wait)
            continue
        if status == 408 or 500 <= status < 600:
            tries += 1
            if tries >= MAX_TRIES:
                raise ApiError(
                    f"GET {url} answered HTTP {status} {tries} times; nothing stored",
                    status=status,
                    url=url,
                )
            time.sleep(random.uniform(0.25, 0.5) * 2**tries)
            continue
        if status in (401, 403):
            raise AuthError(f"the API key was refused (HTTP {status})", status=status, url=url)
        if status == 404:
            raise NotFoundError(f"{url} answered 404: check the base URL", status=status, url=url)
        if 300 <= status < 400:
            raise RedirectError(
                f"{url} redirects to {answer.location or '?'}: check the base URL",
                status=status,
                url=url,
                location=answer.location,
            )
        said = "; ".join(answer.errors) if answer.errors else repr(answer.body)
        raise ApiError(f"GET {url} answered HTTP {status}: {said}", status=status, url=url)


def _read_all(
    client: ApiClient,
    bucket: TokenBucket,
    kind: str,
    first: dict[str, str],
    progress: bool,
) -> tuple[list[dict[str, Any]], int, str]:
    """Every page of ``kind``: (items, pages, shape). Stops on a page seen twice or a
    page that promises more but holds nothing (the next request would repeat it)."""
    from .client import CONTENT_PATH, USERS_PATH

    path = USERS_PATH if kind == USERS else CONTENT_PATH
    params = dict(first)
    items: list[dict[str, Any]] = []
    shapes: set[str] = set()
    seen: set[tuple[tuple[str, str], ...]] = set()
    bar = _bar(kind, progress)
    try:
        for pages in range(1, MAX_PAGES + 1):
            seen.add(tuple(sorted(params.items())))
            doc, preview = _fetch(client, bucket, path, params)
            page = read_page(kind, doc, params, preview)
            shapes.add(page.shape)
            items += page.items
            if bar is not None:
                if page.total is not None and bar.total != page.total:
                    bar.total = page.total
                bar.update(len(page.items))
            if page.next is None:
                return items, pages, " and ".join(sorted(shapes))
            base = {k: v for k, v in first.items() if k not in ("page", "cursor")}
            params = {**base, **page.next}
            if tuple(sorted(params.items())) in seen or not page.items:
                raise ApiError(
                    f"GET {path}: page {pages} asks for a page already read (or is empty "
                    f"but says there is more: {page.next}); nothing of this pull was stored"
                )
    finally:
        if bar is not None:
            bar.close()
    raise ApiError(f"GET {path}: more than {MAX_PAGES:,} pages; nothing of this pull was stored")


def _bar(kind: str, enabled: bool) -> Any:
    # Drawn only where someone watches (a terminal or a notebook): never into a pipe or a log.
    if not enabled or not wanted():
        return None
    unit = "learner" if kind == USERS else "path"
    return progress_bar(None, f"pulling {kind}", unit=unit, delay=0)


def _records(kind: str, items: list[dict[str, Any]], notes: list[str]) -> list[tuple]:
    """The items as rows of ``lms_users`` / ``lms_paths``; an item without an id, or an
    id met before (without letter case), is left out and said in ``notes``."""
    names = USER_FIELDS if kind == USERS else PATH_FIELDS
    rows, seen = [], set()
    no_id = repeated = 0
    for item in items:
        ident = _text(item.get("id"))
        if ident is None:
            no_id += 1
            continue
        if ident.lower() in seen:
            repeated += 1
            continue
        seen.add(ident.lower())
        rows.append(tuple(_text(item.get(name)) for name in names))
    noun = "learner(s)" if kind == USERS else "learning path(s)"
    if no_id:
        notes.append(f"{no_id:,} {noun} without an id left out")
    if repeated:
        notes.append(f"{repeated:,} {noun} listed again on a later page left out (same id)")
    if kind == USERS:
        no_email = sum(1 for r in rows if r[1] is None)
        if no_email:
            notes.append(f"{no_email:,} learner(s) without an email: kept, never matched by email")
    return rows


def check_pull_target(ledger: Ledger, target: Target, configured: str | None) -> None:
    """A pull from a real LMS must be the ledger's LMS and recon.toml's ``[lms]
    base_url`` when given (as a submit; the pull binds nothing). A practice sandbox is
    always allowed: its pull is marked practice wherever it is used."""
    from .errors import TargetError
    from .target import target_url

    if target.practice:
        return
    named = target_url(configured) if configured else None
    if named and target.url != named:
        raise TargetError(
            f"this pull reads {target.url}, but recon.toml's [lms] base_url names {named}. "
            "Nothing was read. Check --base-url / TI_BASE_URL"
        )
    bound = ledger.binding()
    if bound and bound["target"] != target.url:
        raise TargetError(
            f"the ledger {ledger.path} belongs to the LMS {bound['target']}; this pull reads "
            f"{target.url}. Nothing was read. Use that LMS, or a new ledger (--ledger NEW.db)"
        )


def pull(
    ledger: Ledger,
    client: ApiClient,
    *,
    what: Iterable[str] = WHAT,
    pace: PullPace | None = None,
    content_type: str = "learningPath",
    lms: str | None = None,
    progress: bool = True,
) -> PullReport:
    """Read every page of ``what`` from ``client``'s LMS and store them as one pull.

    Pings first (a refused key or a wrong URL stops before anything is read; the ping
    says whether the target is a practice sandbox) and checks the target
    (:func:`check_pull_target`). Stored only once every page of every kind was read: a
    pull that stops stores nothing. ``lms``: recon.toml's ``[lms] base_url``, if any.
    """
    from .client import TokenBucket
    from .ledger import now_iso
    from .target import probe

    kinds = [k.strip() for k in what]
    wrong = [k for k in kinds if k not in WHAT]
    if wrong or not kinds:
        raise ReconError(f"--what takes users, paths or both (users,paths), not {wrong or kinds}")
    pace = pace or PullPace()
    target = probe(client)
    check_pull_target(ledger, target, lms)
    report = PullReport(target=target)
    started, clock = now_iso(), time.perf_counter()
    bucket = TokenBucket(pace.rate, pace.burst)
    bucket.acquire()  # the ping took one request of the plan
    records: dict[str, list[tuple]] = {}
    for kind in WHAT:
        if kind not in kinds:
            continue
        first = {"page": "1", "perPage": str(pace.per_page)}
        if kind == PATHS:
            first = {"types": content_type, "perPage": str(pace.per_page)}
        items, pages, shape = _read_all(client, bucket, kind, first, progress)
        records[kind] = _records(kind, items, report.notes)
        report.rows[kind], report.pages[kind], report.shapes[kind] = (
            len(records[kind]),
            pages,
            shape,
        )
    with ledger._tx("recording an LMS pull") as db:
        cur = db.execute(
            "INSERT INTO lms_pulls (target, practice, started_at, finished_at, what, users, "
            "paths, pages, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                target.url,
                int(target.practice),
                started,
                now_iso(),
                ",".join(records),
                report.rows.get(USERS),
                report.rows.get(PATHS),
                json.dumps({k: [report.pages[k], report.shapes[k]] for k in records}),
                json.dumps(report.notes),
            ),
        )
        report.pull_id = int(cur.lastrowid or 0)
        if USERS in records:
            db.executemany(
                f"INSERT INTO lms_users VALUES ({', '.join('?' * (len(USER_FIELDS) + 1))})",
                ((report.pull_id, *r) for r in records[USERS]),
            )
        if PATHS in records:
            db.executemany(
                f"INSERT INTO lms_paths VALUES ({', '.join('?' * (len(PATH_FIELDS) + 1))})",
                ((report.pull_id, *r) for r in records[PATHS]),
            )
    report.seconds = time.perf_counter() - clock
    return report


# -- using a pull -------------------------------------------------------------------------


def latest_pull(ledger: Ledger, kind: str) -> dict[str, Any] | None:
    """The latest pull that read ``kind``: ``id``, ``target``, ``practice``,
    ``finished_at``, ``rows``; None when there is none."""
    rows = ledger._query(
        f"SELECT id, target, practice, finished_at, {kind} AS rows FROM lms_pulls "
        f"WHERE {kind} IS NOT NULL ORDER BY id DESC LIMIT 1"
    )
    if not rows:
        return None
    found = dict(rows[0])
    found["practice"] = bool(found["practice"])
    return found


def pulled(ledger: Ledger, kind: str, pull_id: int) -> pd.DataFrame:
    """The learners or learning paths of one pull, with the API's field names."""
    names = USER_FIELDS if kind == USERS else PATH_FIELDS
    table = "lms_users" if kind == USERS else "lms_paths"
    return ledger._frame(
        f"SELECT {', '.join(names)} FROM {table} WHERE pull_id = ? ORDER BY rowid", (pull_id,)
    )


def age_days(finished_at: str, now: datetime | None = None) -> float:
    moment = datetime.fromisoformat(finished_at.replace("Z", "+00:00"))
    return ((now or datetime.now(UTC)) - moment).total_seconds() / 86400


def max_age_days(config: Config) -> float:
    from .config import LmsSpec

    return (config.lms or LmsSpec()).pull_max_age_days


def _write_input(frame: pd.DataFrame, out: Path) -> None:
    # The engine's own input, read back at once and removed with the run's scratch
    # folder: written exactly as pulled, without the formula escaping of the outputs
    # an analyst opens (that would change the emails and codes being matched).
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(frame.columns)
        writer.writerows(frame.itertuples(index=False, name=None))


def use_pulls(
    config: Config, ledger: Ledger | None, folder: Path, now: datetime | None = None
) -> tuple[Config, dict[str, dict[str, Any]], list[str]]:
    """The config a run reads, with each ``source = "lms"`` table pointed at the ledger's
    latest pull of it (written into ``folder``), what each pull was, and the warnings
    (a pull older than ``[lms] pull_max_age_days``).

    Raises :class:`ConfigError` when a table reads the LMS and there is no ledger or no
    pull of it.
    """
    from .config import UsersSpec

    used: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    limit = max_age_days(config)
    for role in WHAT:
        spec = config.users if role == USERS else config.paths
        if spec is None or spec.source != "lms":
            continue
        if ledger is None:
            raise ConfigError(
                f'[{role}] source = "lms" reads the ledger\'s latest `recon lms pull`: run '
                "with a ledger (not --no-ledger)"
            )
        found = latest_pull(ledger, role)
        if found is None:
            raise ConfigError(
                f'[{role}] source = "lms", but the ledger {ledger.path} holds no pull of '
                f"{role}: run `recon lms pull --config ... --what {role}` first"
            )
        frame = pulled(ledger, role, found["id"])
        file = folder / f"lms-pull-{found['id']}-{role}.csv"
        _write_input(frame, file)
        if isinstance(spec, UsersSpec):
            config = replace(config, users=replace(spec, file=file, sheet=None))
        else:
            config = replace(config, paths=replace(spec, file=file, sheet=None))
        age = age_days(found["finished_at"], now)
        used[role] = {
            "pull_id": found["id"],
            "target": found["target"],
            "practice": found["practice"],
            "pulled_at": found["finished_at"],
            "age_days": round(age, 2),
            "rows": found["rows"],
        }
        if age > limit:
            warnings.append(
                f"the LMS pull {found['id']} of {role} is {age:.1f} days old (pulled "
                f"{found['finished_at']}), older than [lms] pull_max_age_days = {limit:g}: "
                "run `recon lms pull` for a fresh one"
            )
    return config, used, warnings


def catalog_codes(ledger: Ledger, config: Config) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The latest pull's learning paths' ``sku`` and ``slug`` as suggestion candidates
    (:class:`recon.suggest.Sources` catalog rows: ``code``, ``id``, ``source``,
    ``title``), leaving out the field a ``source = "lms"`` [paths] already maps; and the
    pull they come from (None: no pull of paths)."""
    found = latest_pull(ledger, PATHS)
    empty = pd.DataFrame(columns=["code", "id", "source", "title"])
    if found is None or config.external.path_kind != "code":
        return empty, None
    frame = pulled(ledger, PATHS, found["id"])
    mapped = config.paths.external_code if config.paths and config.paths.source == "lms" else None
    parts = [
        pd.DataFrame(
            {"code": frame[name], "id": frame["id"], "source": name, "title": frame["title"]}
        ).dropna(subset=["code"])
        for name in ("sku", "slug")
        if name != mapped
    ]
    return pd.concat([empty, *parts], ignore_index=True), found


def record_run_pulls(ledger: Ledger, run_id: int, used: dict[str, dict[str, Any]]) -> None:
    """Which pull each role of run ``run_id`` read (``run_pulls``)."""
    if not used:
        return
    with ledger._tx("recording the pulls a run used") as db:
        db.executemany(
            "INSERT INTO run_pulls VALUES (?, ?, ?)",
            ((run_id, role, info["pull_id"]) for role, info in used.items()),
        )


def run_pulls(ledger: Ledger, run_id: int) -> dict[str, int]:
    """role -> pull id, for the pulls run ``run_id`` read."""
    rows = ledger._query("SELECT role, pull_id FROM run_pulls WHERE run_id = ?", (run_id,))
    return {r[0]: int(r[1]) for r in rows}


def describe_pulls(used: dict[str, dict[str, Any]]) -> list[str]:
    """One line per pull a run read, for the terminal and the notebooks."""
    lines = []
    for role, info in used.items():
        where = f"practice sandbox {info['target']}" if info["practice"] else info["target"]
        read = {"users": "as [users]", "paths": "as [paths]"}.get(role, "for path suggestions")
        lines.append(
            f"LMS pull {info['pull_id']} {read}: {info['rows']:,} row(s) from {where}, "
            f"pulled {info['pulled_at']} ({info['age_days']:.1f} days ago)"
        )
    return lines


__all__ = [
    "MIGRATION",
    "PATH_FIELDS",
    "SHAPES",
    "USER_FIELDS",
    "Page",
    "PullPace",
    "PullReport",
    "ShapeError",
    "catalog_codes",
    "check_pull_target",
    "describe_pulls",
    "latest_pull",
    "pull",
    "pulled",
    "read_page",
    "record_run_pulls",
    "run_pulls",
    "use_pulls",
]
