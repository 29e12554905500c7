"""The short summary every run ends with, for the task log and `make run`."""

from __future__ import annotations

from collections.abc import Mapping

from include.consent_sync.contract import LEDGER_TABLE, Outcome

# What each outcome means for the reader of a run summary.
MEANING = {
    Outcome.SYNCED: "accepted by HubSpot",
    Outcome.FAILED: "transient failure, retried by the next run",
    Outcome.REJECTED: "refused by HubSpot for good",
    Outcome.INVALID: "failed validation, never sent",
    Outcome.SKIPPED_SUPERSEDED: "a newer change for the same contact exists",
    Outcome.SKIPPED_HUBSPOT_NEWER: "contact opted out in HubSpot since",
    Outcome.DEFERRED: "not sent yet, the next run sends it",
    Outcome.DRY_RUN: "planned only (dry run)",
}


def run_summary(
    dag_run_id: str,
    interval: str,
    counts: Mapping[str, int],
    problems: list[str],
    mode: str | None = None,
) -> str:
    """A few readable lines: whether the run could send (``mode``, the live switch's message),
    what it considered, what happened to it, what went wrong."""
    total = sum(counts.values())
    lines = [mode] if mode else []
    lines.append(f"Run {dag_run_id} ({interval}): {total:,} changes considered.")
    for outcome in Outcome:
        if counts.get(str(outcome)):
            lines.append(f"  {outcome.value:<22} {counts[str(outcome)]:>9,}  {MEANING[outcome]}")
    lines.append(f"Ledger: table {LEDGER_TABLE}, one row per change (dag_run_id = '{dag_run_id}').")
    lines.extend(f"Problem: {problem}" for problem in problems)
    return "\n".join(lines)
