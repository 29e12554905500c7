"""open_warehouse: a task's way from the `consent_warehouse` connection to a warehouse session.

DuckDB goes through the DuckDB provider's DuckDBHook, so the connection's extras apply; the
PostgreSQL variants are in test_postgres_warehouse.py.
"""

import json

import pytest

from include.consent_sync.warehouse import DuckDBWarehouse, open_warehouse


def connect(monkeypatch, **fields):
    monkeypatch.setenv("AIRFLOW_CONN_CONSENT_WAREHOUSE", json.dumps(fields))


def test_a_duckdb_connection_opens_through_duckdbhook_with_its_extras(monkeypatch, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    connect(monkeypatch, conn_type="duckdb", host=str(path), extra={"threads": 1})
    with open_warehouse("consent_warehouse") as warehouse:
        assert isinstance(warehouse, DuckDBWarehouse)
        warehouse.execute("CREATE TABLE t AS SELECT 1 AS x")
        found = warehouse.query_arrow(
            "SELECT current_setting('threads') AS threads, current_setting('TimeZone') AS tz"
        ).to_pylist()
    assert found == [{"threads": 1, "tz": "UTC"}]
    with DuckDBWarehouse(str(path)) as again:  # the data is in the file the host names
        assert again.query_arrow("SELECT x FROM t").to_pylist() == [{"x": 1}]


def test_a_duckdb_connection_without_a_file_is_refused(monkeypatch):
    connect(monkeypatch, conn_type="duckdb")
    with pytest.raises(ValueError, match="host = the database file path"):
        open_warehouse("consent_warehouse")


def test_another_connection_type_is_named(monkeypatch):
    connect(monkeypatch, conn_type="mysql", host="db")
    with pytest.raises(ValueError, match="has type 'mysql'"):
        open_warehouse("consent_warehouse")
