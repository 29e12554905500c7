"""The reconcile DAG's steps, one function per task, none needing Airflow.

select_keys stages the keys to check with what the warehouse says of each and cuts their
contacts into read batches; the mapped read tasks stage HubSpot's answers (reads.py); compare
classifies every key and records one row per key in hubspot_consent_reconciliation.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from include.consent_reconcile import store
from include.consent_reconcile.classify import classify
from include.consent_reconcile.contract import (
    READ_FAILED,
    RECONCILIATION_TABLE,
    REPAIRABLE,
    Classification,
    read_schema,
    reconciliation_schema,
)
from include.consent_sync import staging
from include.consent_sync.email_key import key_email
from include.consent_sync.planning import MAX_BATCHES, even_ranges
from include.consent_sync.warehouse import Warehouse

log = logging.getLogger(__name__)

KEYS = "keys.parquet"
CONTACTS = "contacts"
READS = "reads"
# Most contacts per mapped read task: 125 chunks of 100, 250 requests, about a minute at a
# quarter of 190 requests per 10 s. Few, long tasks keep Airflow's per-task start-up and the
# pacer's cautious first seconds out of the rate budget.
READ_BATCH_CONTACTS = 12_500


def read_batch_ranges(contacts: int, parallel_tasks: int) -> list[tuple[int, int]]:
    """Contact ranges of the read tasks: a multiple of ``parallel_tasks`` of near-equal size, so
    the pool's slots finish together instead of a last task reading alone at its share."""
    if contacts <= 0:
        return []
    rounds = max(1, math.ceil(contacts / (READ_BATCH_CONTACTS * parallel_tasks)))
    count = min(parallel_tasks * rounds, MAX_BATCHES, contacts)
    return even_ranges(contacts, count)


def select_keys(
    warehouse: Warehouse,
    folder,
    *,
    sync_run_ids: list[str] | None,
    emails: tuple[str, ...] = (),
    parallel_tasks: int = 1,
) -> list[dict[str, Any]]:
    """Stage the keys to check and return the read batches' descriptors.

    :param sync_run_ids: check the keys these sync runs sent; None: every key ever sent.
    :param emails: only these contacts (empty: all).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    warehouse.ensure_ledger()
    store.ensure_reconciliation(warehouse)
    keys = store.keys_to_check(warehouse, sync_run_ids)
    if emails:
        wanted = pa.array(sorted({key_email(e) for e in emails}), pa.string())
        keys = keys.filter(pc.is_in(keys["email"], value_set=wanted))
    table = store.intents(warehouse, keys)
    staging.write_table(table, folder / KEYS)
    contacts = pc.unique(table["email"]).sort()
    batches = []
    for index, (start, stop) in enumerate(read_batch_ranges(len(contacts), parallel_tasks)):
        contacts_path = folder / CONTACTS / f"batch-{index:05d}.parquet"
        staging.write_table(pa.table({"email": contacts.slice(start, stop - start)}), contacts_path)
        batches.append(
            {
                "index": index,
                "contacts": stop - start,
                "contacts_path": str(contacts_path),
                "results_path": str(folder / READS / f"batch-{index:05d}"),
            }
        )
    log.info(
        "select_keys: %d keys of %d contacts (%s%s) in %d read batches",
        table.num_rows,
        len(contacts),
        f"sent by sync runs {', '.join(sync_run_ids)}" if sync_run_ids else "every key ever sent",
        f", restricted to {len(emails)} contacts" if emails else "",
        len(batches),
    )
    return batches


def staged_reads(folder) -> dict[str, dict[str, Any]]:
    """Every contact's staged read; a usable answer wins over a FAILED one (a retry's)."""
    root = folder / READS
    best: dict[str, dict[str, Any]] = {}
    for batch in sorted(root.iterdir()) if root.exists() else []:
        for row in staging.ResultJournal(batch, read_schema()).read().to_pylist():
            if row["email"] not in best or best[row["email"]]["answer"] == READ_FAILED:
                best[row["email"]] = row
    return best


@dataclass(frozen=True)
class Verdict:
    """A compare's result: rows per classification, and how many keys a repair would re-send."""

    counts: dict[str, int]
    keys: int

    @property
    def repairable(self) -> int:
        return sum(self.counts.get(c, 0) for c in REPAIRABLE)


def compare(
    warehouse: Warehouse, folder, *, reconcile_run_id: str, checked_at: datetime
) -> Verdict:
    """Classify every staged key against its staged read; record the run's rows (idempotent)."""
    import pyarrow as pa

    keys = staging.read_table(folder / KEYS)
    reads = staged_reads(folder)
    rows = []
    for key in keys.to_pylist():
        classification, view = classify(key, reads.get(key["email"]))
        rows.append(
            {
                "reconcile_run_id": reconcile_run_id,
                **{k: key[k] for k in ("email", "subscription_id", "channel")},
                **{k: key[k] for k in ("intended_state", "intended_change_id")},
                "synced_state": key["synced_state"],
                "synced_at": key["synced_at"],
                "hubspot_state": view.state,
                "hubspot_timestamp": view.timestamp,
                "hubspot_source": view.source,
                "classification": str(classification),
                "checked_at": checked_at,
            }
        )
    store.ensure_reconciliation(warehouse)
    store.replace_run(
        warehouse, reconcile_run_id, pa.Table.from_pylist(rows, schema=reconciliation_schema())
    )
    counts = Counter(row["classification"] for row in rows)
    log.info(
        "compare: %d keys recorded in %s for run %s: %s",
        len(rows),
        RECONCILIATION_TABLE,
        reconcile_run_id,
        ", ".join(f"{c} {counts.get(c, 0)}" for c in Classification),
    )
    return Verdict(dict(counts), len(rows))


def alert_text(verdict: Verdict, *, max_share: float, max_count: int) -> str | None:
    """The alert to send when DRIFT plus MISSING exceed ``max_count`` keys or ``max_share``."""
    differing = verdict.repairable
    share = differing / verdict.keys if verdict.keys else 0.0
    if differing <= max_count and share <= max_share:
        return None
    parts = ", ".join(f"{c} {verdict.counts.get(c, 0)}" for c in REPAIRABLE)
    return (
        f"HubSpot differs from the warehouse for {differing} of {verdict.keys} keys checked "
        f"({share:.1%}: {parts}; alert above {max_count} keys or {max_share:.1%}). "
        "See the view hubspot_consent_drift; trigger hubspot_consent_reconcile with "
        '{"repair": true} to send the intent again.'
    )
