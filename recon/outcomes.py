"""Outcome names: what became of an external row. These names are a contract."""

from __future__ import annotations

IN_SYNC = "in-sync"
MISSING_COMPLETION = "missing-completion"
MISSING_PROGRESS = "missing-progress"
COMPLETION_DATE_DIFFERS = "completion-date-differs"
LMS_AHEAD = "lms-ahead"
DUPLICATE = "duplicate"
ALREADY_SUBMITTED = "already-submitted"
VOIDED = "voided"
BAD_ROW = "bad-row"
UNKNOWN_STATUS = "unknown-status"
UNKNOWN_LEARNER = "unknown-learner"
UNKNOWN_PATH = "unknown-path"
BAD_DATE = "bad-date"
MISSING_COMPLETION_DATE = "missing-completion-date"
FUTURE_DATE = "future-date"
UNKNOWN_LMS_STATUS = "unknown-lms-status"
BAD_LMS_DATE = "bad-lms-date"
INVALID_PAYLOAD = "invalid-payload"

ROW_PROBLEMS = (
    BAD_ROW,
    UNKNOWN_STATUS,
    UNKNOWN_LEARNER,
    UNKNOWN_PATH,
    BAD_DATE,
    MISSING_COMPLETION_DATE,
    FUTURE_DATE,
)
"""Checked in this order on every external row; the first one found is its outcome."""

LMS_PROBLEMS = (UNKNOWN_LMS_STATUS, BAD_LMS_DATE)
"""Checked, in this order, on the row that survives for a learner and path, once it has
no row problem: the LMS's rows for the pair could not be read, so nothing is proposed."""

PROBLEMS = (*ROW_PROBLEMS, *LMS_PROBLEMS, INVALID_PAYLOAD)
"""Outcomes to fix at the source: they land in exceptions.csv and make the exit code 1."""

PROPOSED = (MISSING_COMPLETION, MISSING_PROGRESS)
"""Outcomes that come with a proposal; the proposal's ``category`` is the outcome name."""

REVIEW = (COMPLETION_DATE_DIFFERS,)
"""For a person to look at; the LMS takes a completion date only when it creates a record."""

SETTLED = (IN_SYNC, LMS_AHEAD, DUPLICATE, ALREADY_SUBMITTED, VOIDED)
"""Nothing to do."""

ALL = (*PROPOSED, *REVIEW, *PROBLEMS, *SETTLED)

ADVICE = {
    IN_SYNC: "Nothing to do: the LMS already agrees.",
    MISSING_COMPLETION: "Proposed: post the completion to the LMS.",
    MISSING_PROGRESS: "Proposed: post the progress status to the LMS.",
    COMPLETION_DATE_DIFFERS: "Review: both say completed, on different dates. The LMS keeps "
    "the first date it was given, so correct it by hand in the LMS if the provider is right.",
    LMS_AHEAD: "Nothing to do: the LMS knows more than the provider; recon never downgrades.",
    DUPLICATE: "Nothing to do: another row for the same learner and path was used instead.",
    VOIDED: "Nothing to do: an xAPI statement voided by another in the same file, or the "
    "voiding statement itself; the detail names the other.",
    ALREADY_SUBMITTED: "Nothing to do: the ledger shows this exact correction accepted "
    "earlier; the LMS export has not caught up yet.",
    BAD_ROW: "Fix the row at the source: its number of fields differs from the header's "
    "(often a value with the delimiter or a line break that is not quoted).",
    UNKNOWN_STATUS: "Fix at the source, or map the provider's word in [external.statuses].",
    UNKNOWN_LEARNER: "Add the learner to the directory, or fix the email at the source.",
    UNKNOWN_PATH: "Add the course code to the path mapping, or fix it at the source.",
    BAD_DATE: "Fix the date at the source, or add its format to date_formats.",
    MISSING_COMPLETION_DATE: "Ask the provider for the completion date.",
    FUTURE_DATE: "Fix the date at the source (or check --as-of and timezone).",
    UNKNOWN_LMS_STATUS: "Nothing proposed: the LMS export gives this learner and path a "
    "status word recon does not know. Map the word in [progress.statuses] (the summary "
    "lists each word and the line to add), then reconcile again.",
    BAD_LMS_DATE: "Nothing proposed: the LMS export has a completion date recon cannot read "
    "for this learner and path. Add its format to [progress] date_formats, or check the "
    "export.",
    INVALID_PAYLOAD: "The endpoint would refuse this correction: see the detail; usually a "
    "status mapped to a word the LMS does not know.",
}
