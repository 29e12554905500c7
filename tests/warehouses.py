"""Warehouses for tests: real databases the pipeline runs against, behind one small interface."""

from __future__ import annotations

import uuid

from dev import local_postgres
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


class PostgresTestWarehouse:
    """A fresh database on the local PostgreSQL server (127.0.0.1:5432, user postgres)."""

    kind = "postgres"

    def __init__(self, database: str | None = None) -> None:
        self.database = database or f"consent_test_{uuid.uuid4().hex[:16]}"

    def create(self) -> PostgresTestWarehouse:
        local_postgres.create_database(self.database)
        return self

    def connection(self) -> dict:
        """The `consent_warehouse` Airflow connection, as AIRFLOW_CONN_* JSON fields."""
        return local_postgres.warehouse_connection(self.database)

    def open(self) -> Warehouse:
        return local_postgres.open_warehouse(self.database)

    def rows(self, sql: str, params: dict | None = None) -> list[dict]:
        with self.open() as warehouse:
            return warehouse.query_arrow(sql, params).to_pylist()

    def drop(self) -> None:
        local_postgres.drop_database(self.database)
