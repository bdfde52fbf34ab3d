"""`recon status`: the ledger at a glance, as text."""

from __future__ import annotations

from .ledger import Ledger, rejected_messages


def render_status(ledger: Ledger) -> str:
    """Runs, decisions and submission results, newest run last."""
    runs = ledger.runs()
    if runs.empty:
        return f"{ledger.path}: no runs yet"
    lines = [f"ledger {ledger.path} (schema {ledger.schema_version})", ""]
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
        lines.append(f"  {title}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    refused = rejected_messages(latest)
    if refused:
        lines.append("  rejected by the API:")
        for message, count in refused.most_common():
            lines.append(f"    {count:>7,}  {message}")
    return "\n".join(lines)
