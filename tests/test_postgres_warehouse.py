"""PostgresWarehouse on a real PostgreSQL database: COPY both ways, types, DDL, transactions.

Tests taking ``warehouse`` run on both engines (the behaviour must be the same); tests taking
``postgres_warehouse`` are about PostgreSQL itself. Postgres tests skip when no server answers on
127.0.0.1:5432, and fail instead when CI=true.
"""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from dev.demo_data import create_source_table, insert_changes
from include.consent_sync.contract import LEDGER_TABLE, SOURCE_TABLE, ledger_schema, source_schema
from include.consent_sync.validation import SchemaContractError, check_source_schema
from include.consent_sync.warehouse import PostgresWarehouse, open_warehouse
from tests.conftest import change

NOON = datetime(2026, 11, 20, 12, tzinfo=UTC)

NASTY = [
    "comma, inside",
    "double \"quotes\" and 'single'",
    "line\nbreak",
    "windows\r\nline end",
    "back\\slash \\N \\t",
    "\\.",  # COPY's end-of-data marker, as a value
    "tab\there",
    "",  # the empty string, not NULL
    "NULL",
    "null",
    "NaN",
    "ünïcödé – €, 漢字, emoji 😀",
    "  padded  ",
    "percent % sign and %(name)s and :colon",
    '"',
    ",",
    "a" * 10_000,
]


def nasty_rows():
    rows = [
        change(
            f"nasty-{i}",
            email=text,
            explanation=text,
            legal_basis=None if i % 2 else "NON_GDPR",
            changed_at=NOON + timedelta(microseconds=i * 123_457),
        )
        for i, text in enumerate(NASTY)
    ]
    rows.append(
        ("all-null", None, None, None, None, None, None, None),
    )
    return rows


def stored_changes(warehouse):
    return {
        row["change_id"]: row
        for row in warehouse.rows(f"SELECT * FROM {SOURCE_TABLE} ORDER BY change_id")
    }


def ledger_rows(run_id, change_ids, outcome="SYNCED"):
    rows = []
    for change_id in change_ids:
        row = dict.fromkeys(ledger_schema().names)
        row.update(
            change_id=change_id,
            dag_run_id=run_id,
            email=f"{change_id}@x.com",
            subscription_id=1001,
            channel="EMAIL",
            status_state="SUBSCRIBED",
            changed_at=NOON,
            outcome=outcome,
            attempts=1,
            recorded_at=NOON,
        )
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=ledger_schema())


# ---------------------------------------------------------------------------------------------
# Both engines
# ---------------------------------------------------------------------------------------------


def test_bulk_insert_round_trips_nasty_text_nulls_and_timestamps(warehouse):
    rows = nasty_rows()
    with warehouse.open() as connection:
        insert_changes(connection, rows)
        table = connection.query_arrow(f"SELECT * FROM {SOURCE_TABLE} ORDER BY change_id")
    assert table.schema == source_schema()
    names = source_schema().names
    expected = {r[0]: dict(zip(names, r, strict=True)) for r in rows}
    assert {r["change_id"]: r for r in table.to_pylist()} == expected
    assert expected["nasty-7"]["email"] == ""  # the empty string stayed apart from NULL
    assert stored_changes(warehouse)["all-null"]["email"] is None


def test_replace_run_rows_is_idempotent(warehouse):
    with warehouse.open() as connection:
        connection.ensure_ledger()
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a", "b"], "FAILED"))
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a", "b"], "FAILED"))
        connection.replace_run_rows("run-2", ledger_rows("run-2", ["b"]))
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a"]))
    rows = warehouse.rows(
        f"SELECT dag_run_id, change_id, outcome FROM {LEDGER_TABLE} ORDER BY dag_run_id, change_id"
    )
    assert rows == [
        {"dag_run_id": "run-1", "change_id": "a", "outcome": "SYNCED"},
        {"dag_run_id": "run-2", "change_id": "b", "outcome": "SYNCED"},
    ]


