"""Derived statuses: the status word of a provider row when its export has no single
status column that says it.

Real exports often say it in other words (see README, "Your provider's export"):

* a percent column: ``percent_completed`` (default 100) or more is ``completed``, above 0
  is ``started``, 0 or blank is ``not-started``;
* a yes/no completed column: yes is ``completed`` (the completion date rule still applies:
  completed without a date is ``missing-completion-date``); no is not completed, and then
  the percent column decides when there is one, else ``started`` (the learner is enrolled);
* two columns, completion and success (SCORM 2004): the word is ``completion/success``
  (e.g. ``COMPLETED/PASSED``), mapped like any status word in ``[external.statuses]``.

A status column, when configured and not blank on a row, wins. Each function here returns
SQL text over the provider table's columns; the engine maps the word through the status
table as usual, so an unreadable value becomes ``unknown-status`` naming it. The rule that
decided a row is returned too, for the outcome's detail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

YES = ("yes", "y", "true", "t", "1")
NO = ("no", "n", "false", "f", "0")


@dataclass(frozen=True)
class StatusRule:
    """Where a provider row's status word comes from (all column names as configured)."""

    status: str | None = None
    percent: str | None = None
    percent_completed: float = 100.0
    completed_flag: str | None = None
    success: str | None = None

    @property
    def derived(self) -> bool:
        return bool(self.percent or self.completed_flag or self.success)


def _words(words: tuple[str, ...]) -> str:
    return ", ".join(f"'{w}'" for w in words)


def status_sql(rule: StatusRule, cell: Callable[[str], str]) -> tuple[str, str]:
    """(word, how) SQL expressions for a row's status word and the rule that produced it.

    ``cell(column)`` returns the SQL of a column's trimmed text, NULL when blank.
    ``how`` is NULL where the status column decided (nothing to explain).
    """
    status = cell(rule.status) if rule.status else "NULL"
    percent_word = "NULL"
    percent_how = "NULL"
    if rule.percent:
        raw = cell(rule.percent)
        number = f"TRY_CAST(rtrim(replace({raw}, ',', '.'), '% ') AS DOUBLE)"
        threshold = repr(float(rule.percent_completed))
        percent_word = (
            f"CASE WHEN {raw} IS NULL THEN 'not-started' "
            f"WHEN {number} IS NULL THEN {raw} "
            f"WHEN {number} >= {threshold} THEN 'completed' "
            f"WHEN {number} > 0 THEN 'started' "
            f"WHEN {number} = 0 THEN 'not-started' "
            f"ELSE {raw} END"
        )
        percent_how = f"'status from percent ' || coalesce({raw}, '(blank)')"
    derived_word, derived_how = percent_word, percent_how
    if rule.completed_flag:
        flag = cell(rule.completed_flag)
        # "No" outranks the percent: a course that gained lectures can show 100 % of the
        # old ones while the provider itself says it is not completed.
        otherwise = (
            f"CASE WHEN ({percent_word}) = 'completed' THEN 'started' ELSE {percent_word} END"
            if rule.percent
            else "'started'"
        )
        otherwise_how = (
            f"'completed flag ''' || {flag} || ''' and ' || {percent_how}"
            if rule.percent
            else f"'status from completed flag ''' || {flag} || ''''"
        )
        derived_word = (
            f"CASE WHEN lower({flag}) IN ({_words(YES)}) THEN 'completed' "
            f"WHEN lower({flag}) IN ({_words(NO)}) THEN {otherwise} "
            f"WHEN {flag} IS NULL THEN {percent_word if rule.percent else 'NULL'} "
            f"ELSE {flag} END"
        )
        derived_how = (
            f"CASE WHEN lower({flag}) IN ({_words(YES)}) "
            f"THEN 'status from completed flag ''' || {flag} || '''' "
            f"WHEN lower({flag}) IN ({_words(NO)}) THEN {otherwise_how} "
            f"WHEN {flag} IS NULL THEN {percent_how if rule.percent else 'NULL'} "
            f"ELSE 'status from completed flag ''' || {flag} || '''' END"
        )
    if rule.success:
        # The status column holds completion; the pair is one word for the status map.
        success = cell(rule.success)
        completion = status
        pair = f"coalesce({completion}, '') || '/' || coalesce({success}, '')"
        word = f"CASE WHEN {completion} IS NULL AND {success} IS NULL THEN NULL ELSE {pair} END"
        how = (
            f"CASE WHEN {word} IS NULL THEN NULL "
            f"ELSE 'status from completion/success ' || {pair} END"
        )
        return word, how
    if not rule.derived:
        return status, "NULL"
    if rule.status:
        return (
            f"coalesce({status}, {derived_word})",
            f"CASE WHEN {status} IS NOT NULL THEN NULL ELSE {derived_how} END",
        )
    return derived_word, derived_how
