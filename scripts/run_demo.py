"""`make run`: one real nightly run of hubspot_consent_sync on the demo warehouse and the sandbox.

State lives in .local/ (Airflow home, warehouse, staging), so a second run finds the first
run's ledger and adds no duplicate rows.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# The project root (include/, dev/) and plugins/, as Airflow puts them on the path.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]

from dev.demo_data import DEMO_INTERVAL_END, create_demo_warehouse  # noqa: E402
from dev.local_airflow import PROJECT, LocalAirflow, SandboxProcess  # noqa: E402
from include.consent_sync.contract import LATEST_VIEW, LEDGER_TABLE, RUNS_VIEW  # noqa: E402
from include.consent_sync.warehouse import DuckDBWarehouse  # noqa: E402

LOCAL = PROJECT / ".local"
AUDIT_QUERIES = """\
-- What did we send for one contact, and why?
SELECT dag_run_id, change_id, subscription_id, status_state, changed_at, outcome,
       error_category, error_message, set_status_success_reason, sent_at
FROM {ledger}
WHERE lower(trim(both ' ' from email)) = '{email}'
ORDER BY changed_at, recorded_at;

-- What failed or is waiting, per run?
SELECT * FROM {runs} ORDER BY interval_end DESC;

-- What HubSpot holds for that contact, as far as this pipeline knows
SELECT * FROM {latest} WHERE lower(trim(both ' ' from email)) = '{email}';"""


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

    # The report task names the run in its summary ("Run <run_id> (<interval>): ...").
    found = re.search(r"Run (\S+) \(\d{4}-", result.stdout + result.stderr)
    run_id = found.group(1) if found else None
    with duckdb.connect(str(warehouse), read_only=True) as db:
        counts = db.execute(
            f"SELECT outcome, count(*) FROM {LEDGER_TABLE} WHERE dag_run_id = ? GROUP BY 1 ORDER BY 2 DESC",
            [run_id],
        ).fetchall()
        email = db.execute(
            f"SELECT lower(trim(both ' ' from email)) FROM {LEDGER_TABLE} WHERE outcome = 'SKIPPED_SUPERSEDED' "
            "ORDER BY change_id LIMIT 1"
        ).fetchone() or ("jane@example.com",)
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
    if not counts:
        print("  0 changes considered: every change of the night is already final (nothing sent).")
    print(f"Ledger: {warehouse} table {LEDGER_TABLE}: {total:,} rows over {runs} run(s)")
    print(f"Full Airflow log: {LOCAL / 'last_run.log'}")
    print(f"\nAudit it with any DuckDB client, e.g. the duckdb CLI: duckdb {warehouse}\n")
    print(
        AUDIT_QUERIES.format(
            ledger=LEDGER_TABLE, runs=RUNS_VIEW, latest=LATEST_VIEW, email=email[0]
        )
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
