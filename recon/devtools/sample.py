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
"""

from __future__ import annotations

from pathlib import Path

from .synth import generate

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


def main(out_dir: Path = SAMPLE_DIR) -> Path:
    """Write the sample's files (into the package's sample by default); return the config's
    path."""
    return generate(
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


if __name__ == "__main__":
    print(f"wrote {main()}")
