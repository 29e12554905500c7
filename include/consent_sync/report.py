"""The short summary every run ends with, for the task log and `make run`."""

from __future__ import annotations

from collections.abc import Mapping

from include.consent_sync.contract import LEDGER_TABLE, Outcome


def run_summary(
    dag_run_id: str, interval: str, counts: Mapping[str, int], problems: list[str]
) -> str:
    """A few readable lines: what the run considered, what happened to it, what went wrong."""
    total = sum(counts.values())
    lines = [f"Run {dag_run_id} ({interval}): {total:,} changes considered."]
    for outcome in Outcome:
        if counts.get(str(outcome)):
            retried = "" if outcome.final else "; a later run retries it"
            lines.append(
                f"  {outcome.value:<22} {counts[str(outcome)]:>9,}  {outcome.meaning}{retried}"
            )
    lines.append(f"Ledger: table {LEDGER_TABLE}, one row per change (dag_run_id = '{dag_run_id}').")
    lines.extend(f"Problem: {problem}" for problem in problems)
    return "\n".join(lines)
