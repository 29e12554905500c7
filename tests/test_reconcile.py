"""Reconciliation without Airflow: classification rules, HubSpot's answers to reads, and the
steps against a real warehouse (DuckDB and PostgreSQL) and the sandbox."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
        r["email"]: r for r in staging.ResultJournal(results_path, read_schema()).read().to_pylist()
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


def test_chunks_in_flight_read_every_contact_once(sandbox, hubspot_connection, contacts):
    hubspot_connection(batch_size=3, max_in_flight=4)
    emails = [f"u{i}@x.com" for i in range(40)]
    path, results = contacts(emails)
    counts = read_batch(HubSpotHook(), contacts_path=path, results_path=results, label="t", log=LOG)
    assert counts == {READ: 40} and set(staged(results)) == set(emails)
    assert len(sandbox.requests()) == 2 * 14  # 14 chunks, each a statuses and an opt-out read
    # One journal for the task's attempt, a durable append per chunk: not a file per chunk.
    assert [p.name.startswith("journal-") for p in results.iterdir()] == [True]


def test_a_failed_chunk_is_staged_failed_and_a_retry_reads_only_what_is_missing(
    sandbox, hubspot_connection, contacts, no_backoff
):
    hubspot_connection(batch_size=2, max_attempts=2, max_in_flight=1)
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
    hubspot_connection(batch_size=1, max_in_flight=1)
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


# -- the steps against a real warehouse and the sandbox ------------------------------------------

SYNC_RUN = "scheduled__2026-11-21T02:00:00+00:00"


def ledger_rows(rows):
    """Ledger rows (dicts with the facts that matter here) as a ledger_schema table."""
    full = [
        {
            **dict.fromkeys(ledger_schema().names),
            "dag_run_id": SYNC_RUN,
            "subscription_id": 1001,
            "channel": "EMAIL",
            "changed_at": CHANGED,
            "attempts": 1,
            "recorded_at": SENT + timedelta(minutes=5),
            **row,
        }
        for row in rows
    ]
    return pa.Table.from_pylist(full, schema=ledger_schema())


def synced(change_id, email, state="SUBSCRIBED", **facts):
    return {
        "change_id": change_id,
        "email": email,
        "status_state": state,
        "outcome": "SYNCED",
        "sent_at": SENT,
        **facts,
    }


def seeded(email, state, at, subscription_id=1001):
    return {
        "email": email,
        "subscriptionId": subscription_id,
        "status": state,
        "timestamp": at.isoformat(),
    }


EXPECTED = {
    "match@x.com": "MATCH",
    "newer@x.com": "HUBSPOT_NEWER",
    "drift@x.com": "DRIFT",
    "lost@x.com": "MISSING",
    "gone@x.com": "MISSING",
    "wide@x.com": "HUBSPOT_NEWER",
    "pending@x.com": "PENDING",
}


@pytest.fixture
def synced_world(warehouse, sandbox):
    """A sync's ledger, and HubSpot changed behind its back in every way (see EXPECTED)."""
    emails = [e for e in EXPECTED if e != "pending@x.com"]
    insert_changes(
        warehouse,
        [change(f"c-{e}", e, changed_at=CHANGED) for e in EXPECTED]
        # An older change of the pending key, SYNCED by an earlier run: not the intent.
        + [
            change(
                "old-pending",
                "pending@x.com",
                state="UNSUBSCRIBED",
                changed_at=CHANGED - timedelta(days=3),
            )
        ],
    )
    rows = [synced(f"c-{e}", e) for e in emails]
    rows.append(
        synced(
            "old-pending",
            "pending@x.com",
            "UNSUBSCRIBED",
            dag_run_id="earlier",
            changed_at=CHANGED - timedelta(days=3),
        )
    )
    rows.append(
        {
            "change_id": "c-pending@x.com",
            "email": "pending@x.com",
            "status_state": "SUBSCRIBED",
            "outcome": "FAILED",
            "sent_at": SENT,
            "http_status": 503,
        }
    )
    with warehouse.open() as db:
        db.ensure_ledger()
        db.insert_arrow(LEDGER_TABLE, ledger_rows(rows))
    just_after = SENT + timedelta(seconds=1)
    sandbox.seed_statuses(
        [
            seeded(e, "SUBSCRIBED", just_after)
            for e in ("match@x.com", "lost@x.com", "gone@x.com", "wide@x.com")
        ]
        + [
            seeded("newer@x.com", "UNSUBSCRIBED", SENT + timedelta(days=1)),
            seeded("drift@x.com", "UNSUBSCRIBED", CHANGED - timedelta(days=1)),
        ]
    )
    sandbox.drop_statuses([{"email": "lost@x.com", "subscriptionId": 1001}])
    sandbox.forget_contacts(["gone@x.com"])
    sandbox.set_wide_statuses(
        [
            {
                "email": "wide@x.com",
                "status": "UNSUBSCRIBED",
                "timestamp": (SENT + timedelta(days=2)).isoformat(),
            }
        ]
    )
    return warehouse


def reconcile(warehouse, folder, run_id, **select):
    with warehouse.open() as db:
        batches = steps.select_keys(
            db, folder, parallel_tasks=2, **{"sync_run_ids": None, **select}
        )
    for batch in batches:
        read_batch(
            HubSpotHook(),
            contacts_path=Path(batch["contacts_path"]),
            results_path=Path(batch["results_path"]),
            label="t",
            log=LOG,
        )
    with warehouse.open() as db:
        return steps.compare(db, folder, reconcile_run_id=run_id, checked_at=datetime.now(UTC))


