"""Alert texts (pure) and their delivery to real local receivers: an SMTP server and a webhook."""

import json
import logging
from datetime import UTC, datetime

import pytest

from include.consent_sync.alerts import AlertSettings, Reason, compose, findings
from include.consent_sync.run_record import record_values
from tests.conftest import alert_env

START = datetime(2026, 11, 20, 2, tzinfo=UTC)
END = datetime(2026, 11, 21, 2, tzinfo=UTC)
SETTINGS = AlertSettings()


def record(run_id="scheduled__2026-11-21", state="success", **outcomes):
    return record_values(
        run_id,
        outcomes,
        interval_start=START,
        interval_end=END,
        state=state,
        run_type="scheduled",
        ui_url=f"http://airflow.local/dags/hubspot_consent_sync/runs/{run_id}",
        daily_limit_reached=False,
    )


def test_a_quiet_night_needs_nobody():
    assert compose(record(SYNCED=100, SKIPPED_SUPERSEDED=3), [], [], SETTINGS) is None


def test_a_failed_run_names_the_task_the_reason_and_the_link():
    failed = record(state="failed", DEFERRED=4) | {
        "failed_task": "push_2",
        "failure_reason": "HubSpotAuthError: HubSpot answered 401 for jane@example.com",
    }
    alert = compose(failed, [], [Reason("DEFERRED", None, 4)], SETTINGS)
    assert alert.subject == "[hubspot_consent_sync] run failed in push_2"
    assert "Task push_2 failed: HubSpotAuthError: HubSpot answered 401" in alert.body
    assert "j***@example.com" in alert.body and "jane@example.com" not in alert.body
    assert "http://airflow.local/dags/hubspot_consent_sync/runs/" in alert.body
    assert "2026-11-20T02:00:00+00:00 → 2026-11-21T02:00:00+00:00" in alert.body


def test_each_reason_a_succeeded_night_needs_a_person():
    night = record(SYNCED=90, REJECTED=5, FAILED=2, DEFERRED=3, INVALID=4) | {
        "daily_limit_reached": True
    }
    found = findings(night, [], SETTINGS)
    assert [f.split(":")[0] for f in found] == [
        "REJECTED",
        "FAILED",
        "DEFERRED",
        "HubSpot's DAILY API limit was reached",
        "INVALID",
    ]
    assert "5 of 97 changes sent (5.2%, above 1.0%)" in found[0]
    assert "4 of 104 changes (3.8%, above the warning level 2.0%)" in found[4]
    reasons = [Reason("REJECTED", "VALIDATION_ERROR", 5, "bob@example.org")]
    alert = compose(night, [], reasons, SETTINGS)
    assert "- REJECTED VALIDATION_ERROR: 5 rows, e.g. b***@example.org" in alert.body
    assert "bob@example.org" not in alert.body


def test_nights_in_a_row_that_sent_nothing():
    dry = [record(f"r{i}", DRY_RUN=10) for i in range(3)]
    assert findings(dry[0], dry[1:2], SETTINGS) == []  # two nights: not yet
    (finding,) = findings(dry[0], dry[1:], SETTINGS)
    assert finding.startswith("3 runs in a row sent nothing to HubSpot (dry run or disarmed)")
    broken = [dry[1], record("sent", SYNCED=1), dry[2]]
    assert findings(dry[0], broken, SETTINGS) == []


def test_bad_settings_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"unknown keys \['smtp'\]"):
        AlertSettings.from_mapping({"smtp": "x"})
    with pytest.raises(ValueError, match="smtp_conn_id needs email_to"):
        AlertSettings.from_mapping({"smtp_conn_id": "smtp_alerts"})
    with pytest.raises(ValueError, match="rejected_share must be between 0 and 1"):
        AlertSettings.from_mapping({"rejected_share": 5})


# -- delivery ---------------------------------------------------------------------------------


def failed_alert():
    failed = record(state="failed", DEFERRED=4) | {
        "failed_task": "push_0",
        "failure_reason": "HubSpotAuthError: 401 for jane@example.com",
    }
    return compose(failed, [], [Reason("DEFERRED", None, 4, "jane@example.com")], SETTINGS)


