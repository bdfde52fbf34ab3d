"""Regenerate the bundled sample: ``make sample`` (``python -m recon.devtools.sample``).

The sample ships inside the package (``recon/sample/``, read with
:mod:`importlib.resources`: see :func:`recon.demo.sample_config`), so that ``recon demo``
works from any folder after a plain ``pip install``; ``data/sample`` in a checkout is a
link to it, for analysts and the notebooks.

Brightwater Academy is a fictional training provider; its export (``external.csv``,
about 2,000 rows for about 500 learners and 50 learning paths) is compared with a
fictional company's LMS progress export (``progress.csv``), learner directory
(``users.csv``) and course-code mapping (``paths.csv``). Every name is made up and every
address is at example.com, example.org or example.net.

The files are written by :func:`recon.devtools.synth.generate` with a fixed seed, so
running this again writes the very same bytes. Every ordinary date lies before 2026-11-25
and every future date in 2028, so the sample reads the same at the tests' fixed as-of
(2026-11-27T00:00:00Z) and at the real "now" of `make demo`. The sample exercises every
outcome except ``already-submitted``, which needs a ledger.

Then :func:`add_near_misses` rewrites a few rows the LMS already has in sync so that
they carry the identity problems of issue 14 (see :data:`NEAR_MISSES`): learners written
with a dot left out or a plus tag at a domain that ignores them, at an old domain alias,
with a one-letter typo, and one learner truly absent from the directory; course codes
in another case with other separators, with a leading zero, with a one-letter typo. They
are ``unknown-learner`` / ``unknown-path`` on a first run, with suggestions (the absent
learner with none); ``recon demo`` accepts those scoring 0.9 or more.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rapidfuzz.distance import OSA

from .synth import AS_OF, generate

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample"
"""Where the bundled sample lives in this checkout (the package's ``sample`` folder)."""

SEED = 20261127
ROWS = 2_000
LEARNERS = 500
PATHS = 50

STATUSES = {
    "Completed": "completed",
    "Passed": "passed",  # deliberately wrong: see NOTES
    "In Progress": "started",
    "Failed": "not-completed",
    "Registered": "not-started",
}
NOTES = {
    "Passed": 'A deliberate config mistake that recon catches: "passed" is not an LMS\n'
    'status, so every "Passed" row becomes invalid-payload with the endpoint\'s own\n'
    'message ("invalid status"). The fix is "Passed" = "completed".',
}
TITLE = (
    "The bundled sample: Brightwater Academy's export against the LMS.\n"
    "Written by `make sample` (recon/devtools/sample.py, seed 20261127); all names are\n"
    "fictional."
)


IDENTITY = """
[identity]                      # how suggestions for unknown learners and codes are found
# example.net is the sample's webmail domain: like gmail.com, it delivers
# j.doe+x@ to jdoe@, so dots and plus tags before its @ are ignored.
dots_ignored = ["example.net"]
plus_tags_ignored = ["example.net"]

[identity.domain_aliases]       # another domain -> the directory's domain
"old.example.com" = "example.com"   # the company's mail domain before it moved
"""
"""The sample's ``[identity]`` table, appended to the generated ``recon.toml``."""

WEBMAIL, OLD_DOMAIN, HOME_DOMAIN = "example.net", "old.example.com", "example.com"
ABSENT = ("Quirin Zamoyski", "quirin.zamoyski@example.org")
"""A learner nobody's directory knows: no suggestion may be offered for him."""

NEAR_MISSES = (
    ("learner", "a dot left out before the @ (the domain ignores dots)"),
    ("learner", "a plus tag before the @ (the domain ignores it)"),
    ("learner", "the old domain alias"),
    ("learner", "a one-letter typo before the @"),
    ("learner", "truly absent from the directory"),
    ("path", "other case and separators"),
    ("path", "a leading zero"),
    ("path", "a one-letter typo"),
)
"""What :func:`add_near_misses` writes, one row each, in this order."""


@dataclass(frozen=True)
class NearMiss:
    """One rewritten row: its number (as outcomes.csv counts rows), what it shows, the
    value as it was (the directory's email or the mapped code) and as now written."""

    row: int
    kind: str
    how: str
    was: str
    written: str


def main(out_dir: Path = SAMPLE_DIR) -> Path:
    """Write the sample's files (into the package's sample by default); return the config's
    path."""
    return write(out_dir)[0]


def write(out_dir: Path) -> tuple[Path, list[NearMiss]]:
    """Write the sample's files into ``out_dir``: the config's path and the rows
    :func:`add_near_misses` rewrote."""
    config = generate(
        out_dir,
        ROWS,
        seed=SEED,
        learners=LEARNERS,
        paths=PATHS,
        ref_prefix="BWA",
        code_prefix="BWA",
        statuses=STATUSES,
        notes=NOTES,
        title=TITLE,
    )
    return config, add_near_misses(config)


def add_near_misses(config: Path) -> list[NearMiss]:
    """Rewrite a few in-sync rows of the generated export as :data:`NEAR_MISSES` says and
    append :data:`IDENTITY` to the config; return what was rewritten.

    Only rows in sync with the LMS, whose learner and course appear together nowhere else
    in the file, written exactly as the directory and the mapping have them, are taken:
    once an analyst accepts the suggestion, the row is in sync again, and no other row's
    outcome moves. The choice is made by a generator seeded with :data:`SEED` (same
    files, same rows).
    """
    from .. import outcomes as oc
    from ..engine import reconcile

    folder = config.parent
    outcomes = reconcile(config, as_of=AS_OF).outcomes
    in_sync = set(outcomes.loc[outcomes["outcome"] == oc.IN_SYNC, "row"].astype(int))
    text = (folder / "external.csv").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    rows = [next(csv.reader([line])) for line in lines]
    header = rows[0]
    email_at, code_at, name_at = (header.index(c) for c in ("Email", "Course Code", "Learner Name"))
    directory = {r[0] for r in csv.reader(io.StringIO((folder / "users.csv").read_text()))}
    codes = [r[0] for r in csv.reader(io.StringIO((folder / "paths.csv").read_text()))][1:]
    pairs: dict[tuple[str, str], int] = {}
    for r in rows[1:]:
        key = (r[email_at].strip().lower(), r[code_at].strip().lower())
        pairs[key] = pairs.get(key, 0) + 1
    eligible = [
        n
        for n in sorted(in_sync)
        if rows[n][email_at] in directory
        and rows[n][email_at] == rows[n][email_at].lower()
        and rows[n][code_at] in codes
        and pairs[(rows[n][email_at], rows[n][code_at].lower())] == 1
    ]
    order = [eligible[i] for i in np.random.default_rng(SEED).permutation(len(eligible))]
    used_learners: set[str] = set()
    used_codes: set[str] = set()
    done: list[NearMiss] = []
    for kind, how in NEAR_MISSES:
        for n in order:
            email, code = rows[n][email_at], rows[n][code_at]
            if n in {m.row for m in done} or email in used_learners or code in used_codes:
                continue
            was = email if kind == "learner" else code
            written = _near_miss(how, was, directory if kind == "learner" else set(codes))
            if written is None:
                continue
            if how == "truly absent from the directory":
                rows[n][name_at] = ABSENT[0]
            rows[n][email_at if kind == "learner" else code_at] = written
            used_learners.add(email)
            used_codes.add(code)
            done.append(NearMiss(n, kind, how, was, written))
            break
        else:
            raise ValueError(f"the sample has no row left for a near miss: {how}")
    for miss in done:
        if _line(next(csv.reader([lines[miss.row]]))) != lines[miss.row]:
            raise ValueError(f"row {miss.row} would not be written back as it was read")
        lines[miss.row] = _line(rows[miss.row])
    (folder / "external.csv").write_text("".join(lines), encoding="utf-8")
    with config.open("a", encoding="utf-8") as out:
        out.write(IDENTITY)
    return done


def _near_miss(how: str, was: str, known: set[str]) -> str | None:
    """The near miss of ``was`` that ``how`` names, or None when this value cannot carry
    it (wrong domain, no dot) or its best suggestion would not be this value alone (a
    learner's typo is two edits from any other address; a code's, one edit)."""
    local, _, domain = was.rpartition("@")
    if how.startswith("a dot left out"):
        return f"{local.replace('.', '')}@{domain}" if domain == WEBMAIL and "." in local else None
    if how.startswith("a plus tag"):
        return f"{local}+bwa@{domain}" if domain == WEBMAIL else None
    if how == "the old domain alias":
        return f"{local}@{OLD_DOMAIN}" if domain == HOME_DOMAIN else None
    if how.startswith("a one-letter typo before"):
        if domain == WEBMAIL:
            return None
        # the last letter twice, as a quick typist writes it
        typo = f"{local}{local[-1]}@{domain}"
        near = [k for k in known if k.endswith(f"@{domain}") and OSA.distance(typo, k) <= 2]
        return typo if near == [was] else None
    if how == "truly absent from the directory":
        absent = ABSENT[1]
        return absent if all(OSA.distance(absent, k) > 4 for k in known) else None
    if how == "other case and separators":
        return was.lower().replace("-", " ")
    if how == "a leading zero":
        head, _, number = was.rpartition("-")
        return f"{head}-0{number}"
    if how == "a one-letter typo":
        # two letters of the middle group swapped
        head, group, tail = was.split("-")
        typo = f"{head}-{group[0]}{group[2]}{group[1]}-{tail}"
        near = [k for k in known if OSA.distance(typo.lower(), k.lower()) <= 1]
        return typo if near == [was] and group[1] != group[2] else None
    raise ValueError(how)


def _line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


if __name__ == "__main__":
    print(f"wrote {main()}")
