"""A warehouse with history: months of nightly changes already in the ledger, then one night.

Built by bulk generation (numpy/Arrow, a million rows a chunk), for ``bench/bench_history.py`` and,
a few thousand rows small, for the tests. The history is ``history_rows`` changes spread over
nights of ``per_night`` (:data:`CHANGES_PER_NIGHT`) before the night, on a shared pool of contacts (so keys
change again and again), each with one ledger row of its night's run, outcomes mixed like real
nights (mostly SYNCED, some superseded, a few rejected, invalid or skipped for HubSpot's newer
opt-out). The night (the day before :data:`NIGHT_END`) brings ``new`` changes on the same
contacts (1% with a malformed email), ``late`` rows that arrived late (changed 2 to 20 days
earlier, never seen by a run), and ``failed`` changes of the last five nights whose run recorded
them FAILED. The night's run must consider exactly those: see :func:`expected_candidates`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from include.consent_sync.contract import LEDGER_TABLE, SOURCE_TABLE

NIGHT_END = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
CHANGES_PER_NIGHT = 27_000
CHUNK_ROWS = 1_000_000
# The contacts every night's changes are drawn from, whatever the history's size: the night is
# the same night (as many keys changing twice in it) on an empty history and on ten million rows.
CONTACTS = 1_000_000
SUBSCRIPTIONS = (1001, 1002, 1003)
# A history change's final outcome in its night's run, and how often.
SECONDARY_INDEXES = tuple(f"{LEDGER_TABLE}_{name}" for name in ("change_id", "key", "finished"))
HISTORY_OUTCOMES = {
    "SYNCED": 0.88,
    "SKIPPED_SUPERSEDED": 0.08,
    "REJECTED": 0.015,
    "INVALID": 0.01,
    "SKIPPED_HUBSPOT_NEWER": 0.015,
}


def run_id(night_end: datetime) -> str:
    """The scheduled run of the night ending at ``night_end`` (Airflow's run id)."""
    return f"scheduled__{(night_end - timedelta(days=1)).isoformat()}"


@dataclass(frozen=True)
class Night:
    new: int = 30_000
    late: int = 1_000
    failed: int = 500


def expected_candidates(night: Night) -> set[str]:
    """The change ids the night's run considers: its new rows, the late ones, the FAILED ones."""
    return (
        {f"n{i:09d}" for i in range(night.new)}
        | {f"l{i:09d}" for i in range(night.late)}
        | {f"f{i:09d}" for i in range(night.failed)}
    )


def build(
    warehouse,
    history_rows: int,
    night: Night = Night(),
    *,
    per_night: int = CHANGES_PER_NIGHT,
    contacts: int = CONTACTS,
    seed: int = 11,
    log: Callable[[str], None] = lambda message: None,
) -> None:
    """Fill an empty warehouse (no consent_changes yet) with the history and the night."""
    import numpy as np

    from dev.demo_data import create_source_table

    rng = np.random.default_rng(seed)
    create_source_table(warehouse)
    warehouse.ensure_ledger()
    # Bulk loads go faster without the ledger's secondary indexes; ensure_ledger rebuilds them.
    for index in SECONDARY_INDEXES:
        warehouse.execute(f"DROP INDEX IF EXISTS {index}")

    nights = math.ceil(history_rows / per_night)
    done = 0
    while done < history_rows:
        count = min(CHUNK_ROWS, history_rows - done)
        index = np.arange(done, done + count)
        # Row i belongs to history night i // rows_a_night (0 = the oldest).
        rows_a_night = math.ceil(history_rows / nights)
        night_end = _night_ends(nights - index // rows_a_night)
        changes = _changes(rng, "h", index, contacts, night_end)
        outcomes = np.array(list(HISTORY_OUTCOMES))[
            rng.choice(len(HISTORY_OUTCOMES), count, p=list(HISTORY_OUTCOMES.values()))
        ]
        _insert(warehouse, changes, _ledger(rng, changes, night_end, outcomes))
        done += count
        log(f"history: {done:,}/{history_rows:,} changes and ledger rows")

    failed_index = np.arange(night.failed)
    failed_end = _night_ends(1 + failed_index % 5)
    failed = _changes(rng, "f", failed_index, contacts, failed_end)
    late_index = np.arange(night.late)
    late = _changes(
        rng, "l", late_index, contacts, _night_ends(2 + rng.integers(0, 19, night.late))
    )
    new = _changes(rng, "n", np.arange(night.new), contacts, _night_ends(np.zeros(night.new)))
    _insert(warehouse, failed, _ledger(rng, failed, failed_end, np.full(night.failed, "FAILED")))
    _insert(warehouse, late, None)
    _insert(warehouse, _with_malformed_emails(new), None)
    log(f"night: {night.new:,} new, {night.late:,} late, {night.failed:,} FAILED earlier")
    warehouse.ensure_ledger()
    # The state tables, as the loads of those runs would have left them.
    warehouse.refresh_run_state(None)


def _night_ends(nights_before):
    """NIGHT_END minus ``nights_before`` days (numpy, microseconds, UTC wall clock)."""
    import numpy as np

    end = np.datetime64(NIGHT_END.replace(tzinfo=None), "us")
    return end - np.asarray(nights_before, dtype="int64").astype("timedelta64[D]")


def _changes(rng, prefix: str, index, contacts: int, night_end):
    """consent_changes rows: one per ``index``, each changed in the day before its night_end."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from include.consent_sync.contract import LEGAL_BASES, source_schema

    n = len(index)
    contact = pa.array(rng.integers(0, contacts, n).astype(str))
    email = pc.binary_join_element_wise("c", contact, "@example.com", "")
    # Some rows spell the address differently: the key is the normalised email.
    shouted = pc.binary_join_element_wise("  ", pc.utf8_upper(email), " ", "")
    email = pc.if_else(pa.array(rng.random(n) < 0.04), shouted, email)
    with_basis = pa.array(rng.random(n) < 0.7)
    schema = source_schema()
    changed_at = night_end - rng.integers(1, 86_400, n).astype("timedelta64[s]")
    return pa.table(
        {
            "change_id": pc.binary_join_element_wise(
                prefix, pa.array(np.char.zfill(np.asarray(index).astype(str), 9)), ""
            ),
            "email": email,
            "subscription_id": pa.array(np.array(SUBSCRIPTIONS)[rng.integers(0, 3, n)]),
            "channel": pa.array(np.full(n, "EMAIL")),
            "status_state": pa.array(
                np.array(["SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED"])[
                    rng.choice(3, n, p=[0.6, 0.3, 0.1])
                ]
            ),
            "legal_basis": pc.if_else(
                with_basis,
                pa.array(np.array(LEGAL_BASES)[rng.integers(0, len(LEGAL_BASES), n)]),
                pa.nulls(n, pa.string()),
            ),
            "legal_basis_explanation": pc.if_else(
                with_basis, "Captured by web form v3", pa.nulls(n, pa.string())
            ),
            "changed_at": pa.array(
                changed_at.astype("datetime64[us]"), schema.field("changed_at").type
            ),
        },
        schema=schema,
    )


def _with_malformed_emails(changes):
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    bad = pa.array(np.arange(changes.num_rows) % 100 == 7)
    column = changes.schema.get_field_index("email")
    return changes.set_column(column, "email", pc.if_else(bad, "not-an-email", changes["email"]))


def _ledger(rng, changes, night_end, outcomes):
    """One ledger row per change, recorded by the run of the night ending at ``night_end``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from include.consent_sync.contract import ledger_schema

    schema = ledger_schema()
    n = changes.num_rows
    stamp = schema.field("recorded_at").type
    start = (night_end - np.timedelta64(1, "D")).astype("datetime64[us]")
    run_ids = pc.binary_join_element_wise(
        "scheduled__", pa.array(np.datetime_as_string(start, unit="s")), "+00:00", ""
    )
    sent = night_end + rng.integers(60, 3_600, n).astype("timedelta64[s]")
    was_sent = pa.array(np.isin(outcomes, ["SYNCED", "REJECTED", "FAILED"]))
    synced = pa.array(outcomes == "SYNCED")
    columns = {
        "dag_run_id": run_ids,
        "interval_start": pa.array(start, stamp),
        "interval_end": pa.array(night_end.astype("datetime64[us]"), stamp),
        "outcome": pa.array(outcomes),
        "http_status": pc.if_else(synced, pa.scalar(207, pa.int32()), pa.nulls(n, pa.int32())),
        "set_status_success_reason": pc.if_else(
            synced, "SUBSCRIPTION_STATUS_UPDATED", pa.nulls(n, pa.string())
        ),
        "attempts": pa.array(np.ones(n, dtype="int32")),
        "sent_at": pc.if_else(
            was_sent, pa.array(sent.astype("datetime64[us]"), stamp), pa.nulls(n, stamp)
        ),
        "recorded_at": pa.array(
            (night_end + np.timedelta64(2, "h")).astype("datetime64[us]"), stamp
        ),
    }
    return pa.table(
        {
            f.name: changes[f.name]
            if f.name in changes.column_names
            else columns.get(f.name, pa.nulls(n, f.type))
            for f in schema
        },
        schema=schema,
    )


def _insert(warehouse, changes, ledger) -> None:
    warehouse.insert_arrow(SOURCE_TABLE, changes)
    if ledger is not None:
        warehouse.insert_arrow(LEDGER_TABLE, ledger)
