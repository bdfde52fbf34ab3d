"""Suggestions for unknown learners and paths: candidates an analyst may accept, never applied.

For every ``unknown-learner`` and ``unknown-path`` row, :func:`suggest` looks for
candidates in the directory (learners) and the course mapping or the LMS's catalog
(paths), each with a score from 0 to 1 and the reason in words. The rules:

Learners (emails):
- the same address once case, blanks and look-alike characters are ignored (0.99);
- the same employee id, when both sides have an employee id column (0.98);
- the same address once dots and plus tags in the local part are ignored where the
  domain ignores them (``[identity] dots_ignored``, ``plus_tags_ignored``) and known
  domain aliases (``[identity.domain_aliases]``) are read as the directory's domain (0.95);
- the local part one or two edits away (letters added, missing, changed or swapped), at
  the same domain: 0.9 times the similarity of the two local parts;
- the same name (case, accents, order of the words ignored), when both sides have name
  columns and ``[identity] use_names`` is true (0.7).
Paths (course codes):
- the same code once case, blanks, separators and leading zeros are ignored (0.95), with
  the mapping's codes and the LMS catalog's ``sku`` and ``slug``;
- the code one or two edits away from one of those: 0.85 times the similarity;
- the same title (words in any order), when the provider and the catalog have titles:
  0.75 times the similarity (90 % or more).

Rules reading the same evidence (an address; a code, as mapped, sku or slug) count once,
at their best; independent evidence naming one candidate adds up (``1 - (1-a)(1-b)``, at
most 0.99) and their reasons are joined. What is never guessed: a value the directory
(or mapping) itself gives several ids has no candidate, only the reason; when the best
candidates score exactly the same, the row has no candidate either, only the reason
naming them. At most three candidates per row, best first; below ``[identity]
min_score`` none.

Size: about 700 lines because both kinds' rules, their scores and the one ranking
that merges them are read together when a score is questioned; the ledger side is
:mod:`recon.aliases`.

Pure: frames in, a frame out. Reading the directory and mapping is :func:`load_sources`.
The comparisons run vectorised: exact rules as joins, edit distance through a
deletion neighbourhood (a value and each of its one-letter deletions) joined in DuckDB,
then scored pairwise by rapidfuzz.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from . import outcomes as oc
from .config import Config, IdentitySpec
from .result import SUGGESTION_COLUMNS, no_suggestions

LEARNER, PATH = "learner", "path"
ADDRESS, CODE = "address", "code"
"""Evidence families: rules reading one of them count once, at their best."""
MAX_PER_ROW = 3
MAX_EDITS = 2

_SCORE_PLAIN = 0.99
_SCORE_EMPLOYEE = 0.98
_SCORE_CANONICAL = 0.95
_SCORE_LOCAL_EDIT = 0.9
_SCORE_NAME = 0.7
_SCORE_CODE = 0.95
_SCORE_CODE_EDIT = 0.85
_SCORE_TITLE = 0.75
_TITLE_CUTOFF = 90
_CAP = 0.99


@dataclass(frozen=True)
class Sources:
    """What candidates are drawn from.

    ``directory``: ``email``, ``id`` and optionally ``name``, ``employee_id``.
    ``catalog``: ``code``, ``id``, ``source`` (``mapping``, ``sku``, ``slug``: where the
    code comes from) and optionally ``title``. Any may be empty.
    """

    directory: pd.DataFrame
    catalog: pd.DataFrame


def _plain(value: str) -> str:
    """Case, blanks and look-alikes ignored: NFKC, case-folded, every blank removed."""
    return "".join(unicodedata.normalize("NFKC", value).casefold().split())


def _plain_all(values: pd.Series) -> pd.Series:
    """:func:`_plain` for a whole column: ASCII cells vectorised, the rest one by one."""
    text = values.astype("string[pyarrow]")  # vectorised string functions
    ascii_ = text.str.isascii().fillna(True).astype(bool)
    # the blanks str.split() removes in ASCII (\s leaves out \x0b and \x1c-\x1f)
    out = text.str.lower().str.replace(r"[\t\n\x0b\x0c\r\x1c-\x1f ]+", "", regex=True)
    if not ascii_.all():
        out[~ascii_] = pd.Series([_plain(x) for x in text[~ascii_]], index=text.index[~ascii_])
    return out.astype(object)


def _canonical_all(frame: pd.DataFrame, spec: IdentitySpec) -> pd.DataFrame:
    """A frame's ``plain`` addresses as compared: ``local`` part and ``domain`` once the
    domain's alias, plus tag and dots are applied, and what was ignored in words, one
    column per step (``'' `` where it did not apply): ``how_alias``, ``how_plus``,
    ``how_dots``."""
    # Arrow's regex replace runs in C++ (extract and split fall back to Python per row);
    # greedy .* splits at the last @, as str.rpartition; no @: all local part, no domain
    plain = frame["plain"].astype("string[pyarrow]")
    has_at = plain.str.contains("@", regex=False)
    local = plain.str.replace(r"(?s)^(.*)@.*$", r"\1", regex=True)
    written = plain.str.replace(r"(?s)^.*@", "", regex=True).where(has_at, "")
    domain = written.map(spec.domain_aliases).fillna(written) if spec.domain_aliases else written
    aliased = written != domain
    how_alias = ("domain " + written + " read as " + domain + " ([identity])").where(aliased, "")
    plus = domain.isin(spec.plus_tags_ignored) & local.str.contains("+", regex=False)
    local = local.where(~plus, local.str.replace(r"(?s)\+.*$", "", regex=True))
    how_plus = ("plus tag ignored (" + domain + " ignores it)").where(plus, "")
    dots = domain.isin(spec.dots_ignored) & local.str.contains(".", regex=False)
    local = local.where(~dots, local.str.replace(".", "", regex=False))
    how_dots = ("dots ignored (" + domain + " ignores them)").where(dots, "")
    columns = {"local": local, "domain": domain}
    columns |= {"how_alias": how_alias, "how_plus": how_plus, "how_dots": how_dots}
    return frame.assign(**{k: c.astype(object) for k, c in columns.items()})


def _name(value: object) -> str | None:
    """A name compared without case, accents, punctuation or word order."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = unicodedata.normalize("NFKD", value).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c))
    words = sorted(w for w in re.split(r"[\W_]+", text) if w)
    return " ".join(words) or None


