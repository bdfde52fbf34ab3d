"""The endpoint's own validation rules, with its exact messages.

``POST /incoming/v2/learningPathExternalActivity`` documents five messages: see the
endpoint's documentation, kept in the repository as
``docs/api/learningPathExternalActivity.seed.txt`` (other facts: ``docs/api/lms-api-facts.md``).
Proposals are checked with :func:`validate_activity` before they are written, and the
local sandbox answers with the very same function, so the two can never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

STATUSES = ("not-started", "started", "not-completed", "completed")
"""The four LMS statuses, in the order used to decide who is ahead."""

STATUS_RANK = {s: i for i, s in enumerate(STATUSES)}

MSG_COMPLETION_WITH_NON_COMPLETED = "completion date cannot be passed with non-completed status"
MSG_INVALID_STATUS = "invalid status"
MSG_TIMESTAMP_WITH_COMPLETED = "timestamp date cannot be passed with completed status or no status"
MSG_INVALID_COMPLETION_DATE = "invalid completionDate. please use ISO 8601 format"
MSG_INVALID_TIMESTAMP_DATE = "invalid timestampDate. please use ISO 8601 format"
MSG_FEATURE_OFF = "externalActivity feature is not enabled"

# ISO 8601 as the API accepts it: a calendar date, optionally a time, optionally an offset.
_ISO_8601 = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?)?$"
)

# The one shape recon itself ever sends.
WIRE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def is_iso_8601(value: Any) -> bool:
    """True when ``value`` is a string the endpoint reads as an ISO 8601 date."""
    return isinstance(value, str) and bool(_ISO_8601.match(value))


def validate_activity(body: Mapping[str, Any]) -> list[str]:
    """Return the endpoint's error messages for ``body`` (empty when it is valid).

    ``userId`` and ``learningPathId`` are required strings; a missing one is reported
    with a plain message because the documentation gives none for it.
    """
    errors: list[str] = []
    for field in ("userId", "learningPathId"):
        value = body.get(field)
        if not isinstance(value, str) or not value.strip():
            errors.append(f"{field} is required")
    status = body.get("status")
    has_status = status is not None
    if has_status and status not in STATUSES:
        errors.append(MSG_INVALID_STATUS)
    completed = (not has_status) or status == "completed"
    completion = body.get("completionDate")
    timestamp = body.get("timeStampDate")
    if completion is not None:
        if has_status and status in STATUSES and status != "completed":
            errors.append(MSG_COMPLETION_WITH_NON_COMPLETED)
        elif not is_iso_8601(completion):
            errors.append(MSG_INVALID_COMPLETION_DATE)
    if timestamp is not None:
        if completed:
            errors.append(MSG_TIMESTAMP_WITH_COMPLETED)
        elif not is_iso_8601(timestamp):
            errors.append(MSG_INVALID_TIMESTAMP_DATE)
    return errors
