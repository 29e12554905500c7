"""Warehouses for tests: real databases the pipeline runs against, behind one small interface."""

from __future__ import annotations

from include.consent_sync.warehouse import DuckDBWarehouse, Warehouse


class DuckDBTestWarehouse:
    """A fresh DuckDB file."""

    kind = "duckdb"

    def __init__(self, path) -> None:
        self.path = path

    def connection(self) -> dict:
        """The `consent_warehouse` Airflow connection, as AIRFLOW_CONN_* JSON fields."""
        return {"conn_type": "duckdb", "host": str(self.path)}

    def open(self) -> Warehouse:
        return DuckDBWarehouse(str(self.path))

    def rows(self, sql: str, params: dict | None = None) -> list[dict]:
        with self.open() as warehouse:
            return warehouse.query_arrow(sql, params).to_pylist()

    def drop(self) -> None:
        """Nothing to do: the file lives in the test's tmp_path."""
