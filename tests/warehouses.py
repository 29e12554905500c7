"""Warehouses for tests: real databases the pipeline runs against, behind one small interface."""

from __future__ import annotations

import uuid

from include.consent_sync.warehouse import DuckDBWarehouse, PostgresWarehouse, Warehouse

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
POSTGRES_ADMIN_DB = "postgres"


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


def postgres_admin(connect_timeout: int = 3):
    """An autocommit psycopg2 connection to the server's ``postgres`` database."""
    import psycopg2

    admin = psycopg2.connect(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        user=POSTGRES_USER,
        dbname=POSTGRES_ADMIN_DB,
        connect_timeout=connect_timeout,
    )
    admin.autocommit = True
    return admin


class PostgresTestWarehouse:
    """A fresh database on the local PostgreSQL server (127.0.0.1:5432, user postgres).

    Created from ``template0`` (nobody connects to it, so CREATE DATABASE never waits for the
    template to be free) and dropped with its leftover sessions terminated.
    """

    kind = "postgres"

    def __init__(self, database: str | None = None) -> None:
        self.database = database or f"consent_test_{uuid.uuid4().hex[:16]}"

    def create(self) -> PostgresTestWarehouse:
        admin = postgres_admin()
        try:
            with admin.cursor() as cursor:
                cursor.execute(
                    f"CREATE DATABASE \"{self.database}\" TEMPLATE template0 ENCODING 'UTF8'"
                )
        finally:
            admin.close()
        return self

    def connection(self) -> dict:
        """The `consent_warehouse` Airflow connection, as AIRFLOW_CONN_* JSON fields."""
        return {
            "conn_type": "postgres",
            "host": POSTGRES_HOST,
            "port": POSTGRES_PORT,
            "login": POSTGRES_USER,
            "schema": self.database,
        }

    def open(self) -> Warehouse:
        return PostgresWarehouse(
            host=POSTGRES_HOST, port=POSTGRES_PORT, dbname=self.database, user=POSTGRES_USER
        )

    def rows(self, sql: str, params: dict | None = None) -> list[dict]:
        with self.open() as warehouse:
            return warehouse.query_arrow(sql, params).to_pylist()

    def drop(self) -> None:
        """Terminate sessions still connected (e.g. a killed task's) and drop the database."""
        admin = postgres_admin()
        try:
            with admin.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.database,),
                )
                cursor.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            admin.close()
