"""Warehouse access: the pipeline's SQL, run on DuckDB or PostgreSQL through one small interface.

SQL lives in ``sql/*.sql``, written once for both engines with ``:name`` parameters; this module
is the one place that knows how each engine binds parameters and bulk-loads Arrow tables.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from include.consent_sync.contract import LEDGER_TABLE
from include.consent_sync.email_key import key_email
from include.consent_sync.run_record import record_values

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

        emails = sorted({key_email(e) for e in emails})
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

    def replace_run_rows(self, dag_run_id: str, rows) -> list[str]:
        """Record one run's ledger rows in one transaction (an idempotent load).

        The run's unfinished rows (FAILED, DEFERRED, DRY_RUN) are replaced by ``rows``; its final
        rows stay as they are, and rows of ``rows`` for those changes are dropped. Returns the
        outcome of every row the run now has in the ledger.
        """
        import pyarrow.compute as pc

        self.begin()
        try:
            self.execute(load_sql("delete_unfinished_run_rows"), {"dag_run_id": dag_run_id})
            kept = self.run_outcomes(dag_run_id)
            if kept.num_rows:
                rows = rows.filter(
                    pc.invert(pc.is_in(rows["change_id"], value_set=kept["change_id"]))
                )
            self.insert_arrow(LEDGER_TABLE, rows)
            outcomes = kept["outcome"].to_pylist() + rows["outcome"].to_pylist()
            self.record_run(record_values(dag_run_id, Counter(outcomes), **_timing(rows)))
        except BaseException:
            self.rollback()
            raise
        self.commit()
        return outcomes

    def record_run(self, values: Mapping[str, Any]) -> None:
        """Insert or update one run's record (see :mod:`include.consent_sync.run_record`)."""
        self.execute(load_sql("upsert_run_record"), values)

    def earlier_run_records(self, interval_end, limit: int) -> list[dict[str, Any]]:
        """Records of the runs with an earlier interval end, newest first."""
        params = {"interval_end": interval_end, "limit": limit}
        return self.query_arrow(load_sql("earlier_run_records"), params).to_pylist()

    def top_reasons(self, dag_run_id: str) -> list:
        """A run's non-synced rows, grouped (see :class:`include.consent_sync.alerts.Reason`)."""
        from include.consent_sync.alerts import Reason

        rows = self.query_arrow(load_sql("run_top_reasons"), {"dag_run_id": dag_run_id})
        return [
            Reason(r["outcome"], r["category"], r["row_count"], r["example_email"])
            for r in rows.to_pylist()
        ]

    def run_outcomes(self, dag_run_id: str):
        """One run's ledger rows as an Arrow table of ``change_id`` and ``outcome``."""
        return self.query_arrow(load_sql("run_outcomes"), {"dag_run_id": dag_run_id})

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


def _require_database_name(name: str | None) -> None:
    if not name:
        raise ValueError("a postgres consent_warehouse connection needs schema = the database name")


