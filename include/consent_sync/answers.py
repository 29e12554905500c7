"""What HubSpot's answer to a write means for the ledger: the wire result → an Outcome.

The hook reports wire facts only (status codes, per-item errors, the answer's top-level status);
the verdict lives here, beside the outcomes it chooses from.
"""

from __future__ import annotations

from typing import Any

from hubspot_provider.hooks.hubspot import COMPLETE, StatusWriteResult
from include.consent_sync.contract import Outcome, result_schema


def outcome_of(result: StatusWriteResult) -> Outcome:
    """SYNCED only for a finished (COMPLETE) answer that lists the change among its results.

    No answer or a 5xx after every attempt is FAILED (a later run retries), a 4xx is REJECTED, a
    per-item error decides by its own status, and an answer still PENDING or PROCESSING (or
    CANCELED) is FAILED: HubSpot has not applied the change yet, and sending the same state again
    later is harmless (HubSpot answers NO_STATUS_CHANGE if it did apply).
    """
    if result.http_status is None or result.http_status >= 500:
        return Outcome.FAILED
    if result.http_status >= 400:
        return Outcome.REJECTED
    if result.error_status is not None:
        transient = result.error_status.isdigit() and int(result.error_status) >= 500
        return Outcome.FAILED if transient else Outcome.REJECTED
    if result.call_status == COMPLETE and result.in_results:
        return Outcome.SYNCED
    return Outcome.FAILED


def ledger_facts(result: StatusWriteResult) -> dict[str, Any]:
    """The per-row facts the ledger records for a write (the staged result row's columns)."""
    return {
        name: getattr(result, name)
        for name in result_schema().names
        if name not in ("change_id", "outcome")
    }
