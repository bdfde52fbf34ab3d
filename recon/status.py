"""`recon status`: the ledger at a glance, as text."""

from __future__ import annotations

from .ledger import Ledger, rejected_messages


def target_lines(ledger: Ledger) -> list[str]:
    """Where the ledger's submissions went: its LMS, and accepted counts per target.

    Read by ``recon status``, the HTML report and notebook 03. Accepted counts are per
    target: a practice sandbox's never count for the LMS.
    """
    bound = ledger.binding()
    if bound is not None:
        lines = [f"LMS: {bound['target']} (bound by its first real submit, {bound['bound_at']})"]
        if bound["legacy"]:
            where = "this LMS" if bound["legacy"] == "this-lms" else "practice"
            lines.append(
                f"  attempts recorded before targets were declared {where} "
                f"({bound['legacy_at']}, by {bound['legacy_by'] or 'unknown'})"
            )
    else:
        lines = ["LMS: none yet (the first real submit binds this ledger to its LMS)"]
    targets = ledger.targets()
    if len(targets):
        lines.append("accepted per target (proposal keys):")
        for t in targets.itertuples():
            mark = "  <- this ledger's LMS" if t.bound else ""
            lines.append(f"  {t.accepted:>9,} accepted {t.rejected:>7,} rejected  {t.target}{mark}")
    pending = ledger.unattributed()
    if pending:
        lines.append(
            f"  {pending.get('accepted', 0):,} accepted and {pending.get('rejected', 0):,} "
            "rejected attempt(s) recorded before targets count for no LMS yet: the first "
            "real `recon submit` asks where they went (--legacy-attempts)"
        )
    return lines


def render_status(ledger: Ledger) -> str:
    """Runs, decisions and submission results, newest run last."""
    runs = ledger.runs_by_activity()
    if runs.empty:
        return f"{ledger.path}: no runs yet"
    lines = [f"ledger {ledger.path} (schema {ledger.schema_version})", *target_lines(ledger), ""]
    shown = runs["target"].iloc[0]
    if shown:
        lines.append(f"accepted and refused below: by {shown}")
    header = (
        f"{'run':>4}  {'created (UTC)':<20} {'rows':>9} {'proposed':>9} {'approved':>9} "
        f"{'declined':>9} {'accepted':>9} {'refused':>8} {'problems':>9}"
    )
    lines.append(header)
    for r in runs.itertuples():
        lines.append(
            f"{r.run_id:>4}  {str(r.created_at)[:19]:<20} {r.rows_read:>9,} {r.proposals:>9,} "
            f"{r.approved:>9,} {r.declined:>9,} {r.accepted:>9,} {r.refused:>8,} "
            f"{r.problems:>9,}"
        )
    latest = ledger.proposals("latest")
    run_id = int(runs["run_id"].iloc[-1])
    lines.append("")
    lines.append(f"run {run_id}: {len(latest):,} proposal(s)")
    for column, title in (("decision", "decisions"), ("submission", "submissions")):
        counts = latest[column].value_counts()
        shown = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        if not shown:  # said, not left blank
            shown = "none" if len(latest) else "none (the run has no proposal)"
        lines.append(f"  {title}: {shown}")
    refused = rejected_messages(latest)
    if refused:
        lines.append("  rejected by the API:")
        for message, count in refused.most_common():
            lines.append(f"    {count:>7,}  {message}")
    return "\n".join(lines)
