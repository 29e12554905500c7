"""Warehouse access: the pipeline's SQL, run on DuckDB or PostgreSQL through one small interface.

SQL lives in ``sql/*.sql``, written once for both engines with ``:name`` parameters; this module
is the one place that knows how each engine binds parameters and bulk-loads Arrow tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from include.consent_sync.contract import LEDGER_TABLE

SQL_DIR = Path(__file__).parent / "sql"
_PARAM = re.compile(r"(?<![:\w]):(\w+)")


def load_sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def split_statements(sql: str) -> list[str]:
    """Split a .sql file on ``;`` at line ends (the files keep no ``;`` inside literals)."""
    without_comments = "\n".join(
        line for line in sql.splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip() for s in without_comments.split(";") if s.strip()]


class Warehouse:
    """What the pipeline needs from a warehouse. Use as a context manager."""

    dialect = ""

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None):
        """Run one SELECT and return a pyarrow Table."""
        raise NotImplementedError

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        raise NotImplementedError

    def insert_arrow(self, table_name: str, table) -> None:
        """Bulk-insert an Arrow table whose columns match the target table's, in order."""
        raise NotImplementedError

    def set_contact_filter(self, emails: Iterable[str]) -> None:
        """Fill the session's ``sync_contact_filter`` temp table that candidates.sql reads."""
        self.execute("CREATE TEMPORARY TABLE IF NOT EXISTS sync_contact_filter (email TEXT)")
        self.execute("DELETE FROM sync_contact_filter")
        import pyarrow as pa

        emails = sorted({e.strip().lower() for e in emails})
        if emails:
            self.insert_arrow(
                "sync_contact_filter", pa.table({"email": pa.array(emails, pa.string())})
            )

    def run_script(self, sql: str) -> None:
        for statement in split_statements(sql):
            self.execute(statement)

    def ensure_ledger(self) -> None:
        """Create or upgrade the ledger table and audit views (idempotent)."""
        self.run_script(load_sql("ledger_schema"))

    def source_columns(self, table_name: str) -> dict[str, str]:
        rows = self.query_arrow(load_sql("source_columns"), {"table_name": table_name}).to_pylist()
        return {row["column_name"]: row["data_type"] for row in rows}

    def replace_run_rows(self, dag_run_id: str, rows) -> None:
        """Replace one run's ledger rows with ``rows`` in one transaction (idempotent load)."""
        self.begin()
        try:
            self.execute(load_sql("delete_run"), {"dag_run_id": dag_run_id})
            self.insert_arrow(LEDGER_TABLE, rows)
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def begin(self) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file (the embedded default)."""

    dialect = "duckdb"

    def __init__(self, path: str) -> None:
        import duckdb

        if not path:
            raise ValueError(
                "a duckdb consent_warehouse connection needs host = the database file path"
            )
        self.path = path
        self.connection = duckdb.connect(path)
        self.connection.execute("SET TimeZone = 'UTC'")

    @staticmethod
    def _bind(sql: str) -> str:
        return _PARAM.sub(r"$\1", sql)

    def query_arrow(self, sql, params=None):
        return self.connection.sql(self._bind(sql), params=dict(params or {})).to_arrow_table()

    def execute(self, sql, params=None):
        self.connection.execute(self._bind(sql), dict(params or {}))

    def insert_arrow(self, table_name, table):
        self.connection.register("arrow_rows", table)
        try:
            self.connection.execute(f"INSERT INTO {table_name} SELECT * FROM arrow_rows")
        finally:
            self.connection.unregister("arrow_rows")

    def begin(self):
        self.connection.execute("BEGIN TRANSACTION")

    def commit(self):
        self.connection.execute("COMMIT")

    def rollback(self):
        self.connection.execute("ROLLBACK")

    def close(self):
        self.connection.close()


def open_warehouse(connection) -> Warehouse:
    """Open the warehouse an Airflow connection (``consent_warehouse``) points at."""
    conn_type = (connection.conn_type or "").lower()
    if conn_type == "duckdb":
        return DuckDBWarehouse(connection.host)
    raise ValueError(
        f"connection {connection.conn_id!r} has type {conn_type!r}: the warehouse must be a "
        "'duckdb' connection (host = database file) or a 'postgres' connection"
    )