def _code(value: str) -> str:
    """A course code without case, blanks, separators or leading zeros of its numbers."""
    text = re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", value).casefold())
    return re.sub(r"(?<!\d)0+(?=\d)", "", text)


def _near(
    queries: pd.DataFrame, choices: pd.DataFrame, text: str, block: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rows of ``queries`` and of ``choices`` (side by side, one pair a line) whose
    ``text`` is 1..MAX_EDITS edits apart, within the same ``block`` column when given,
    found without comparing every pair; and per pair its ``edits`` and ``similarity``
    (OSA: a swap of two letters is one edit).

    Two texts within one edit share a member of their deletion neighbourhoods (the text
    and each text with one letter deleted); two edits mostly do too (a letter changed at
    each end is the miss). The shared members are joined in DuckDB, the pairs then
    measured by rapidfuzz, all pairs in one call each.
    """
    queries, choices = queries.reset_index(drop=True), choices.reset_index(drop=True)
    pairs = _shared_neighbours(
        pd.DataFrame({"block": queries[block] if block else None, "text": queries[text]}),
        pd.DataFrame({"block": choices[block] if block else None, "text": choices[text]}),
    )
    a = list(queries[text].to_numpy()[pairs["q"].to_numpy()])
    b = list(choices[text].to_numpy()[pairs["c"].to_numpy()])
    pairs["edits"] = np.asarray(process.cpdist(a, b, scorer=OSA.distance, workers=1), "int64")
    pairs["similarity"] = process.cpdist(
        a, b, scorer=OSA.normalized_similarity, dtype=np.float64, workers=1
    )
    pairs = pairs[(pairs["edits"] >= 1) & (pairs["edits"] <= MAX_EDITS)].reset_index(drop=True)
    return (
        queries.iloc[pairs["q"]].reset_index(drop=True),
        choices.iloc[pairs["c"]].reset_index(drop=True),
        pairs[["edits", "similarity"]],
    )


def _edits(n: pd.Series) -> pd.Series:
    """'1 edit', '2 edits'."""
    return n.astype(str) + np.where(n > 1, " edits", " edit")


def _shared_neighbours(queries: pd.DataFrame, choices: pd.DataFrame) -> pd.DataFrame:
    """Pairs (``q``, ``c`` positions) of ``block``/``text`` rows sharing a member of their
    deletion neighbourhoods (see :func:`_near`)."""
    empty = pd.DataFrame({"q": pd.Series(dtype="int64"), "c": pd.Series(dtype="int64")})
    if queries.empty or choices.empty:
        return empty
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.register("qs", queries[["block", "text"]].reset_index(names="i"))
        con.register("cs", choices[["block", "text"]].reset_index(names="i"))
        # Hashes of (block, text) stand for the texts: the join then moves integers, and a
        # collision only costs a pair that rapidfuzz measures and drops. The pairs come out
        # in the values' and the directory's order: a join's order varies from run to run,
        # and it decides the order of tied candidates and which equal scores make the top 3.
        neighbourhood = """
            SELECT i, hash(coalesce(block, ''), text) AS h FROM {t} WHERE length(text) > 0
            UNION ALL
            SELECT i, hash(coalesce(block, ''), substr(text, 1, n - 1) || substr(text, n + 1))
            FROM (SELECT i, block, text, unnest(range(1, length(text) + 1)) AS n
                  FROM {t} WHERE length(text) > 1)
        """
        pairs = con.execute(
            f"""
            WITH cs_used AS (
                SELECT * FROM cs WHERE coalesce(block, '') IN (SELECT coalesce(block, '') FROM qs)
            ),
            qn AS ({neighbourhood.format(t="qs")}), cn AS ({neighbourhood.format(t="cs_used")})
            SELECT DISTINCT qn.i AS q, cn.i AS c FROM qn JOIN cn ON cn.h = qn.h
            ORDER BY q, c
            """
        ).df()
    finally:
        con.close()
    return pairs


def _learner_candidates(
    values: pd.DataFrame, directory: pd.DataFrame, spec: IdentitySpec
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Candidates per distinct learner value: (value, candidate, candidate_id, score,
    reason), and the values the directory itself holds ambiguously -> their reason."""
    found: list[pd.DataFrame] = []
    d = directory.dropna(subset=["email", "id"]).copy()
    d["email"] = d["email"].astype(str).str.strip()
    d["id"] = d["id"].astype(str).str.strip()
    d = d[(d["email"] != "") & (d["id"] != "")]
    d["plain"] = _plain_all(d["email"])
    v = values.copy()
    v["plain"] = _plain_all(v["value"])
    ambiguous = _ambiguous(
        v["value"],
        d["email"],
        d["id"],
        "names {n} different user ids in the directory",
        "directory",
    )
    v = v[~v["value"].isin(list(ambiguous))]
    if v.empty or d.empty:
        return _empty_candidates(), ambiguous
    exact = v.merge(d[["plain", "email", "id"]], on="plain")
    exact = exact[exact["email"].str.strip() != exact["value"].str.strip()]
    found.append(
        exact.assign(
            score=_SCORE_PLAIN,
            reason="the same address once case, blanks and look-alike characters are ignored",
            evidence=ADDRESS,
        )
    )

    vc, dc = _canonical_all(v, spec), _canonical_all(d, spec)
    dc_how = ["how_alias", "how_plus", "how_dots"]
    same = vc.merge(
        dc[["local", "domain", "email", "id", "plain", *dc_how]], on=["local", "domain"]
    )
    same = same[same["plain_x"] != same["plain_y"]]
    if not same.empty:
        # what either side ignored, each step named once
        how = [f"how_{step}_{side}" for side in "xy" for step in ("alias", "plus", "dots")]
        texts = same[how].to_numpy().ravel()  # pair by pair, in that order
        pair = np.repeat(np.arange(len(same)), len(how))
        said = texts != ""
        reasons = "the same address once " + _joined(pair[said], texts[said], "; ", len(same))
        found.append(same.assign(score=_SCORE_CANONICAL, reason=reasons, evidence=ADDRESS))
    q, c, near = _near(vc, dc, "local", "domain")
    found.append(
        pd.DataFrame(
            {
                "value": q["value"],
                "email": c["email"],
                "id": c["id"],
                "score": _SCORE_LOCAL_EDIT * near["similarity"],
                "reason": "'"
                + q["local"]
                + "' is "
                + _edits(near["edits"])
                + " from '"
                + c["local"]
                + "' before the @",
                "evidence": ADDRESS,
            }
        )
    )
    if "employee_id" in v and "employee_id" in d:
        ve = v.assign(emp=v["employee_id"].map(_employee)).dropna(subset=["emp"])
        de = d.assign(emp=d["employee_id"].map(_employee)).dropna(subset=["emp"])
        both = ve.merge(de[["emp", "email", "id"]], on="emp")
        found.append(
            both.assign(
                score=_SCORE_EMPLOYEE,
                reason=[f"the same employee id {e}" for e in both["emp"]],
                evidence="employee id",
            )
        )
    if spec.use_names and "name" in v and "name" in d:
        vn = v.assign(nm=v["name"].map(_name)).dropna(subset=["nm"])
        dn = d.assign(nm=d["name"].map(_name)).dropna(subset=["nm"])
        both = vn.merge(dn[["nm", "email", "id"]], on="nm")
        found.append(
            both.assign(
                score=_SCORE_NAME,
                reason=[f"the same name ({n})" for n in both["nm"]],
                evidence="name",
            )
        )
    frames = [
        f[["value", "email", "id", "score", "reason", "evidence"]] for f in found if not f.empty
    ]
    if not frames:
        return _empty_candidates(), ambiguous
    out = pd.concat(frames, ignore_index=True).rename(
        columns={"email": "candidate", "id": "candidate_id"}
    )
    return out, ambiguous


def _ambiguous(
    values: pd.Series, keys: pd.Series, ids: pd.Series, says: str, fix: str
) -> dict[str, str]:
    """Values that ``keys`` (compared without case) give several ``ids``: their reason."""
    wanted = set(values.str.strip().str.lower())
    table = pd.DataFrame({"k": keys.str.lower(), "id": ids.str.lower()})
    table = table[table["k"].isin(wanted)].drop_duplicates()
    many = table.groupby("k")["id"].agg(lambda s: sorted(s))
    many = many[many.map(len) > 1]
    out = {}
    for value in values:
        found = many.get(value.strip().lower())
        if found is not None:
            shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
            out[value] = f"'{value}' {says.format(n=len(found))} ({shown}): no guess; fix the {fix}"
    return out


def _employee(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().casefold()


def _path_candidates(
    values: pd.DataFrame, catalog: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Candidates per distinct course code, and codes the mapping holds ambiguously."""
    cat = catalog.dropna(subset=["code", "id"]).copy()
    cat["code"] = cat["code"].astype(str).str.strip()
    cat["id"] = cat["id"].astype(str).str.strip()
    cat = cat[(cat["code"] != "") & (cat["id"] != "")]
    cat["norm"] = [_code(c) for c in cat["code"]]
    mapped = cat[cat["source"] == "mapping"]
    ambiguous = _ambiguous(
        values["value"],
        mapped["code"],
        mapped["id"],
        "maps to {n} learning paths in the mapping",
        "mapping",
    )
    v = values[~values["value"].isin(list(ambiguous))].copy()
    if v.empty or cat.empty:
        return _empty_candidates(), ambiguous
    v["norm"] = [_code(x) for x in v["value"]]
    found: list[pd.DataFrame] = []
    what = {"mapping": "the mapped code", "sku": "the learning path's sku", "slug": "its slug"}
    same = v.merge(cat[["norm", "code", "id", "source"]], on="norm")
    same = same[same["code"].str.lower() != same["value"].str.strip().str.lower()]
    found.append(
        same.assign(
            score=_SCORE_CODE,
            reason=[
                f"the same as {what.get(s, s)} once case, blanks, separators and leading "
                "zeros are ignored"
                for s in same["source"]
            ],
            evidence=CODE,
        )
    )
    q, c, near = _near(v, cat, "norm")
    found.append(
        pd.DataFrame(
            {
                "value": q["value"],
                "code": c["code"],
                "id": c["id"],
                "score": _SCORE_CODE_EDIT * near["similarity"],
                "reason": _edits(near["edits"])
                + " from "
                + c["source"].map(what).fillna(c["source"]),
                "evidence": CODE,
            }
        )
    )
    if "title" in v and "title" in cat:
        vt = v.dropna(subset=["title"])
        vt = vt[vt["title"].astype(str).str.strip() != ""]
        titles = cat.dropna(subset=["title"]).drop_duplicates(["id", "title"])
        titles = titles[titles["title"].astype(str).str.strip() != ""].reset_index(drop=True)
        if not vt.empty and not titles.empty:
            uniq = vt["title"].astype(str).unique()
            scores = process.cdist(
                list(uniq),
                list(titles["title"].astype(str)),
                scorer=fuzz.token_sort_ratio,
                processor=lambda t: _name(t) or "",
                score_cutoff=_TITLE_CUTOFF,
                workers=1,
            )
            qi, ci = np.nonzero(scores)
            by_title = pd.DataFrame(
                {
                    "title": uniq[qi],
                    "code": titles["code"].to_numpy()[ci],
                    "id": titles["id"].to_numpy()[ci],
                    "score": _SCORE_TITLE * scores[qi, ci] / 100.0,
                    "reason": [
                        f"title '{t}' like '{u}'"
                        for t, u in zip(uniq[qi], titles["title"].to_numpy()[ci], strict=True)
                    ],
                    "evidence": "title",
                }
            )
            found.append(vt[["value", "title"]].merge(by_title, on="title"))
    frames = [
        f[["value", "code", "id", "score", "reason", "evidence"]] for f in found if not f.empty
    ]
    if not frames:
        return _empty_candidates(), ambiguous
    out = pd.concat(frames, ignore_index=True).rename(
        columns={"code": "candidate", "id": "candidate_id"}
    )
    return out, ambiguous


def _empty_candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "value": pd.Series(dtype=object),
            "candidate": pd.Series(dtype=object),
            "candidate_id": pd.Series(dtype=object),
            "score": pd.Series(dtype=float),
            "reason": pd.Series(dtype=object),
            "evidence": pd.Series(dtype=object),
        }
    )


def _joined(groups: np.ndarray, texts: pd.Series | np.ndarray, sep: str, n: int) -> np.ndarray:
    """Per group number 0..n-1, its distinct texts in the order they come, joined by
    ``sep`` (``''`` for a group without any): ``sep.join(dict.fromkeys(texts))`` for every
    group at once.

    One round per position in a group (a group holds a few texts: the readings of one
    candidate, the candidates of one tie), each round over all the groups that long;
    not a Python call per group, which was most of the time at 1M rows.
    """
    frame = pd.DataFrame({"g": groups, "t": np.asarray(texts, dtype=object)}).drop_duplicates()
    frame = frame.sort_values("g", kind="stable")  # stable: each group's texts in order
    g, t = frame["g"].to_numpy(), frame["t"].to_numpy()
    nth = frame.groupby("g").cumcount().to_numpy()
    out = np.full(n, "", dtype=object)
    out[g[nth == 0]] = t[nth == 0]
    for k in range(1, int(nth.max()) + 1 if len(nth) else 1):
        at = nth == k
        out[g[at]] = out[g[at]] + sep + t[at]
    return out


def _combined(c: pd.DataFrame, keys: list[str], score: tuple[str, str]) -> pd.DataFrame:
    """One line per ``keys``: the first candidate (c is best first), ``score`` aggregated
    as named, and the distinct reasons joined in the order they come."""
    by = c.groupby(keys, sort=False)
    out = by.agg(
        candidate=("candidate", "first"),
        candidate_id=("candidate_id", "first"),
        **{score[0]: score},
    )
    # ngroup numbers the groups in the order agg lists them (first appearance)
    out["reason"] = _joined(by.ngroup().to_numpy(), c["reason"], "; ", len(out))
    return out.reset_index()


def _rank(
    candidates: pd.DataFrame,
    rejected: set[tuple[str, str]],
    min_score: float,
) -> pd.DataFrame:
    """Per value: candidates combined per id, rejected ones out, ties at the top made a
    reason-only line, at most three, best first. Columns value, candidate, candidate_id,
    score (NaN on a reason-only line), reason."""
    if candidates.empty:
        return _empty_candidates()
    c = candidates.copy()
    c["id_key"] = c["candidate_id"].str.lower()
    if rejected:
        keys = pd.MultiIndex.from_arrays([_plain_all(c["value"].str.strip()), c["id_key"]])
        c = c[~keys.isin(list(rejected))]
    if c.empty:
        return _empty_candidates()
    c = c.sort_values("score", ascending=False, kind="stable")
    # Rules that read the same evidence (one code matched as the mapped code, as the sku
    # and as the slug; one address read three ways) count once, at their best: they are
    # not independent witnesses, and adding them would lift a typo above a bulk threshold.
    c = _combined(c, ["value", "id_key", "evidence"], ("score", "max"))
    # Independent evidence (the address, an employee id, a name; the code, a title) adds up.
    c["miss"] = np.log1p(-c["score"].clip(upper=_CAP))
    grouped = _combined(c, ["value", "id_key"], ("miss", "sum")).drop(columns="id_key")
    grouped["score"] = (1 - np.exp(grouped.pop("miss"))).clip(upper=_CAP).round(3)
    grouped = grouped[grouped["score"] >= min_score]
    grouped = grouped.sort_values(["value", "score"], ascending=[True, False], kind="stable")
    # a value's best candidates tie: no guess, only the reason naming them
    top = grouped.groupby("value")["score"].transform("max")
    at_top = grouped[grouped["score"] == top]
    tie_count = at_top.groupby("value")["score"].transform("size")
    tied = at_top[tie_count > 1]
    lines = [grouped[~grouped["value"].isin(set(tied["value"]))].groupby("value").head(MAX_PER_ROW)]
    if not tied.empty:
        shown = tied["candidate"] + " (" + tied["candidate_id"] + ")"  # distinct: one per id
        by = tied.groupby("value")
        why = by.agg(n=("score", "size"), score=("score", "first"))
        why["shown"] = _joined(by.ngroup().to_numpy(), shown, ", ", len(why))
        lines.append(
            pd.DataFrame(
                {
                    "value": why.index,
                    "candidate": None,
                    "candidate_id": None,
                    "score": np.nan,
                    "reason": (
                        why["n"].astype(str)
                        + " candidates score "
                        + why["score"].map({s: f"{s:.2f}" for s in why["score"].unique()})
                        + " alike: "
                        + why["shown"]
                        + ": no guess"
                    ).to_numpy(),
                }
            )
        )
    return pd.concat(lines, ignore_index=True)


def suggest(
    unknown: pd.DataFrame,
    sources: Sources,
    spec: IdentitySpec,
    rejected: Iterable[tuple[str, str, str]] = (),
) -> pd.DataFrame:
    """Suggestions for the rows of ``unknown`` (``row``, ``kind``, ``value`` and, where
    the provider has them, ``name``, ``employee_id``, ``title``), as ``SUGGESTION_COLUMNS``.

    ``rejected``: (kind, value, candidate_id) an analyst turned down: never offered again.
    A row without any candidate has no line; a row the directory or mapping holds
    ambiguously, or whose best candidates tie, has one line with only the reason.
    """
    blocked: dict[str, set[tuple[str, str]]] = {LEARNER: set(), PATH: set()}
    for kind, value, cid in rejected:
        blocked.setdefault(kind, set()).add((_plain(value.strip()), cid.lower()))
    parts = []
    for kind in (LEARNER, PATH):
        rows = unknown[(unknown["kind"] == kind) & unknown["value"].notna()].copy()
        rows["value"] = rows["value"].astype(str)
        rows = rows[rows["value"].str.strip() != ""]
        if rows.empty:
            continue
        extra = [c for c in ("name", "employee_id", "title") if c in rows]
        values = rows.drop_duplicates("value")[["value", *extra]].copy()
        values["value_trim"] = values["value"].str.strip()
        if kind == LEARNER:
            cands, ambiguous = _learner_candidates(
                values.assign(value=values["value_trim"]), sources.directory, spec
            )
        else:
            cands, ambiguous = _path_candidates(
                values.assign(value=values["value_trim"]), sources.catalog
            )
        ranked = _rank(cands, blocked[kind], spec.min_score)
        if ambiguous:
            ranked = pd.concat(
                [
                    ranked,
                    pd.DataFrame(
                        {
                            "value": list(ambiguous),
                            "candidate": None,
                            "candidate_id": None,
                            "score": np.nan,
                            "reason": list(ambiguous.values()),
                        }
                    ),
                ],
                ignore_index=True,
            )
        rows["value_trim"] = rows["value"].str.strip()
        merged = rows[["row", "value", "value_trim"]].merge(
            ranked.rename(columns={"value": "value_trim"}), on="value_trim"
        )
        parts.append(merged.assign(kind=kind))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SUGGESTION_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    out["_neg"] = -out["score"].fillna(2.0)
    out = out.sort_values(["row", "kind", "_neg"], kind="stable")
    return out[SUGGESTION_COLUMNS].reset_index(drop=True)


# -- where the candidates come from (I/O at the edge) ---------------------------------------


def unknown_rows(config: Config, exceptions: pd.DataFrame) -> pd.DataFrame:
    """The ``unknown-learner`` and ``unknown-path`` rows of a run, with the provider's
    value and, where configured, name, employee id and title: the input of :func:`suggest`.

    Read from the exceptions frame, which keeps those rows' original cells.
    """
    ext = config.external
    columns = list(exceptions.columns)

    def col(name: str | None) -> str | None:
        if name is None:
            return None
        for candidate in (name, f"{name} (provider)"):
            if candidate in columns[3:]:
                return candidate
        return None

    learner_email = ext.learner_kind in ("email", "email_or_user_id")
    parts = []
    for kind, outcome, value_col in (
        (LEARNER, oc.UNKNOWN_LEARNER, col(ext.learner) if learner_email else None),
        (PATH, oc.UNKNOWN_PATH, col(ext.path) if ext.path_kind == "code" else None),
    ):
        if value_col is None:
            continue
        rows = exceptions[exceptions["outcome"] == outcome]
        frame = pd.DataFrame({"row": rows["row"], "kind": kind, "value": rows[value_col]})
        extras = (
            {"name": ext.learner_name, "employee_id": ext.employee_id}
            if kind == LEARNER
            else {"title": ext.path_title}
        )
        for role, name in extras.items():
            source = col(name)
            if source is not None:
                frame[role] = rows[source]
        if ext.learner_kind == "email_or_user_id" and kind == LEARNER:
            frame = frame[frame["value"].astype(str).str.contains("@", regex=False)]
        parts.append(frame)
    if not parts:
        return pd.DataFrame(columns=["row", "kind", "value"])
    return pd.concat(parts, ignore_index=True)


def load_sources(config: Config) -> Sources:
    """The directory and the course mapping as :class:`Sources`, read as recon reads them."""
    from .inputs import BAD, load_table

    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        directory = pd.DataFrame(columns=["email", "id"])
        if config.users is not None and config.external.learner_kind != "user_id":
            u = config.users
            wanted = {
                "email": u.email,
                "id": u.user_id,
                "name": u.name,
                "first_name": u.first_name,
                "last_name": u.last_name,
                "employee_id": u.employee_id,
            }
            _, cols = load_table(con, "users", "users", u.file, wanted, sheet=u.sheet)
            picked = ", ".join(f'"{c}" AS {role}' for role, c in cols.items())
            directory = con.execute(f"SELECT {picked} FROM users WHERE {BAD} IS NULL").df()
            directory = _full_name(directory)
        catalog = pd.DataFrame(columns=["code", "id", "source"])
        if config.paths is not None and config.external.path_kind == "code":
            p = config.paths
            wanted = {"code": p.external_code, "id": p.learning_path_id, "title": p.title}
            _, cols = load_table(con, "paths", "paths", p.file, wanted, sheet=p.sheet)
            picked = ", ".join(f'"{c}" AS {role}' for role, c in cols.items())
            catalog = con.execute(f"SELECT {picked} FROM paths WHERE {BAD} IS NULL").df()
            catalog["source"] = "mapping"
    finally:
        con.close()
    return Sources(directory=directory, catalog=catalog)


def _full_name(directory: pd.DataFrame) -> pd.DataFrame:
    """One ``name`` column, from first and last name columns when there is no full name."""
    if "name" not in directory and ("first_name" in directory or "last_name" in directory):
        first = directory.get("first_name", pd.Series("", index=directory.index)).fillna("")
        last = directory.get("last_name", pd.Series("", index=directory.index)).fillna("")
        directory = directory.assign(name=(first.astype(str) + " " + last.astype(str)).str.strip())
    return directory.drop(columns=[c for c in ("first_name", "last_name") if c in directory])


def suggestions_for(
    config: Config,
    exceptions: pd.DataFrame,
    rejected: Iterable[tuple[str, str, str]] = (),
    sources: Sources | None = None,
) -> pd.DataFrame:
    """Suggestions for a run's exceptions, from the config's directory and mapping (or
    ``sources`` when given)."""
    unknown = unknown_rows(config, exceptions)
    if unknown.empty:
        return no_suggestions()
    if sources is None:
        sources = load_sources(config)
    return suggest(unknown, sources, config.identity, rejected)


def describe(suggestions: pd.DataFrame) -> str:
    """One line for the terminal: how many rows got candidates, how many no guess."""
    if suggestions.empty:
        return "suggestions: none (no unknown learner or path has a candidate)"
    guessed = suggestions[suggestions["candidate_id"].notna()]["row"].nunique()
    unsure = suggestions[suggestions["candidate_id"].isna()]["row"].nunique()
    return (
        f"suggestions: {guessed:,} row(s) with candidates, {unsure:,} without a guess "
        "(ambiguous); see suggestions.csv, accept with `recon resolve`"
    )
