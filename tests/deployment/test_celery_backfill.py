"""Backfills on the distributed deployment: CeleryExecutor, two workers, Redis, PostgreSQL.

First three nights, created the way the UI's Backfill form does it (``POST /api/v2/backfills``),
then ``airflow backfill create`` re-running the third night beside a new fourth one.

The backfills' max_active_runs is above 1 on purpose: the DAG itself (``wait_for_turn``) must make
the runs take turns, and the four push slots on two workers must keep to one HubSpot rate budget.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from itertools import pairwise

import pytest

from dev.demo_data import create_source_table
from include.consent_sync.contract import DAG_ID
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

# The data intervals of the backfilled runs (the DAG's nights end at 02:00 UTC): the REST
# backfill covers the first three, the CLI one the last two.
NIGHTS = [(utc(2026, 11, d, 2), utc(2026, 11, d + 1, 2)) for d in (2, 3, 4, 5)]
REST_NIGHTS = NIGHTS[:3]
# Per night: more sends than the rate limit allows in one window (so the four push tasks must
# share it), cut by plan into four batches, one per pool slot.
ROWS_PER_NIGHT = 60
# Contacts that change every night: only their latest change is ever sent.
REGULARS = 6
# Bounded polling, generous: on a loaded 2-core machine three runs took about 4 minutes.
RUNS_TIMEOUT_S = 420


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


def test_backfills_take_turns_and_share_workers_and_rate_budget(deployment, postgres_warehouse):
    with postgres_warehouse.open() as connection:
        create_source_table(connection)
    for night in range(len(REST_NIGHTS)):
        insert_changes(postgres_warehouse, night_changes(night))

    # 1. The UI's Backfill form: three nights, up to three runs at once.
    deployment.api(
        "POST",
        "/api/v2/backfills",
        json={
            "dag_id": DAG_ID,
            "from_date": REST_NIGHTS[0][0].isoformat(),
            "to_date": REST_NIGHTS[-1][0].isoformat(),
            "run_backwards": False,
            "max_active_runs": 3,
            "reprocess_behavior": "none",
        },
    )
    runs = wait_for_backfill(deployment, expected_runs=len(REST_NIGHTS))
    tis = assert_runs_took_turns(deployment, runs, REST_NIGHTS)

    # The push tasks ran on both workers.
    pushes = [ti for run_tis in tis.values() for ti in run_tis if ti["task_id"] == "push"]
    assert {ti["hostname"] for ti in pushes} == {"worker-1", "worker-2"}

    # The ledger: one row per change a run considered, and each run considered its own night
    # only (an earlier night's changes were final before the next run extracted).
    rows = ledger(postgres_warehouse)
    assert_one_row_per_change_per_run(rows)
    for night, run in enumerate(runs):
        assert considered(deployment, run) == ROWS_PER_NIGHT
        assert changes_of(rows, run) == {c[0] for c in night_changes(night)}
    assert_hubspot_holds_the_newest(deployment, postgres_warehouse)
    # Each backfilled run has its record, as a backfill.
    records = postgres_warehouse.rows(
        "SELECT dag_run_id, run_type, state, changes FROM hubspot_consent_sync_runs"
    )
    assert sorted(
        (r["dag_run_id"], r["run_type"], r["state"], r["changes"]) for r in records
    ) == sorted((run["dag_run_id"], "backfill", "success", ROWS_PER_NIGHT) for run in runs)

    # Four push slots on two workers kept to one rate budget: (almost) no 429 answers.
    api_requests = [
        r for r in deployment.sandbox.requests() if "/communication-preferences/" in r["path"]
    ]
    throttled = sum(1 for r in api_requests if r["status"] == 429)
    # Each run needed more than one window's budget, so pacing (not luck) avoided the 429s.
    assert len(api_requests) > len(REST_NIGHTS) * RATE_LIMIT_PER_10S
    assert throttled < 0.01 * len(api_requests), f"{throttled} of {len(api_requests)} got 429"

    # 2. `airflow backfill create`, reprocessing completed runs: the third night again (its
    # changes are final, so it sends nothing and keeps its rows) and a new fourth night.
    insert_changes(postgres_warehouse, night_changes(3))
    rows_before = {(r["dag_run_id"], r["change_id"], r["outcome"]) for r in rows}
    deployment.airflow.airflow(
        "backfill", "create", "--dag-id", DAG_ID,
        "--from-date", NIGHTS[2][0].isoformat(), "--to-date", NIGHTS[3][0].isoformat(),
        "--reprocess-behavior", "completed", "--max-active-runs", "2",
        capture=True,
    )  # fmt: skip
    runs = wait_for_backfill(deployment, expected_runs=len(NIGHTS))
    assert_runs_took_turns(deployment, runs[2:], NIGHTS[2:])
    assert task_try(deployment, runs[2], "extract") == 2, "the third night was not re-run"

    rows = ledger(postgres_warehouse)
    assert_one_row_per_change_per_run(rows)
    assert rows_before <= {(r["dag_run_id"], r["change_id"], r["outcome"]) for r in rows}
    assert considered(deployment, runs[2]) == 0
    assert considered(deployment, runs[3]) == ROWS_PER_NIGHT
    assert changes_of(rows, runs[3]) == {c[0] for c in night_changes(3)}
    # The fourth night resubscribes regulars the third one unsubscribed. HubSpot stamped that
    # unsubscribe minutes ago, after their changed_at, but the resubscribe guard knows it as our
    # own write, not a contact's opt-out: the resubscribes go through.
    resubscribed = {c[0] for c in night_changes(3)[:REGULARS] if c[4] == "SUBSCRIBED"}
    assert (
        resubscribed and {r["change_id"] for r in rows if r["outcome"] == "SYNCED"} >= resubscribed
    )
    assert not [r for r in rows if r["outcome"] == "SKIPPED_HUBSPOT_NEWER"]
    assert_hubspot_holds_the_newest(deployment, postgres_warehouse)


def wait_for_backfill(deployment, expected_runs: int) -> list[dict]:
    """The DAG's runs, oldest night first, once every backfill has completed (bounded polling)."""
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    while True:
        backfills = deployment.api("GET", "/api/v2/backfills", dag_id=DAG_ID)["backfills"]
        runs = deployment.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", limit=100)["dag_runs"]
        if len(runs) >= expected_runs and all(b["completed_at"] for b in backfills):
            return sorted(runs, key=lambda run: run["data_interval_start"])
        if time.monotonic() > deadline:
            pytest.fail(f"runs not finished after {RUNS_TIMEOUT_S} s:\n{summary(deployment, runs)}")
        time.sleep(2)