def test_recording_a_run_again_never_rewrites_its_final_rows(warehouse):
    # A cleared run re-run after a newer change arrived would now call its sent change
    # SKIPPED_SUPERSEDED; the ledger must keep the record that it was SYNCED.
    with warehouse.open() as connection:
        connection.ensure_ledger()
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a"]))
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["b"], "FAILED"))
        again = ledger_rows("run-1", ["a"], "SKIPPED_SUPERSEDED")
        now_recorded = connection.replace_run_rows(
            "run-1", pa.concat_tables([again, ledger_rows("run-1", ["b"])])
        )
        recorded = connection.run_rows("run-1").select(["change_id", "outcome"]).to_pylist()
    assert sorted(now_recorded) == ["SYNCED", "SYNCED"]
    assert sorted(recorded, key=lambda r: r["change_id"]) == [
        {"change_id": "a", "outcome": "SYNCED"},
        {"change_id": "b", "outcome": "SYNCED"},
    ]


def test_a_failing_load_rolls_back_and_keeps_the_previous_rows(warehouse):
    with warehouse.open() as connection:
        connection.ensure_ledger()
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a", "b"]))
        duplicate = ledger_rows("run-1", ["c", "c"])  # violates the primary key
        with pytest.raises(Exception, match="(?i)duplicate|primary key|unique"):
            connection.replace_run_rows("run-1", duplicate)
        # The session is usable again and nothing of the failed load is left.
        count = connection.query_arrow(f"SELECT COUNT(*) AS n FROM {LEDGER_TABLE}")
        assert count.to_pylist() == [{"n": 2}]
    rows = warehouse.rows(f"SELECT change_id FROM {LEDGER_TABLE} ORDER BY change_id")
    assert [r["change_id"] for r in rows] == ["a", "b"]


def test_ensure_ledger_twice_keeps_rows_and_views(warehouse):
    with warehouse.open() as connection:
        connection.ensure_ledger()
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a"]))
        connection.ensure_ledger()
    with warehouse.open() as connection:
        connection.ensure_ledger()
    runs = warehouse.rows(
        "SELECT dag_run_id, changes, synced, failed FROM hubspot_consent_sync_runs"
    )
    assert runs == [{"dag_run_id": "run-1", "changes": 1, "synced": 1, "failed": 0}]
    latest = warehouse.rows("SELECT change_id FROM hubspot_consent_sync_latest")
    assert latest == [{"change_id": "a"}]


def test_a_users_view_on_the_audit_views_survives_the_next_load(warehouse):
    # Data teams build on the audit views; PostgreSQL refuses to drop a view others depend on.
    with warehouse.open() as connection:
        connection.ensure_ledger()
        connection.run_script(
            "CREATE VIEW nightly_failures AS SELECT dag_run_id, failed FROM hubspot_consent_sync_runs;"
            "CREATE VIEW synced_contacts AS SELECT email FROM hubspot_consent_sync_latest;"
        )
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a"], "FAILED"))
    with warehouse.open() as connection:
        connection.ensure_ledger()
    assert warehouse.rows("SELECT * FROM nightly_failures") == [
        {"dag_run_id": "run-1", "failed": 1}
    ]
    assert warehouse.rows("SELECT * FROM synced_contacts") == []


def test_counts_come_back_as_int64(warehouse):
    with warehouse.open() as connection:
        connection.ensure_ledger()
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["a", "b"]))
        runs = connection.query_arrow("SELECT * FROM hubspot_consent_sync_runs")
    for name in ("changes", "synced", "failed", "deferred"):
        assert runs.schema.field(name).type == pa.int64(), name
    for name in ("interval_start", "started_at", "finished_at"):
        assert runs.schema.field(name).type == pa.timestamp("us", tz="UTC"), name


def test_parameters_percent_signs_and_casts(warehouse):
    with warehouse.open() as connection:
        table = connection.query_arrow(
            "SELECT '100%' AS literal, CAST(:n AS BIGINT) + 1 AS n, "
            "'x'::TEXT || :text AS text, (:flag AND TRUE) AS flag, "
            "CAST(:at AS TIMESTAMP WITH TIME ZONE) AS at",
            {"n": 41, "text": "%(y)s :z", "flag": True, "at": NOON},
        )
    assert table.to_pylist() == [
        {"literal": "100%", "n": 42, "text": "x%(y)s :z", "flag": True, "at": NOON}
    ]


