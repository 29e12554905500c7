"""Classify one key: what the warehouse intends, what we wrote, what HubSpot holds today.

Pure functions over plain mappings (a row of :func:`contract.key_schema` and a staged read of
:func:`contract.read_schema`), so every rule is unit-tested without HubSpot or a warehouse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from include.consent_reconcile.contract import READ, READ_FAILED, UNKNOWN_CONTACT, Classification

OPTED_OUT = "UNSUBSCRIBED"
NOT_SPECIFIED = "NOT_SPECIFIED"
# The ledger outcome of a change the resubscribe guard held back: HubSpot's newer opt-out stands,
# so the key is compared with HubSpot rather than left PENDING.
GUARDED = "SKIPPED_HUBSPOT_NEWER"


@dataclass(frozen=True)
class HubSpotView:
    """What HubSpot holds for one key: None state when it holds no status for it."""

    state: str | None = None
    timestamp: datetime | None = None
    source: str | None = None


def hubspot_view(key: Mapping[str, Any], read: Mapping[str, Any]) -> HubSpotView:
    """HubSpot's effective status for ``key`` from the contact's read.

    An opt-out of all email overrides every subscription of its channel. A subscription HubSpot
    lists as NOT_SPECIFIED without a timestamp was never set (or its status was lost): no status.
    """
    if read["answer"] == UNKNOWN_CONTACT:
        return HubSpotView()
    for wide in read.get("wide_statuses") or []:
        if wide["status"] == OPTED_OUT and (wide["channel"] or key["channel"]) == key["channel"]:
            return HubSpotView(OPTED_OUT, wide["timestamp"], wide["source"])
    for status in read.get("statuses") or []:
        if status["subscription_id"] != key["subscription_id"]:
            continue
        if (status["channel"] or key["channel"]) != key["channel"]:
            continue
        if status["status"] == NOT_SPECIFIED and status["timestamp"] is None:
            return HubSpotView()
        return HubSpotView(status["status"], status["timestamp"], status["source"])
    return HubSpotView()


def classify(
    key: Mapping[str, Any], read: Mapping[str, Any] | None
) -> tuple[Classification, HubSpotView]:
    """The key's classification and HubSpot's view of it (empty when it could not be read).

    ``read`` is None when the contact's read never happened (the task stopped first).
    """
    compared = key["intended_change_id"] is not None and (
        key["synced_change_id"] == key["intended_change_id"] or key["intended_outcome"] == GUARDED
    )
    if read is None or read["answer"] == READ_FAILED:
        # A read that failed says nothing about HubSpot: never MATCH.
        return (Classification.UNREAD if compared else Classification.PENDING), HubSpotView()
    if read["answer"] not in (READ, UNKNOWN_CONTACT):
        raise ValueError(f"unknown read answer {read['answer']!r}")
    view = hubspot_view(key, read)
    if not compared:
        return Classification.PENDING, view
    intended = key["intended_state"]
    if view.state is None:
        return (Classification.MATCH if intended == NOT_SPECIFIED else Classification.MISSING), view
    if view.state == intended:
        return Classification.MATCH, view
    written = key["synced_at"]
    if written is None or (view.timestamp is not None and view.timestamp > written):
        # No write of ours to lose (the guard held the intent back), or HubSpot changed it since.
        return Classification.HUBSPOT_NEWER, view
    return Classification.DRIFT, view
