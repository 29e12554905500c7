"""Run records: the pure parts, and the upsert on DuckDB and PostgreSQL."""

from datetime import UTC, datetime

import pytest

from include.consent_sync.alerts import Reason
from include.consent_sync.run_record import count_columns, first_stop, record_values, run_url
from tests.test_postgres_warehouse import ledger_rows

# The DAG's tasks in the order the DAG file defines them (``dag.task_dict``).
ORDER = [
    "wait_for_turn",
    "prepare_ledger",
    "extract",
    "validate",
    "plan",
    "push",
    "load_results",
    "announce_ledger",
    "report",
]


def test_the_first_failed_task_in_dag_order_and_its_reason():
    states = {
        "extract": "success",
        "push_0": "success",
        "push_3": "failed",
        "load_results": "failed",
        "report": "running",
    }
    notes = {"push_3": "HubSpotAuthError: 401", "load_results": "OperationalError: gone"}
    stop = first_stop(states, notes, ORDER)
    assert (stop.task, stop.reason) == ("push_3", "HubSpotAuthError: 401")
    assert first_stop({"plan": "failed"}, {}, ORDER).reason.startswith("no reason recorded")
    assert first_stop({"plan": "upstream_failed", "push": "skipped"}, {}, ORDER) is None


def test_counts_and_bad_input():
    assert count_columns({"SYNCED": 2, "DRY_RUN": 1})["changes"] == 3
    with pytest.raises(ValueError, match=r"unknown outcomes \['SENT'\]"):
        count_columns({"SENT": 1})
    with pytest.raises(ValueError, match=r"unknown columns \['colour'\]"):
        record_values("r", {}, colour="red")


def test_the_ui_link_quotes_the_run_id():
    url = run_url(
        "http://airflow:8080/", "hubspot_consent_sync", "manual__2026-11-21T02:00:00+00:00"
    )
    assert url == (
        "http://airflow:8080/dags/hubspot_consent_sync/runs/manual__2026-11-21T02%3A00%3A00%2B00%3A00"
    )


def test_load_then_report_then_a_reload_keeps_the_runs_facts(warehouse):
    finished = datetime(2026, 11, 21, 2, 30, tzinfo=UTC)
    with warehouse.open() as connection:
        connection.ensure_ledger()
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a", "b"], "FAILED"))
        connection.record_run(
            record_values(
                "run-1",
                {"FAILED": 2},
                state="failed",
                failed_task="push_0",
                failure_reason="boom",
                finished_at=finished,
                run_type="manual",
            )
        )
        # load_results again (a cleared task): new counts, the report's facts stay.
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a", "b"], "SYNCED"))
        reasons = connection.top_reasons("run-1")
    (run,) = warehouse.rows("SELECT * FROM hubspot_consent_sync_runs")
    assert (run["changes"], run["synced"], run["failed"]) == (2, 2, 0)
    assert (run["state"], run["failed_task"], run["run_type"]) == ("failed", "push_0", "manual")
    assert run["finished_at"] is not None
    assert reasons == []


def test_top_reasons_and_earlier_records(warehouse):
    with warehouse.open() as connection:
        connection.ensure_ledger()
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a", "b", "c"], "REJECTED"))
        for night, run_id in ((20, "run-0"), (21, "run-1"), (22, "run-2")):
            connection.record_run(
                record_values(
                    run_id,
                    {},
                    interval_end=datetime(2026, 11, night, 2, tzinfo=UTC),
                    state="success",
                )
            )
        reasons = connection.top_reasons("run-1")
        earlier = connection.earlier_run_records(datetime(2026, 11, 22, 2, tzinfo=UTC), 5)
    assert reasons == [Reason("REJECTED", None, 3, "a@x.com")]
    assert [r["dag_run_id"] for r in earlier] == ["run-1", "run-0"]
