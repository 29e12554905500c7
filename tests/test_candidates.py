"""Which changes a run considers: candidates.sql on a real DuckDB file, with a real ledger."""

import re
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from include.consent_sync.contract import FINAL_OUTCOMES, ledger_schema
from include.consent_sync.pipeline import Window, candidate_params
from include.consent_sync.warehouse import load_sql
from tests.conftest import INTERVAL_END, INTERVAL_START, change, insert_changes

NOON = datetime(2026, 11, 20, 12, tzinfo=UTC)


def candidates(warehouse_under_test, run_id="run-2", *, resync=False, emails=(), lookback_days=30):
    window = Window(run_id, INTERVAL_START, INTERVAL_END, lookback_days, resync, tuple(emails))
    with warehouse_under_test.open() as warehouse:
        warehouse.ensure_ledger()
        table = warehouse.candidates(candidate_params(window))
    return {row["change_id"]: row for row in table.to_pylist()}


def record(warehouse_under_test, run_id, outcomes, sent_at=None):
    """Put ledger rows {change_id: outcome} for run_id."""
    rows = []
    with warehouse_under_test.open() as warehouse:
        warehouse.ensure_ledger()
        source = {
            r["change_id"]: r
            for r in warehouse.query_arrow("SELECT * FROM consent_changes").to_pylist()
        }
        for change_id, outcome in outcomes.items():
            row = dict.fromkeys(ledger_schema().names)
            row.update(source[change_id])
            row.update(
                dag_run_id=run_id, outcome=outcome, recorded_at=NOON, attempts=1, sent_at=sent_at
            )
            rows.append(row)
        warehouse.replace_run_rows(run_id, pa.Table.from_pylist(rows, schema=ledger_schema()))


def test_window_lookback_and_late_rows(warehouse):
    insert_changes(
        warehouse,
        [
            change("in-interval"),
            change("late-arrival", changed_at=NOON - timedelta(days=3)),
            change("too-old", changed_at=NOON - timedelta(days=40)),
            change("after-end", changed_at=INTERVAL_END),
            change("no-timestamp", changed_at=None),
        ],
    )
    assert set(candidates(warehouse)) == {"in-interval", "late-arrival", "no-timestamp"}
    assert "late-arrival" not in candidates(warehouse, lookback_days=2)


def test_final_outcomes_are_done_but_failed_deferred_and_dry_run_come_back(warehouse):
    ids = ["synced", "rejected", "invalid", "failed", "deferred", "dry"]
    insert_changes(warehouse, [change(i, email=f"{i}@x.com") for i in ids])
    record(
        warehouse,
        "run-1",
        {
            "synced": "SYNCED",
            "rejected": "REJECTED",
            "invalid": "INVALID",
            "failed": "FAILED",
            "deferred": "DEFERRED",
            "dry": "DRY_RUN",
        },
    )
    found = candidates(warehouse)
    assert set(found) == {"failed", "deferred", "dry"}
    assert found["failed"]["failed_runs"] == 1 and found["deferred"]["failed_runs"] == 0
    # The run that wrote those rows, run again, reconsiders only what it left unfinished.
    assert set(candidates(warehouse, run_id="run-1")) == {"failed", "deferred", "dry"}


def test_latest_change_of_the_key_and_newest_synced_are_carried(warehouse):
    insert_changes(
        warehouse,
        [
            change("old", email="Jane@Example.com ", changed_at=NOON - timedelta(hours=2)),
            change("new", email="jane@example.com", changed_at=NOON, state="UNSUBSCRIBED"),
            change("tie-a", email="t@x.com", changed_at=NOON),
            change("tie-b", email="t@x.com", changed_at=NOON),
        ],
    )
    record(warehouse, "run-1", {"old": "SYNCED"})
    found = candidates(warehouse)
    assert found["new"]["key_latest_change_id"] == "new"
    assert found["new"]["key_synced_changed_at"] == NOON - timedelta(hours=2)
    assert found["tie-a"]["key_latest_change_id"] == "tie-b"  # ties: the larger change_id wins


