"""A night on a warehouse with history (bench_history's scenario, a few thousand rows), the
upgrade of a ledger left by the previous version, and retried loads, on both engines."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from airflow.sdk import ObjectStoragePath

from dev import history_data
from include.consent_sync import pipeline
from include.consent_sync.contract import ledger_schema
from include.consent_sync.ledger import RunFacts
from include.consent_sync.planning import PushCapacity
from include.consent_sync.warehouse import SOURCE_INDEXES
from tests.conftest import change, insert_changes

DATA = Path(__file__).parent / "data"
NIGHT = history_data.Night(new=300, late=20, failed=10)
RUN_ID = history_data.run_id(history_data.NIGHT_END)
WINDOW = pipeline.Window(RUN_ID, history_data.NIGHT_END - timedelta(days=1), history_data.NIGHT_END)


@pytest.fixture
def history(warehouse):
    """The warehouse fixture's database, rebuilt with 3,000 rows of history (50 nights) and the
    night."""
    with warehouse.open() as connection:
        connection.execute("DROP TABLE consent_changes")
        # 50 nights on 500 contacts: keys change again and again.
        history_data.build(connection, 3_000, NIGHT, per_night=60, contacts=500)
    return warehouse


def reference_candidates(connection, window):
    """The candidates as the previous version's query selects them, from the ledger alone."""
    connection.execute("CREATE TEMPORARY TABLE IF NOT EXISTS sync_contact_filter (email TEXT)")
    connection.execute("DELETE FROM sync_contact_filter")
    emails = sorted({e.strip().lower() for e in window.emails})
    if emails:
        connection.insert_arrow("sync_contact_filter", pa.table({"email": emails}))
    params = pipeline.candidate_params(window)
    del params["emails"]
    return connection.query_arrow((DATA / "candidates_v1.sql").read_text(), params)


def by_change(table):
    table = table.cast(pipeline.candidate_schema())
    return sorted(table.to_pylist(), key=lambda row: str(row["change_id"]))


def test_a_night_on_history_considers_its_own_changes_and_records_each_once(history, tmp_path):
    folder = ObjectStoragePath(tmp_path.as_uri())
    with history.open() as connection:
        extracted = pipeline.extract(connection, folder, WINDOW)
    valid = pipeline.validate(folder, now=history_data.NIGHT_END, max_invalid_share=0.05)
    capacity = PushCapacity(rate_limit_per_10s=190, parallel_tasks=2)
    pipeline.plan(folder, dry_run=False, max_rows=10_000, capacity=capacity)
    facts = RunFacts(RUN_ID, WINDOW.interval_start, WINDOW.interval_end, datetime.now(UTC), 3)
    with history.open() as connection:
        recorded = pipeline.load_results(connection, folder, facts)

    expected = history_data.expected_candidates(NIGHT)
    assert extracted == {"candidates": len(expected)}
    assert valid["invalid"] == 3  # 1% of the new rows carry a malformed email
    rows = history.rows(
        "SELECT change_id, outcome FROM hubspot_consent_sync_results WHERE dag_run_id = :run",
        {"run": RUN_ID},
    )
    assert sorted(r["change_id"] for r in rows) == sorted(expected)
    assert sum(recorded.values()) == len(expected) and recorded["INVALID"] == 3
    # Earlier FAILED rows are retried, and know they failed once already.
    (run,) = history.rows(
        "SELECT changes, invalid, deferred, skipped_superseded FROM hubspot_consent_sync_runs "
        "WHERE dag_run_id = :run",
        {"run": RUN_ID},
    )
    assert run == {
        "changes": len(expected),
        "invalid": 3,
        "deferred": recorded.get("DEFERRED", 0),
        "skipped_superseded": recorded.get("SKIPPED_SUPERSEDED", 0),
    }


