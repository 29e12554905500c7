"""Warehouse access: the pipeline's SQL, run on DuckDB or PostgreSQL through one small interface.

SQL lives in ``sql/*.sql``, written once for both engines with ``:name`` parameters; this module
is the one place that knows how each engine binds parameters and bulk-loads Arrow tables.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from include.consent_sync.contract import (
    KEY_STATE_TABLE,
    LEDGER_TABLE,
    RUN_RECORDS_TABLE,
    SOURCE_TABLE,
)

SQL_DIR = Path(__file__).parent / "sql"
#: Extract's temporary tables (considered_changes.sql): the ids of the window's changes not yet
#: ruled out, then the rows the run considers, which candidates.sql reads.
CONSIDERED_TABLES = ("hubspot_consent_sync_unseen_ids", "hubspot_consent_sync_considered")
_PARAM = re.compile(r"(?<![:\w]):(\w+)")

#: The tables kept up to date beside the ledger, and the SQL that writes a run into each (or,
#: given no run, fills it from the whole ledger).
STATE_TABLES = {RUN_RECORDS_TABLE: "record_run", KEY_STATE_TABLE: "record_key_state"}

#: The indexes on the source table that extract's lookups use on PostgreSQL, and how to
#: recognise each in ``pg_indexes.indexdef`` (lower-cased, without spaces or quotes).
SOURCE_INDEXES = {
    f"CREATE INDEX consent_changes_changed_at_id ON {SOURCE_TABLE} (changed_at, change_id);": (
        "usingbtree(changed_at,change_id)"
    ),
    f"CREATE INDEX consent_changes_key ON {SOURCE_TABLE} "
    "(lower(trim(both ' ' from email)), subscription_id, channel, changed_at, change_id);": (
        "usingbtree(lower(trim(both''::textfromemail)),subscription_id,channel"
    ),
}


def load_sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def split_statements(sql: str) -> list[str]:
    """Split a .sql file on ``;`` at line ends (the files keep no ``;`` inside literals)."""
    without_comments = "\n".join(
        line for line in sql.splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip() for s in without_comments.split(";") if s.strip()]


def _final_outcomes():
    import pyarrow as pa

    from include.consent_sync.contract import FINAL_OUTCOMES

    return pa.array([str(o) for o in FINAL_OUTCOMES], pa.string())


def _same_rows(recorded, rows) -> bool:
    """Whether ``rows`` say again what ``recorded`` says (``recorded_at`` aside), in any order.

    Column by column, so that a million-row comparison holds two columns at a time, not two
    sorted copies of both tables.
    """
    import pyarrow.compute as pc

    if recorded.num_rows != rows.num_rows:
        return False
    recorded_order = pc.sort_indices(recorded["change_id"])
    rows_order = pc.sort_indices(rows["change_id"])
    for field in recorded.schema:
        if field.name == "recorded_at":
            continue
        theirs = rows[field.name].cast(field.type).take(rows_order)
        if not recorded[field.name].take(recorded_order).equals(theirs):
            return False
    return True


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

    def run_script(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        for statement in split_statements(sql):
            self.execute(statement, params)

    def candidates(self, params: Mapping[str, Any]):
        """A run's candidate changes (candidates.sql; ``params`` from ``candidate_params``)."""
        with self.considered_changes(params):
            return self.query_arrow(load_sql("candidates"), params)

    @contextmanager
    def considered_changes(self, params: Mapping[str, Any]) -> Iterator[None]:
        """Fill the temporary tables candidates.sql reads (considered_changes.sql), for its
        duration."""
        self._drop_considered()
        try:
            self.run_script(load_sql("considered_changes"), params)
            yield
        finally:
            self._drop_considered()

    def _drop_considered(self) -> None:
        for table_name in CONSIDERED_TABLES:
            self._drop_temporary(table_name)

    def _drop_temporary(self, table_name: str) -> None:
        raise NotImplementedError

    def ensure_ledger(self) -> None:
        """Create or upgrade the ledger, its state tables and audit views, in one transaction.

        A state table that did not exist yet (a ledger left by an earlier version) is filled from
        the ledger rows already there, so the guards still see every earlier send and the runs
        view still lists every earlier run. Idempotent.
        """
        self.begin()
        try:
            self._lock_ledger()
            existing = self.query_arrow(load_sql("existing_tables"), {"names": list(STATE_TABLES)})[
                "table_name"
            ].to_pylist()
            self.run_script(load_sql("ledger_schema"))
            self._ensure_indexes()
            for table, fill in STATE_TABLES.items():
                if table not in existing:
                    self.execute(load_sql(fill), {"dag_run_id": None})
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def _lock_ledger(self) -> None:
        """Keep two sessions from upgrading the ledger at once (where the engine allows both)."""

    def _ensure_indexes(self) -> None:
        """Engine-specific indexes on the pipeline's tables (none on DuckDB)."""

    def missing_source_indexes(self) -> list[str]:
        """``CREATE INDEX`` statements for the source-table indexes extract relies on and that
        are missing (none on DuckDB, whose scans need no index)."""
        return []

    def source_columns(self, table_name: str) -> dict[str, str]:
        rows = self.query_arrow(load_sql("source_columns"), {"table_name": table_name}).to_pylist()
        return {row["column_name"]: row["data_type"] for row in rows}

    def replace_run_rows(self, dag_run_id: str, rows) -> list[str]:
        """Record one run's ledger rows in one transaction (an idempotent load).

        The run's unfinished rows (FAILED, DEFERRED, DRY_RUN) are replaced by ``rows``; its final
        rows stay as they are, and rows of ``rows`` for those changes are dropped. When the
        unfinished rows already say what ``rows`` says (a retried load), nothing is rewritten,
        so a retry costs a read, not a delete and insert of every row. The run's record and the
        key state follow the rows. Returns the outcome of every row the run now has.
        """
        import pyarrow.compute as pc

        self.begin()
        try:
            recorded = self.run_rows(dag_run_id)
            final = pc.is_in(recorded["outcome"], value_set=_final_outcomes())
            kept = recorded.filter(final)
            if kept.num_rows:
                rows = rows.filter(
                    pc.invert(pc.is_in(rows["change_id"], value_set=kept["change_id"]))
                )
            unfinished = recorded.filter(pc.invert(final))
            if _same_rows(unfinished, rows):
                outcomes = recorded["outcome"].to_pylist()
            else:
                self.execute(load_sql("delete_unfinished_run_rows"), {"dag_run_id": dag_run_id})
                self._insert_ledger_rows(rows)
                outcomes = kept["outcome"].to_pylist() + rows["outcome"].to_pylist()
            self.refresh_run_state(dag_run_id)
        except BaseException:
            self.rollback()
            raise
        self.commit()
        return outcomes

    def _insert_ledger_rows(self, rows) -> None:
        """Append rows to the ledger, inside :meth:`replace_run_rows`'s transaction."""
        self.insert_arrow(LEDGER_TABLE, rows)

    def record_run(self, values: Mapping[str, Any]) -> None:
        """Record everything about one run as its last task saw it (see
        :mod:`include.consent_sync.run_record`); the counts come from :meth:`run_outcomes`."""
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

    def refresh_run_state(self, dag_run_id: str | None) -> None:
        """Bring the run's record (counts) and the key state up to date with its ledger rows
        (None: with every run's, as when a ledger is upgraded)."""
        for name in STATE_TABLES.values():
            self.execute(load_sql(name), {"dag_run_id": dag_run_id})

    def run_outcomes(self, dag_run_id: str):
        """One run's ledger rows as an Arrow table of ``change_id`` and ``outcome``."""
        return self.query_arrow(load_sql("run_outcomes"), {"dag_run_id": dag_run_id})

    def run_rows(self, dag_run_id: str):
        """One run's ledger rows, as an Arrow table of the ledger schema."""
        from include.consent_sync.contract import ledger_schema

        return self.query_arrow(load_sql("run_rows"), {"dag_run_id": dag_run_id}).cast(
            ledger_schema()
        )

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
    def _bind(sql: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """``:name`` to DuckDB's ``$name``, with the parameters the statement names (DuckDB
        rejects others, and one parameter set serves every statement of extract)."""
        used = set(_PARAM.findall(sql))
        return _PARAM.sub(r"$\1", sql), {k: v for k, v in (params or {}).items() if k in used}

    def query_arrow(self, sql, params=None):
        statement, bound = self._bind(sql, params)
        return self.connection.sql(statement, params=bound).to_arrow_table()

    def execute(self, sql, params=None):
        self.connection.execute(*self._bind(sql, params))

    def _drop_temporary(self, table_name):
        self.connection.execute(f"DROP TABLE IF EXISTS temp.{table_name}")

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
    #: Loads smaller than this keep the ledger's indexes up to date, whatever the ledger's size:
    #: about a second of upkeep at most, not worth holding every reader of the ledger for.
    REBUILD_INDEXES_MIN_ROWS = 100_000

    def __init__(self, connection) -> None:
        from psycopg import ClientCursor
        from psycopg.rows import tuple_row

        self.connection = connection
        self.connection.autocommit = True
        # The hook's ``cursor`` extra (dictcursor, ...) would change the rows this class reads.
        self.connection.row_factory = tuple_row
        self.connection.cursor_factory = ClientCursor
        # The pipeline's queries are index lookups per candidate. No JIT: compiling them (about
        # 0.5 s per extract, measured) only slows them down. random_page_cost 1.1 (the server's
        # default 4 prices a disk seek): at 4, with a million-row ledger, the planner hashed the
        # whole ledger and source for the night's 31,500 ids (0.65 s) instead of looking them
        # up (0.09 s, measured; BENCHMARKS.md).
        self.connection.execute(
            "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; "
            "SET jit = off; SET random_page_cost = 1.1"
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

    def _drop_temporary(self, table_name):
        self.execute(f"DROP TABLE IF EXISTS pg_temp.{table_name}")

    def insert_arrow(self, table_name, table):
        target = ".".join(_quote_identifier(part) for part in table_name.split("."))
        with (
            self.connection.cursor() as cursor,
            cursor.copy(f"COPY {target} FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            for chunk in _csv_chunks(table, self.COPY_CHUNK_ROWS):
                copy.write(chunk)

    def _insert_ledger_rows(self, rows) -> None:
        # Keeping the ledger's secondary indexes up to date row by row costs about four times
        # what building them afresh does (a million rows: 10 s against 2.7 s, BENCHMARKS.md).
        # So a load at least as large as the ledger (a first sync, a first backfill) drops them
        # and builds them again, in the load's transaction: a failed load leaves them as they
        # were, and readers of the ledger wait for the load's commit meanwhile.
        if rows.num_rows < self.REBUILD_INDEXES_MIN_ROWS or self._ledger_holds_more_than(
            rows.num_rows
        ):
            return super()._insert_ledger_rows(rows)
        indexes = self.query_arrow(
            load_sql("ledger_rebuilt_indexes_postgres"), {"table_name": LEDGER_TABLE}
        ).to_pylist()
        for index in indexes:
            self.execute(f"DROP INDEX {index['index_name']}")
        super()._insert_ledger_rows(rows)
        for index in indexes:
            self.execute(index["definition"])

    def _ledger_holds_more_than(self, row_count: int) -> bool:
        counted = self.query_arrow(load_sql("ledger_rows_up_to"), {"limit": row_count + 1})
        return counted["row_count"][0].as_py() > row_count

    def _lock_ledger(self) -> None:
        # PostgreSQL's DDL is transactional: a reader never sees a view dropped and not yet
        # recreated, and with this lock two runs loading at once do not race on ``CREATE``.
        self.execute("SELECT pg_advisory_xact_lock(hashtext(:lock))", {"lock": LEDGER_TABLE})

    def _ensure_indexes(self) -> None:
        self.run_script(load_sql("ledger_indexes_postgres"))

    def missing_source_indexes(self) -> list[str]:
        definitions = self.query_arrow(
            load_sql("source_indexes_postgres"), {"table_name": SOURCE_TABLE}
        )["indexdef"].to_pylist()
        found = [re.sub(r'[\s"]', "", d.lower()) for d in definitions]
        return [
            statement
            for statement, shape in SOURCE_INDEXES.items()
            if not any(shape in d for d in found)
        ]

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