def test_our_last_write_to_a_key_is_carried_when_it_was_an_unsubscribe(warehouse):
    earlier, later = NOON - timedelta(hours=3), NOON - timedelta(hours=2)
    insert_changes(
        warehouse,
        [
            change("a-out", email="a@x.com", state="UNSUBSCRIBED", changed_at=earlier),
            change("a-in", email="a@x.com", changed_at=NOON),
            change("b-out", email="b@x.com", state="UNSUBSCRIBED", changed_at=earlier),
            change("b-in", email="b@x.com", changed_at=later),
            change("b-in-again", email="b@x.com", changed_at=NOON),
        ],
    )
    record(warehouse, "run-1", {"a-out": "SYNCED", "b-out": "SYNCED"}, sent_at=earlier)
    record(warehouse, "run-2", {"b-in": "SYNCED"}, sent_at=later)
    found = candidates(warehouse)
    # a: our last write was the unsubscribe; b: we resubscribed since, so HubSpot's
    # UNSUBSCRIBED for b, if any, is not ours.
    assert found["a-in"]["key_sent_unsubscribed_at"] == earlier
    assert found["b-in-again"]["key_sent_unsubscribed_at"] is None


def test_resync_brings_back_synced_latest_changes_of_the_interval(warehouse):
    insert_changes(warehouse, [change("a", email="a@x.com"), change("b", email="b@x.com")])
    record(warehouse, "run-1", {"a": "SYNCED", "b": "SYNCED"})
    assert candidates(warehouse) == {}
    assert set(candidates(warehouse, resync=True)) == {"a", "b"}


def test_contact_filter(warehouse):
    insert_changes(
        warehouse,
        [
            change("a", email="a+tag@x.com"),
            change("b", email="b@x.com"),
            change("c", email=" A+TAG@x.com"),
        ],
    )
    assert set(candidates(warehouse, emails=["A+tag@X.com"])) == {"a", "c"}


def test_the_sql_lists_of_final_outcomes_are_the_contracts():
    # SQL cannot import the contract: what a run reconsiders and what a re-run may replace must
    # both follow FINAL_OUTCOMES.
    for name in (
        "considered_changes",
        "delete_unfinished_run_rows",
        "ledger_indexes_postgres",
    ):
        lists = re.findall(r"outcome (?:NOT )?IN \(([^)]*)\)", load_sql(name))
        assert lists, name
        for listed in lists:
            assert re.findall(r"'(\w+)'", listed) == list(FINAL_OUTCOMES), name


def test_a_run_replaces_its_own_ledger_rows(warehouse):
    insert_changes(warehouse, [change("a"), change("b", email="b@x.com")])
    record(warehouse, "run-1", {"a": "FAILED", "b": "FAILED"})
    record(warehouse, "run-1", {"a": "SYNCED", "b": "FAILED"})
    rows = warehouse.rows(
        "SELECT change_id, outcome FROM hubspot_consent_sync_results ORDER BY change_id"
    )
    runs = warehouse.rows("SELECT * FROM hubspot_consent_sync_runs")
    latest = warehouse.rows("SELECT * FROM hubspot_consent_sync_latest")
    assert rows == [
        {"change_id": "a", "outcome": "SYNCED"},
        {"change_id": "b", "outcome": "FAILED"},
    ]
    assert runs[0]["changes"] == 2 and runs[0]["synced"] == 1 and runs[0]["failed"] == 1
    assert [r["change_id"] for r in latest] == ["a"]


def test_a_change_superseded_after_the_interval_knows_it(warehouse):
    """A backfill must not send a change that a newer one (even outside its interval) overrides."""
    insert_changes(
        warehouse,
        [
            change("in-interval", "k@x.com", changed_at=NOON),
            change("next-night", "k@x.com", changed_at=INTERVAL_END + timedelta(hours=5)),
        ],
    )
    found = candidates(warehouse)
    assert set(found) == {"in-interval"}
    assert found["in-interval"]["key_latest_change_id"] == "next-night"


def test_a_finished_change_stays_finished_when_its_changed_at_is_edited(warehouse):
    # The window's finished changes are ruled out by the changed_at the ledger recorded; a change
    # the user re-dated since must still be found finished, by its change_id.
    insert_changes(warehouse, [change("moved", changed_at=NOON - timedelta(days=60))])
    record(warehouse, "run-1", {"moved": "SYNCED"})
    with warehouse.open() as connection:
        connection.execute("UPDATE consent_changes SET changed_at = :at", {"at": NOON})
    assert candidates(warehouse) == {}


def test_a_late_row_is_superseded_by_a_newer_finished_change_of_its_key(warehouse):
    insert_changes(
        warehouse,
        [
            change("late", changed_at=NOON - timedelta(days=10)),
            change("newer", email=" JANE@example.com", changed_at=NOON - timedelta(days=5)),
        ],
    )
    record(warehouse, "run-1", {"newer": "REJECTED"})
    assert candidates(warehouse)["late"]["key_latest_change_id"] == "newer"


