"""Push throughput against the sandbox at HubSpot's pace (issue: push at the rate limit).

Four ways to send the same rows, measured in one run against one sandbox process with 100 ms
latency and a limit of 190 requests per 10 s:

- ``pipeline``: the push as the DAG runs it: the rows cut by ``plan_batches`` for 4 parallel push
  tasks, 4 worker processes (the `hubspot_api` pool's slots) each running ``push_batch`` over one
  batch at a time with its own HubSpotHook, all sharing one rate budget;
- ``lone``: one push task alone with every row (as mapped tasks run under ``airflow dags test``:
  one after another, each still told that 4 tasks share the limit);
- ``batch``: the same as ``pipeline`` with ``write_mode: batch`` (100 inputs per request);
- ``plain``: one request at a time in a plain loop, no pacing and no threads.

The sandbox's request log gives every figure: sustained rate (requests over the span from the
first to the last request), its share of the limit, the share of the limit sent in the first 10 s,
429s and rows per second.

    .venv/bin/python bench/bench_push.py [--rows 20000] [--plain-rows N] [--lone-rows N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "plugins")]

from include.consent_sync.contract import HUBSPOT_POOL_SLOTS  # noqa: E402

LIMIT = 190
LATENCY_MS = 100
WORKERS = HUBSPOT_POOL_SLOTS  # push tasks at once, as the pool allows


def connection_env(url: str, **extras) -> str:
    return json.dumps(
        {
            "conn_type": "http",
            "host": url,
            "password": "sandbox-token",
            "extra": {"rate_limit_per_10s": LIMIT, **extras},
        }
    )


def stage_batches(ranges: list[tuple[int, int]], folder: Path) -> list[dict]:
    import pyarrow as pa

    from include.consent_sync.contract import source_schema
    from include.consent_sync.staging import write_table

    batches = []
    for index, (start, stop) in enumerate(ranges):
        table = pa.Table.from_pylist(
            [
                {
                    "change_id": f"c{i:06d}",
                    "email": f"bench.user+{i}@example.com",
                    "subscription_id": 1001 + i % 3,
                    "channel": "EMAIL",
                    "status_state": "SUBSCRIBED" if i % 3 else "UNSUBSCRIBED",
                    "legal_basis": None,
                    "legal_basis_explanation": None,
                    "changed_at": None,
                }
                for i in range(start, stop)
            ],
            schema=source_schema(),
        )
        rows_path = folder / "batches" / f"batch-{index:05d}.parquet"
        write_table(table, rows_path)
        batches.append(
            {"rows_path": rows_path, "results_path": folder / "results" / f"b{index:05d}"}
        )
    return batches


def push_worker(queue, env: str) -> None:
    """One pool slot: takes batches until none are left, like mapped push tasks would."""
    import logging

    os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = env
    from hubspot_provider.hooks.hubspot import HubSpotHook
    from include.consent_sync.push import push_batch

    log = logging.getLogger("bench")
    while (batch := queue.get()) is not None:
        hook = HubSpotHook(parallel_tasks=WORKERS)
        push_batch(
            hook, label="push", resubscribe_guard=False, log=log, progress_every_s=3600, **batch
        )
        hook.close()


def run_pipeline(url: str, rows: int, workers: int = WORKERS, **extras) -> float:
    """Push ``rows`` as planned for the pool's slots, with ``workers`` processes taking batches."""
    from include.consent_sync.planning import PushCapacity, plan_batches

    if workers == 1:  # a lone task (as under `airflow dags test`): one batch of every row
        ranges = [(0, rows)]
    else:
        ranges = plan_batches(rows, PushCapacity(LIMIT, int(extras.get("batch_size", 1)), WORKERS))
    with tempfile.TemporaryDirectory() as folder:
        batches = stage_batches(ranges, Path(folder))
        queue = multiprocessing.get_context("spawn").Queue()
        for batch in batches:
            queue.put(batch)
        for _ in range(workers):
            queue.put(None)
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(
                target=push_worker, args=(queue, connection_env(url, **extras)), daemon=True
            )
            for _ in range(workers)
        ]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return time.monotonic() - started


