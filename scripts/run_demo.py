"""`make run`: one real nightly run of hubspot_consent_sync on the demo warehouse and the sandbox.

State lives in .local/ (Airflow home, warehouse, staging), so a second run finds the first
run's ledger and adds no duplicate rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from include.consent_sync.contract import LEDGER_TABLE  # noqa: E402
from include.consent_sync.warehouse import DuckDBWarehouse  # noqa: E402
from include.demo_data import DEMO_INTERVAL_END, create_demo_warehouse  # noqa: E402
from include.local_airflow import PROJECT, LocalAirflow, SandboxProcess  # noqa: E402

LOCAL = PROJECT / ".local"
AUDIT_QUERIES = f"""\
-- What did we send for one contact, and why?
SELECT dag_run_id, change_id, subscription_id, status_state, changed_at, outcome,
       error_category, error_message, set_status_success_reason, sent_at
FROM {LEDGER_TABLE}
WHERE lower(email) = 'anna.smith0@example.com'
ORDER BY changed_at, recorded_at;

-- What failed or is waiting, per run?
SELECT * FROM hubspot_consent_sync_runs ORDER BY interval_end DESC;"""


def main() -> int:
    warehouse = LOCAL / "warehouse.duckdb"
    LOCAL.mkdir(exist_ok=True)
    if not warehouse.exists():
        with DuckDBWarehouse(str(warehouse)) as connection:
            rows = create_demo_warehouse(connection)
        print(f"Demo warehouse created: {warehouse} ({rows:,} consent changes)")
    with SandboxProcess(LOCAL, "--rate-limit-per-10s", "190", "--latency-ms", "20") as sandbox:
        print(f"HubSpot sandbox listening on {sandbox.url}")
        connection = {"conn_type": "duckdb", "host": str(warehouse)}
        airflow = LocalAirflow(LOCAL / "airflow", connection, sandbox.url, LOCAL / "staging")
        airflow.prepare()
        logical_date = DEMO_INTERVAL_END.isoformat()
        print(f"Running hubspot_consent_sync for the interval ending {logical_date} ...")
        result = airflow.run_dag(logical_date, check=False)
        (LOCAL / "last_run.log").write_text(result.stdout + result.stderr)
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as db:
        (run_id,) = db.execute(
            f"SELECT dag_run_id FROM {LEDGER_TABLE} ORDER BY recorded_at DESC LIMIT 1"
        ).fetchone() or (None,)
        counts = db.execute(
            f"SELECT outcome, count(*) FROM {LEDGER_TABLE} WHERE dag_run_id = ? GROUP BY 1 ORDER BY 2 DESC",
            [run_id],
        ).fetchall()
        total, runs = db.execute(
            f"SELECT count(*), count(DISTINCT dag_run_id) FROM {LEDGER_TABLE}"
        ).fetchone()
    print()
    print(
        f"Run {run_id}: "
        + ("succeeded" if result.returncode == 0 else "FAILED (see .local/last_run.log)")
    )
    for outcome, count in counts:
        print(f"  {outcome:<22} {count:>7,}")
    print(f"Ledger: {warehouse} table {LEDGER_TABLE}: {total:,} rows over {runs} run(s)")
    print(f"Full Airflow log: {LOCAL / 'last_run.log'}")
    print(f"\nAudit it (e.g. `.venv/bin/python -m duckdb {warehouse}` or any DuckDB client):\n")
    print(AUDIT_QUERIES)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