def test_a_late_row_sees_its_keys_changes_in_and_after_the_interval(warehouse):
    # A late row's key is searched by key up to the interval, and its newer changes come from the
    # interval's range and, beyond the interval's end, by key again.
    insert_changes(
        warehouse,
        [
            change("late-a", "a@x.com", changed_at=NOON - timedelta(days=10)),
            change("tonight-a", "a@x.com", changed_at=NOON),
            change("late-b", "b@x.com", changed_at=NOON - timedelta(days=10)),
            change("next-night-b", "b@x.com", changed_at=INTERVAL_END + timedelta(hours=5)),
            change("late-c", "c@x.com", changed_at=NOON - timedelta(days=10)),
            change("older-c", "c@x.com", changed_at=NOON - timedelta(days=20)),
        ],
    )
    record(warehouse, "run-1", {"tonight-a": "SYNCED", "older-c": "SYNCED"})
    found = candidates(warehouse)
    assert set(found) == {"late-a", "late-b", "late-c"}
    assert found["late-a"]["key_latest_change_id"] == "tonight-a"
    assert found["late-b"]["key_latest_change_id"] == "next-night-b"
    assert found["late-c"]["key_latest_change_id"] == "late-c"


def test_a_key_whose_only_candidate_has_no_timestamp_is_searched_whole(warehouse):
    insert_changes(
        warehouse,
        [
            change("no-timestamp", changed_at=None),
            change("long-ago", changed_at=NOON - timedelta(days=400)),
        ],
    )
    assert candidates(warehouse)["no-timestamp"]["key_latest_change_id"] == "long-ago"


def test_resync_sends_a_key_once_per_run_and_only_its_latest_change(warehouse):
    insert_changes(
        warehouse,
        [change("a-old", changed_at=NOON - timedelta(hours=1)), change("a-new", changed_at=NOON)],
    )
    record(warehouse, "run-1", {"a-old": "SYNCED", "a-new": "SYNCED"})
    assert set(candidates(warehouse, resync=True)) == {"a-new"}
    record(warehouse, "run-2", {"a-new": "SYNCED"})
    assert candidates(warehouse, run_id="run-2", resync=True) == {}


def test_failed_runs_count_other_runs_once_each(warehouse):
    insert_changes(warehouse, [change("f")])
    record(warehouse, "run-0", {"f": "FAILED"})
    record(warehouse, "run-1", {"f": "FAILED"})
    record(warehouse, "run-2", {"f": "FAILED"})
    assert candidates(warehouse, run_id="run-2")["f"]["failed_runs"] == 2


def test_the_emails_filter_needs_no_table(warehouse):
    insert_changes(warehouse, [change("a", email="a@x.com"), change("b", email="b@x.com")])
    window = Window("run-2", INTERVAL_START, INTERVAL_END, emails=("A@x.com ",))
    with warehouse.open() as connection:
        connection.ensure_ledger()
        before = connection.query_arrow("SELECT table_name FROM information_schema.tables")
        found = connection.candidates(candidate_params(window))
        after = connection.query_arrow("SELECT table_name FROM information_schema.tables")
    assert found["change_id"].to_pylist() == ["a"]
    assert sorted(after["table_name"].to_pylist()) == sorted(before["table_name"].to_pylist())


def test_every_source_row_of_an_unfinished_id_reaches_validation_once(warehouse):
    # Extract collects ids first, then their rows: duplicates and rows without a change_id or a
    # changed_at must each come back exactly once (validation quarantines them), and an undated
    # row whose id is finished stays out.
    insert_changes(
        warehouse,
        [
            change("twice"),
            change("twice"),
            change("re-dated", changed_at=NOON - timedelta(days=2)),
            change("re-dated"),
            change(None),
            change(None, changed_at=None),
            change("undated", changed_at=None),
            change("undated", changed_at=None),
            change("undated-done", changed_at=None),
            change("undated-done", changed_at=None),
        ],
    )
    record(warehouse, "run-1", {"undated-done": "INVALID"})
    window = Window("run-2", INTERVAL_START, INTERVAL_END)
    with warehouse.open() as connection:
        rows = connection.candidates(candidate_params(window)).to_pylist()
    found = sorted((r["change_id"] or "", r["changed_at"] is None) for r in rows)
    assert found == [
        ("", False),
        ("", True),
        ("re-dated", False),
        ("re-dated", False),
        ("twice", False),
        ("twice", False),
        ("undated", True),
        ("undated", True),
    ]
