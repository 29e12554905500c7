"""The pipeline's steps on a real warehouse and a staging folder, without Airflow."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk import ObjectStoragePath

from include.consent_sync import pipeline, staging
from include.consent_sync.contract import LATEST_VIEW, LEDGER_TABLE, RUNS_VIEW, SOURCE_TABLE
from include.consent_sync.ledger import RunFacts
from include.consent_sync.planning import PushCapacity
from include.consent_sync.validation import InvalidShareExceeded
from tests.conftest import INTERVAL_END, INTERVAL_START, change, insert_changes

NOON = datetime(2026, 11, 20, 12, tzinfo=UTC)
WINDOW = pipeline.Window("run-1", INTERVAL_START, INTERVAL_END)


def schema_objects(connection) -> list[tuple[str, str]]:
    """The tables and views of the warehouse's schema, by name and kind."""
    return [
        (row["table_name"], row["table_type"])
        for row in connection.query_arrow(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = CURRENT_SCHEMA() ORDER BY table_name"
        ).to_pylist()
    ]


def test_prepare_ledger_makes_the_ledger_ready_and_extract_runs_no_ddl(warehouse, tmp_path):
    insert_changes(warehouse, [change("c1", changed_at=NOON)])
    folder = ObjectStoragePath((tmp_path / "run-1").as_uri())
    with warehouse.open() as connection:
        assert schema_objects(connection) == [(SOURCE_TABLE, "BASE TABLE")]
        pipeline.prepare_ledger(connection)
        prepared = schema_objects(connection)
        assert {(LEDGER_TABLE, "BASE TABLE"), (RUNS_VIEW, "VIEW"), (LATEST_VIEW, "VIEW")} <= set(
            prepared
        )
        # A view extract does not read, gone: extract leaves the schema as it finds it, and the
        # next prepare_ledger puts the view back.
        connection.execute(f"DROP VIEW {LATEST_VIEW}")
        assert pipeline.extract(connection, folder, WINDOW) == {"candidates": 1}
        assert (LATEST_VIEW, "VIEW") not in schema_objects(connection)
        pipeline.prepare_ledger(connection)
        assert schema_objects(connection) == prepared


def test_validate_saves_its_report_with_masked_samples_and_gates_after_staging(warehouse, tmp_path):
    insert_changes(
        warehouse,
        [
            change("ok", "jane@example.com", changed_at=NOON),
            change("bad", "john.doe at example.com", changed_at=NOON),
        ],
    )
    folder = ObjectStoragePath((tmp_path / "run-1").as_uri())  # as the DAG passes it
    with warehouse.open() as connection:
        pipeline.prepare_ledger(connection)
        assert pipeline.extract(connection, folder, WINDOW) == {"candidates": 2}
    with pytest.raises(InvalidShareExceeded, match="1 of 2 rows"):
        pipeline.validate(folder, now=INTERVAL_END, max_invalid_share=0.05)
    # Both halves were staged before the gate, so the ledger still gets every row.
    assert staging.read_table(folder / staging.INVALID)["change_id"].to_pylist() == ["bad"]
    report = json.loads((folder / staging.VALIDATION_REPORT).read_text())
    assert report["invalid_rows"] == 1
    text = json.dumps(report)
    assert "john.doe" not in text and "jane@example.com" not in text

    with warehouse.open() as connection:
        counts = pipeline.load_results(
            connection, folder, RunFacts("run-1", INTERVAL_START, INTERVAL_END, INTERVAL_END, 5)
        )
    assert counts == {"INVALID": 1, "DEFERRED": 1}


def test_plan_cuts_batches_and_a_rerun_of_extract_keeps_pushed_results(warehouse, tmp_path):
    insert_changes(
        warehouse,
        [
            change(f"c{i}", f"user{i}@x.com", changed_at=NOON - timedelta(minutes=i))
            for i in range(10)
        ],
    )
    folder = ObjectStoragePath((tmp_path / "run-1").as_uri())  # as the DAG passes it
    with warehouse.open() as connection:
        pipeline.prepare_ledger(connection)
        pipeline.extract(connection, folder, WINDOW)
    pipeline.validate(folder, now=INTERVAL_END, max_invalid_share=0.05)
    batches = pipeline.plan(
        folder, dry_run=False, max_rows=100, capacity=PushCapacity(100, 1, parallel_tasks=4)
    )
    assert [b["rows"] for b in batches] == [3, 3, 2, 2]
    assert all(b["rows_path"].endswith(f"batch-{b['index']:05d}.parquet") for b in batches)
    (folder / staging.RESULTS / "batch-00000").mkdir(parents=True)
    (folder / staging.RESULTS / "batch-00000" / "part-x.parquet").write_bytes(b"kept")
    staging.clear_derived(folder)
    assert not (folder / staging.BATCHES).exists() and not (folder / staging.CANDIDATES).exists()
    assert (folder / staging.RESULTS / "batch-00000" / "part-x.parquet").exists()