def recorded(warehouse, run_id):
    rows = warehouse.rows(
        f"SELECT * FROM {RECONCILIATION_TABLE} WHERE reconcile_run_id = :run_id", {"run_id": run_id}
    )
    return {r["email"]: r for r in rows}


def test_reconcile_classifies_every_kind_and_records_one_row_per_key(
    synced_world, sandbox, hubspot_connection, tmp_path
):
    verdict = reconcile(synced_world, tmp_path / "r1", "r1")
    rows = recorded(synced_world, "r1")
    assert {e: r["classification"] for e, r in rows.items()} == EXPECTED
    assert verdict.repairable == 3 and verdict.keys == len(EXPECTED)
    assert list(synced_world.rows(f"SELECT * FROM {RECONCILIATION_TABLE} LIMIT 1")[0]) == list(
        RECONCILIATION_COLUMNS
    )
    drift = rows["drift@x.com"]
    assert (drift["intended_state"], drift["intended_change_id"], drift["synced_state"]) == (
        "SUBSCRIBED",
        "c-drift@x.com",
        "SUBSCRIBED",
    )
    assert drift["synced_at"] == SENT and drift["hubspot_state"] == "UNSUBSCRIBED"
    assert drift["hubspot_timestamp"] == CHANGED - timedelta(days=1) and drift["hubspot_source"]
    assert rows["wide@x.com"]["hubspot_source"] == "PORTAL_WIDE"
    pending = rows["pending@x.com"]
    assert (pending["intended_change_id"], pending["synced_state"]) == (
        "c-pending@x.com",
        "UNSUBSCRIBED",
    )
    # The drift view: the latest check per key that is not MATCH, and since when it differs.
    view = {r["email"]: r for r in synced_world.rows(f"SELECT * FROM {DRIFT_VIEW}")}
    assert set(view) == set(EXPECTED) - {"match@x.com"}
    assert view["drift@x.com"]["differs_since"] == view["drift@x.com"]["checked_at"]

    # Idempotent per run: recording the run again leaves one row per key.
    reconcile(synced_world, tmp_path / "r1", "r1")
    assert len(synced_world.rows(f"SELECT * FROM {RECONCILIATION_TABLE}")) == len(EXPECTED)


def test_a_sync_runs_keys_and_emails_restrict_the_check(
    synced_world, sandbox, hubspot_connection, tmp_path
):
    reconcile(synced_world, tmp_path / "r1", "r1", sync_run_ids=["earlier"])
    assert set(recorded(synced_world, "r1")) == {"pending@x.com"}
    reconcile(synced_world, tmp_path / "r2", "r2", emails=("DRIFT@x.com ", "match@x.com"))
    assert set(recorded(synced_world, "r2")) == {"drift@x.com", "match@x.com"}


def test_a_repair_extract_takes_exactly_the_drift_and_missing_keys(
    synced_world, sandbox, hubspot_connection, tmp_path
):
    reconcile(synced_world, tmp_path / "r1", "r1")
    window = pipeline.Window(
        dag_run_id="manual__repair",
        interval_start=SENT,
        interval_end=SENT + timedelta(days=1),
        lookback_days=1,
        repair_run_id="r1",
    )
    with synced_world.open() as db:
        assert pipeline.extract(db, tmp_path / "sync", window) == {"candidates": 3}
    candidates = staging.read_table(tmp_path / "sync" / staging.CANDIDATES).to_pylist()
    assert {c["change_id"] for c in candidates} == {"c-drift@x.com", "c-lost@x.com", "c-gone@x.com"}
    assert all(c["key_latest_change_id"] == c["change_id"] for c in candidates)
    assert all(c["key_synced_changed_at"] == CHANGED for c in candidates)


@pytest.mark.parametrize("contacts", [1, 3, 7, 50_000, 120_000, 1_000_000])
def test_read_batches_cover_every_contact_in_a_multiple_of_the_pool_slots(contacts):
    ranges = steps.read_batch_ranges(contacts, 4)
    assert ranges[0][0] == 0 and ranges[-1][1] == contacts
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert len(ranges) % 4 == 0 or len(ranges) == contacts
    assert max(stop - start for start, stop in ranges) <= steps.READ_BATCH_CONTACTS


class _Event:
    def __init__(self, extra):
        self.extra = extra


@pytest.mark.parametrize(
    ("params", "events", "expected"),
    [
        # Triggered by the ledger Asset: the runs its events name (several may be queued).
        (
            {},
            {"ledger": [_Event({"dag_run_id": "s2"}), _Event({"dag_run_id": "s1"})]},
            ["s1", "s2"],
        ),
        # The weekly run and a plain manual run: every key.
        ({}, {}, None),
        ({"full": True}, {"ledger": [_Event({"dag_run_id": "s1"})]}, None),
        ({"sync_run_id": "s9"}, {}, ["s9"]),
        # An event without a run id (e.g. created by hand) does not narrow the check.
        ({}, {"ledger": [_Event({})]}, None),
    ],
)
def test_which_sync_runs_a_reconcile_checks(params, events, expected):
    from include.consent_reconcile.runtime import sync_run_ids

    context = {
        "params": {"full": False, "sync_run_id": None, **params},
        "triggering_asset_events": events,
    }
    assert sync_run_ids(context) == expected
