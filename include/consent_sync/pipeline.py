"""The pipeline's steps, one function per DAG task.

Each step reads and writes the run's staging folder (see :mod:`staging`) and returns only small
facts for XCom. None of them needs Airflow: the DAG passes in the warehouse, the folder and the
run's parameters, so every step is unit-tested on its own.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from include.consent_sync import staging
from include.consent_sync.contract import LEDGER_TABLE, SOURCE_TABLE, source_schema
from include.consent_sync.email_key import key_email
from include.consent_sync.planning import PushCapacity, plan_batches, plan_changes
from include.consent_sync.warehouse import Warehouse, load_sql

log = logging.getLogger(__name__)


class TooManyRows(ValueError):
    """The max_rows guard: more changes planned than a run may send."""


@dataclass(frozen=True)
class Window:
    """Which changes a run considers (see candidates.sql)."""

    dag_run_id: str
    interval_start: datetime
    interval_end: datetime
    lookback_days: int = 30
    resync: bool = False
    emails: tuple[str, ...] = ()
    # A repair: exactly the DRIFT and MISSING keys of this reconcile run (repair_candidates.sql).
    repair_run_id: str | None = None


def candidate_schema():
    import pyarrow as pa

    return pa.schema(
        list(source_schema())
        + [
            pa.field("key_latest_change_id", pa.string()),
            pa.field("failed_runs", pa.int64()),
            pa.field("key_synced_changed_at", pa.timestamp("us", tz="UTC")),
            pa.field("key_sent_unsubscribed_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def candidate_params(window: Window) -> dict[str, Any]:
    """candidates.sql's parameters for ``window`` (the emails travel as a bound array)."""
    return {
        "dag_run_id": window.dag_run_id,
        "interval_start": window.interval_start,
        "interval_end": window.interval_end,
        "lookback_start": window.interval_end - timedelta(days=window.lookback_days),
        "resync": window.resync,
        "all_contacts": not window.emails,
        "emails": sorted({key_email(e) for e in window.emails}),
    }


def prepare_ledger(warehouse: Warehouse) -> None:
    """Create the ledger, its state tables, audit views and indexes, or upgrade an older ledger.

    A step of its own, before extract: upgrading a ledger left by an earlier version fills the
    state tables from every earlier row and can take minutes; extract only looks the ledger up.
    """
    started = time.monotonic()
    warehouse.ensure_ledger()
    log.info(
        "prepare_ledger: %s, its state tables, views and indexes are ready (%.1f s)",
        LEDGER_TABLE,
        time.monotonic() - started,
    )


def extract(warehouse: Warehouse, folder, window: Window) -> dict[str, Any]:
    """Check the source schema, select the run's candidates and stage them as Parquet.

    The ledger it looks up is prepare_ledger's. A new try of the run starts from its candidates
    again: what an earlier try derived is removed first, its pushed results kept (a row is never
    sent twice).
    """
    from include.consent_sync.validation import check_source_schema

    staging.clear_derived(folder)
    check_source_schema(warehouse.source_columns(SOURCE_TABLE))
    missing = warehouse.missing_source_indexes()
    if missing:
        log.warning(
            "extract: %s has no index for the night's lookups, so every night reads the whole "
            "table; to keep a night's cost to its own changes, run: %s",
            SOURCE_TABLE,
            " ".join(missing),
        )
    if window.repair_run_id:
        return _extract_repair(warehouse, folder, window)
    table = warehouse.candidates(candidate_params(window)).cast(candidate_schema())
    staging.write_table(table, folder / staging.CANDIDATES)
    log.info(
        "extract: %d candidate changes (changed before %s, lookback %d days%s%s)",
        table.num_rows,
        window.interval_end.isoformat(),
        window.lookback_days,
        ", resync" if window.resync else "",
        f", restricted to {len(window.emails)} contacts" if window.emails else "",
    )
    return {"candidates": table.num_rows}


def _extract_repair(warehouse: Warehouse, folder, window: Window) -> dict[str, Any]:
    """A repair's candidates: the latest change of each key the reconcile run found DRIFT or
    MISSING, sent again even though SYNCED before (the run's emails, interval and lookback do
    not apply: the reconcile chose the keys)."""
    params = {"dag_run_id": window.dag_run_id, "repair_run_id": window.repair_run_id}
    table = warehouse.query_arrow(load_sql("repair_candidates"), params).cast(candidate_schema())
    staging.write_table(table, folder / staging.CANDIDATES)
    log.info(
        "extract: %d changes to send again, repairing the DRIFT and MISSING keys of reconcile "
        "run %s",
        table.num_rows,
        window.repair_run_id,
    )
    return {"candidates": table.num_rows}


