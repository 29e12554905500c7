"""Push throughput through a real DAG run (issue 11: push tasks sized to the work, a lone task).

``bench_push.py`` drives ``push_batch`` from worker processes and so skips Airflow's per-task
start-up. This one runs the whole ``hubspot_consent_sync`` DAG with ``airflow dags test`` (how
``make run`` and the end-to-end tests run it: one task after another, mapped push tasks included)
over a fresh DuckDB warehouse against the sandbox at 190 requests per 10 s and 100 ms latency.
Every change has its own key and lies inside the night, so every row is sent.

Figures: the push phase from the metadata database (first push task's start to the last one's
end, so task start-up counts), the sandbox's request log (requests, 429s, the largest number of
requests in any 10 s window) and the ledger (rows SYNCED).

    .venv/bin/python bench/bench_dag_push.py [--cases batch:20000,single:2000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from bisect import bisect_left
from datetime import datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "plugins")]

LIMIT = 190
LATENCY_MS = 100


def night_rows(rows: int, interval_end: datetime) -> list[tuple]:
    """``rows`` valid changes inside the night, each for its own contact and subscription."""
    return [
        (
            f"chg-{i:07d}",
            f"bench.user+{i}@example.com",
            1001 + i % 3,
            "EMAIL",
            "UNSUBSCRIBED" if i % 3 else "SUBSCRIBED",
            None,
            None,
            interval_end - timedelta(seconds=1 + i % 80_000),
        )
        for i in range(rows)
    ]


def push_tasks(home: Path) -> list[tuple[float, float]]:
    """(start, end) in epoch seconds of every push task instance of the (only) run."""
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "SELECT start_date, end_date FROM task_instance WHERE task_id = 'push' "
            "AND run_id = (SELECT run_id FROM dag_run ORDER BY id DESC LIMIT 1)"
        ).fetchall()
    return [
        (datetime.fromisoformat(start).timestamp(), datetime.fromisoformat(end).timestamp())
        for start, end in rows
        if start and end
    ]


def busiest_window(times: list[float], window_s: float = 10.0) -> int:
    """The most requests that arrived within any ``window_s`` (the sandbox's rolling window)."""
    return max(
        (i + 1 - bisect_left(times, t - window_s + 1e-9) for i, t in enumerate(times)), default=0
    )


def run_case(mode: str, rows: int) -> dict:
    from dev.demo_data import DEMO_INTERVAL_END, create_source_table, insert_changes
    from dev.local_airflow import LocalAirflow, SandboxProcess
    from include.consent_sync.warehouse import DuckDBWarehouse

    with tempfile.TemporaryDirectory(prefix="bench_dag_push_") as workdir:
        work = Path(workdir)
        database = work / "warehouse.duckdb"
        with DuckDBWarehouse(str(database)) as warehouse:
            create_source_table(warehouse)
            insert_changes(warehouse, night_rows(rows, DEMO_INTERVAL_END))
        flags = ("--rate-limit-per-10s", str(LIMIT), "--latency-ms", str(LATENCY_MS))
        with SandboxProcess(work, *flags) as sandbox:
            airflow = LocalAirflow(
                work / "airflow",
                {"conn_type": "duckdb", "host": str(database)},
                sandbox.url,
                work / "staging",
                hubspot_extras={"rate_limit_per_10s": LIMIT, "write_mode": mode, "batch_size": 100},
            )
            airflow.prepare()
            print(f"{mode}: {rows:,} rows through airflow dags test ...", flush=True)
            started = time.time()
            # The guard's reads would add requests of their own; this measures the writes.
            result = airflow.run_dag(
                DEMO_INTERVAL_END.isoformat(), conf={"resubscribe_guard": False}, check=False
            )
            wall = time.time() - started
            if result.returncode != 0:
                raise SystemExit(result.stdout[-3000:] + result.stderr[-3000:])
            log = [r for r in sandbox.requests() if "/communication-preferences/" in r["path"]]
        with DuckDBWarehouse(str(database)) as warehouse:
            synced = warehouse.query_arrow(
                "SELECT COUNT(*) AS n FROM hubspot_consent_sync_results WHERE outcome = 'SYNCED'"
            ).to_pylist()[0]["n"]
        tasks = push_tasks(work / "airflow")
    push_s = max(end for _, end in tasks) - min(start for start, _ in tasks)
    times = sorted(r["wall_time"] for r in log)
    statuses = [str(r["status"]) for r in log]
    task_s = sorted(end - start for start, end in tasks)
    return {
        "mode": mode,
        "rows": rows,
        "synced": synced,
        "push_tasks": len(tasks),
        "task_s_median": round(task_s[len(task_s) // 2], 1),
        "requests": len(log),
        "share_429": round(statuses.count("429") / max(1, len(log)), 4),
        "busiest_10s": busiest_window(times),
        "requests_per_s": round(len(log) / push_s, 2),
        "share_of_limit": round(len(log) / push_s / (LIMIT / 10), 3),
        "push_s": round(push_s, 1),
        "rows_per_s": round(rows / push_s, 1),
        "dag_run_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", default="batch:20000,single:2000", help="write_mode:rows, comma separated"
    )
    parser.add_argument("--out", default=str(PROJECT / "bench" / "results" / "dag_push.json"))
    args = parser.parse_args()
    results = []
    for case in args.cases.split(","):
        mode, rows = case.split(":")
        results.append(run_case(mode, int(rows)))
        print(json.dumps(results[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(
        f"\n{'mode':<7} {'rows':>7} {'tasks':>6} {'requests':>9} {'429s':>6} {'max/10s':>8} "
        f"{'req/s':>6} {'of limit':>9} {'push s':>7} {'rows/s':>7} {'run s':>6}"
    )
    for r in results:
        print(
            f"{r['mode']:<7} {r['rows']:>7,} {r['push_tasks']:>6} {r['requests']:>9,} "
            f"{r['share_429']:>6.2%} {r['busiest_10s']:>8} {r['requests_per_s']:>6.2f} "
            f"{r['share_of_limit']:>9.1%} {r['push_s']:>7.1f} {r['rows_per_s']:>7.1f} "
            f"{r['dag_run_s']:>6.1f}"
        )
    missing = [r for r in results if r["synced"] != r["rows"]]
    for r in missing:
        print(f"NOT ALL SENT: {r['mode']}: {r['synced']:,} of {r['rows']:,} rows SYNCED")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
