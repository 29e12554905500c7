"""Benchmark: the non-HTTP pipeline (extract → validate → plan → load_results) at 1,000,000 rows.

    .venv/bin/python bench/bench_scale.py [--warehouse duckdb|postgres|both] [--rows N]
        [--max-seconds S] [--max-rss-mib M] [--keep]

The parent generates ``--rows`` candidate changes (vectorised: ~1% invalid, a third as many
contacts as rows so keys repeat, every change inside one nightly interval), bulk-loads them into a
fresh warehouse (a DuckDB file, or a new ``consent_bench_*`` database on PostgreSQL at
127.0.0.1:5432, user postgres) with ``Warehouse.insert_arrow``, prepares its empty ledger
(``pipeline.prepare_ledger``, as the DAG's task before extract), then runs each step of
:mod:`include.consent_sync.pipeline` in a FRESH child process, like an Airflow task, so each
step's peak RSS (the child's own ``ru_maxrss``) is that step's alone. No batch is pushed, so
load_results records the planned sends as DEFERRED. load_results then runs once more, as a
retried task would (its rows are already recorded).

Per step it prints the step function's wall time, the child process's wall time (interpreter
start and imports included) and its peak RSS. Exits 1 unless, on every warehouse, the four child
processes together take less than ``--max-seconds`` (90) and none peaks at ``--max-rss-mib``
(2048) or more, and unless the retried load_results is no slower than the first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

INTERVAL_END = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
INTERVAL_START = INTERVAL_END - timedelta(days=1)
RUN_ID = "scheduled__2026-11-26T02:00:00+00:00"
STEPS = ("extract", "validate", "plan", "load_results")


def generate(rows: int, seed: int = 7):
    """``rows`` consent changes like :func:`dev.demo_data.demo_rows`, built with numpy/Arrow.

    A third as many contacts as rows, three subscriptions (so most keys change more than once),
    2% of emails padded and upper-cased (normalised, not rejected), 1 in 40 contacts with an
    unusual local part; 1% invalid rows (bad email, unknown state, missing subscription id);
    every change inside the day before ``INTERVAL_END``.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from dev.demo_data import DOMAINS, FIRST, INVALID_EMAILS, LAST, UNUSUAL_LOCAL_PARTS
    from include.consent_sync.contract import LEGAL_BASES, source_schema

    rng = np.random.default_rng(seed)
    n_contacts = max(1, rows // 3)
    contact_ids = np.arange(n_contacts)
    first = np.array(FIRST)[rng.integers(0, len(FIRST), n_contacts)]
    last = np.array([name.replace("ü", "u") for name in LAST])[
        rng.integers(0, len(LAST), n_contacts)
    ]
    local = pc.binary_join_element_wise(
        pa.array(first), ".", pa.array(last), pa.array(contact_ids.astype(str)), ""
    )
    unusual = pc.binary_join_element_wise(
        pa.array(np.array(UNUSUAL_LOCAL_PARTS)[(contact_ids // 40) % len(UNUSUAL_LOCAL_PARTS)]),
        pa.array(contact_ids.astype(str)),
        "",
    )
    local = pc.if_else(pa.array(contact_ids % 40 == 0), unusual, local)
    emails = pc.binary_join_element_wise(
        local, "@", pa.array(np.array(DOMAINS)[rng.integers(0, len(DOMAINS), n_contacts)]), ""
    )
    shouted = pc.binary_join_element_wise("  ", pc.utf8_upper(emails), " ", "")
    emails = pc.if_else(pa.array(contact_ids % 25 == 0), shouted, emails)

    n = np.arange(rows)
    email = pc.take(emails, pa.array(rng.integers(0, n_contacts, rows)))
    subscription_id = np.array([1001, 1002, 1003], dtype=np.int64)[rng.integers(0, 3, rows)]
    states = np.array(["SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED"])[
        rng.choice(3, rows, p=[0.6, 0.3, 0.1])
    ]
    with_basis = rng.random(rows) < 0.7
    basis = pa.array(np.array(LEGAL_BASES)[rng.integers(0, len(LEGAL_BASES), rows)])
    explanation = pc.binary_join_element_wise(
        "Captured by web form v", pa.array(rng.integers(1, 5, rows).astype(str)), ""
    )
    no_text = pa.nulls(rows, pa.string())
    end = np.datetime64(INTERVAL_END.replace(tzinfo=None), "s")
    changed_at = (end - rng.integers(1, 86_401, rows).astype("timedelta64[s]")).astype(
        "datetime64[us]"
    )

    # ~1% invalid, of three kinds, as demo_rows does.
    bad = n % 100 == 7
    kind = (n // 100) % 3
    bad_email = pa.array(np.array(INVALID_EMAILS)[(n // 300) % len(INVALID_EMAILS)])
    email = pc.if_else(pa.array(bad & (kind == 0)), bad_email, email)
    states = np.where(bad & (kind == 1), "OPTED_OUT", states)
    schema = source_schema()
    return pa.table(
        {
            "change_id": pc.binary_join_element_wise("chg-", pa.array(n.astype("U8")), ""),
            "email": email,
            "subscription_id": pa.array(subscription_id, mask=bad & (kind == 2)),
            "channel": pa.array(np.full(rows, "EMAIL")),
            "status_state": pa.array(states),
            "legal_basis": pc.if_else(pa.array(with_basis), basis, no_text),
            "legal_basis_explanation": pc.if_else(pa.array(with_basis), explanation, no_text),
            "changed_at": pa.array(changed_at, schema.field("changed_at").type),
        },
        schema=schema,
    )


def connection_fields(kind: str, target: str) -> dict:
    if kind == "duckdb":
        return {"conn_type": "duckdb", "host": target}
    from dev import local_postgres

    return local_postgres.warehouse_connection(target)


def open_warehouse(fields: dict):
    """The production path (``open_warehouse`` of the Airflow connection), as a task opens it."""
    from include.consent_sync.warehouse import open_warehouse as open_connection

    os.environ["AIRFLOW_CONN_CONSENT_WAREHOUSE"] = json.dumps(fields)
    return open_connection("consent_warehouse")


# ---------------------------------------------------------------------------------------------
# Child: one step, as one Airflow task would run it
# ---------------------------------------------------------------------------------------------


def run_step(step: str, fields: dict, staging_url: str) -> None:
    started = time.perf_counter()
    from airflow.sdk import ObjectStoragePath

    from include.consent_sync import pipeline
    from include.consent_sync.ledger import RunFacts

    folder = ObjectStoragePath(staging_url)
    imported = time.perf_counter()
    if step == "extract":
        window = pipeline.Window(RUN_ID, INTERVAL_START, INTERVAL_END)
        with open_warehouse(fields) as warehouse:
            facts = pipeline.extract(warehouse, folder, window)
    elif step == "validate":
        facts = pipeline.validate(folder, now=INTERVAL_END, max_invalid_share=0.05)
    elif step == "plan":
        from include.consent_sync.planning import PushCapacity

        capacity = PushCapacity(rate_limit_per_10s=190, parallel_tasks=4)
        batches = pipeline.plan(folder, dry_run=False, max_rows=10_000_000, capacity=capacity)
        facts = {"batches": len(batches), "to_send": sum(b["rows"] for b in batches)}
    else:
        run = RunFacts(RUN_ID, INTERVAL_START, INTERVAL_END, datetime.now(UTC), max_attempts=5)
        with open_warehouse(fields) as warehouse:
            facts = pipeline.load_results(warehouse, folder, run)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "step": step,
                "facts": facts,
                "import_s": imported - started,
                "step_s": done - imported,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


# ---------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------


def prepare(kind: str, table, workdir: Path) -> tuple[dict, float]:
    """A fresh warehouse holding ``table`` as consent_changes and an empty ledger (the
    prepare_ledger task's, which has nothing to measure on a new warehouse); returns its fields
    and load time."""
    from dev.demo_data import create_source_table
    from include.consent_sync import pipeline

    if kind == "duckdb":
        target = str(workdir / "warehouse.duckdb")
    else:
        from dev import local_postgres

        target = f"consent_bench_{uuid.uuid4().hex[:12]}"
        local_postgres.create_database(target)
    fields = connection_fields(kind, target)
    with open_warehouse(fields) as warehouse:
        create_source_table(warehouse)
        started = time.perf_counter()
        warehouse.insert_arrow("consent_changes", table)
        if kind == "postgres":
            warehouse.execute("ANALYZE consent_changes")
        loaded = time.perf_counter() - started
        pipeline.prepare_ledger(warehouse)
    return fields, loaded


def drop(kind: str, fields: dict) -> None:
    from dev import local_postgres

    if kind == "postgres":
        local_postgres.drop_database(fields["schema"])


def bench(kind: str, table, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"consent_bench_{kind}_"))
    staging = workdir / "staging"
    fields, loaded = prepare(kind, table, workdir)
    print(f"\n[{kind}] {table.num_rows:,} rows bulk-loaded into consent_changes in {loaded:.1f} s")
    figures = []
    try:
        for name in (*STEPS, "load_results retry"):
            step = name.split()[0]
            result = run_step_in_child(step, fields, staging, label=f"[{kind}] step {name}")
            wall = result["process_s"]
            if name in STEPS:
                figures.append(result)
            else:
                retry = result
            print(
                f"[{kind}] {name:<18} step {result['step_s']:6.1f} s | process {wall:6.1f} s "
                f"(imports {result['import_s']:.1f} s) | peak RSS {result['peak_rss_mib']:6.0f} "
                f"MiB | {json.dumps(result['facts'])}"
            )
    finally:
        if not args.keep:
            drop(kind, fields)
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"[{kind}] kept: {fields} and {staging}")
    total_step = sum(f["step_s"] for f in figures)
    total_process = sum(f["process_s"] for f in figures)
    peak = max(f["peak_rss_mib"] for f in figures)
    print(
        f"[{kind}] total        step {total_step:6.1f} s | process {total_process:6.1f} s | "
        f"max peak RSS {peak:.0f} MiB"
    )
    return {
        "kind": kind,
        "load_s": loaded,
        "steps": figures,
        "process_s": total_process,
        "peak": peak,
        "first_load_s": figures[-1]["step_s"],
        "retry_load_s": retry["step_s"],
    }


def run_step_in_child(step: str, fields: dict, staging: Path, label: str) -> dict:
    """Run one pipeline step in a fresh child process, like an Airflow task; its figures, with
    the child's wall time as ``process_s``."""
    started = time.perf_counter()
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--step",
            step,
            "--fields",
            json.dumps(fields),
            "--staging",
            staging.as_uri(),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "GX_ANALYTICS_ENABLED": "False"},
    )
    if child.returncode:
        raise SystemExit(f"{label} failed:\n{child.stderr[-4000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", choices=("duckdb", "postgres", "both"), default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=float, default=90.0)
    parser.add_argument("--max-rss-mib", type=float, default=2048.0)
    parser.add_argument("--keep", action="store_true", help="keep the warehouse and staging")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--fields", help=argparse.SUPPRESS)
    parser.add_argument("--staging", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        run_step(args.step, json.loads(args.fields), args.staging)
        return 0

    started = time.perf_counter()
    table = generate(args.rows)
    print(
        f"generated {table.num_rows:,} candidate changes in {time.perf_counter() - started:.1f} s"
    )
    kinds = ("duckdb", "postgres") if args.warehouse == "both" else (args.warehouse,)
    results = [bench(kind, table, args) for kind in kinds]
    failures = []
    for result in results:
        if result["process_s"] >= args.max_seconds:
            failures.append(
                f"{result['kind']}: the four steps took {result['process_s']:.1f} s, "
                f"goal < {args.max_seconds:g} s"
            )
        if result["retry_load_s"] > result["first_load_s"]:
            failures.append(
                f"{result['kind']}: the retried load_results took {result['retry_load_s']:.1f} s, "
                f"more than the first ({result['first_load_s']:.1f} s)"
            )
        if result["peak"] >= args.max_rss_mib:
            failures.append(
                f"{result['kind']}: a step peaked at {result['peak']:.0f} MiB, "
                f"goal < {args.max_rss_mib:g} MiB"
            )
    if failures:
        print("\nFAIL: " + "; ".join(failures))
        return 1
    print(
        f"\nOK: every warehouse under {args.max_seconds:g} s and {args.max_rss_mib:g} MiB per step"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
