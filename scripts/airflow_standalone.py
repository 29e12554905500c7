"""`make airflow`: Airflow's UI and scheduler (`airflow standalone`) on the project, with the sandbox.

Open http://localhost:8080 (the admin password is printed by Airflow and kept in
.local/airflow/simple_auth_manager_passwords.json.generated), trigger hubspot_consent_sync or start
a backfill (Trigger → Backfill). Ctrl-C stops Airflow and the sandbox.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from dev.demo_data import create_demo_warehouse  # noqa: E402
from dev.local_airflow import PROJECT, LocalAirflow, SandboxProcess  # noqa: E402
from include.consent_sync.warehouse import DuckDBWarehouse  # noqa: E402

LOCAL = PROJECT / ".local"


def main() -> int:
    LOCAL.mkdir(exist_ok=True)
    warehouse = LOCAL / "warehouse.duckdb"
    if not warehouse.exists():
        with DuckDBWarehouse(str(warehouse)) as connection:
            create_demo_warehouse(connection)
    with SandboxProcess(LOCAL, "--rate-limit-per-10s", "190", "--latency-ms", "20") as sandbox:
        connection = {"conn_type": "duckdb", "host": str(warehouse)}
        airflow = LocalAirflow(LOCAL / "airflow", connection, sandbox.url, LOCAL / "staging")
        airflow.prepare()
        print(f"HubSpot sandbox: {sandbox.url}; warehouse: {warehouse}; UI: http://localhost:8080")
        try:
            return airflow.airflow("standalone", check=False, timeout=None).returncode
        except KeyboardInterrupt:  # standalone stops its own processes on Ctrl-C
            return 0


if __name__ == "__main__":
    sys.exit(main())
