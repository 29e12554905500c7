"""`make deploy-local`: the project on Airflow's distributed engine, on this machine, in the foreground.

api-server, scheduler, dag-processor, triggerer and two Celery workers (Redis on 127.0.0.1:6379,
PostgreSQL on 127.0.0.1:5432 for Airflow's metadata and for the warehouse), with the HubSpot
sandbox. State lives in .local/deploy/ and the PostgreSQL databases named below, so a restart
keeps the runs and the ledger. Open http://localhost:8080 as admin (the password is in the file
printed at start). The nightly schedule is on: the latest night runs at once, on the demo data
(dated to that night), as a dry run: the sync starts disarmed (Variable consent_sync_live).
Ctrl-C (or SIGTERM) stops every process. `make deploy-local-clean` (--clean) deletes that state:
both databases, the Redis queue and .local/deploy/.
"""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path

# The project root (include/, dev/) and plugins/, as Airflow puts them on the path.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]

from dev import local_postgres  # noqa: E402
from dev.demo_data import create_demo_warehouse, latest_night  # noqa: E402
from dev.local_airflow import PROJECT  # noqa: E402
from dev.local_deployment import LocalDeployment  # noqa: E402

HOME = PROJECT / ".local" / "deploy"
METADATA_DB = "consent_sync_deploy_airflow"
WAREHOUSE_DB = "consent_sync_deploy_warehouse"
REDIS_DB = 1  # tests/deployment use another, and their own queues
PORT = 8080


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def deployment() -> LocalDeployment:
    return LocalDeployment(
        HOME,
        database=METADATA_DB,
        redis_db=REDIS_DB,
        port=PORT,
        warehouse=local_postgres.warehouse_connection(WAREHOUSE_DB),
        sandbox_flags=("--rate-limit-per-10s", "190", "--latency-ms", "20"),
        ui=True,
    )


def clean() -> int:
    deployment().drop()
    local_postgres.drop_database(WAREHOUSE_DB)
    shutil.rmtree(HOME, ignore_errors=True)
    print(f"Dropped {METADATA_DB}, {WAREHOUSE_DB}, the Redis queue and {HOME}.")
    return 0


def main() -> int:
    if sys.argv[1:] == ["--clean"]:
        return clean()
    # Ctrl-C and SIGTERM both end the wait below; set for SIGINT too, which a shell leaves
    # ignored in a process it starts in the background.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    if local_postgres.create_database(WAREHOUSE_DB, if_missing=True):
        with local_postgres.open_warehouse(WAREHOUSE_DB) as warehouse:
            rows = create_demo_warehouse(warehouse, interval_end=latest_night())
        print(
            f"Demo warehouse created: PostgreSQL database {WAREHOUSE_DB} ({rows:,} changes, "
            "dated to the latest night; `make deploy-local-clean` re-creates it)"
        )
    local = deployment()
    print("Starting api-server, scheduler, dag-processor, triggerer and 2 Celery workers ...")
    try:
        local.start()
        print(f"Airflow UI: http://localhost:{PORT} (user admin)")
        print(f"Admin password: in {local.password_file}")
        print(f"HubSpot sandbox: {local.sandbox.url}")
        print(f"Warehouse: PostgreSQL database {WAREHOUSE_DB} on 127.0.0.1:5432")
        print(f"Component logs: {local.logs}/")
        print(
            "The sync is DISARMED (Variable consent_sync_live=false): the nightly runs only plan"
            " until you set it to true (Admin → Variables); see the README."
        )
        print("Ctrl-C stops everything.")
        exited = local.wait()
        print(f"{exited} exited; stopping the others.\n{local.log_tails([exited])}")
        return 1
    except (RuntimeError, TimeoutError) as exc:  # start() names the component and its log
        print(exc)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("Stopping every process ...")
        local.stop()
        print("Stopped.")


if __name__ == "__main__":
    sys.exit(main())