def test_an_alert_reaches_a_real_smtp_server_and_a_slack_webhook(
    monkeypatch, smtp_server, webhook_server
):
    from include.consent_sync.runtime import alert_settings, send_alert

    for name, value in alert_env(smtp_server, webhook_server).items():
        monkeypatch.setenv(name, value)
    settings = alert_settings()
    alert = failed_alert()
    send_alert(alert, settings, {})

    (mail,) = smtp_server.messages
    assert mail.rcpt_tos == ["dpo@example.org"]
    from email import message_from_bytes

    message = message_from_bytes(mail.original_content)
    assert message["Subject"] == alert.subject
    html = "".join(
        part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_type() == "text/html"
    )
    assert "Task push_0 failed: HubSpotAuthError: 401 for j***@example.com" in html
    assert "jane@example.com" not in mail.original_content.decode()

    (post,) = webhook_server.received
    assert post["path"] == "/T000/B000/XXXX"
    assert post["json"]["text"] == f"*{alert.subject}*\n{alert.body}"
    assert "jane@example.com" not in json.dumps(post["json"])


def test_without_a_notifier_the_alert_goes_to_the_log(caplog):
    from include.consent_sync.runtime import send_alert

    alert = failed_alert()
    with caplog.at_level(logging.WARNING):
        send_alert(alert, AlertSettings(), {})
    assert alert.subject in caplog.text and alert.body in caplog.text
    assert "no notifier configured" in caplog.text


def test_a_notifier_that_cannot_deliver_fails_loudly(monkeypatch):
    from include.consent_sync.runtime import send_alert

    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_DOWN",
        json.dumps(
            {"conn_type": "slackwebhook", "host": "http://127.0.0.1:9", "password": "T/B/X"}
        ),
    )
    with pytest.raises(RuntimeError, match="alert not delivered by slack"):
        send_alert(failed_alert(), AlertSettings(slack_webhook_conn_id="slack_down"), {})


def deadline_context(run_type):
    # What Airflow hands a Deadline Alert's callback (Deadline.handle_miss: the run as the REST
    # API shows it, and the deadline).
    return {
        "dag_run": {
            "dag_run_id": f"{run_type}__2026-11-21T02:00:00+00:00",
            "dag_id": "hubspot_consent_sync",
            "run_type": run_type,
            "state": "running",
            "data_interval_start": "2026-11-20T02:00:00Z",
            "data_interval_end": "2026-11-21T02:00:00Z",
            "queued_at": "2026-11-21T02:00:05Z",
            "start_date": "2026-11-21T02:00:06Z",
        },
        "deadline": {"id": "d1", "deadline_time": datetime(2026, 11, 21, 6, 0, 5, tzinfo=UTC)},
    }


def test_a_late_nightly_run_alerts_through_the_webhook(monkeypatch, webhook_server):
    import asyncio

    from include.consent_sync.runtime import deadline_missed

    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_ALERTS",
        json.dumps(
            {
                "conn_type": "slackwebhook",
                "host": f"http://127.0.0.1:{webhook_server.server_port}",
                "password": "T000/B000/XXXX",
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_VAR_CONSENT_SYNC_ALERTS", json.dumps({"slack_webhook_conn_id": "slack_alerts"})
    )
    asyncio.run(deadline_missed(deadline_context("backfill")))
    assert webhook_server.received == []  # backfills wait their turn: no alert
    asyncio.run(deadline_missed(deadline_context("scheduled")))
    (post,) = webhook_server.received
    text = post["json"]["text"]
    assert "run not finished by its deadline: scheduled__2026-11-21T02:00:00+00:00" in text
    assert "has not finished by its deadline 2026-11-21T06:00:05+00:00; it is running" in text
    assert "/dags/hubspot_consent_sync/runs/scheduled__2026-11-21T02%3A00%3A00%2B00%3A00" in text


def test_the_deadline_is_configured_in_minutes(monkeypatch):
    from datetime import timedelta

    from include.consent_sync.runtime import deadline_missed, nightly_deadline

    monkeypatch.delenv("CONSENT_SYNC_DEADLINE_MINUTES", raising=False)
    assert nightly_deadline() is None
    monkeypatch.setenv("CONSENT_SYNC_DEADLINE_MINUTES", "90")
    alert = nightly_deadline()
    assert alert.interval == timedelta(minutes=90)
    assert alert.callback.path == f"{deadline_missed.__module__}.{deadline_missed.__name__}"
    monkeypatch.setenv("CONSENT_SYNC_DEADLINE_MINUTES", "soon")
    with pytest.raises(ValueError, match="CONSENT_SYNC_DEADLINE_MINUTES='soon'"):
        nightly_deadline()