# ---------------------------------------------------------------------------------------------
# PostgreSQL only
# ---------------------------------------------------------------------------------------------

pg = pytest.mark.postgres


@pg
def test_result_types(postgres_warehouse):
    with postgres_warehouse.open() as connection:
        connection.execute("CREATE TABLE numbers (n BIGINT, i INTEGER)")
        connection.execute("INSERT INTO numbers VALUES (1, 2), (3, 4), (NULL, NULL)")
        sql = """
            SELECT COUNT(*) AS count_all,
                   COUNT(*) FILTER (WHERE n > 1) AS count_filtered,
                   SUM(n) AS sum_bigint,
                   SUM(n) FILTER (WHERE n > 1) AS sum_filtered,
                   SUM(i) AS sum_int,
                   CAST(1.25 AS NUMERIC(6, 2)) AS money,
                   CAST(1.5 AS DOUBLE PRECISION) AS ratio,
                   CAST(7 AS INTEGER) AS int4,
                   TRUE AS flag,
                   DATE '2026-11-20' AS day,
                   TIMESTAMP WITH TIME ZONE '2026-11-20 13:00:00+01' AS at_utc,
                   TIMESTAMP '2026-11-20 12:00:00.5' AS naive,
                   CAST('x' AS VARCHAR(5)) AS short_text
            FROM numbers
        """
        table = connection.query_arrow(sql)
        empty = connection.query_arrow(
            "SELECT n, COUNT(*) AS c FROM numbers WHERE FALSE GROUP BY n"
        )
        shown = connection.query_arrow("SHOW TimeZone")  # not COPY-able: fetched by the cursor
    types = {field.name: field.type for field in table.schema}
    assert types == {
        "count_all": pa.int64(),
        "count_filtered": pa.int64(),
        "sum_bigint": pa.int64(),  # numeric in PostgreSQL, whole numbers: int64
        "sum_filtered": pa.int64(),
        "sum_int": pa.int64(),
        "money": pa.decimal128(6, 2),
        "ratio": pa.float64(),
        "int4": pa.int32(),
        "flag": pa.bool_(),
        "day": pa.date32(),
        "at_utc": pa.timestamp("us", tz="UTC"),
        "naive": pa.timestamp("us"),
        "short_text": pa.string(),
    }
    assert table.to_pylist() == [
        {
            "count_all": 3,
            "count_filtered": 1,
            "sum_bigint": 4,
            "sum_filtered": 3,
            "sum_int": 6,
            "money": Decimal("1.25"),
            "ratio": 1.5,
            "int4": 7,
            "flag": True,
            "day": date(2026, 11, 20),
            "at_utc": NOON,
            "naive": datetime(2026, 11, 20, 12, 0, 0, 500_000),
            "short_text": "x",
        }
    ]
    assert empty.num_rows == 0 and empty.schema.field("c").type == pa.int64()
    assert shown.to_pylist() == [{"TimeZone": "UTC"}]


@pg
def test_bulk_insert_streams_in_chunks(postgres_warehouse, monkeypatch):
    monkeypatch.setattr(PostgresWarehouse, "COPY_CHUNK_ROWS", 1_000)
    rows = [
        change(f"c-{i:05d}", email=f"user{i}@x.com", explanation=f'line {i}\nnext, "q"')
        for i in range(5_500)
    ]
    with postgres_warehouse.open() as connection:
        create_source_table(connection)
        insert_changes(connection, rows)
        table = connection.query_arrow(f"SELECT * FROM {SOURCE_TABLE} ORDER BY change_id")
    assert table.num_rows == 5_500
    assert table["legal_basis_explanation"][4_321].as_py() == 'line 4321\nnext, "q"'


