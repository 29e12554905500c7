"""A backfill of three nights on the distributed deployment: CeleryExecutor, two workers, Redis,
PostgreSQL, created the way the UI's Backfill form does it (``POST /api/v2/backfills``).

The backfill's max_active_runs is 3 on purpose: the DAG itself (``wait_for_turn``) must make the
runs take turns, and the four push slots on two workers must keep to one HubSpot rate budget.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from itertools import pairwise

import pytest

from include.consent_sync.contract import DAG_ID
from include.demo_data import create_source_table
from tests.conftest import change, insert_changes
from tests.deployment.conftest import RATE_LIMIT_PER_10S
from tests.e2e.helpers import (
    assert_one_row_per_change_per_run,
    expected_hubspot,
    hubspot_view,
    ledger,
    source,
    utc,
)

pytestmark = pytest.mark.deployment

# The data intervals of the three backfilled runs (the DAG's nights end at 02:00 UTC).
NIGHTS = [(utc(2026, 11, d, 2), utc(2026, 11, d + 1, 2)) for d in (2, 3, 4)]
# Per night: more sends than the rate limit allows in one window (so the four push tasks must
# share it), cut by plan into four batches, one per pool slot.
ROWS_PER_NIGHT = 60
# Contacts that change every night: only their last change (night 3) is ever sent.
REGULARS = 6
RUNS_TIMEOUT_S = 240
FINISHED_RUN_STATES = {"success", "failed"}


def night_changes(night: int) -> list[tuple]:
    start, _ = NIGHTS[night]
    return [
        change(
            f"n{night}-{i:02d}",
            f"regular{i}@example.com" if i < REGULARS else f"n{night}-c{i}@example.com",
            subscription_id=1001 + i % 2,
            state=("SUBSCRIBED", "UNSUBSCRIBED")[(i + night) % 2],
            changed_at=start + timedelta(minutes=20 * i + 5),
        )
        for i in range(ROWS_PER_NIGHT)
    ]


def test_a_backfill_takes_turns_and_shares_workers_and_rate_budget(deployment, postgres_warehouse):
    with postgres_warehouse.open() as connection:
        create_source_table(connection)
    for night in range(len(NIGHTS)):
        insert_changes(postgres_warehouse, night_changes(night))

    deployment.api(
        "POST",
        "/api/v2/backfills",
        json={
            "dag_id": DAG_ID,
            "from_date": NIGHTS[0][0].isoformat(),
            "to_date": NIGHTS[-1][0].isoformat(),
            "run_backwards": False,
            "max_active_runs": 3,
            "reprocess_behavior": "none",
        },
    )
    runs = wait_for_runs(deployment, len(NIGHTS))

    runs.sort(key=lambda run: run["data_interval_start"])
    intervals = [(parse(r["data_interval_start"]), parse(r["data_interval_end"])) for r in runs]
    assert intervals == NIGHTS
    assert [r["state"] for r in runs] == ["success"] * len(NIGHTS), summary(deployment, runs)

    # Turns: from its gate passing to its ledger load, one run at a time, in date order.
    tis = {r["dag_run_id"]: task_instances(deployment, r["dag_run_id"]) for r in runs}
    sections = [turn(tis[r["dag_run_id"]]) for r in runs]
    for (_, earlier_end), (later_start, _) in pairwise(sections):
        assert earlier_end <= later_start, f"runs overlap: {sections}"

    # The push tasks ran on both workers.
    pushes = [ti for run_tis in tis.values() for ti in run_tis if ti["task_id"] == "push"]
    assert {ti["hostname"] for ti in pushes} == {"worker-1", "worker-2"}

    # HubSpot holds the newest change per contact and subscription.
    changes = source(postgres_warehouse)
    all_ids = {c["change_id"] for c in changes}
    assert hubspot_view(deployment.sandbox) == expected_hubspot(changes, all_ids, NIGHTS[-1][1])

    # The ledger: one row per change a run considered, and each run considered its own night
    # only (an earlier night's changes were final before the next run extracted).
    rows = ledger(postgres_warehouse)
    assert_one_row_per_change_per_run(rows)
    per_run = Counter(row["dag_run_id"] for row in rows)
    for night, run in enumerate(runs):
        considered = deployment.api(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}"
            "/taskInstances/extract/xcomEntries/return_value",
        )["value"]["candidates"]
        night_ids = {c[0] for c in night_changes(night)}
        run_ids = {row["change_id"] for row in rows if row["dag_run_id"] == run["dag_run_id"]}
        assert per_run[run["dag_run_id"]] == considered == ROWS_PER_NIGHT
        assert run_ids == night_ids

    # Four push slots on two workers kept to one rate budget: (almost) no 429 answers.
    api_requests = [
        r for r in deployment.sandbox.requests() if "/communication-preferences/" in r["path"]
    ]
    throttled = sum(1 for r in api_requests if r["status"] == 429)
    # Each run needed more than one window's budget, so pacing (not luck) avoided the 429s.
    assert len(api_requests) > len(NIGHTS) * RATE_LIMIT_PER_10S
    assert throttled < 0.01 * len(api_requests), f"{throttled} of {len(api_requests)} got 429"


def wait_for_runs(deployment, count: int) -> list[dict]:
    """The DAG's runs once ``count`` of them exist and all have finished (bounded polling)."""
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    while True:
        runs = deployment.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", limit=100)["dag_runs"]
        if len(runs) >= count and all(r["state"] in FINISHED_RUN_STATES for r in runs):
            return runs
        if time.monotonic() > deadline:
            pytest.fail(f"runs not finished after {RUNS_TIMEOUT_S} s:\n{summary(deployment, runs)}")
        time.sleep(2)


def task_instances(deployment, run_id: str) -> list[dict]:
    return deployment.api(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=100
    )["task_instances"]


def turn(tis: list[dict]) -> tuple[datetime, datetime]:
    """A run's turn: from its wait_for_turn gate passing to its load_results finishing."""
    (gate,) = [ti for ti in tis if ti["task_id"] == "wait_for_turn"]
    (load,) = [ti for ti in tis if ti["task_id"] == "load_results"]
    return parse(gate["end_date"]), parse(load["end_date"])


def summary(deployment, runs: list[dict]) -> str:
    """Each run's state and its task instances' states, hosts and times, for a failure message."""
    lines = []
    for run in runs:
        lines.append(f"{run['dag_run_id']}: {run['state']}")
        for ti in task_instances(deployment, run["dag_run_id"]):
            lines.append(
                f"  {ti['task_id']}[{ti['map_index']}] {ti['state']} on {ti['hostname']} "
                f"try {ti['try_number']} {ti['start_date']} → {ti['end_date']}"
            )
    return "\n".join(lines)


def parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)
