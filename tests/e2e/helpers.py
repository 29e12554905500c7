"""What end-to-end tests assert about: the ledger in the warehouse and what HubSpot holds."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime

from include.consent_sync.contract import LEDGER_TABLE


def ledger(warehouse) -> list[dict]:
    return warehouse.rows(f"SELECT * FROM {LEDGER_TABLE} ORDER BY recorded_at, change_id")


def source(warehouse) -> list[dict]:
    return warehouse.rows("SELECT * FROM consent_changes")


def runs(rows) -> list[str]:
    """Run ids in the order they first recorded."""
    return list(dict.fromkeys(r["dag_run_id"] for r in rows))


def outcomes(rows, run_id=None) -> dict[str, str]:
    """change_id → outcome for one run (default: the last run)."""
    run_id = run_id or runs(rows)[-1]
    picked = [r for r in rows if r["dag_run_id"] == run_id]
    assert len({r["change_id"] for r in picked}) == len(picked), "duplicate ledger rows in a run"
    return {r["change_id"]: r["outcome"] for r in picked}


def assert_one_row_per_change_per_run(rows):
    pairs = Counter((r["dag_run_id"], r["change_id"]) for r in rows)
    assert max(pairs.values(), default=1) == 1


def hubspot_view(sandbox) -> dict[tuple[str, int], str]:
    return {
        (email, sub): record["status"]
        for (email, sub, _channel), record in sandbox.statuses().items()
    }


def expected_hubspot(rows, valid_ids, before: datetime) -> dict[tuple[str, int], str]:
    """Per key, the latest change in the whole table, where it is valid and changed before ``before``.

    Changes overtaken by a later change (even one after the run's interval) are never sent.
    """
    latest: dict[tuple, dict] = {}
    for row in rows:
        if row["changed_at"] is None or row["email"] is None:
            continue
        key = (row["email"].strip().lower(), row["subscription_id"], row["channel"])
        if key not in latest or (row["changed_at"], row["change_id"]) > (
            latest[key]["changed_at"],
            latest[key]["change_id"],
        ):
            latest[key] = row
    return {
        (key[0], key[1]): row["status_state"]
        for key, row in latest.items()
        if row["change_id"] in valid_ids and row["changed_at"] < before
    }


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def dag_runs(airflow, dag_id: str) -> dict[str, dict]:
    """run_id → the run as Airflow's metadata database (the e2e home's SQLite) holds it."""
    with sqlite3.connect(airflow.home / "airflow.db") as metadata:
        metadata.row_factory = sqlite3.Row
        rows = metadata.execute(
            "SELECT run_id, state, run_type, triggered_by, conf FROM dag_run WHERE dag_id = ?",
            (dag_id,),
        ).fetchall()
    return {r["run_id"]: {**dict(r), "conf": json.loads(r["conf"] or "null")} for r in rows}