@pg
@pytest.mark.parametrize("conn_type", ["postgres", "postgresql"])
def test_open_warehouse_from_an_airflow_connection(postgres_warehouse, monkeypatch, conn_type):
    fields = postgres_warehouse.connection()
    extra = {"application_name": "consent-sync-test", "cursor": "dictcursor"}
    connection = {**fields, "conn_type": conn_type, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_CONSENT_WAREHOUSE", json.dumps(connection))
    with open_warehouse("consent_warehouse") as warehouse:
        assert isinstance(warehouse, PostgresWarehouse)
        found = warehouse.query_arrow(
            "SELECT current_database() AS db, current_setting('application_name') AS app, "
            "current_setting('TimeZone') AS tz"
        ).to_pylist()
    assert found == [{"db": fields["schema"], "app": "consent-sync-test", "tz": "UTC"}]


@pg
def test_open_warehouse_passes_the_hooks_extras_to_the_session(postgres_warehouse, monkeypatch):
    """PostgresHook hands every extra to libpq (no allow-list of our own to keep up to date):
    ``options`` sets server settings, ``sslmode`` is honoured, and so is a parameter the old
    allow-list lacked (``fallback_application_name``)."""
    fields = postgres_warehouse.connection()
    extra = {
        "options": "-c statement_timeout=4321 -c work_mem=8MB",
        "sslmode": "disable",
        "fallback_application_name": "consent-sync-fallback",
    }
    connection = {**fields, "conn_type": "postgres", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_CONSENT_WAREHOUSE", json.dumps(connection))
    with open_warehouse("consent_warehouse") as warehouse:
        found = warehouse.query_arrow(
            "SELECT current_setting('statement_timeout') AS timeout, "
            "current_setting('work_mem') AS work_mem, "
            "current_setting('application_name') AS app, "
            "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl"
        ).to_pylist()
    assert found == [
        {"timeout": "4321ms", "work_mem": "8MB", "app": "consent-sync-fallback", "ssl": False}
    ]


@pg
def test_open_warehouse_needs_a_database_name(monkeypatch):
    connection = {"conn_type": "postgres", "host": "127.0.0.1"}
    monkeypatch.setenv("AIRFLOW_CONN_CONSENT_WAREHOUSE", json.dumps(connection))
    with pytest.raises(ValueError, match="schema = the database name"):
        open_warehouse("consent_warehouse")


@pg
def test_schema_gate_reads_postgres_type_names(postgres_warehouse):
    with postgres_warehouse.open() as connection:
        connection.execute(f"DROP TABLE IF EXISTS {SOURCE_TABLE}")
        connection.execute(
            f"""CREATE TABLE {SOURCE_TABLE} (
                change_id CHARACTER VARYING(64),
                email TEXT,
                subscription_id TEXT,
                channel CHAR(5),
                status_state VARCHAR,
                legal_basis_explanation TEXT,
                changed_at DATE,
                extra_column JSONB
            )"""
        )
        columns = connection.source_columns(SOURCE_TABLE)
    assert columns["change_id"] == "character varying"
    assert columns["channel"] == "character"
    with pytest.raises(SchemaContractError) as error:
        check_source_schema(columns)
    message = str(error.value)
    assert "3 problems" in message
    assert "consent_changes.subscription_id has type text, expected an integer type" in message
    assert "consent_changes.legal_basis is missing" in message
    assert "consent_changes.changed_at has type date, expected a timestamp type" in message


@pg
def test_schema_gate_accepts_postgres_spellings_of_the_contract(postgres_warehouse):
    with postgres_warehouse.open() as connection:
        connection.execute(f"DROP TABLE IF EXISTS {SOURCE_TABLE}")
        connection.execute(
            f"""CREATE TABLE {SOURCE_TABLE} (
                change_id VARCHAR(64) PRIMARY KEY,
                email CHARACTER VARYING,
                subscription_id NUMERIC(18, 0),
                channel TEXT,
                status_state TEXT,
                legal_basis TEXT,
                legal_basis_explanation TEXT,
                changed_at TIMESTAMP WITHOUT TIME ZONE
            )"""
        )
        columns = connection.source_columns(SOURCE_TABLE)
        # Another schema's table of the same name is not looked at.
        connection.execute("CREATE SCHEMA other")
        connection.execute(f"CREATE TABLE other.{SOURCE_TABLE} (change_id INTEGER)")
        assert connection.source_columns(SOURCE_TABLE) == columns
    assert columns["subscription_id"] == "numeric(18,0)"
    assert columns["changed_at"] == "timestamp without time zone"
    check_source_schema(columns)  # no error


def ledger_indexes(connection):
    """Each index on the ledger: its definition, and its oid (a rebuilt index gets a new one)."""
    rows = connection.query_arrow(
        "SELECT c.oid::bigint AS oid, pg_get_indexdef(c.oid) AS definition "
        "FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE x.indrelid = CAST(:table AS regclass)",
        {"table": LEDGER_TABLE},
    ).to_pylist()
    return {row["definition"]: row["oid"] for row in rows}


@pg
def test_a_load_as_large_as_the_ledger_builds_its_indexes_again(postgres_warehouse, monkeypatch):
    monkeypatch.setattr(PostgresWarehouse, "REBUILD_INDEXES_MIN_ROWS", 2)
    with postgres_warehouse.open() as connection:
        connection.ensure_ledger()
        connection.execute(f"CREATE INDEX users_own ON {LEDGER_TABLE} (correlation_id)")
        created = ledger_indexes(connection)
        # Below the minimum: the indexes are kept up to date, even on an empty ledger.
        connection.replace_run_rows("run-0", ledger_rows("run-0", ["a"]))
        small = ledger_indexes(connection)
        # As large as the ledger: every index but the primary key is built again, as it was,
        # the user's own too.
        connection.replace_run_rows("run-1", ledger_rows("run-1", ["b", "c"]))
        first = ledger_indexes(connection)
        # Smaller than the ledger: the indexes are kept up to date, not built again.
        connection.replace_run_rows("run-2", ledger_rows("run-2", ["d", "e"]))
        kept = ledger_indexes(connection)
        connection.replace_run_rows("run-3", ledger_rows("run-3", [f"g{i}" for i in range(6)]))
        rebuilt = ledger_indexes(connection)
        # A load that fails leaves the indexes as they were (DDL is transactional).
        duplicate = ledger_rows("run-4", [f"h{i}" for i in range(13)] + ["h0"])
        with pytest.raises(Exception, match="(?i)duplicate|unique"):
            connection.replace_run_rows("run-4", duplicate)
        after_failure = ledger_indexes(connection)
        connection.execute("SET enable_seqscan = off")
        plan = connection.query_arrow(
            f"EXPLAIN SELECT * FROM {LEDGER_TABLE} "
            "WHERE lower(trim(both ' ' from email)) = 'g5@x.com'"
        )
        found = connection.query_arrow(
            f"SELECT change_id FROM {LEDGER_TABLE} "
            "WHERE lower(trim(both ' ' from email)) = 'g5@x.com'"
        )
    assert len(created) == 5 and any("users_own" in definition for definition in created)
    assert small == created
    pkey = next(d for d in created if "_pkey" in d)
    for before, after in ((created, first), (kept, rebuilt)):
        assert after.keys() == before.keys()
        assert after[pkey] == before[pkey]
        assert all(after[d] != before[d] for d in before if d != pkey)
    assert kept == first
    assert after_failure == rebuilt
    assert "hubspot_consent_sync_results_key" in "\n".join(plan.column(0).to_pylist())
    assert found["change_id"].to_pylist() == ["g5"]


@pg
def test_ensure_ledger_creates_the_indexes_once(postgres_warehouse):
    with postgres_warehouse.open() as connection:
        connection.ensure_ledger()
        connection.ensure_ledger()
        indexes = connection.query_arrow(
            "SELECT indexname FROM pg_indexes WHERE tablename = :table ORDER BY indexname",
            {"table": LEDGER_TABLE},
        )
    assert indexes["indexname"].to_pylist() == [
        "hubspot_consent_sync_results_change_id",
        "hubspot_consent_sync_results_finished",
        "hubspot_consent_sync_results_key",
        "hubspot_consent_sync_results_pkey",
    ]