def run_plain(url: str, rows: int) -> float:
    from urllib.parse import quote

    import requests

    session = requests.Session()
    session.headers["Authorization"] = "Bearer sandbox-token"
    started = time.monotonic()
    for i in range(rows):
        email = quote(f"bench.user+{i}@example.com", safe="")
        body = {"statusState": "SUBSCRIBED", "channel": "EMAIL", "subscriptionId": 1001 + i % 3}
        session.post(f"{url}/communication-preferences/v4/statuses/{email}", json=body, timeout=30)
    return time.monotonic() - started


def measure(sandbox_url: str, name: str, rows: int, wall_s: float) -> dict:
    import requests

    log = requests.get(f"{sandbox_url}/_sandbox/requests", timeout=30).json()["requests"]
    api = [r for r in log if "/communication-preferences/" in r["path"]]
    statuses = Counter(str(r["status"]) for r in api)
    span = api[-1]["monotonic"] - api[0]["monotonic"] if len(api) > 1 else float("nan")
    rate = len(api) / span
    first_window = sum(1 for r in api if r["monotonic"] < api[0]["monotonic"] + 10)
    return {
        "mode": name,
        "rows": rows,
        "requests": len(api),
        "answers": dict(statuses),
        "share_429": statuses.get("429", 0) / len(api),
        "span_s": round(span, 1),
        "wall_s": round(wall_s, 1),
        "requests_per_s": round(rate, 2),
        "share_of_limit": round(rate / (LIMIT / 10), 3),
        "first_window_share": round(first_window / LIMIT, 3),
        "rows_per_s": round(rows / wall_s, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--plain-rows", type=int, default=None, help="rows for the plain loop (default: --rows)"
    )
    parser.add_argument("--lone-rows", type=int, default=2_000, help="rows for the lone task")
    parser.add_argument("--modes", default="pipeline,lone,batch,plain")
    args = parser.parse_args()

    import requests

    from dev.local_airflow import SandboxProcess

    results = []
    with tempfile.TemporaryDirectory() as workdir:
        flags = ("--rate-limit-per-10s", str(LIMIT), "--latency-ms", str(LATENCY_MS))
        with SandboxProcess(Path(workdir), *flags) as sandbox:
            for mode in args.modes.split(","):
                requests.post(f"{sandbox.url}/_sandbox/reset", timeout=30)
                time.sleep(10.5)  # let the previous mode's requests leave the rolling window
                rows = {"plain": args.plain_rows or args.rows, "lone": args.lone_rows}.get(
                    mode, args.rows
                )
                print(f"{mode}: sending {rows:,} rows ...", flush=True)
                if mode == "pipeline":
                    wall = run_pipeline(sandbox.url, rows)
                elif mode == "lone":
                    wall = run_pipeline(sandbox.url, rows, workers=1)
                elif mode == "batch":
                    wall = run_pipeline(sandbox.url, rows, write_mode="batch", batch_size=100)
                else:
                    wall = run_plain(sandbox.url, rows)
                results.append(measure(sandbox.url, mode, rows, wall))
                print(json.dumps(results[-1]), flush=True)
    out = PROJECT / "bench" / "results" / "push.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(
        f"\n{'mode':<9} {'rows':>7} {'requests':>9} {'req/s':>7} {'of limit':>9} "
        f"{'first 10 s':>10} {'429s':>6} {'rows/s':>8}"
    )
    for r in results:
        print(
            f"{r['mode']:<9} {r['rows']:>7,} {r['requests']:>9,} {r['requests_per_s']:>7.2f} "
            f"{r['share_of_limit']:>9.1%} {r['first_window_share']:>10.1%} "
            f"{r['share_429']:>6.2%} {r['rows_per_s']:>8.1f}"
        )
    missed = False
    pipeline = next((r for r in results if r["mode"] == "pipeline"), None)
    if pipeline and (pipeline["share_of_limit"] < 0.95 or pipeline["share_429"] >= 0.01):
        print("GOAL MISSED: pipeline push below 95% of the limit or 1% or more 429s")
        missed = True
    lone = next((r for r in results if r["mode"] == "lone"), None)
    if lone and (lone["first_window_share"] < 0.9 or lone["share_429"] >= 0.01):
        print("GOAL MISSED: a lone task below 90% of the limit in its first 10 s, or 429s")
        missed = True
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
