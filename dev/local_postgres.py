"""The PostgreSQL server on this machine (127.0.0.1:5432, user postgres, trust auth): databases
for local deployments and tests, and a database's `consent_warehouse` connection."""

from __future__ import annotations

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
POSTGRES_ADMIN_DB = "postgres"


def postgres_admin(connect_timeout: int = 3):
    """An autocommit psycopg connection to the server's ``postgres`` database."""
    import psycopg

    return psycopg.connect(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        user=POSTGRES_USER,
        dbname=POSTGRES_ADMIN_DB,
        connect_timeout=connect_timeout,
        autocommit=True,
    )


def create_database(name: str, *, if_missing: bool = False) -> bool:
    """Create database ``name``; with ``if_missing``, keep an existing one. True if created.

    Created from ``template0``: nobody connects to it, so CREATE DATABASE never waits for the
    template to be free.
    """
    admin = postgres_admin()
    try:
        with admin.cursor() as cursor:
            if if_missing:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone():
                    return False
            cursor.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
            return True
    finally:
        admin.close()


def drop_database(name: str) -> None:
    """Drop database ``name`` if it exists, ending the sessions still connected (e.g. a killed
    task's)."""
    admin = postgres_admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def sqlalchemy_url(database: str, driver: str = "postgresql+psycopg2") -> str:
    """The database as a SQLAlchemy URL (Airflow's metadata DB, Celery's result backend)."""
    return f"{driver}://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"


def warehouse_connection(database: str) -> dict:
    """The `consent_warehouse` Airflow connection for ``database``, as AIRFLOW_CONN_* JSON fields."""
    return {
        "conn_type": "postgres",
        "host": POSTGRES_HOST,
        "port": POSTGRES_PORT,
        "login": POSTGRES_USER,
        "schema": database,
    }


def open_warehouse(database: str):
    """A :class:`PostgresWarehouse` session on ``database``."""
    from include.consent_sync.warehouse import PostgresWarehouse

    return PostgresWarehouse.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, dbname=database, user=POSTGRES_USER
    )