def assert_runs_took_turns(deployment, runs: list[dict], nights) -> dict[str, list[dict]]:
    """The runs cover ``nights``, succeeded, and held their turns one after another in date
    order: from its gate passing to its ledger load, one run at a time. Returns their TIs."""
    intervals = [(parse(r["data_interval_start"]), parse(r["data_interval_end"])) for r in runs]
    assert intervals == nights
    assert [r["state"] for r in runs] == ["success"] * len(nights), summary(deployment, runs)
    tis = {r["dag_run_id"]: task_instances(deployment, r["dag_run_id"]) for r in runs}
    sections = [turn(tis[r["dag_run_id"]]) for r in runs]
    for (_, earlier_end), (later_start, _) in pairwise(sections):
        assert earlier_end <= later_start, f"runs overlap: {sections}"
    return tis


def assert_hubspot_holds_the_newest(deployment, warehouse) -> None:
    """HubSpot holds the newest change per contact and subscription."""
    changes = source(warehouse)
    all_ids = {c["change_id"] for c in changes}
    newest = max(c["changed_at"] for c in changes) + timedelta(seconds=1)
    assert hubspot_view(deployment.sandbox) == expected_hubspot(changes, all_ids, newest)


def considered(deployment, run: dict) -> int:
    """How many changes the run's extract took (its XCom)."""
    return deployment.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}"
        "/taskInstances/extract/xcomEntries/return_value",
    )["value"]["candidates"]


def changes_of(rows: list[dict], run: dict) -> set[str]:
    return {row["change_id"] for row in rows if row["dag_run_id"] == run["dag_run_id"]}


def task_try(deployment, run: dict, task_id: str) -> int:
    (ti,) = [ti for ti in task_instances(deployment, run["dag_run_id"]) if ti["task_id"] == task_id]
    return ti["try_number"]


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
