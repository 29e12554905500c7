"""Push one planned batch: resume, guard, send, and stage one result per row as it goes."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from include.consent_sync.answers import ledger_facts, outcome_of
from include.consent_sync.contract import Outcome, result_schema
from include.consent_sync.masking import mask_email
from include.consent_sync.progress import Progress
from include.consent_sync.resubscribe_guard import newer_opt_outs
from include.consent_sync.staging import ResultParts, read_table

FLUSH_EVERY_ROWS = 200
FLUSH_EVERY_S = 5.0


def _result_row(change_id: str, outcome: Outcome, **facts: Any) -> dict[str, Any]:
    row = dict.fromkeys(result_schema().names)
    row.update({"attempts": 0, **facts, "change_id": change_id, "outcome": str(outcome)})
    return row


class _StagedResults:
    """Buffers result rows and appends them to staging every few rows or seconds."""

    def __init__(self, parts: ResultParts, progress: Progress) -> None:
        self.parts = parts
        self.progress = progress
        self.buffer: list[dict[str, Any]] = []
        self.flushed_at = time.monotonic()

    def add(self, row: dict[str, Any]) -> None:
        self.buffer.append(row)
        self.progress.advance(row["outcome"])
        if (
            len(self.buffer) >= FLUSH_EVERY_ROWS
            or time.monotonic() - self.flushed_at > FLUSH_EVERY_S
        ):
            self.flush()

    def flush(self) -> None:
        self.parts.append(self.buffer)
        self.buffer = []
        self.flushed_at = time.monotonic()


def push_batch(
    hook,
    *,
    rows_path,
    results_path,
    label: str,
    resubscribe_guard: bool,
    log: logging.Logger,
    progress_every_s: float = 10.0,
) -> dict[str, int]:
    """Send a batch's changes through ``hook`` (a :class:`HubSpotHook`); return counts per outcome.

    Rows with a staged result from an earlier attempt of this task are not sent again. A daily
    limit stops sending; the rows not sent become DEFERRED (a later run sends them). An auth
    refusal is raised after the finished rows are staged.
    """
    from hubspot_provider.exceptions import HubSpotDailyLimitError
    from hubspot_provider.hooks.hubspot import StatusChange

    rows = read_table(rows_path).to_pylist()
    parts = ResultParts(results_path, result_schema())
    done = set(parts.read().column("change_id").to_pylist())
    todo = [row for row in rows if row["change_id"] not in done]
    progress = Progress(label, len(rows), log, every_s=progress_every_s, done=len(rows) - len(todo))
    if done:
        log.info(
            "%s: resuming, %d of %d rows already done by an earlier attempt",
            label,
            len(done),
            len(rows),
        )
    staged = _StagedResults(parts, progress)
    try:
        if resubscribe_guard:
            todo = _apply_resubscribe_guard(hook, todo, staged, log)
        changes = [
            StatusChange(
                change_id=row["change_id"],
                email=row["email"],
                subscription_id=row["subscription_id"],
                status_state=row["status_state"],
                channel=row["channel"],
                legal_basis=row["legal_basis"],
                legal_basis_explanation=row["legal_basis_explanation"],
            )
            for row in todo
        ]
        emails = {row["change_id"]: row["email"] for row in todo}
        finished: set[str] = set()
        try:
            for result in hook.write_statuses(changes):
                finished.add(result.change_id)
                outcome = outcome_of(result)
                staged.add(_result_row(result.change_id, outcome, **ledger_facts(result)))
                if outcome is not Outcome.SYNCED:
                    log.info(
                        "%s: %s for %s: %s %s",
                        label,
                        outcome,
                        mask_email(emails[result.change_id]),
                        result.error_category,
                        result.error_message,
                    )
        except HubSpotDailyLimitError as exc:
            unsent = [row for row in todo if row["change_id"] not in finished]
            log.warning(
                "%s: HubSpot's daily limit is reached (%s); deferring %d rows",
                label,
                exc,
                len(unsent),
            )
            for row in unsent:
                staged.add(
                    _result_row(
                        row["change_id"],
                        Outcome.DEFERRED,
                        http_status=429,
                        error_category="DAILY_LIMIT",
                        error_message="not sent: HubSpot's daily API limit was reached; a later run sends it",
                    )
                )
    finally:
        staged.flush()
    log.info("%s", progress.line())
    return dict(Counter(parts.read().column("outcome").to_pylist()))


def _apply_resubscribe_guard(hook, rows: list[dict], staged: _StagedResults, log) -> list[dict]:
    """Stage SKIPPED_HUBSPOT_NEWER for overtaken resubscribes; return the rows still to send."""
    subscribes = [row for row in rows if row["status_state"] == "SUBSCRIBED"]
    if not subscribes:
        return rows
    contacts = hook.read_statuses(row["email"] for row in subscribes)
    skipped = newer_opt_outs(subscribes, {email: c.statuses for email, c in contacts.items()})
    now = datetime.now(UTC)
    for change_id, reason in skipped.items():
        staged.add(
            _result_row(
                change_id,
                Outcome.SKIPPED_HUBSPOT_NEWER,
                error_category="HUBSPOT_NEWER_OPT_OUT",
                error_message=reason,
                sent_at=now,
            )
        )
    if skipped:
        log.info(
            "resubscribe guard: %d changes skipped, HubSpot holds a newer opt-out", len(skipped)
        )
    return [row for row in rows if row["change_id"] not in skipped]
