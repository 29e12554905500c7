"""push_batch (the operator's work) against the sandbox: resume, deferral, auth stop, guard."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from dev.local_airflow import PROJECT
from hubspot_provider.hooks.hubspot import HubSpotAuthError, HubSpotHook
from include.consent_sync.contract import result_schema, source_schema
from include.consent_sync.push import push_batch
from include.consent_sync.staging import ResultJournal, write_table

LOG = logging.getLogger("push-test")


def batch_rows(
    n,
    state="SUBSCRIBED",
    changed_at=datetime(2026, 11, 20, 12, tzinfo=UTC),
    our_unsubscribes=None,
):
    """A batch file's rows; ``our_unsubscribes`` maps a row index to when this pipeline sent
    that key UNSUBSCRIBED (the plan's ``key_sent_unsubscribed_at``)."""
    rows = [
        dict(
            change_id=f"c{i:04d}",
            email=f"user{i}@example.com",
            subscription_id=1001,
            channel="EMAIL",
            status_state=state,
            legal_basis=None,
            legal_basis_explanation=None,
            changed_at=changed_at,
        )
        for i in range(n)
    ]
    table = pa.Table.from_pylist(rows, schema=source_schema())
    sent = [(our_unsubscribes or {}).get(i) for i in range(n)]
    return table.append_column(
        "key_sent_unsubscribed_at", pa.array(sent, pa.timestamp("us", tz="UTC"))
    )


@pytest.fixture
def batch(tmp_path):
    def make(n, **kw):
        rows_path = tmp_path / "batches" / "batch-00000.parquet"
        write_table(batch_rows(n, **kw), rows_path)
        return rows_path, tmp_path / "results" / "batch-00000"

    return make


def run(rows_path, results_path, guard=False, marker=None):
    return push_batch(
        HubSpotHook(),
        rows_path=rows_path,
        results_path=results_path,
        label="push batch 0",
        resubscribe_guard=guard,
        log=LOG,
        progress_every_s=0.5,
        daily_limit_marker=marker,
    )


def staged(results_path):
    return ResultJournal(results_path, result_schema()).read().to_pylist()


def test_every_row_gets_one_result_and_the_sandbox_its_status(sandbox, hubspot_connection, batch):
    rows_path, results_path = batch(30)
    counts = run(rows_path, results_path)
    assert counts == {"SYNCED": 30}
    assert len({r["change_id"] for r in staged(results_path)}) == len(staged(results_path)) == 30
    assert len(sandbox.statuses()) == 30


def test_a_retry_resumes_with_the_rows_not_done(sandbox, hubspot_connection, batch):
    rows_path, results_path = batch(10)
    done = [
        dict.fromkeys(result_schema().names)
        | {"change_id": f"c{i:04d}", "outcome": "SYNCED", "attempts": 1}
        for i in range(4)
    ]
    ResultJournal(results_path, result_schema()).append(done)
    with (results_path / "journal-torn.jsonl").open("wb") as torn:
        torn.write(b'{"change_id":"c0004","outcome":"SYN')  # cut short by a kill
    assert run(rows_path, results_path) == {"SYNCED": 10}
    sent = {r["email"] for r in sandbox.requests() if r["email"]}
    assert sent == {f"user{i}@example.com" for i in range(4, 10)}


def test_daily_limit_defers_the_rest_and_succeeds(sandbox, hubspot_connection, batch):
    hubspot_connection(max_in_flight=1)
    rows_path, results_path = batch(10)
    sandbox.configure(daily_limit=3)
    counts = run(rows_path, results_path)
    assert counts == {"SYNCED": 3, "DEFERRED": 7}
    deferred = [r for r in staged(results_path) if r["outcome"] == "DEFERRED"]
    assert all(r["error_category"] == "DAILY_LIMIT" for r in deferred)


def test_daily_limit_during_the_guards_read_defers_every_row_and_succeeds(
    sandbox, hubspot_connection, batch, tmp_path
):
    hubspot_connection(batch_size=3)  # the guard reads 3 emails per request
    rows_path, results_path = batch(6)
    marker = tmp_path / "daily_limit_reached.txt"
    sandbox.configure(daily_limit=1)
    counts = run(rows_path, results_path, guard=True, marker=marker)
    assert counts == {"DEFERRED": 6}
    assert len(sandbox.requests()) == 2  # two reads, the second answered 429 DAILY; no write
    assert marker.exists() and "push batch 0" in marker.read_text()


def test_a_marked_daily_limit_sends_no_request(sandbox, hubspot_connection, batch, tmp_path):
    # Another push task of the run, or an earlier attempt, met the limit: spend nothing on it.
    rows_path, results_path = batch(5)
    marker = tmp_path / "daily_limit_reached.txt"
    marker.write_text("2026-11-21T02:10:00+00:00 push batch 1: daily limit reached\n")
    assert run(rows_path, results_path, guard=True, marker=marker) == {"DEFERRED": 5}
    assert sandbox.requests() == []
    assert {r["error_category"] for r in staged(results_path)} == {"DAILY_LIMIT"}


def test_auth_refusal_raises_after_staging_what_finished(sandbox, hubspot_connection, batch):
    hubspot_connection(token="revoked-token")
    rows_path, results_path = batch(20)
    with pytest.raises(HubSpotAuthError, match="401"):
        run(rows_path, results_path)
    assert staged(results_path) == []  # the rows stay unsent; load_results defers them
    assert len(sandbox.requests()) <= 4


def test_resubscribe_guard_keeps_a_newer_hubspot_opt_out(sandbox, hubspot_connection, batch):
    rows_path, results_path = batch(3)
    sandbox.seed_statuses(
        [
            {
                "email": "user0@example.com",
                "subscriptionId": 1001,
                "channel": "EMAIL",
                "status": "UNSUBSCRIBED",
                "timestamp": "2026-11-20T18:00:00Z",
            },  # after the change: keep it
            {
                "email": "user1@example.com",
                "subscriptionId": 1001,
                "channel": "EMAIL",
                "status": "UNSUBSCRIBED",
                "timestamp": "2026-11-19T18:00:00Z",
            },  # before the change: resubscribe
        ]
    )
    counts = run(rows_path, results_path, guard=True)
    assert counts == {"SKIPPED_HUBSPOT_NEWER": 1, "SYNCED": 2}
    assert sandbox.statuses()[("user0@example.com", 1001, "EMAIL")]["status"] == "UNSUBSCRIBED"
    assert sandbox.statuses()[("user1@example.com", 1001, "EMAIL")]["status"] == "SUBSCRIBED"


def test_resubscribe_guard_tells_our_own_unsubscribe_from_a_contacts_opt_out(
    sandbox, hubspot_connection, batch
):
    # Both contacts hold UNSUBSCRIBED since 18:00, after the 12:00 resubscribe. user0's is the
    # unsubscribe we sent at 17:59:58 (a late-arriving resubscribe must still go through);
    # user1 opted out in HubSpot hours after our unsubscribe of 10:00.
    rows_path, results_path = batch(
        2,
        our_unsubscribes={
            0: datetime(2026, 11, 20, 17, 59, 58, tzinfo=UTC),
            1: datetime(2026, 11, 20, 10, tzinfo=UTC),
        },
    )
    sandbox.seed_statuses(
        [
            {
                "email": f"user{i}@example.com",
                "subscriptionId": 1001,
                "channel": "EMAIL",
                "status": "UNSUBSCRIBED",
                "timestamp": "2026-11-20T18:00:00Z",
            }
            for i in range(2)
        ]
    )
    assert run(rows_path, results_path, guard=True) == {"SKIPPED_HUBSPOT_NEWER": 1, "SYNCED": 1}
    assert sandbox.statuses()[("user0@example.com", 1001, "EMAIL")]["status"] == "SUBSCRIBED"
    assert sandbox.statuses()[("user1@example.com", 1001, "EMAIL")]["status"] == "UNSUBSCRIBED"


def test_emails_and_the_token_stay_out_of_the_log(sandbox, hubspot_connection, batch, caplog):
    rows_path, results_path = batch(5)
    sandbox.script([{"status": 400, "category": "VALIDATION_ERROR", "message": "bad", "times": 5}])
    with caplog.at_level(logging.INFO):
        run(rows_path, results_path)
    text = caplog.text
    assert "u***@example.com" in text
    assert "user0@example.com" not in text and "sandbox-token" not in text


KILLABLE_PUSH = """
import logging, sys
from pathlib import Path
sys.path[:0] = [{project!r}, {plugins!r}]
from hubspot_provider.hooks.hubspot import HubSpotHook
from include.consent_sync.push import push_batch
logging.basicConfig(level=logging.INFO)
push_batch(HubSpotHook(), rows_path=Path({rows!r}), results_path=Path({results!r}), label="push",
           resubscribe_guard=False, log=logging.getLogger("push"))
"""


def test_a_push_killed_with_sigkill_resumes_without_losing_or_repeating_a_row(
    sandbox, hubspot_connection, batch
):
    rows_path, results_path = batch(400)
    sandbox.configure(latency_ms=15)
    code = KILLABLE_PUSH.format(
        project=str(PROJECT),
        plugins=str(PROJECT / "plugins"),
        rows=str(rows_path),
        results=str(results_path),
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    deadline = time.monotonic() + 60
    while len(staged(results_path)) < 50:  # mid-batch: some parts written, most rows to go
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {r["change_id"] for r in staged(results_path)}
    assert 0 < len(before) < 400, "the kill should land mid-batch"

    counts = run(rows_path, results_path)

    results = staged(results_path)
    assert counts == {"SYNCED": 400}
    assert sorted(r["change_id"] for r in results) == [f"c{i:04d}" for i in range(400)]
    assert len(sandbox.statuses()) == 400
    writes = Counter(r["email"] for r in sandbox.requests() if r["email"])
    # Every answer was journaled before the next request started: only the requests in flight
    # at the kill (max_in_flight, 4 by default) may have been sent twice.
    assert sum(writes.values()) - 400 <= 4
    assert set(writes.values()) <= {1, 2}
    assert json.dumps(counts)
