"""Every run leaves a record in hubspot_consent_sync_runs, whatever happened to it; a DAILY limit
met while reading or writing defers the rest without failing the run."""

import sqlite3
from datetime import timedelta

import pytest

from tests.conftest import alert_env, change, insert_changes
from tests.e2e.helpers import ledger, outcomes, utc
from tests.e2e.test_sync_semantics import api_requests, run_night

pytestmark = pytest.mark.e2e

NIGHTS = [utc(2026, 11, 21 + i, 2) for i in range(4)]


def record(warehouse, night):
    (row,) = warehouse.rows(
        "SELECT * FROM hubspot_consent_sync_runs WHERE interval_end = :end", {"end": night}
    )
    return row


def subscribers(prefix, n, night):
    return [
        change(f"{prefix}-{i}", f"{prefix}{i}@x.com", changed_at=night - timedelta(hours=3))
        for i in range(n)
    ]


def test_every_kind_of_run_is_recorded(airflow, warehouse, sandbox):
    # A night with nothing to do.
    run_night(airflow, NIGHTS[0])
    empty = record(warehouse, NIGHTS[0])
    assert empty["changes"] == 0 and empty["state"] == "success"
    assert empty["run_type"] == "manual" and empty["dry_run_param"] is False
    assert empty["ui_url"].endswith(
        "/dags/hubspot_consent_sync/runs/"
        + empty["dag_run_id"].replace(":", "%3A").replace("+", "%2B")
    )
    assert empty["started_at"] <= empty["finished_at"]

    # A dry run for two contacts.
    insert_changes(warehouse, subscribers("a", 3, NIGHTS[1]))
    run_night(airflow, NIGHTS[1], dry_run=True, emails=["a0@x.com", "a1@x.com"])
    dry = record(warehouse, NIGHTS[1])
    assert (dry["changes"], dry["dry_run"], dry["dry_run_param"], dry["emails_count"]) == (
        2,
        2,
        True,
        2,
    )

    # Stopped by the max_rows gate: the task and the reason are on record.
    run_night(airflow, NIGHTS[2], check=False, max_rows=1, resync=True)
    gated = record(warehouse, NIGHTS[2])
    assert gated["state"] == "failed" and gated["failed_task"] == "plan"
    assert "exceed max_rows=1" in gated["failure_reason"] and gated["resync"] is True
    assert gated["deferred"] == 3 and api_requests(sandbox) == []

    # Failed in push: HubSpot refuses the token.
    sandbox.script([{"status": 401, "category": "INVALID_AUTHENTICATION", "times": 50}])
    output = run_night(airflow, NIGHTS[3], check=False, resubscribe_guard=False)
    failed = record(warehouse, NIGHTS[3])
    assert failed["state"] == "failed" and failed["failed_task"].startswith("push")
    assert "401" in failed["failure_reason"] and "sandbox-token" not in failed["failure_reason"]
    assert failed["deferred"] == 3

    runs = warehouse.rows("SELECT dag_run_id FROM hubspot_consent_sync_runs")
    assert len(runs) == 4

    # The ledger Asset got an event from the one run that wrote rows and was not stopped.
    with sqlite3.connect(airflow.home / "airflow.db") as metadata:
        events = {row[0] for row in metadata.execute("SELECT source_run_id FROM asset_event")}
    ours = {r["dag_run_id"] for r in runs}
    assert events & ours == {dry["dag_run_id"]}

    # Failed runs alert; with no notifier configured, the text is in the task log.
    assert "ALERT [hubspot_consent_sync] run failed in push_" in output


@pytest.mark.parametrize("where", ["reads", "writes"])
def test_the_daily_limit_defers_the_rest_and_the_run_succeeds(airflow, warehouse, sandbox, where):
    airflow.hubspot_extras.update(batch_size=1, max_in_flight=1)
    insert_changes(warehouse, subscribers("d", 8, NIGHTS[0]))
    # Reads: the guard's first reads use the quota up; writes: the guard is off, 2 writes pass.
    sandbox.configure(daily_limit=2)
    output = run_night(airflow, NIGHTS[0], resubscribe_guard=(where == "reads"))
    assert "daily limit is reached" in output
    ledger_outcomes = outcomes(ledger(warehouse))
    synced = [c for c, o in ledger_outcomes.items() if o == "SYNCED"]
    assert set(ledger_outcomes.values()) <= {"SYNCED", "DEFERRED"}
    assert len(synced) == (0 if where == "reads" else 2)
    row = record(warehouse, NIGHTS[0])
    assert row["state"] == "success" and row["daily_limit_reached"] is True
    assert row["deferred"] == 8 - len(synced)
    # Once a task met the limit, no other push task spends a request on it: each of the four
    # batch tasks sends at most its one refused request.
    refused = [r for r in api_requests(sandbox) if str(r["status"]) == "429"]
    assert len(refused) <= 4


def test_a_night_that_needs_a_person_alerts_by_email_and_slack(
    airflow, warehouse, sandbox, smtp_server, webhook_server
):
    from email import message_from_bytes

    airflow.extra_env.update(alert_env(smtp_server, webhook_server))
    insert_changes(warehouse, subscribers("r", 4, NIGHTS[0]))
    sandbox.script(
        [
            {
                "status": 400,
                "category": "VALIDATION_ERROR",
                "message": "Invalid subscriber r0@x.com",
                "times": 1,
                "match": {"path_contains": "/statuses/r0%40x.com"},
            }
        ]
    )
    output = run_night(airflow, NIGHTS[0], resubscribe_guard=False)
    assert record(warehouse, NIGHTS[0])["rejected"] == 1
    assert "alert sent by email" in output and "alert sent by slack" in output

    (mail,) = smtp_server.messages
    message = message_from_bytes(mail.original_content)
    assert mail.rcpt_tos == ["dpo@example.org"]
    assert message["Subject"] == "[hubspot_consent_sync] a run needs a look: REJECTED"
    html = "".join(
        part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_type() == "text/html"
    )
    (post,) = webhook_server.received
    text = post["json"]["text"]
    for expected in (
        "REJECTED: 1 of 4 changes sent (25.0%, above 1.0%)",
        "- REJECTED VALIDATION_ERROR: 1 rows, e.g. r***@x.com",
        "interval 2026-11-20T02:00:00+00:00 → 2026-11-21T02:00:00+00:00",
        "SYNCED 3, REJECTED 1",
    ):
        assert expected in text and expected in html
    for sent in (text, html):
        assert "r0@x.com" not in sent and "sandbox-token" not in sent
