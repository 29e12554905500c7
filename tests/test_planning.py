from datetime import UTC, datetime

import pyarrow as pa
import pytest

from include.consent_sync.contract import source_schema
from include.consent_sync.planning import (
    MAX_BATCHES,
    TARGET_TASK_S,
    PushCapacity,
    plan_batches,
    plan_changes,
)

SINGLE = PushCapacity(rate_limit_per_10s=190, rows_per_request=1, parallel_tasks=4)
BATCH = PushCapacity(rate_limit_per_10s=190, rows_per_request=100, parallel_tasks=4)


@pytest.mark.parametrize("rows", [1, 3, 4, 499, 500, 501, 10_000, 1_000_000, 5_000_000])
@pytest.mark.parametrize("parallel", [1, 4, 16])
@pytest.mark.parametrize("rows_per_request", [1, 100])
def test_batches_cover_every_row_once_and_stay_under_the_map_limit(
    rows, parallel, rows_per_request
):
    ranges = plan_batches(rows, PushCapacity(100, rows_per_request, parallel))
    assert ranges[0][0] == 0 and ranges[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert len(ranges) <= MAX_BATCHES < 1024
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1
    assert len(ranges) >= min(parallel, rows)


def test_batch_writes_get_one_batch_per_slot_where_single_writes_need_dozens():
    # A 20,000-row night at 190 requests per 10 s: batch writes send 100 rows per request.
    assert len(plan_batches(20_000, BATCH)) == 4
    single = plan_batches(20_000, SINGLE)
    assert 30 <= len(single) <= 40


@pytest.mark.parametrize("capacity", [SINGLE, BATCH])
@pytest.mark.parametrize("rows", [2_000, 20_000, 100_000, 1_000_000])
def test_a_batch_takes_at_most_the_target_time_at_a_tasks_share(capacity, rows):
    ranges = plan_batches(rows, capacity)
    seconds = [(stop - start) / capacity.task_rows_per_s for start, stop in ranges]
    if len(ranges) < MAX_BATCHES:
        assert max(seconds) <= TARGET_TASK_S
    if capacity.parallel_tasks < len(ranges) < MAX_BATCHES:  # not cut shorter for the slots
        assert min(seconds) >= TARGET_TASK_S / 2


def test_a_huge_night_grows_the_batches_instead_of_their_count():
    ranges = plan_batches(10_000_000, SINGLE)
    assert len(ranges) == MAX_BATCHES


def test_no_rows_no_batches():
    assert plan_batches(0, SINGLE) == []


def test_a_nonsense_capacity_is_refused_by_name():
    with pytest.raises(ValueError, match="rows_per_request must be at least 1"):
        PushCapacity(190, 0, 4)


def _valid(rows):
    """rows: (change_id, email, changed_at hour, key_latest_change_id, key_synced hour|None)."""
    base = {name: [] for name in source_schema().names}
    latest, synced = [], []
    for change_id, email, hour, latest_id, synced_hour in rows:
        values = dict(
            change_id=change_id,
            email=email,
            subscription_id=1001,
            channel="EMAIL",
            status_state="SUBSCRIBED",
            legal_basis=None,
            legal_basis_explanation=None,
            changed_at=datetime(2026, 11, 20, hour, tzinfo=UTC),
        )
        for name in base:
            base[name].append(values[name])
        latest.append(latest_id)
        synced.append(
            None if synced_hour is None else datetime(2026, 11, 20, synced_hour, tzinfo=UTC)
        )
    table = pa.table(base, schema=source_schema())
    table = table.append_column("key_latest_change_id", pa.array(latest, pa.string()))
    table = table.append_column(
        "key_synced_changed_at", pa.array(synced, pa.timestamp("us", tz="UTC"))
    )
    return table.append_column(
        "key_sent_unsubscribed_at", pa.nulls(table.num_rows, pa.timestamp("us", tz="UTC"))
    )


def test_only_the_latest_change_of_a_key_is_sent_and_never_an_older_one_than_synced():
    valid = _valid(
        [
            ("a1", "a@x.com", 1, "a2", None),  # superseded by a2
            ("a2", "a@x.com", 2, "a2", None),  # sent
            ("b1", "b@x.com", 1, "b9", None),  # latest b9 is not valid: nothing sent for b
            ("c1", "c@x.com", 3, "c1", 5),  # HubSpot already got a newer change of c
            ("d1", "d@x.com", 3, "d1", 3),  # same change synced before (resync): sent
        ]
    )
    plan = plan_changes(valid, dry_run=False)
    assert sorted(plan.to_send["change_id"].to_pylist()) == ["a2", "d1"]
    decided = {r["change_id"]: r for r in plan.decided.to_pylist()}
    assert set(decided) == {"a1", "b1", "c1"}
    assert all(r["outcome"] == "SKIPPED_SUPERSEDED" for r in decided.values())
    assert "(a2)" in decided["a1"]["error_message"]
    assert decided["c1"]["error_category"] == "NEWER_CHANGE_SYNCED"


def test_dry_run_sends_nothing_and_records_what_it_would_send():
    valid = _valid([("a1", "a@x.com", 1, "a2", None), ("a2", "a@x.com", 2, "a2", None)])
    plan = plan_changes(valid, dry_run=True)
    assert plan.to_send.num_rows == 0
    outcomes = {r["change_id"]: r["outcome"] for r in plan.decided.to_pylist()}
    assert outcomes == {"a1": "SKIPPED_SUPERSEDED", "a2": "DRY_RUN"}
