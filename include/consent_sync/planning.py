"""Planning: which valid changes are sent, which are skipped, and how the sends are cut into batches."""

from __future__ import annotations

import math
from dataclasses import dataclass

from include.consent_sync.contract import Outcome
from include.consent_sync.live_switch import DISARMED

# How long one push task should send while every pool slot is busy: Airflow's start-up of a task
# (a few seconds) stays a small share of it, and a retry (which resumes, but starts up again) and
# the run's tail (the last batches) stay short.
TARGET_TASK_S = 120.0
# Far below [core] max_map_length (1024); batches grow instead once a run reaches this many.
MAX_BATCHES = 256


@dataclass(frozen=True)
class PushCapacity:
    """How fast the push tasks can send, from the HubSpot connection and the pool.

    :param rate_limit_per_10s: HubSpot's limit for the app, shared by every push task.
    :param rows_per_request: 1 for single writes, ``batch_size`` for batch writes.
    :param parallel_tasks: how many push tasks run at once (the pool's slots).
    """

    rate_limit_per_10s: int
    rows_per_request: int = 1
    parallel_tasks: int = 1

    def __post_init__(self) -> None:
        for name in ("rate_limit_per_10s", "rows_per_request", "parallel_tasks"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"push capacity: {name} must be at least 1, got {getattr(self, name)}"
                )

    @property
    def task_rows_per_s(self) -> float:
        """Rows per second of one task at its share of the limit, every slot busy."""
        return self.rate_limit_per_10s / 10 * self.rows_per_request / self.parallel_tasks


def even_ranges(total: int, count: int) -> list[tuple[int, int]]:
    """``total`` items cut into ``count`` contiguous ``(start, stop)`` ranges of near-equal size."""
    size, extra = divmod(total, count)
    ranges, start = [], 0
    for index in range(count):
        stop = start + size + (1 if index < extra else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


def plan_batches(
    rows: int,
    capacity: PushCapacity,
    target_task_s: float = TARGET_TASK_S,
    max_batches: int = MAX_BATCHES,
) -> list[tuple[int, int]]:
    """Cut ``rows`` into contiguous ``(start, stop)`` ranges of near-equal size.

    Each batch takes about ``target_task_s`` to send at a task's share of the limit (so batch
    writes, 100 rows a request, get batches 100 times larger than single writes), at least one
    batch per pool slot when there are that many rows, and never more than ``max_batches``.
    """
    if rows <= 0:
        return []
    target_rows = max(1, math.floor(capacity.task_rows_per_s * target_task_s))
    count = max(math.ceil(rows / target_rows), min(capacity.parallel_tasks, rows))
    count = min(count, max_batches, rows)
    return even_ranges(rows, count)


@dataclass
class Plan:
    """The plan of one run: rows to send, and result rows decided without sending."""

    to_send: object  # pyarrow.Table, source columns and key_sent_unsubscribed_at (the guard's)
    decided: object  # pyarrow.Table, result schema


def plan_changes(valid, *, dry_run: bool, disarmed: bool = False) -> Plan:
    """Decide each valid candidate: send it, or skip it because a newer change exists.

    ``valid`` holds validated candidates (normalised emails) with the warehouse context columns
    ``key_latest_change_id`` (latest change of the key in the whole table, valid or not)
    ``key_synced_changed_at`` (newest change of the key HubSpot accepted from this pipeline) and
    ``key_sent_unsubscribed_at`` (passed on to the resubscribe guard with the rows to send).
    Only the latest change of a key is sent, and never one older than what HubSpot already got,
    so a backfill of an old interval cannot write an older consent over a newer one.
    ``disarmed`` marks the DRY_RUN rows of a run the live switch kept from sending.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from include.consent_sync.contract import source_schema
    from include.consent_sync.ledger import outcome_rows

    not_latest = pc.fill_null(pc.not_equal(valid["change_id"], valid["key_latest_change_id"]), True)
    older_than_synced = pc.fill_null(
        pc.greater(valid["key_synced_changed_at"], valid["changed_at"]), False
    )
    superseded_by_source = not_latest
    superseded_by_ledger = pc.and_(pc.invert(not_latest), older_than_synced)
    send = pc.invert(pc.or_(superseded_by_source, superseded_by_ledger))

    def decided(mask, outcome: Outcome, category: str, message):
        return outcome_rows(valid.filter(mask), outcome, category, message)

    latest_ids = valid.filter(superseded_by_source)["key_latest_change_id"]
    parts = [
        decided(
            superseded_by_source,
            Outcome.SKIPPED_SUPERSEDED,
            "NEWER_CHANGE",
            pc.binary_join_element_wise(
                "a newer change for this contact and subscription exists (",
                pc.fill_null(latest_ids, "unknown"),
                ")",
                "",
            ),
        ),
        decided(
            superseded_by_ledger,
            Outcome.SKIPPED_SUPERSEDED,
            "NEWER_CHANGE_SYNCED",
            "HubSpot already accepted a newer change for this contact and subscription",
        ),
    ]
    to_send = valid.filter(send)
    if dry_run:
        note = ("DISARMED", DISARMED) if disarmed else ("DRY_RUN", "dry run: planned, not sent")
        parts.append(decided(send, Outcome.DRY_RUN, *note))
        to_send = to_send.slice(0, 0)
    return Plan(
        to_send=to_send.select([*source_schema().names, "key_sent_unsubscribed_at"]),
        decided=pa.concat_tables(parts),
    )
