"""Regenerate the bundled sample: `.venv/bin/python data/sample/generate.py`.

Brightwater Academy is a fictional training provider; its export (``external.csv``,
about 2,000 rows for about 500 learners and 50 learning paths) is compared with a
fictional company's LMS progress export (``progress.csv``), learner directory
(``users.csv``) and course-code mapping (``paths.csv``). Every name is made up and every
address is at example.com, example.org or example.net.

The files are written by :func:`recon.synth.generate` with a fixed seed, so running this
again writes the very same bytes. Every ordinary date lies before 2026-11-25 and every
future date in 2028, so the sample reads the same at the tests' fixed as-of
(2026-11-27T00:00:00Z) and at the real "now" of `make demo`. The sample exercises every
outcome except ``already-submitted``, which needs a ledger.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run from a checkout: use this checkout's recon even if another one is installed.
sys.path.insert(0, str(HERE.parent.parent))

from recon.synth import generate  # noqa: E402

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
    "Written by data/sample/generate.py (seed 20261127); all names are fictional."
)


def main(out_dir: Path = HERE) -> Path:
    """Write the sample's files (beside this script by default); return the config's path."""
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
