"""Benchmark: one night's non-HTTP steps on a warehouse with months of history.

    .venv/bin/python bench/bench_history.py [--warehouse duckdb|postgres|both]
        [--sizes 1000000,3000000,10000000] [--new 30000] [--late 1000] [--failed 500]
        [--repeat 2] [--max-ratio 2] [--max-rss-mib 2048] [--explain FILE] [--keep]

For each warehouse and history size it builds a fresh warehouse with :mod:`dev.history_data`
(bulk generation: ``size`` history changes in ``consent_changes`` and as many ledger rows of
earlier runs, ~27,000 a night, then the night: ``--new`` changes, ``--late`` late-arriving rows
and ``--failed`` FAILED rows of earlier runs) in a DuckDB temp file or a new ``consent_bench_*``
database on PostgreSQL at 127.0.0.1:5432 (created and dropped here, with the source-table
indexes the README names, then VACUUM ANALYZE of every table), and beside it the same night on
an empty history, the baseline of its ratios. Then it runs extract, validate, plan and
load_results, each in a fresh child process like an Airflow task (the child of
``bench/bench_scale.py``: each step's wall time and peak RSS are its own), and load_results once
more, as a retried task would. Each step runs ``--repeat`` times on each warehouse, the empty
history's and the size's runs taking turns so that both see the machine as it is at that moment
(a busy spell would otherwise land on one side of a ratio only), keeping each side's shortest; a
first load is repeated after removing what the previous one recorded. On PostgreSQL it also
times the two audit queries the README shows, and with ``--explain`` writes the ``EXPLAIN
ANALYZE`` plan of the extract query.

Prints, per warehouse and size, each step's time and its ratio to the empty history's, and the
ratio of the whole night (the four steps together). Exits 1 when a step's ratio exceeds
``--max-ratio``, a step peaks at ``--max-rss-mib`` or more, the retried load takes over 1.1x the
first, or the night's run does not consider exactly the night's changes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STEPS = ("extract", "validate", "plan", "load_results")
AUDIT_QUERIES = {
    "runs view, last 14": "SELECT * FROM hubspot_consent_sync_runs "
    "ORDER BY interval_end DESC LIMIT 14",
    "per-email query": "SELECT dag_run_id, change_id, subscription_id, status_state, changed_at, "
    "outcome, error_category, error_message, set_status_success_reason, sent_at "
    "FROM hubspot_consent_sync_results WHERE lower(trim(both ' ' from email)) = 'c4242@example.com' "
    "ORDER BY changed_at, recorded_at",
}


def log(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def prepare(kind: str, size: int, night, workdir: Path) -> tuple[dict, float]:
    """A fresh warehouse with ``size`` history rows and the night; its fields and build time."""
    from bench_scale import connection_fields, open_warehouse

    from dev import history_data, local_postgres
    from include.consent_sync.contract import (
        KEY_STATE_TABLE,
        LEDGER_TABLE,
        RUN_RECORDS_TABLE,
        SOURCE_TABLE,
    )
    from include.consent_sync.warehouse import SOURCE_INDEXES

    if kind == "duckdb":
        target = str(workdir / f"history-{size}.duckdb")
    else:
        target = f"consent_bench_{uuid.uuid4().hex[:12]}"
        local_postgres.create_database(target)
    fields = connection_fields(kind, target)
    started = time.perf_counter()
    with open_warehouse(fields) as warehouse:
        history_data.build(warehouse, size, night, log=log)
        if kind == "postgres":
            for statement in SOURCE_INDEXES:
                warehouse.execute(statement)
            # What autovacuum leaves after the loads (it is off on the bench's server).
            for table in (SOURCE_TABLE, LEDGER_TABLE, KEY_STATE_TABLE, RUN_RECORDS_TABLE):
                warehouse.execute(f"VACUUM ANALYZE {table}")
        else:
            warehouse.execute("CHECKPOINT")
    return fields, time.perf_counter() - started


def build_in_child(kind: str, size: int, night, workdir: Path) -> tuple[dict, float]:
    """:func:`prepare` in a child process. A child's ``ru_maxrss`` starts from its parent's
    high-water mark (Linux carries it over fork and exec), so the parent must never hold the
    history itself, or every step would seem to peak at what the build did."""
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--build",
            json.dumps([kind, size, [night.new, night.late, night.failed], str(workdir)]),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if child.returncode:
        raise SystemExit(f"building the {kind} warehouse with {size:,} history rows failed")
    fields, built = json.loads(child.stdout.strip().splitlines()[-1])
    return fields, built


def forget_the_night(fields: dict) -> None:
    """Remove the night's run from the ledger and its record, as before its first load (the
    night sends nothing, so the key state holds nothing of it)."""
    from bench_scale import RUN_ID, open_warehouse

    from include.consent_sync.contract import LEDGER_TABLE, RUN_RECORDS_TABLE

    with open_warehouse(fields) as warehouse:
        for table in (LEDGER_TABLE, RUN_RECORDS_TABLE):
            warehouse.execute(f"DELETE FROM {table} WHERE dag_run_id = :run", {"run": RUN_ID})


def audit_times(fields: dict) -> dict[str, float]:
    from bench_scale import open_warehouse

    times = {}
    with open_warehouse(fields) as warehouse:
        for name, sql in AUDIT_QUERIES.items():
            started = time.perf_counter()
            warehouse.query_arrow(sql)
            times[name] = time.perf_counter() - started
    return times


def explain(fields: dict) -> str:
    """The PostgreSQL plans of the night's extract statements, run for real, in order."""
    from bench_scale import INTERVAL_END, INTERVAL_START, RUN_ID, open_warehouse

    from include.consent_sync.pipeline import Window, candidate_params
    from include.consent_sync.warehouse import load_sql, split_statements

    params = candidate_params(Window(RUN_ID, INTERVAL_START, INTERVAL_END))
    statements = [*split_statements(load_sql("considered_changes")), load_sql("candidates")]
    plans = []
    with open_warehouse(fields) as warehouse:
        try:
            for statement in statements:
                if statement.startswith("ANALYZE"):  # has no plan
                    warehouse.execute(statement)
                    plans.append(statement)
                    continue
                plan = warehouse.query_arrow("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                plans.append("\n".join(plan.column(0).to_pylist()))
        finally:
            warehouse._drop_considered()
    return "\n\n".join(plans)


def bench(kind: str, size: int, night, args) -> dict:
    """``size``'s figures and those of the same night on an empty history, measured in turns."""
    from bench_scale import drop, run_step_in_child

    sides = {}
    try:
        for name, rows in (("empty", 0), ("history", size)):
            workdir = Path(tempfile.mkdtemp(prefix=f"consent_history_{kind}_"))
            print(f"\n[{kind} {rows:,}] building", flush=True)
            fields, built = build_in_child(kind, rows, night, workdir)
            print(f"[{kind} {rows:,}] built in {built:.0f} s", flush=True)
            sides[name] = {"rows": rows, "fields": fields, "workdir": workdir, "built": built}
        figures = {name: {} for name in sides}
        for step in (*STEPS, "load_results retry"):
            runs = {name: [] for name in sides}
            for attempt in range(args.repeat):
                for name, side in sides.items():
                    if step == "load_results" and attempt:
                        forget_the_night(side["fields"])
                    runs[name].append(
                        run_step_in_child(
                            step.split()[0],
                            side["fields"],
                            side["workdir"] / "staging",
                            label=f"step {step}",
                        )
                    )
            for name, side_runs in runs.items():
                result = min(side_runs, key=lambda r: r["step_s"])
                result["peak_rss_mib"] = max(r["peak_rss_mib"] for r in side_runs)
                figures[name][step] = result
                print(
                    f"[{kind} {sides[name]['rows']:,}] {step:<18} step {result['step_s']:6.2f} s "
                    f"| process {result['process_s']:5.1f} s | peak RSS "
                    f"{result['peak_rss_mib']:5.0f} MiB | {json.dumps(result['facts'])}",
                    flush=True,
                )
        history = sides["history"]["fields"]
        audits = audit_times(history) if kind == "postgres" else {}
        for name, seconds in audits.items():
            print(f"[{kind} {size:,}] audit: {name:<18} {seconds:6.3f} s")
        if args.explain and kind == "postgres" and size == max(args.sizes):
            Path(args.explain).write_text(explain(history) + "\n")
            print(f"[{kind} {size:,}] extract plan written to {args.explain}")
    finally:
        for side in sides.values():
            if args.keep:
                print(f"[{kind} {side['rows']:,}] kept: {side['fields']}")
            else:
                drop(kind, side["fields"])
                shutil.rmtree(side["workdir"], ignore_errors=True)
    return {
        "kind": kind,
        "size": size,
        "build_s": sides["history"]["built"],
        "steps": figures["history"],
        "empty_steps": figures["empty"],
        "audits": audits,
    }


def check(results: list[dict], night, args) -> list[str]:
    from dev.history_data import expected_candidates

    failures = []
    expected = len(expected_candidates(night))
    print(
        "\nsummary (step seconds; ratio to the same night on an empty history, measured in turns)"
    )
    for result in results:
        kind, size, steps, empty = (
            result["kind"],
            result["size"],
            result["steps"],
            result["empty_steps"],
        )
        # A failure names the warehouse it was measured on.
        sides = ((f"{kind} {size:,}", steps), (f"{kind} 0 (beside {size:,})", empty))
        cells = []
        for step in (*STEPS, "load_results retry"):
            ratio = steps[step]["step_s"] / max(empty[step]["step_s"], 1e-9)
            cells.append(
                f"{step} {steps[step]['step_s']:.2f} s / {empty[step]['step_s']:.2f} s "
                f"({ratio:.2f}x)"
            )
            if step in STEPS and ratio > args.max_ratio:
                failures.append(f"{kind} {size:,}: {step} took {ratio:.2f}x the empty history's")
            for label, figures in sides:
                if figures[step]["peak_rss_mib"] >= args.max_rss_mib:
                    failures.append(
                        f"{label}: {step} peaked at {figures[step]['peak_rss_mib']:.0f} MiB"
                    )
        night_s = sum(steps[step]["step_s"] for step in STEPS)
        empty_night_s = sum(empty[step]["step_s"] for step in STEPS)
        cells.append(
            f"night {night_s:.2f} s / {empty_night_s:.2f} s ({night_s / empty_night_s:.2f}x)"
        )
        print(f"  {kind:<8} {size:>11,}: " + " | ".join(cells))
        for label, figures in sides:
            if figures["extract"]["facts"]["candidates"] != expected:
                failures.append(
                    f"{label}: {figures['extract']['facts']['candidates']:,} candidates, "
                    f"expected {expected:,}"
                )
            # A second of load at the empty history varies by a tenth between identical runs.
            if figures["load_results retry"]["step_s"] > 1.1 * figures["load_results"]["step_s"]:
                failures.append(f"{label}: the retried load took over 1.1x the first")
        for name, seconds in result["audits"].items():
            if seconds >= 2:
                failures.append(f"{kind} {size:,}: audit {name} took {seconds:.1f} s")
    return failures


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from dev.history_data import Night

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", choices=("duckdb", "postgres", "both"), default="both")
    parser.add_argument(
        "--sizes",
        type=lambda text: sorted({int(s) for s in text.split(",")} - {0}),
        default=[1_000_000, 3_000_000, 10_000_000],
        help="history sizes, comma-separated (each is measured beside an empty history)",
    )
    parser.add_argument("--new", type=int, default=30_000)
    parser.add_argument("--late", type=int, default=1_000)
    parser.add_argument("--failed", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2, help="runs per step; the shortest counts")
    parser.add_argument("--max-ratio", type=float, default=2.0)
    parser.add_argument("--max-rss-mib", type=float, default=2048.0)
    parser.add_argument("--explain", help="write the PostgreSQL extract plan (largest size) here")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses")
    parser.add_argument("--build", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.sizes:
        parser.error("--sizes needs at least one history size above 0")
    if args.build:
        kind, size, counts, workdir = json.loads(args.build)
        fields, built = prepare(kind, size, Night(*counts), Path(workdir))
        print(json.dumps([fields, built]))
        return 0
    night = Night(args.new, args.late, args.failed)
    kinds = ("duckdb", "postgres") if args.warehouse == "both" else (args.warehouse,)
    results = [bench(kind, size, night, args) for kind in kinds for size in args.sizes]
    failures = check(results, night, args)
    if failures:
        print("\nFAIL: " + "; ".join(failures))
        return 1
    print(
        f"\nOK: every step within {args.max_ratio:g}x the empty history, under "
        f"{args.max_rss_mib:g} MiB, retries no slower, audits under 2 s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
