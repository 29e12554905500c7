"""The reconciliation's warehouse side: its table and view, the keys to check, one run's rows."""

from __future__ import annotations

from include.consent_reconcile.contract import RECONCILIATION_TABLE, key_schema
from include.consent_sync.warehouse import Warehouse, load_sql

KEY_FILTER = "reconcile_key_filter"


def ensure_reconciliation(warehouse: Warehouse) -> None:
    """Create or upgrade the table and the drift view (idempotent).

    On PostgreSQL in one transaction under an advisory lock, as the ledger: two runs starting at
    once do not race on CREATE, and a reader never sees the view half replaced.
    """
    postgres = warehouse.dialect == "postgres"
    if postgres:
        warehouse.begin()
    try:
        if postgres:
            warehouse.execute(
                "SELECT pg_advisory_xact_lock(hashtext(:lock))", {"lock": RECONCILIATION_TABLE}
            )
        warehouse.run_script(load_sql("reconciliation_schema"))
    except BaseException:
        if postgres:
            warehouse.rollback()
        raise
    if postgres:
        warehouse.commit()


def keys_to_check(warehouse: Warehouse, sync_run_ids: list[str] | None):
    """Keys the pipeline ever sent (``sync_run_ids`` None), or the keys these sync runs sent."""
    import pyarrow as pa

    sql = load_sql("reconcile_keys")
    if sync_run_ids is None:
        return warehouse.query_arrow(sql, {"every_run": True, "sync_run_id": ""})
    tables = [
        warehouse.query_arrow(sql, {"every_run": False, "sync_run_id": run_id})
        for run_id in sync_run_ids
    ]
    keys = pa.concat_tables(tables).group_by(["email", "subscription_id", "channel"]).aggregate([])
    return keys.sort_by([("email", "ascending"), ("subscription_id", "ascending")])


def intents(warehouse: Warehouse, keys):
    """Per key (email, subscription_id, channel): the intent and what we wrote (key_schema)."""
    warehouse.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {KEY_FILTER} "
        "(email TEXT, subscription_id BIGINT, channel TEXT)"
    )
    warehouse.execute(f"DELETE FROM {KEY_FILTER}")
    warehouse.insert_arrow(KEY_FILTER, keys.select(["email", "subscription_id", "channel"]))
    if warehouse.dialect == "postgres":
        warehouse.execute(f"ANALYZE {KEY_FILTER}")  # temp tables get no statistics otherwise
    return warehouse.query_arrow(load_sql("reconcile_intents")).cast(key_schema())


def replace_run(warehouse: Warehouse, reconcile_run_id: str, rows) -> None:
    """Record one reconcile run's rows in one transaction: a re-run replaces them (idempotent)."""
    warehouse.begin()
    try:
        warehouse.execute(
            f"DELETE FROM {RECONCILIATION_TABLE} WHERE reconcile_run_id = :run_id",
            {"run_id": reconcile_run_id},
        )
        warehouse.insert_arrow(RECONCILIATION_TABLE, rows)
    except BaseException:
        warehouse.rollback()
        raise
    warehouse.commit()
