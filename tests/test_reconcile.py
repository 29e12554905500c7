"""Reconciliation without Airflow: classification rules, HubSpot's answers to reads, and the
steps against a real warehouse (DuckDB and PostgreSQL) and the sandbox."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from hubspot_provider.exceptions import HubSpotAuthError
from hubspot_provider.hooks.hubspot import HubSpotHook
from include.consent_reconcile import steps
from include.consent_reconcile.classify import classify
from include.consent_reconcile.contract import (
    DRIFT_VIEW,
    READ,
    READ_FAILED,
    RECONCILIATION_COLUMNS,
    RECONCILIATION_TABLE,
    UNKNOWN_CONTACT,
    Classification,
)
from include.consent_reconcile.reads import read_batch
from include.consent_sync import pipeline, staging
from include.consent_sync.contract import LEDGER_TABLE, ledger_schema
from tests.conftest import change, insert_changes

LOG = logging.getLogger("reconcile-test")
SENT = datetime(2026, 11, 21, 2, 10, tzinfo=UTC)
CHANGED = datetime(2026, 11, 20, 12, tzinfo=UTC)


def key(**facts):
    base = {
        "email": "a@x.com",
        "subscription_id": 1001,
        "channel": "EMAIL",
        "intended_state": "SUBSCRIBED",
        "intended_change_id": "c1",
        "intended_outcome": "SYNCED",
        "synced_change_id": "c1",
        "synced_state": "SUBSCRIBED",
        "synced_at": SENT,
    }
    return {**base, **facts}


def status(state, at=SENT + timedelta(seconds=1), subscription_id=1001, source="API"):
    return {
        "subscription_id": subscription_id,
        "channel": "EMAIL",
        "status": state,
        "timestamp": at,
        "source": source,
    }


def read(*statuses, wide=(), answer=READ):
    return {
        "email": "a@x.com",
        "answer": answer,
        "statuses": list(statuses),
        "wide_statuses": list(wide),
    }


LATER, EARLIER = SENT + timedelta(days=1), SENT - timedelta(days=1)


@pytest.mark.parametrize(
    ("facts", "answer", "expected"),
    [
        ({}, read(status("SUBSCRIBED")), "MATCH"),
        ({}, read(status("UNSUBSCRIBED", LATER)), "HUBSPOT_NEWER"),
        ({}, read(status("UNSUBSCRIBED", EARLIER)), "DRIFT"),
        # Equal to our write is not after it: HubSpot did not change it since.
        ({}, read(status("UNSUBSCRIBED", SENT)), "DRIFT"),
        ({}, read(status("SUBSCRIBED", subscription_id=2002)), "MISSING"),
        ({}, read(status("NOT_SPECIFIED", None, source=None)), "MISSING"),
        ({"intended_state": "NOT_SPECIFIED"}, read(), "MATCH"),
        ({}, read(answer=UNKNOWN_CONTACT), "MISSING"),
        # An opt-out of all email overrides the subscription's own status.
        (
            {},
            read(status("SUBSCRIBED"), wide=[status("UNSUBSCRIBED", LATER, None, "PORTAL_WIDE")]),
            "HUBSPOT_NEWER",
        ),
        (
            {},
            read(status("SUBSCRIBED"), wide=[status("UNSUBSCRIBED", EARLIER, None, "PORTAL_WIDE")]),
            "DRIFT",
        ),
        (
            {"intended_state": "UNSUBSCRIBED", "synced_state": "UNSUBSCRIBED"},
            read(
                status("SUBSCRIBED", EARLIER),
                wide=[status("UNSUBSCRIBED", EARLIER, None, "PORTAL_WIDE")],
            ),
            "MATCH",
        ),
        # Not synced yet: FAILED, DEFERRED, REJECTED, INVALID latest, or an older change synced.
        (
            {"intended_outcome": "FAILED", "synced_change_id": None, "synced_at": None},
            read(),
            "PENDING",
        ),
        (
            {"intended_outcome": "INVALID", "synced_change_id": "c0"},
            read(status("SUBSCRIBED")),
            "PENDING",
        ),
        (
            {"intended_outcome": None, "synced_change_id": "c0"},
            read(status("SUBSCRIBED")),
            "PENDING",
        ),
        ({"intended_change_id": None, "intended_state": None}, read(), "PENDING"),
        # The guard held the intent back for HubSpot's newer opt-out: compared, never DRIFT.
        (
            {
                "intended_outcome": "SKIPPED_HUBSPOT_NEWER",
                "synced_change_id": None,
                "synced_at": None,
            },
            read(status("UNSUBSCRIBED", EARLIER)),
            "HUBSPOT_NEWER",
        ),
        # A read that failed is never MATCH.
        ({}, read(answer=READ_FAILED), "UNREAD"),
        ({}, None, "UNREAD"),
        ({"intended_outcome": "DEFERRED", "synced_change_id": None}, None, "PENDING"),
    ],
)
def test_classification_rules(facts, answer, expected):
    classification, view = classify(key(**facts), answer)
    assert classification == expected
    if expected in ("UNREAD",):
        assert view.state is None


def test_the_wide_opt_out_is_reported_as_hubspots_state_and_source():
    _, view = classify(
        key(), read(status("SUBSCRIBED"), wide=[status("UNSUBSCRIBED", LATER, None, "PORTAL_WIDE")])
    )
    assert (view.state, view.timestamp, view.source) == ("UNSUBSCRIBED", LATER, "PORTAL_WIDE")


def test_alert_on_count_or_share():
    verdict = steps.Verdict({"DRIFT": 2, "MISSING": 1, "MATCH": 97, "HUBSPOT_NEWER": 50}, 150)
    assert steps.alert_text(verdict, max_share=0.5, max_count=10) is None
    assert "3 of 150 keys" in steps.alert_text(verdict, max_share=0.01, max_count=10)
    assert "DRIFT 2, MISSING 1" in steps.alert_text(verdict, max_share=1, max_count=2)


# -- reads against the sandbox -------------------------------------------------------------------


@pytest.fixture
def contacts(tmp_path):
    def make(emails):
        path = tmp_path / "contacts.parquet"
        staging.write_table(pa.table({"email": pa.array(emails, pa.string())}), path)
        return path, tmp_path / steps.READS / "batch-00000"

    return make


def staged(results_path):
    from include.consent_reconcile.contract import read_schema

    return {
        r["email"]: r for r in staging.ResultParts(results_path, read_schema()).read().to_pylist()
    }


def test_read_batch_stages_every_answer_kind(sandbox, hubspot_connection, contacts):
    hubspot_connection(batch_size=2)
    sandbox.seed_statuses([{"email": "a@x.com", "subscriptionId": 1001, "status": "UNSUBSCRIBED"}])
    sandbox.set_wide_statuses([{"email": "b@x.com", "status": "UNSUBSCRIBED"}])
    sandbox.forget_contacts(["gone@x.com"])
    path, results = contacts(["a@x.com", "b@x.com", "gone@x.com", "not-an-email"])
    counts = read_batch(HubSpotHook(), contacts_path=path, results_path=results, label="t", log=LOG)
    assert counts == {READ: 2, UNKNOWN_CONTACT: 1, READ_FAILED: 1}
    rows = staged(results)
    assert [s["status"] for s in rows["a@x.com"]["statuses"] if s["subscription_id"] == 1001] == [
        "UNSUBSCRIBED"
    ]
    assert [w["status"] for w in rows["b@x.com"]["wide_statuses"]] == ["UNSUBSCRIBED"]
    assert "VALIDATION_ERROR" in rows["not-an-email"]["error"]


def test_a_failed_chunk_is_staged_failed_and_a_retry_reads_only_what_is_missing(
    sandbox, hubspot_connection, contacts, no_backoff
):
    hubspot_connection(batch_size=2, max_attempts=2)
    sandbox.script([{"status": 503, "times": 2, "match": {"path_contains": "/batch/read"}}])
    path, results = contacts(["a@x.com", "b@x.com", "c@x.com"])
    counts = read_batch(HubSpotHook(), contacts_path=path, results_path=results, label="t", log=LOG)
    assert counts == {READ_FAILED: 2, READ: 1}
    before = len(sandbox.requests())
    read_batch(HubSpotHook(), contacts_path=path, results_path=results, label="t", log=LOG)
    # The retry read the two failed contacts again (one chunk, two requests), not c@x.com.
    assert len(sandbox.requests()) - before == 2
    reads = steps.staged_reads(path.parent)
    assert {e: r["answer"] for e, r in reads.items()} == {
        e: READ for e in ("a@x.com", "b@x.com", "c@x.com")
    }


def test_the_daily_limit_stops_reading_and_leaves_the_rest_unread(
    sandbox, hubspot_connection, contacts
):
    hubspot_connection(batch_size=1)
    sandbox.script([{"status": 429, "policy": "DAILY", "match": {"email": "b@x.com"}}])
    path, results = contacts(["a@x.com", "b@x.com", "c@x.com"])
    read_batch(HubSpotHook(), contacts_path=path, results_path=results, label="t", log=LOG)
    assert set(staged(results)) == {"a@x.com"}
    # Nothing more was asked after the daily limit: a@x.com's two reads and b@x.com's one.
    assert len([r for r in sandbox.requests() if "/communication-preferences/" in r["path"]]) == 3


def test_an_auth_refusal_raises(sandbox, hubspot_connection, contacts):
    hubspot_connection(token="wrong-token")
    path, results = contacts(["a@x.com"])
    with pytest.raises(HubSpotAuthError):
        read_batch(HubSpotHook(), contacts_path=path, results_path=results, label="t", log=LOG)
    assert staged(results) == {}