@pytest.mark.parametrize(
    "window",
    [
        WINDOW,
        pipeline.Window(RUN_ID, WINDOW.interval_start, WINDOW.interval_end, resync=True),
        pipeline.Window(RUN_ID, WINDOW.interval_start, WINDOW.interval_end, lookback_days=3),
        pipeline.Window(
            history_data.run_id(history_data.NIGHT_END - timedelta(days=3)),
            WINDOW.interval_start - timedelta(days=3),
            WINDOW.interval_end - timedelta(days=3),
            resync=True,
        ),
        pipeline.Window(
            RUN_ID, WINDOW.interval_start, WINDOW.interval_end, emails=(" C7@EXAMPLE.COM",)
        ),
    ],
    ids=["night", "resync", "short-lookback", "backfill-resync", "emails"],
)
def test_the_night_keyed_query_agrees_with_the_previous_whole_table_query(history, window):
    """Every rule at once, on history: the new query must select what the old one selected."""
    hour = history_data.NIGHT_END - timedelta(hours=5)
    insert_changes(
        history,
        [
            change("no-timestamp", email="c7@example.com", changed_at=None),
            change("no-timestamp-only", email="lonely@example.com", changed_at=None),
            change("old-of-lonely", email="Lonely@example.com ", changed_at=hour - timedelta(60)),
            change("after-the-night", email=" c7@example.com", changed_at=hour + timedelta(2)),
            change("tie-a", email="c7@example.com", subscription_id=1002, changed_at=hour),
            change("tie-b", email="C7@example.com", subscription_id=1002, changed_at=hour),
            change(None, email="c8@example.com", changed_at=hour),
        ],
    )
    with history.open() as connection:
        # A change whose changed_at the user edited after a run had finished it.
        connection.execute(
            "UPDATE consent_changes SET changed_at = :at WHERE change_id = 'h000000000'",
            {"at": hour},
        )
        connection.ensure_ledger()
        expected = reference_candidates(connection, window)
        found = connection.candidates(pipeline.candidate_params(window))
    assert expected.num_rows > 0 or window.emails
    assert by_change(found) == by_change(expected)


def test_a_ledger_from_the_previous_version_is_upgraded_in_place(warehouse):
    """Rows only, none of the new tables: the first run builds them from the rows."""
    earlier, later = datetime(2026, 11, 10, 3, tzinfo=UTC), datetime(2026, 11, 12, 3, tzinfo=UTC)
    insert_changes(
        warehouse,
        [
            change("a-out", email="A@x.com", state="UNSUBSCRIBED", changed_at=earlier),
            change("b-in", email="b@x.com", changed_at=later),
            change("b-failed", email="b@x.com", subscription_id=1002, changed_at=later),
            change("a-in", email="a@x.com", changed_at=datetime(2026, 11, 20, 9, tzinfo=UTC)),
        ],
    )
    with warehouse.open() as connection:
        connection.run_script((DATA / "ledger_schema_v1.sql").read_text())
        source = {
            r["change_id"]: r
            for r in connection.query_arrow("SELECT * FROM consent_changes").to_pylist()
        }
        rows = []
        for run, change_id, outcome, sent_at in (
            ("run-1", "a-out", "SYNCED", earlier),
            ("run-2", "b-in", "SYNCED", later),
            ("run-2", "b-failed", "FAILED", later),
        ):
            row = dict.fromkeys(ledger_schema().names) | source[change_id]
            rows.append(
                row
                | {"dag_run_id": run, "outcome": outcome, "sent_at": sent_at, "recorded_at": later}
            )
        connection.insert_arrow(
            "hubspot_consent_sync_results", pa.Table.from_pylist(rows, schema=ledger_schema())
        )
        old_runs = connection.query_arrow(
            "SELECT * FROM hubspot_consent_sync_runs ORDER BY dag_run_id"
        ).to_pylist()
        old_latest = connection.query_arrow(
            "SELECT * FROM hubspot_consent_sync_latest ORDER BY change_id"
        ).to_pylist()

        connection.ensure_ledger()
        connection.ensure_ledger()  # again: nothing doubles
        found = {
            r["change_id"]: r
            for r in connection.candidates(
                pipeline.candidate_params(
                    pipeline.Window(
                        "run-3",
                        datetime(2026, 11, 20, 2, tzinfo=UTC),
                        datetime(2026, 11, 21, 2, tzinfo=UTC),
                    )
                ),
            ).to_pylist()
        }
    upgraded_runs = warehouse.rows("SELECT * FROM hubspot_consent_sync_runs ORDER BY dag_run_id")
    # The view keeps its old columns as they were; the columns added since come after them.
    assert [{name: run[name] for name in old_runs[0]} for run in upgraded_runs] == old_runs
    assert list(upgraded_runs[0])[: len(old_runs[0])] == list(old_runs[0])
    assert len(old_runs) == 2 and old_runs[1]["failed"] == 1
    assert (
        warehouse.rows("SELECT * FROM hubspot_consent_sync_latest ORDER BY change_id") == old_latest
    )
    # The guards still see the earlier sends: our last write to a@x.com was the unsubscribe.
    assert set(found) == {"a-in", "b-failed"}
    assert found["a-in"]["key_sent_unsubscribed_at"] == earlier
    assert found["b-failed"]["failed_runs"] == 1