def _require_database_file(path: str | None) -> None:
    if not path or path == ":memory:":
        raise ValueError(
            "a duckdb consent_warehouse connection needs host = the database file path "
            "(an in-memory database would lose the ledger when the task ends)"
        )


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file (the embedded default).

    :param path: the database file.
    :param connection: an open DuckDB connection to it (``DuckDBHook.get_conn()`` in a task);
        opened here when None (dev scripts and tests).
    """

    dialect = "duckdb"

    def __init__(self, path: str, connection=None) -> None:
        import duckdb

        _require_database_file(path)
        self.path = path
        self.connection = connection if connection is not None else duckdb.connect(path)
        self.connection.execute("SET TimeZone = 'UTC'")

    @staticmethod
    def _bind(sql: str) -> str:
        return _PARAM.sub(r"$\1", sql)

    def query_arrow(self, sql, params=None):
        return self.connection.sql(self._bind(sql), params=dict(params or {})).to_arrow_table()

    def execute(self, sql, params=None):
        self.connection.execute(self._bind(sql), dict(params or {}))

    def insert_arrow(self, table_name, table):
        # Positional, like INSERT INTO ... SELECT *. (A registered view would have to be
        # unregistered in an aborted transaction, which fails and hides the insert's own error.)
        self.connection.from_arrow(table).insert_into(table_name)

    def begin(self):
        self.connection.execute("BEGIN TRANSACTION")

    def commit(self):
        self.connection.execute("COMMIT")

    def rollback(self):
        self.connection.execute("ROLLBACK")

    def close(self):
        self.connection.close()


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database, through psycopg 3.

    Rows travel as CSV through ``COPY``, both ways: ``insert_arrow`` streams the Arrow table as
    CSV into ``COPY ... FROM STDIN`` and ``query_arrow`` parses ``COPY (query) TO STDOUT`` with
    pyarrow, typed from the query's result columns (see :func:`_arrow_type`). In CSV an unquoted
    empty field is NULL and a quoted one (``""``) the empty string, both ways, so NULL and ``''``
    stay apart and any text (commas, quotes, newlines, backslashes, ``\\.``) round-trips.
    Parameters are bound client-side (``ClientCursor``), as ``COPY (query)`` cannot take server
    parameters. The session runs in autocommit mode in time zone UTC; :meth:`begin` opens a
    transaction.

    :param connection: an open psycopg 3 connection (``PostgresHook.get_conn()`` in a task, see
        :func:`open_warehouse`; :meth:`connect` in dev scripts and tests). The warehouse owns it.
    """

    dialect = "postgres"
    COPY_CHUNK_ROWS = 100_000

    def __init__(self, connection) -> None:
        from psycopg import ClientCursor
        from psycopg.rows import tuple_row

        self.connection = connection
        self.connection.autocommit = True
        # The hook's ``cursor`` extra (dictcursor, ...) would change the rows this class reads.
        self.connection.row_factory = tuple_row
        self.connection.cursor_factory = ClientCursor
        self.connection.execute(
            "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'"
        )

    @classmethod
    def connect(cls, **params: Any) -> PostgresWarehouse:
        """Open a session with libpq parameters (``host``, ``port``, ``dbname``, ``user`` ...)."""
        import psycopg

        _require_database_name(params.get("dbname"))
        return cls(psycopg.connect(**{k: v for k, v in params.items() if v is not None}))

    @staticmethod
    def _bind(sql: str) -> str:
        """``:name`` to psycopg's ``%(name)s``; a literal ``%`` becomes ``%%`` (always bound)."""
        return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))

    def _mogrify(self, sql: str, params: Mapping[str, Any] | None) -> str:
        with self.connection.cursor() as cursor:
            return cursor.mogrify(self._bind(sql), dict(params or {}))

    def query_arrow(self, sql, params=None):
        import pyarrow as pa

        # Without parameters psycopg sends a query as is: a ``%`` in it stays a ``%``.
        query = self._mogrify(sql, params).strip().rstrip(";").rstrip()
        with self.connection.cursor() as cursor:
            if not _COPYABLE.match(_strip_leading_comments(query)):
                cursor.execute(query)
                rows = cursor.fetchall() if cursor.description else []
                return _rows_to_arrow(cursor.description or (), rows)
            # The result's columns and types, without running the query (LIMIT 0 stops at once).
            cursor.execute(f"SELECT * FROM (\n{query}\n) AS described LIMIT 0")
            columns = cursor.description
            buffer = io.BytesIO()
            with cursor.copy(f"COPY (\n{query}\n) TO STDOUT WITH (FORMAT csv)") as copy:
                for data in copy:
                    buffer.write(data)
        return _csv_to_arrow(columns, buffer.getbuffer(), pa)

    def execute(self, sql, params=None):
        with self.connection.cursor() as cursor:
            cursor.execute(self._bind(sql), dict(params or {}))

    def insert_arrow(self, table_name, table):
        target = ".".join(_quote_identifier(part) for part in table_name.split("."))
        with (
            self.connection.cursor() as cursor,
            cursor.copy(f"COPY {target} FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            for chunk in _csv_chunks(table, self.COPY_CHUNK_ROWS):
                copy.write(chunk)

    def ensure_ledger(self) -> None:
        """Create or upgrade the ledger in one transaction, one session at a time.

        PostgreSQL's DDL is transactional: a reader never sees a view dropped and not yet
        recreated, and two runs loading at once do not race on ``CREATE``.
        """
        self.begin()
        try:
            self.execute("SELECT pg_advisory_xact_lock(hashtext(:lock))", {"lock": LEDGER_TABLE})
            super().ensure_ledger()
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def begin(self):
        self.execute("BEGIN")

    def commit(self):
        self.execute("COMMIT")

    def rollback(self):
        self.execute("ROLLBACK")

    def close(self):
        self.connection.close()


_COPYABLE = re.compile(r"(?is)^\(*\s*(select|with|values|table)\b")
_LEADING_COMMENTS = re.compile(r"^(\s*(--[^\n]*(\n|$)|/\*.*?\*/))*\s*", re.S)


def _timing(rows) -> dict[str, Any]:
    """Interval and timing of a load from its rows (none when it loaded none)."""
    import pyarrow.compute as pc

    if not rows.num_rows:
        return {}
    return {
        "interval_start": rows["interval_start"][0].as_py(),
        "interval_end": rows["interval_end"][0].as_py(),
        "started_at": pc.min(pc.coalesce(rows["sent_at"], rows["recorded_at"])).as_py(),
        "finished_at": pc.max(rows["recorded_at"]).as_py(),
    }


def _strip_leading_comments(sql: str) -> str:
    return _LEADING_COMMENTS.sub("", sql, count=1)


def _quote_identifier(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


# PostgreSQL type OIDs (pg_type) and the Arrow types their values become; anything else is text.
_INT8, _NUMERIC = 20, 1700


def _arrow_type(type_code: int, precision: int | None = None, scale: int | None = None):
    """The Arrow type of a result column of PostgreSQL type ``type_code`` (None: see caller)."""
    import pyarrow as pa

    simple = {
        16: pa.bool_(),
        20: pa.int64(),
        21: pa.int16(),
        23: pa.int32(),
        26: pa.int64(),  # oid
        700: pa.float32(),
        701: pa.float64(),
        1082: pa.date32(),
        1083: pa.time64("us"),
        1114: pa.timestamp("us"),
        1184: pa.timestamp("us", tz="UTC"),
    }
    if type_code in simple:
        return simple[type_code]
    if type_code == _NUMERIC:
        if precision and 0 < precision <= 38 and scale is not None and scale >= 0:
            return pa.decimal128(precision, scale)
        return None  # unconstrained numeric (e.g. SUM(bigint)): decided from the values
    return pa.string()


def _numeric_values(strings):
    """An unconstrained ``numeric`` column: int64 when every value is a whole number that fits,
    else float64 (``SUM(bigint)`` is ``numeric`` in PostgreSQL, a count of rows in practice)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    whole = pc.all(pc.match_substring_regex(strings, r"^-?[0-9]{1,18}$")).as_py()
    return pc.cast(strings, pa.int64() if whole in (True, None) else pa.float64())


def _csv_to_arrow(columns, data, pa):
    import pyarrow.csv as csv

    names = [column.name for column in columns]
    types = [_arrow_type(c.type_code, c.precision, c.scale) for c in columns]
    read_types = [t if t is not None else pa.string() for t in types]
    if not data:
        return pa.Table.from_arrays(
            [pa.array([], t if t is not None else pa.int64()) for t in types], names=names
        )
    # Parse under positional names, so duplicate result column names stay apart.
    keys = [f"c{i}" for i in range(len(names))]
    table = csv.read_csv(
        pa.py_buffer(data),
        read_options=csv.ReadOptions(column_names=keys, block_size=16 << 20),
        parse_options=csv.ParseOptions(newlines_in_values=True),
        convert_options=csv.ConvertOptions(
            column_types=dict(zip(keys, read_types, strict=True)),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    arrays = [
        _numeric_values(table[key]) if kind is None else table[key]
        for key, kind in zip(keys, types, strict=True)
    ]
    return pa.Table.from_arrays(arrays, names=names)


def _rows_to_arrow(columns, rows):
    """Fallback for statements COPY cannot wrap (e.g. ``SHOW``): rows fetched by the cursor."""
    import pyarrow as pa

    arrays = []
    for index, column in enumerate(columns):
        values = [row[index] for row in rows]
        kind = _arrow_type(column.type_code, column.precision, column.scale)
        if kind is None:
            strings = pa.array([None if v is None else str(v) for v in values], pa.string())
            arrays.append(_numeric_values(strings))
        else:
            arrays.append(pa.array(values, kind))
    return pa.Table.from_arrays(arrays, names=[column.name for column in columns])


def _utc_text(batch):
    """Time-zone-aware timestamps as UTC text (``... +00``): Arrow's CSV writer formats them
    about ten times slower than naive ones (2 s per million values)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for index, field in enumerate(batch.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            naive = batch.column(index).cast(pa.timestamp(field.type.unit))  # UTC wall clock
            text = pc.binary_join_element_wise(naive.cast(pa.string()), "+00", "")
            batch = batch.set_column(index, field.name, text)
    return batch


def _csv_chunks(table, chunk_rows: int):
    """An Arrow table as CSV for ``COPY FROM``, ``chunk_rows`` rows at a time (bounded memory).

    Strings are always quoted and NULL is an unquoted empty field, as PostgreSQL's CSV reads them.
    """
    import pyarrow.csv as csv

    for batch in table.to_batches(max_chunksize=chunk_rows):
        if batch.num_rows:
            chunk = io.BytesIO()
            csv.write_csv(_utc_text(batch), chunk, csv.WriteOptions(include_header=False))
            yield chunk.getbuffer()


def open_warehouse(conn_id: str) -> Warehouse:
    """Open the warehouse the Airflow connection ``conn_id`` points at.

    A ``duckdb`` connection opens through the DuckDB provider's ``DuckDBHook`` (host = database
    file; its extras such as ``memory_limit`` and ``threads`` apply). A ``postgres`` connection
    opens through the Postgres provider's ``PostgresHook`` (schema = database; its extras such as
    ``sslmode``, ``options``, ``application_name`` and ``iam`` apply).
    """
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    conn_type = (connection.conn_type or "").lower()
    if conn_type == "duckdb":
        from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

        hook = DuckDBHook(duckdb_conn_id=conn_id)
        database = hook.get_database()
        _require_database_file(database)  # before the hook opens anything
        return DuckDBWarehouse(database, hook.get_conn())
    if conn_type in ("postgres", "postgresql"):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        _require_database_name(connection.schema)  # else libpq would pick the user's database
        return PostgresWarehouse(PostgresHook(postgres_conn_id=conn_id).get_conn())
    raise ValueError(
        f"connection {conn_id!r} has type {conn_type!r}: the warehouse must be a "
        "'duckdb' connection (host = database file) or a 'postgres' connection "
        "(host, port, schema = database, login, password)"
    )
