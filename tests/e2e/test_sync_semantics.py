"""Sync semantics over several nights: late rows, retries, backfills, opt-outs, controls, guards.

Every test runs real DAG runs (`airflow dags test`) against a real warehouse and the sandbox.
"""

from datetime import timedelta

import pytest

from tests.conftest import change, insert_changes
from tests.e2e.helpers import (
    assert_one_row_per_change_per_run,
    hubspot_view,
    ledger,
    outcomes,
    runs,
    utc,
)

pytestmark = pytest.mark.e2e

NIGHT_1 = utc(2026, 11, 21, 2)
NIGHT_2 = utc(2026, 11, 22, 2)
NIGHT_3 = utc(2026, 11, 23, 2)


def run_night(airflow, night, check=True, **conf):
    result = airflow.run_dag(night.isoformat(), conf=conf or None, check=False)
    output = result.stdout + result.stderr
    if check:
        assert result.returncode == 0, output[-4000:]
    return output


def api_requests(sandbox):
    return [r for r in sandbox.requests() if "/communication-preferences/" in r["path"]]


def test_late_rows_and_failed_rows_are_synced_by_the_next_run(airflow, warehouse, sandbox):
    airflow.hubspot_extras["max_attempts"] = 2
    insert_changes(
        warehouse,
        [
            change("on-time", "a@x.com", changed_at=NIGHT_1 - timedelta(hours=12)),
            change("flaky", "f@x.com", changed_at=NIGHT_1 - timedelta(hours=10)),
        ],
    )
    sandbox.script([{"status": 503, "times": 2, "match": {"path_contains": "/statuses/f%40x.com"}}])
    run_night(airflow, NIGHT_1)
    first = ledger(warehouse)
    assert outcomes(first) == {"on-time": "SYNCED", "flaky": "FAILED"}

    # A row of night 1 lands in the warehouse only after night 1's run.
    insert_changes(warehouse, [change("late", "l@x.com", changed_at=NIGHT_1 - timedelta(hours=6))])
    run_night(airflow, NIGHT_2)
    rows = ledger(warehouse)
    assert outcomes(rows) == {"flaky": "SYNCED", "late": "SYNCED"}
    assert_one_row_per_change_per_run(rows)
    assert hubspot_view(sandbox) == {
        ("a@x.com", 1001): "SUBSCRIBED",
        ("f@x.com", 1001): "SUBSCRIBED",
        ("l@x.com", 1001): "SUBSCRIBED",
    }


def test_a_change_failing_max_attempts_runs_ends_rejected(airflow, warehouse, sandbox):
    airflow.hubspot_extras["max_attempts"] = 1
    insert_changes(
        warehouse, [change("doomed", "d@x.com", changed_at=NIGHT_1 - timedelta(hours=1))]
    )
    sandbox.script(
        [{"status": 500, "times": 100, "match": {"path_contains": "/statuses/d%40x.com"}}]
    )
    run_night(airflow, NIGHT_1, max_attempts=2)
    run_night(airflow, NIGHT_2, max_attempts=2)
    rows = ledger(warehouse)
    first, second = runs(rows)
    assert outcomes(rows, first) == {"doomed": "FAILED"}
    final = next(r for r in rows if r["dag_run_id"] == second)
    assert final["outcome"] == "REJECTED" and final["error_category"] == "MAX_ATTEMPTS"
    assert "failed in 2 runs" in final["error_message"]
    requests = len(api_requests(sandbox))
    run_night(airflow, NIGHT_3, max_attempts=2)
    assert len(runs(ledger(warehouse))) == 2  # nothing left to consider: no new rows
    assert len(api_requests(sandbox)) == requests


def test_a_backfill_of_an_old_night_never_reverts_a_newer_consent(airflow, warehouse, sandbox):
    insert_changes(
        warehouse,
        [
            change(
                "opt-out", "k@x.com", state="UNSUBSCRIBED", changed_at=NIGHT_2 - timedelta(hours=12)
            )
        ],
    )
    run_night(airflow, NIGHT_2)
    # An older opt-in for the same contact arrives late; then night 1 is backfilled.
    insert_changes(
        warehouse,
        [
            change(
                "old-opt-in",
                "K@x.com ",
                state="SUBSCRIBED",
                changed_at=NIGHT_1 - timedelta(hours=12),
            )
        ],
    )
    run_night(airflow, NIGHT_1)
    rows = ledger(warehouse)
    assert outcomes(rows) == {"old-opt-in": "SKIPPED_SUPERSEDED"}
    assert hubspot_view(sandbox) == {("k@x.com", 1001): "UNSUBSCRIBED"}
    latest = warehouse.rows("SELECT change_id, status_state FROM hubspot_consent_sync_latest")
    assert latest == [{"change_id": "opt-out", "status_state": "UNSUBSCRIBED"}]


