"""`make airflow [PORT=8080]`: Airflow's UI and scheduler (`airflow standalone`) with the sandbox.

Open the printed URL, log in as admin with the printed password, and follow the README's "First
run in the UI": the sync starts disarmed (Variable consent_sync_live=false), so nothing is sent to
HubSpot until you ask. State lives in .local/ui/ (Airflow home, DuckDB warehouse, staging); the
demo warehouse is dated to the latest night when it is created (`make clean` re-creates it).
Ctrl-C, or SIGTERM to the process group, stops Airflow and the sandbox.
"""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The project root (include/, dev/) and plugins/, as Airflow puts them on the path.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]

from dev.demo_data import create_demo_warehouse, latest_night  # noqa: E402
from dev.local_airflow import PROJECT  # noqa: E402
from dev.local_standalone import ADMIN_USER, LocalStandalone  # noqa: E402
from include.consent_sync.contract import SOURCE_TABLE  # noqa: E402
from include.consent_sync.warehouse import DuckDBWarehouse  # noqa: E402

HOME = PROJECT / ".local" / "ui"
# Older demo data than this no longer fits the DAG's default lookback (30 days).
STALE_AFTER = timedelta(days=20)


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def demo_warehouse(path: Path) -> None:
    """Create the demo warehouse dated to the latest night, or say when it has aged."""
    if not path.exists():
        night = latest_night()
        with DuckDBWarehouse(str(path)) as warehouse:
            rows = create_demo_warehouse(warehouse, interval_end=night)
        print(f"Demo warehouse created: {path} ({rows:,} changes, night ending {night:%Y-%m-%d})")
        return
    with DuckDBWarehouse(str(path)) as warehouse:
        newest = warehouse.query_arrow(f"SELECT max(changed_at) AS m FROM {SOURCE_TABLE}", {})
    newest = newest["m"][0].as_py()
    if newest and newest < datetime.now(UTC) - STALE_AFTER:
        print(
            f"Note: the demo's newest change is from {newest:%Y-%m-%d}; runs of recent nights "
            "find nothing. `make clean` re-creates the demo dated to today."
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--home", type=Path, default=HOME, help="state folder (.local/ui)")
    args = parser.parse_args()
    # Ctrl-C and SIGTERM both stop everything; SIGINT too, which a shell leaves ignored in a
    # process it starts in the background.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    args.home.mkdir(parents=True, exist_ok=True)
    warehouse = args.home / "warehouse.duckdb"
    demo_warehouse(warehouse)
    local = LocalStandalone(
        args.home,
        warehouse=warehouse,
        port=args.port,
        sandbox_flags=("--rate-limit-per-10s", "190"),
    )
    try:
        print(f"Starting Airflow on {local.url} (first start: a minute or two) ...")
        local.start()
        print(
            f"\nAirflow UI: {local.url}  user {ADMIN_USER}, password {local.password}"
            f"\n  (kept in {local.password_file})"
            f"\nHubSpot sandbox: {local.sandbox.url} (what it holds: {local.sandbox.url}"
            "/_sandbox/statuses)"
            f"\nWarehouse: {warehouse}"
            "\nThe sync is DISARMED (Variable consent_sync_live=false): runs only plan until you"
            ' set it to true (Admin → Variables). See the README, "First run in the UI".'
            "\nCtrl-C stops everything.\n",
            flush=True,
        )
        local.process.wait()
        print(f"airflow standalone exited ({local.process.returncode}); stopping the sandbox.")
        return 1
    except (RuntimeError, TimeoutError) as exc:
        print(exc)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("Stopping Airflow and the sandbox ...", flush=True)
        local.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
