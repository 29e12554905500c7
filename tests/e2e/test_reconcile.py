"""Reconciliation end to end: a sync, HubSpot changed behind its back in every way, a reconcile,
a repair through the sync, a second reconcile, and one that cannot read HubSpot. Real DAG runs
(`airflow dags test`) against a real warehouse (DuckDB and PostgreSQL) and the sandbox."""

from datetime import UTC, datetime, timedelta

import pytest

from include.consent_reconcile.contract import DRIFT_VIEW, RECONCILE_DAG_ID, RECONCILIATION_TABLE
from tests.conftest import alert_env, change, insert_changes
from tests.e2e.helpers import dag_runs, hubspot_view, ledger, outcomes, utc

pytestmark = pytest.mark.e2e

NIGHT_1 = utc(2026, 11, 21, 2)
NIGHT_2 = utc(2026, 11, 22, 2)
CHANGED = NIGHT_1 - timedelta(hours=12)
KEYS = {
    "match@x.com": "MATCH",
    "newer@x.com": "HUBSPOT_NEWER",  # the contact opted out after our write
    "drift@x.com": "DRIFT",  # overwritten inside HubSpot, without a newer timestamp
    "lost@x.com": "MISSING",  # a write HubSpot acknowledged and lost
    "gone@x.com": "MISSING",  # a contact merged or deleted
    "wide@x.com": "HUBSPOT_NEWER",  # opted out of all email after our write
    "pending@x.com": "PENDING",  # its write FAILED
}


def run(airflow, dag_id, logical_date, check=True, **conf):
    result = airflow.run_dag(
        logical_date.isoformat(), conf=conf or None, check=False, dag_id=dag_id
    )
    output = result.stdout + result.stderr
    if check and result.returncode:
        print(output)  # every task's log, for the failure report
    assert result.returncode == 0 or not check, output[-4000:]
    return output


def classifications(warehouse):
    """email → classification of the latest reconcile run."""
    rows = warehouse.rows(f"SELECT * FROM {RECONCILIATION_TABLE} ORDER BY checked_at")
    last = rows[-1]["reconcile_run_id"]
    return {r["email"]: r["classification"] for r in rows if r["reconcile_run_id"] == last}, last


def test_reconcile_finds_every_kind_of_difference_and_a_repair_fixes_drift_and_missing(
    airflow, warehouse, sandbox, smtp_server, webhook_server
):
    airflow.hubspot_extras["max_attempts"] = 1
    insert_changes(warehouse, [change(f"c-{email}", email, changed_at=CHANGED) for email in KEYS])
    sandbox.script([{"status": 503, "match": {"path_contains": "/statuses/pending%40x.com"}}])
    run(airflow, "hubspot_consent_sync", NIGHT_1)
    assert outcomes(ledger(warehouse))["c-pending@x.com"] == "FAILED"

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    sandbox.seed_statuses(
        [
            {
                "email": "newer@x.com",
                "subscriptionId": 1001,
                "status": "UNSUBSCRIBED",
                "timestamp": later,
            },
            {
                "email": "drift@x.com",
                "subscriptionId": 1001,
                "status": "UNSUBSCRIBED",
                "timestamp": (CHANGED - timedelta(days=1)).isoformat(),
            },
        ]
    )
    sandbox.drop_statuses([{"email": "lost@x.com", "subscriptionId": 1001}])
    sandbox.forget_contacts(["gone@x.com"])
    sandbox.set_wide_statuses(
        [{"email": "wide@x.com", "status": "UNSUBSCRIBED", "timestamp": later}]
    )

    airflow.extra_env.update(alert_env(smtp_server, webhook_server))
    output = run(airflow, RECONCILE_DAG_ID, NIGHT_1 + timedelta(hours=1), full=True)
    found, first = classifications(warehouse)
    assert found == KEYS
    alert = "HubSpot differs from the warehouse for 3 of 7 keys"
    assert alert in output
    # The same alert through the sync's notifiers, to the real local receivers.
    assert any(
        "HubSpot consent reconcile" in m.original_content.decode() for m in smtp_server.messages
    )
    assert any(alert in post["json"]["text"] for post in webhook_server.received)
    assert "read batch 0:" in output and "rows/s" in output  # progress lines
    assert {r["email"] for r in warehouse.rows(f"SELECT email FROM {DRIFT_VIEW}")} == set(KEYS) - {
        "match@x.com"
    }

    # The repair: a reconcile with repair triggers the sync for exactly the DRIFT and MISSING keys.
    syncs_before = dag_runs(airflow, "hubspot_consent_sync")
    output = run(airflow, RECONCILE_DAG_ID, NIGHT_1 + timedelta(hours=2), full=True, repair=True)
    _, second = classifications(warehouse)
    assert "triggering hubspot_consent_sync for the 3 DRIFT and MISSING keys" in output
    # trigger_repair created one sync run in Airflow's metadata database, naming this reconcile.
    triggered = [
        r for i, r in dag_runs(airflow, "hubspot_consent_sync").items() if i not in syncs_before
    ]
    assert [(r["triggered_by"], r["conf"]) for r in triggered] == [
        ("OPERATOR", {"repair_run_id": second})
    ]
    # That run waits for a scheduler; run the sync here with the conf it was given. It sends
    # exactly the DRIFT and MISSING keys: not the HUBSPOT_NEWER ones, nor the MATCH and PENDING.
    before = {key: state for key, state in hubspot_view(sandbox).items()}
    run(airflow, "hubspot_consent_sync", NIGHT_2, **triggered[0]["conf"])
    repaired = outcomes(ledger(warehouse))
    assert repaired == {f"c-{e}": "SYNCED" for e in ("drift@x.com", "lost@x.com", "gone@x.com")}
    after = hubspot_view(sandbox)
    assert after[("newer@x.com", 1001)] == before[("newer@x.com", 1001)] == "UNSUBSCRIBED"
    assert after[("drift@x.com", 1001)] == "SUBSCRIBED"

    run(airflow, RECONCILE_DAG_ID, NIGHT_2 + timedelta(hours=1), full=True)
    found, third = classifications(warehouse)
    assert third not in (first, second)
    assert found == {
        **KEYS,
        "drift@x.com": "MATCH",
        "lost@x.com": "MATCH",
        "gone@x.com": "MATCH",
    }

    # HubSpot cannot be read: the statuses read of match@'s chunk answers 503 (max_attempts 1),
    # and drift@'s refuses the token, which stops its read task. Four keys that were MATCH a
    # moment ago are UNREAD, never MATCH, and the run fails saying why.
    sandbox.script(
        [
            {"status": 503, "match": {"path_contains": "batch/read", "email": "match@x.com"}},
            {"status": 401, "match": {"path_contains": "batch/read", "email": "drift@x.com"}},
        ]
    )
    unread_at = NIGHT_2 + timedelta(hours=2)
    output = run(airflow, RECONCILE_DAG_ID, unread_at, check=False, full=True)
    found, fourth = classifications(warehouse)
    assert fourth != third
    unread = {"match@x.com", "lost@x.com", "drift@x.com", "gone@x.com"}
    assert found == {**KEYS, **dict.fromkeys(unread, "UNREAD")}
    assert dag_runs(airflow, RECONCILE_DAG_ID)[fourth]["state"] == "failed"
    assert "task read_0 did not succeed" in output
    assert "4 keys could not be read from HubSpot (UNREAD)" in output
