"""The contract users' SQL relies on: table, column and outcome names, and the Arrow schemas.

Everything that names a contract column or an outcome imports it from here, so a rename is one
edit and a typo is an ImportError rather than a silently empty column.
"""

from __future__ import annotations

import enum

DAG_ID = "hubspot_consent_sync"
HUBSPOT_CONN_ID = "hubspot_default"
WAREHOUSE_CONN_ID = "consent_warehouse"
HUBSPOT_POOL = "hubspot_api"
# The pool's slots: push tasks that may run at once, each pacing at its share of HubSpot's limit.
# airflow_settings.yaml repeats it for `astro dev start` (a test keeps the two equal).
HUBSPOT_POOL_SLOTS = 4

SOURCE_TABLE = "consent_changes"
LEDGER_TABLE = "hubspot_consent_sync_results"
RUNS_VIEW = "hubspot_consent_sync_runs"
LATEST_VIEW = "hubspot_consent_sync_latest"
RUN_RECORDS_TABLE = "hubspot_consent_sync_run_records"  # behind RUNS_VIEW
KEY_STATE_TABLE = "hubspot_consent_sync_key_state"  # behind LATEST_VIEW

STATUS_STATES = ("SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED")
CHANNELS = ("EMAIL",)
LEGAL_BASES = (
    "LEGITIMATE_INTEREST_PQL",
    "LEGITIMATE_INTEREST_CLIENT",
    "PERFORMANCE_OF_CONTRACT",
    "CONSENT_WITH_NOTICE",
    "NON_GDPR",
    "PROCESS_AND_STORE",
    "LEGITIMATE_INTEREST_OTHER",
)


class Outcome(enum.StrEnum):
    """What happened to one change in one run (the ledger's `outcome` column).

    The one table of outcomes: each member's value, whether it is final (a change with a final
    outcome in the ledger is never considered again) and what it means. The SQL lists, the runs
    view's count columns and the README table are checked against it (tests/test_outcomes.py),
    the run summary prints its meanings: adding an outcome is this edit plus its handling.
    """

    final: bool
    meaning: str

    def __new__(cls, value: str, final: bool, meaning: str) -> Outcome:
        member = str.__new__(cls, value)
        member._value_ = value
        member.final = final
        member.meaning = meaning
        return member

    SYNCED = "SYNCED", True, "HubSpot accepted it"
    FAILED = (
        "FAILED",
        False,
        "transient failure (5xx, timeouts, retries exhausted, HubSpot not finished)",
    )
    REJECTED = (
        "REJECTED",
        True,
        "HubSpot refused it for good (4xx), or FAILED in `max_attempts` runs; sent again only if the row changes",
    )
    INVALID = "INVALID", True, "failed validation, never sent; sent only if the row changes"
    SKIPPED_SUPERSEDED = "SKIPPED_SUPERSEDED", True, "a newer change for the same key exists"
    SKIPPED_HUBSPOT_NEWER = (
        "SKIPPED_HUBSPOT_NEWER",
        True,
        "HubSpot holds a newer opt-out than this change",
    )
    DEFERRED = "DEFERRED", False, "not sent: daily limit reached or the run stopped early"
    DRY_RUN = (
        "DRY_RUN",
        False,
        "planned only (`dry_run` param, or the sync is disarmed: error_category DISARMED)",
    )


# A change with one of these in the ledger is done: later runs never consider it again.
FINAL_OUTCOMES = tuple(outcome for outcome in Outcome if outcome.final)

# Source columns in table order, with the type family the schema gate accepts for each.
SOURCE_COLUMNS = {
    "change_id": "text",
    "email": "text",
    "subscription_id": "integer",
    "channel": "text",
    "status_state": "text",
    "legal_basis": "text",
    "legal_basis_explanation": "text",
    "changed_at": "timestamp",
}

LEDGER_COLUMNS = (
    "change_id",
    "dag_run_id",
    "interval_start",
    "interval_end",
    "email",
    "subscription_id",
    "channel",
    "status_state",
    "legal_basis",
    "changed_at",
    "outcome",
    "http_status",
    "error_category",
    "error_message",
    "correlation_id",
    "set_status_success_reason",
    "attempts",
    "sent_at",
    "recorded_at",
)


def source_schema():
    """Arrow schema of extracted candidates (timestamps are UTC, microseconds)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("change_id", pa.string()),
            ("email", pa.string()),
            ("subscription_id", pa.int64()),
            ("channel", pa.string()),
            ("status_state", pa.string()),
            ("legal_basis", pa.string()),
            ("legal_basis_explanation", pa.string()),
            ("changed_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def result_schema():
    """Arrow schema of one per-row result as a push task stages it (the ledger's per-row facts)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("change_id", pa.string()),
            ("outcome", pa.string()),
            ("http_status", pa.int32()),
            ("error_category", pa.string()),
            ("error_message", pa.string()),
            ("correlation_id", pa.string()),
            ("set_status_success_reason", pa.string()),
            ("attempts", pa.int32()),
            ("sent_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def ledger_schema():
    """Arrow schema of the ledger table, in column order."""
    import pyarrow as pa

    source = source_schema()
    result = result_schema()
    fields = {f.name: f for f in list(source) + list(result)}
    fields["dag_run_id"] = pa.field("dag_run_id", pa.string())
    fields["interval_start"] = pa.field("interval_start", pa.timestamp("us", tz="UTC"))
    fields["interval_end"] = pa.field("interval_end", pa.timestamp("us", tz="UTC"))
    fields["recorded_at"] = pa.field("recorded_at", pa.timestamp("us", tz="UTC"))
    return pa.schema([fields[name] for name in LEDGER_COLUMNS])
