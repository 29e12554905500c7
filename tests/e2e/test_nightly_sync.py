"""A real nightly DAG run over a DuckDB file and the sandbox, and a rerun of it."""

import pytest

from dev.demo_data import DEMO_INTERVAL_END, create_demo_warehouse
from include.consent_sync.validation import validate_changes
from tests.e2e.helpers import (
    assert_one_row_per_change_per_run,
    expected_hubspot,
    hubspot_view,
    ledger,
    outcomes,
    runs,
    source,
)

pytestmark = pytest.mark.e2e
LOGICAL_DATE = DEMO_INTERVAL_END.isoformat()


def test_nightly_run_syncs_the_latest_valid_status_per_key_and_records_every_change(
    airflow, warehouse, sandbox
):
    import pyarrow as pa

    from include.consent_sync.contract import source_schema

    with warehouse.open() as connection:
        create_demo_warehouse(connection, rows=600)
    result = airflow.run_dag(LOGICAL_DATE, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    rows = ledger(warehouse)
    changes = source(warehouse)
    candidates = [
        c for c in changes if c["changed_at"] is None or c["changed_at"] < DEMO_INTERVAL_END
    ]
    # Every extracted change has exactly one ledger row.
    assert sorted(outcomes(rows)) == sorted(c["change_id"] for c in candidates)
    assert_one_row_per_change_per_run(rows)

    table = pa.Table.from_pylist(candidates, schema=source_schema())
    valid_ids = set(validate_changes(table, now=DEMO_INTERVAL_END).valid["change_id"].to_pylist())
    assert hubspot_view(sandbox) == expected_hubspot(changes, valid_ids, DEMO_INTERVAL_END)
    counts = {}
    for outcome in outcomes(rows).values():
        counts[outcome] = counts.get(outcome, 0) + 1
    assert set(counts) == {"SYNCED", "SKIPPED_SUPERSEDED", "INVALID"}
    assert counts["SYNCED"] == len(hubspot_view(sandbox))
    synced = [r for r in rows if r["outcome"] == "SYNCED"]
    assert all(r["http_status"] == 200 and r["attempts"] >= 1 and r["sent_at"] for r in synced)
    assert all(r["error_message"] for r in rows if r["outcome"] == "INVALID")
    assert (
        "Run manual__" in result.stdout + result.stderr
        and "changes considered" in result.stdout + result.stderr
    )

    # Running the same night again sends nothing and adds no duplicate ledger rows.
    requests_before = len(sandbox.requests())
    again = airflow.run_dag(LOGICAL_DATE, check=False)
    assert again.returncode == 0, again.stdout[-3000:]
    rows_after = ledger(warehouse)
    assert_one_row_per_change_per_run(rows_after)
    new_rows = [r for r in rows_after if r["dag_run_id"] != runs(rows)[0]]
    assert new_rows == []
    assert len(sandbox.requests()) == requests_before