def test_a_contact_who_opted_out_in_hubspot_since_stays_unsubscribed(airflow, warehouse, sandbox):
    insert_changes(
        warehouse,
        [
            change("stale-opt-in", "s@x.com", changed_at=NIGHT_1 - timedelta(hours=12)),
            change("fresh-opt-in", "t@x.com", changed_at=NIGHT_1 - timedelta(hours=12)),
        ],
    )
    sandbox.seed_statuses(
        [
            {
                "email": "s@x.com",
                "subscriptionId": 1001,
                "channel": "EMAIL",
                "status": "UNSUBSCRIBED",
                "timestamp": (NIGHT_1 - timedelta(hours=2)).isoformat(),
            },
            {
                "email": "t@x.com",
                "subscriptionId": 1001,
                "channel": "EMAIL",
                "status": "UNSUBSCRIBED",
                "timestamp": (NIGHT_1 - timedelta(days=3)).isoformat(),
            },
        ]
    )
    run_night(airflow, NIGHT_1)
    rows = ledger(warehouse)
    assert outcomes(rows) == {"stale-opt-in": "SKIPPED_HUBSPOT_NEWER", "fresh-opt-in": "SYNCED"}
    assert hubspot_view(sandbox) == {
        ("s@x.com", 1001): "UNSUBSCRIBED",
        ("t@x.com", 1001): "SUBSCRIBED",
    }
    skipped = next(r for r in rows if r["change_id"] == "stale-opt-in")
    assert "not resubscribing" in skipped["error_message"]


def test_dry_run_then_emails_then_resync(airflow, warehouse, sandbox):
    insert_changes(
        warehouse,
        [
            change("a", "a@x.com", changed_at=NIGHT_1 - timedelta(hours=3)),
            change(
                "b", "b+tag@x.com", changed_at=NIGHT_1 - timedelta(hours=2), state="UNSUBSCRIBED"
            ),
        ],
    )
    run_night(airflow, NIGHT_1, dry_run=True)
    assert outcomes(ledger(warehouse)) == {"a": "DRY_RUN", "b": "DRY_RUN"}
    assert api_requests(sandbox) == []

    run_night(airflow, NIGHT_1, emails=["B+TAG@x.com"])
    assert outcomes(ledger(warehouse)) == {"b": "SYNCED"}
    assert hubspot_view(sandbox) == {("b+tag@x.com", 1001): "UNSUBSCRIBED"}

    run_night(airflow, NIGHT_1)
    assert outcomes(ledger(warehouse)) == {"a": "SYNCED"}

    sandbox.reset()  # HubSpot lost its data
    rows_before = len(ledger(warehouse))
    run_night(airflow, NIGHT_1)
    assert len(ledger(warehouse)) == rows_before  # everything is final: a plain run sends nothing
    assert api_requests(sandbox) == []
    run_night(airflow, NIGHT_1, resync=True)
    assert outcomes(ledger(warehouse)) == {"a": "SYNCED", "b": "SYNCED"}
    assert hubspot_view(sandbox) == {
        ("a@x.com", 1001): "SUBSCRIBED",
        ("b+tag@x.com", 1001): "UNSUBSCRIBED",
    }
    assert_one_row_per_change_per_run(ledger(warehouse))


def test_guards_stop_the_run_before_a_single_request(airflow, warehouse, sandbox):
    insert_changes(
        warehouse,
        [
            change(f"ok-{i}", f"user{i}@x.com", changed_at=NIGHT_1 - timedelta(hours=1))
            for i in range(3)
        ]
        + [change("bad", "not-an-email", changed_at=NIGHT_1 - timedelta(hours=1))],
    )
    output = run_night(airflow, NIGHT_1, check=False)  # 1 of 4 invalid > 5%
    assert "1 of 4 rows (25.00%) failed validation" in output and "max_invalid_share" in output
    assert "task validate did not succeed" in output
    assert outcomes(ledger(warehouse)) == {
        "ok-0": "DEFERRED",
        "ok-1": "DEFERRED",
        "ok-2": "DEFERRED",
        "bad": "INVALID",
    }
    output = run_night(airflow, NIGHT_1, check=False, max_rows=2)
    assert "3 changes to send exceed max_rows=2" in output
    assert "task plan did not succeed" in output
    assert outcomes(ledger(warehouse)) == {
        "ok-0": "DEFERRED",
        "ok-1": "DEFERRED",
        "ok-2": "DEFERRED",
    }
    assert api_requests(sandbox) == []
    run_night(airflow, NIGHT_1)
    assert outcomes(ledger(warehouse)) == {"ok-0": "SYNCED", "ok-1": "SYNCED", "ok-2": "SYNCED"}


def test_a_broken_source_schema_stops_the_run_and_names_the_column(airflow, warehouse, sandbox):
    insert_changes(warehouse, [change("a", changed_at=NIGHT_1 - timedelta(hours=1))])
    with warehouse.open() as connection:
        connection.execute("ALTER TABLE consent_changes DROP COLUMN legal_basis")
    output = run_night(airflow, NIGHT_1, check=False)
    assert "consent_changes.legal_basis is missing" in output
    assert api_requests(sandbox) == []
    assert "task extract did not succeed" in output
