"""The sandbox's learners and learning paths: what ``GET /incoming/v2/users`` and ``GET
/incoming/v2/content`` answer (``recon lms pull`` reads them).

Seeded from a config's directory and mapping, read as recon reads them
(:func:`recon.suggest.load_sources`): a learner (each id once) has the directory's
``id``, ``email`` and ``name`` (``firstName`` and ``lastName`` split from it at the last
blank); a learning path has the mapping's id, its ``title`` (the code when the mapping
has no titles), its ``sku`` (the provider's code) and a ``slug`` made from the title.

Pages come in either documented shape (``docs/api/lms-api-facts.md``), as the setting
``page_shape`` says, so both are testable offline:

- ``pageInfo``: users as ``{"data": {"APIUsers": {"users": [...], "pageInfo": {perPage,
  currentPage, total, hasMore}}}}`` (query ``page``, ``perPage``); content as
  ``{"contentItems": [...], "pageInfo": {cursor, hasMore}}`` (query ``cursor``).
- ``meta``: ``{"users" | "contentItems": [...], "meta": {page, perPage, totalCount,
  totalPages, nextCursor}}``; users by ``page``, content by ``cursor``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config

PAGE_SHAPES = ("pageInfo", "meta")
DEFAULT_PER_PAGE, MAX_PER_PAGE = 25, 100
"""The documented ``perPage``: 25 by default, at most 100."""
LEARNING_PATH = "learningPath"


def slug(text: str) -> str:
    """``Business Writing (2023 edition)`` -> ``business-writing-2023-edition``."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def from_config(config: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Learners and learning paths from ``config``'s directory and mapping (either may
    be absent, or read from the LMS itself: then that list is empty)."""
    from dataclasses import replace

    from ..suggest import load_sources

    # A table that itself reads the LMS pull has nothing to seed the LMS with.
    sources = load_sources(
        replace(
            config,
            users=config.users if config.users and config.users.source == "file" else None,
            paths=config.paths if config.paths and config.paths.source == "file" else None,
        )
    )
    learners, known = [], set()
    for row in sources.directory.to_dict("records"):
        # The LMS holds each learner once: a directory line repeating an id is not a
        # second learner.
        if row["id"] is None or str(row["id"]).lower() in known:
            continue
        known.add(str(row["id"]).lower())
        name = row.get("name")
        name = name.strip() if isinstance(name, str) and name.strip() else None
        first, _, last = (name or "").rpartition(" ")
        learners.append(
            {
                "id": row["id"],
                "email": row["email"],
                "firstName": (first or last) or None,
                "lastName": (last if first else None),
                "name": name,
                "lastActiveAt": None,
                "externalCustomerId": None,
            }
        )
    paths, seen = [], set()
    for row in sources.catalog.to_dict("records"):
        if row["id"] is None or str(row["id"]).lower() in seen:
            continue
        seen.add(str(row["id"]).lower())
        title = row.get("title")
        title = title if isinstance(title, str) and title.strip() else row["code"]
        paths.append(
            {
                "id": row["id"],
                "title": title,
                "slug": slug(title),
                "kind": LEARNING_PATH,
                "sku": row["code"],
                "status": "published",
                "language": "en",
            }
        )
    return learners, paths


def _per_page(query: dict[str, str]) -> int | None:
    text = query.get("perPage", str(DEFAULT_PER_PAGE))
    if not text.isdigit() or not 1 <= int(text) <= MAX_PER_PAGE:
        return None
    return int(text)


def users_page(
    learners: list[dict[str, Any]], query: dict[str, str], shape: str
) -> tuple[int, dict[str, Any]]:
    """(status, body) of ``GET /incoming/v2/users`` for ``query``."""
    per_page = _per_page(query)
    page_text = query.get("page", "1")
    if per_page is None or not page_text.isdigit() or int(page_text) < 1:
        return 400, {"errors": [f"perPage must be 1 to {MAX_PER_PAGE} and page 1 or more"]}
    page = int(page_text)
    total = len(learners)
    items = learners[(page - 1) * per_page : page * per_page]
    pages = max(1, math.ceil(total / per_page))
    if shape == "meta":
        meta = {
            "page": page,
            "perPage": per_page,
            "totalCount": total,
            "totalPages": pages,
            "nextCursor": None,
        }
        return 200, {"users": items, "meta": meta}
    info = {"perPage": per_page, "currentPage": page, "total": total, "hasMore": page < pages}
    return 200, {"data": {"APIUsers": {"users": items, "pageInfo": info}}}


def content_page(
    paths: list[dict[str, Any]], query: dict[str, str], shape: str
) -> tuple[int, dict[str, Any]]:
    """(status, body) of ``GET /incoming/v2/content`` for ``query`` (``types`` required;
    learning paths are the ``learningPath`` type)."""
    types = query.get("types")
    if not types:
        return 400, {"errors": ["types is required"]}
    per_page = _per_page(query)
    cursor = query.get("cursor", "0")
    if per_page is None or not cursor.isdigit():
        return 400, {"errors": [f"perPage must be 1 to {MAX_PER_PAGE}; invalid cursor"]}
    chosen = paths if LEARNING_PATH in types.split(",") else []
    start = int(cursor)
    items = chosen[start : start + per_page]
    after = start + per_page
    more = after < len(chosen)
    if shape == "meta":
        meta = {
            "page": start // per_page + 1,
            "perPage": per_page,
            "totalCount": len(chosen),
            "totalPages": max(1, math.ceil(len(chosen) / per_page)),
            "nextCursor": str(after) if more else None,
        }
        return 200, {"contentItems": items, "meta": meta}
    return 200, {
        "contentItems": items,
        "pageInfo": {"cursor": str(after) if more else None, "hasMore": more},
    }