def test_a_retried_load_rewrites_nothing_and_a_changed_one_replaces_the_unfinished_rows(
    warehouse,
):
    insert_changes(warehouse, [change("a"), change("b", email="b@x.com")])
    first, second = datetime(2026, 11, 21, 3, tzinfo=UTC), datetime(2026, 11, 21, 4, tzinfo=UTC)

    def rows(recorded_at, **outcomes):
        source = {r["change_id"]: r for r in warehouse.rows("SELECT * FROM consent_changes")}
        return pa.Table.from_pylist(
            [
                dict.fromkeys(ledger_schema().names)
                | source[change_id]
                | {"dag_run_id": "run-1", "outcome": outcome, "recorded_at": recorded_at}
                for change_id, outcome in outcomes.items()
            ],
            schema=ledger_schema(),
        )

    def recorded():
        return warehouse.rows(
            "SELECT change_id, outcome, recorded_at FROM hubspot_consent_sync_results "
            "ORDER BY change_id"
        )

    with warehouse.open() as connection:
        connection.ensure_ledger()
        connection.replace_run_rows("run-1", rows(first, a="DEFERRED", b="DEFERRED"))
        again = connection.replace_run_rows("run-1", rows(second, a="DEFERRED", b="DEFERRED"))
    assert sorted(again) == ["DEFERRED", "DEFERRED"]
    assert [r["recorded_at"] for r in recorded()] == [first, first]  # untouched
    with warehouse.open() as connection:
        connection.replace_run_rows("run-1", rows(second, a="DEFERRED", b="FAILED"))
    assert [(r["outcome"], r["recorded_at"]) for r in recorded()] == [
        ("DEFERRED", second),
        ("FAILED", second),
    ]
    (run,) = warehouse.rows("SELECT deferred, failed, finished_at FROM hubspot_consent_sync_runs")
    assert run == {"deferred": 1, "failed": 1, "finished_at": second}


@pytest.mark.postgres
def test_extract_names_the_missing_source_indexes_once(postgres_warehouse, tmp_path, caplog):
    from dev.demo_data import create_source_table

    with postgres_warehouse.open() as connection:
        create_source_table(connection)
        pipeline.prepare_ledger(connection)
        with caplog.at_level("WARNING", logger="include.consent_sync.pipeline"):
            pipeline.extract(connection, ObjectStoragePath(tmp_path.as_uri()), WINDOW)
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1
        assert all(statement in warnings[0] for statement in SOURCE_INDEXES)
        for statement in SOURCE_INDEXES:
            connection.execute(statement)
        caplog.clear()
        with caplog.at_level("WARNING", logger="include.consent_sync.pipeline"):
            pipeline.extract(connection, ObjectStoragePath(tmp_path.as_uri()), WINDOW)
        assert not [r for r in caplog.records if r.levelname == "WARNING"]