def validate(folder, *, now: datetime, max_invalid_share: float) -> dict[str, Any]:
    """Split candidates into valid and INVALID rows; stop the run if too many are invalid.

    Both halves are staged before the gate, so a stopped run still records every row.
    """
    from include.consent_sync.validation import check_invalid_share, summarise, validate_changes

    candidates = staging.read_table(folder / staging.CANDIDATES)
    result = validate_changes(candidates.select(source_schema().names), now=now)
    staging.write_table(result.invalid, folder / staging.INVALID)
    staging.write_table(result.valid, folder / staging.VALID)
    report_path = folder / staging.VALIDATION_REPORT
    with report_path.open("w") as handle:
        json.dump(result.report, handle, indent=2, default=str)
    log.info("validate: %s (report: %s)", summarise(result.report), report_path)
    check_invalid_share(result.report, max_invalid_share)
    return {"valid": result.valid.num_rows, "invalid": result.invalid.num_rows}


def plan(
    folder, *, dry_run: bool, max_rows: int, capacity: PushCapacity, disarmed: bool = False
) -> list[dict[str, Any]]:
    """Decide every valid change, stage skips, and cut the sends into batch files.

    Batches are sized by how fast the push tasks can send (``capacity``). Returns the batch
    descriptors the push tasks are mapped over (none on a dry run). ``disarmed``: the dry run
    is the live switch's, and its DRY_RUN rows say so.
    """
    import pyarrow.compute as pc

    valid = staging.read_table(folder / staging.VALID)
    context = staging.read_table(folder / staging.CANDIDATES).select(
        [
            "change_id",
            "key_latest_change_id",
            "failed_runs",
            "key_synced_changed_at",
            "key_sent_unsubscribed_at",
        ]
    )
    context = context.filter(pc.is_in(context["change_id"], valid["change_id"]))
    valid = valid.join(context, "change_id", join_type="left outer")
    decided = plan_changes(valid, dry_run=dry_run, disarmed=disarmed)
    to_send = decided.to_send
    if to_send.num_rows > max_rows:
        raise TooManyRows(
            f"plan: {to_send.num_rows:,} changes to send exceed max_rows={max_rows:,}; nothing was "
            "sent. If this volume is expected, trigger the run again with a larger DAG param "
            "max_rows (or use dry_run to inspect the plan first)."
        )
    staging.write_table(decided.decided, folder / staging.PLANNED)
    to_send = to_send.sort_by([("changed_at", "ascending"), ("change_id", "ascending")])
    batches = []
    for index, (start, stop) in enumerate(plan_batches(to_send.num_rows, capacity)):
        rows_path = folder / staging.BATCHES / f"batch-{index:05d}.parquet"
        staging.write_table(to_send.slice(start, stop - start), rows_path)
        batches.append(
            {
                "index": index,
                "rows": stop - start,
                "rows_path": str(rows_path),
                "results_path": str(folder / staging.RESULTS / f"batch-{index:05d}"),
                "daily_limit_marker": str(folder / staging.DAILY_LIMIT),
            }
        )
    skipped = Counter(decided.decided["outcome"].to_pylist())
    largest = max((b["rows"] for b in batches), default=0)
    log.info(
        "plan: %d changes to send in %d batches of up to %d rows (about %.0f s each at a push "
        "task's share of %d requests per 10 s, %d rows per request); decided without sending: %s",
        to_send.num_rows,
        len(batches),
        largest,
        largest / capacity.task_rows_per_s,
        capacity.rate_limit_per_10s,
        capacity.rows_per_request,
        ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "none",
    )
    return batches


def load_results(warehouse: Warehouse, folder, facts) -> dict[str, int]:
    """Write one ledger row per considered change, whatever stage the run reached.

    :param facts: a :class:`include.consent_sync.ledger.RunFacts`.
    """
    import pyarrow as pa

    from include.consent_sync.contract import result_schema
    from include.consent_sync.ledger import assemble_ledger

    def staged(name):
        path = folder / name
        return staging.read_table(path) if path.exists() else None

    results_root = folder / staging.RESULTS
    pushed = [
        staging.ResultJournal(batch, result_schema()).read()
        for batch in (sorted(results_root.iterdir()) if results_root.exists() else [])
    ]
    rows = assemble_ledger(
        candidates=staged(staging.CANDIDATES),
        valid=staged(staging.VALID),
        invalid=staged(staging.INVALID),
        decided=staging.read_table(folder / staging.PLANNED, result_schema()),
        pushed=pa.concat_tables(pushed) if pushed else result_schema().empty_table(),
        facts=facts,
    )
    warehouse.ensure_ledger()
    # The run's rows as recorded: a re-run keeps the final rows of its earlier attempts.
    recorded = warehouse.replace_run_rows(facts.dag_run_id, rows)
    log.info(
        "load_results: %d ledger rows for run %s in %s",
        len(recorded),
        facts.dag_run_id,
        LEDGER_TABLE,
    )
    return dict(Counter(recorded))
