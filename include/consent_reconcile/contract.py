"""The reconciliation's names: DAG id, table, view, classifications, and the Arrow schemas."""

from __future__ import annotations

import enum

RECONCILE_DAG_ID = "hubspot_consent_reconcile"
RECONCILIATION_TABLE = "hubspot_consent_reconciliation"
DRIFT_VIEW = "hubspot_consent_drift"


class Classification(enum.StrEnum):
    """What HubSpot holds for one key compared with the warehouse (the `classification` column)."""

    meaning: str

    def __new__(cls, value: str, meaning: str) -> Classification:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    MATCH = "MATCH", "HubSpot holds the intent"
    HUBSPOT_NEWER = (
        "HUBSPOT_NEWER",
        "HubSpot differs and changed after our write (the contact or HubSpot changed it)",
    )
    DRIFT = "DRIFT", "HubSpot differs and did not change after our write (lost or overwritten)"
    MISSING = "MISSING", "we wrote a status but HubSpot holds none, or does not know the contact"
    PENDING = (
        "PENDING",
        "the intent is not synced yet (FAILED, DEFERRED, REJECTED, INVALID, never sent)",
    )
    UNREAD = "UNREAD", "HubSpot could not be read for this key (see the read task's log)"


# A repair re-sends the intent of these; HUBSPOT_NEWER is never overwritten.
REPAIRABLE = (Classification.DRIFT, Classification.MISSING)

RECONCILIATION_COLUMNS = (
    "reconcile_run_id",
    "email",
    "subscription_id",
    "channel",
    "intended_state",
    "intended_change_id",
    "synced_state",
    "synced_at",
    "hubspot_state",
    "hubspot_timestamp",
    "hubspot_source",
    "classification",
    "checked_at",
)

# What one contact's read came to (the `answer` of a staged read).
READ, UNKNOWN_CONTACT, READ_FAILED = "READ", "UNKNOWN_CONTACT", "FAILED"


def _utc():
    import pyarrow as pa

    return pa.timestamp("us", tz="UTC")


def reconciliation_schema():
    """Arrow schema of the reconciliation table, in column order."""
    import pyarrow as pa

    types = {
        "subscription_id": pa.int64(),
        "synced_at": _utc(),
        "hubspot_timestamp": _utc(),
        "checked_at": _utc(),
    }
    return pa.schema([(name, types.get(name, pa.string())) for name in RECONCILIATION_COLUMNS])


def key_schema():
    """The keys a reconcile checks, with what the warehouse says of each (reconcile_intents.sql)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("email", pa.string()),
            ("subscription_id", pa.int64()),
            ("channel", pa.string()),
            ("intended_state", pa.string()),
            ("intended_change_id", pa.string()),
            ("intended_outcome", pa.string()),
            ("synced_change_id", pa.string()),
            ("synced_state", pa.string()),
            ("synced_at", _utc()),
        ]
    )


def read_schema():
    """One contact's staged read: its subscription statuses and its opt-out of all email."""
    import pyarrow as pa

    status = pa.struct(
        [
            ("subscription_id", pa.int64()),
            ("channel", pa.string()),
            ("status", pa.string()),
            ("timestamp", _utc()),
            ("source", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("email", pa.string()),
            ("answer", pa.string()),
            ("error", pa.string()),
            ("statuses", pa.list_(status)),
            ("wide_statuses", pa.list_(status)),
        ]
    )
