"""Shared fixtures: a real warehouse (DuckDB file or PostgreSQL database), and the HubSpot sandbox
on 127.0.0.1."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

INTERVAL_START = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
INTERVAL_END = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def change(
    change_id,
    email="jane@example.com",
    subscription_id=1001,
    state="SUBSCRIBED",
    changed_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
    legal_basis=None,
    explanation=None,
    channel="EMAIL",
):
    """One consent_changes row as a tuple in table order."""
    return (change_id, email, subscription_id, channel, state, legal_basis, explanation, changed_at)


_postgres_problem: list[str] = []  # the reason PostgreSQL is unusable, found once per session


def _require_postgres() -> None:
    """Skip (or, with CI=true, fail) a postgres-backed test when no server answers."""
    from dev.local_postgres import POSTGRES_HOST, POSTGRES_PORT, postgres_admin

    if not _postgres_problem:
        try:
            postgres_admin().close()
            _postgres_problem.append("")
        except Exception as exc:  # noqa: BLE001 - any failure to connect means "not reachable"
            detail = " ".join(str(exc).split()) or type(exc).__name__
            _postgres_problem.append(
                f"PostgreSQL not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}: {detail}"
            )
    if _postgres_problem[0]:
        skip_or_fail(_postgres_problem[0])


def skip_or_fail(problem: str) -> None:
    """Skip a test whose server is not reachable; with CI=true, fail it: CI must run it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(problem + " (CI=true: this test must run)")
    pytest.skip(problem)


@pytest.fixture
def postgres_warehouse():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    from tests.warehouses import PostgresTestWarehouse

    _require_postgres()
    test_warehouse = PostgresTestWarehouse().create()
    yield test_warehouse
    test_warehouse.drop()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path):
    """A real warehouse with an empty consent_changes table: a DuckDB file, or a fresh
    PostgreSQL database (skipped when no server is reachable, unless CI=true)."""
    from dev.demo_data import create_source_table
    from tests.warehouses import DuckDBTestWarehouse

    if request.param == "postgres":
        test_warehouse = request.getfixturevalue("postgres_warehouse")
    else:
        test_warehouse = DuckDBTestWarehouse(tmp_path / "warehouse.duckdb")
    with test_warehouse.open() as connection:
        create_source_table(connection)
    yield test_warehouse
    if request.param == "duckdb":
        test_warehouse.drop()  # postgres_warehouse drops its database itself


def insert_changes(warehouse, rows):
    from dev.demo_data import insert_changes as insert

    with warehouse.open() as connection:
        insert(connection, rows)


@pytest.fixture
def sandbox():
    """The HubSpot sandbox in this process, on a free loopback port."""
    from dev.hubspot_sandbox import SandboxServer

    with SandboxServer(token="sandbox-token", port=0) as server:
        yield server


@pytest.fixture
def hubspot_connection(monkeypatch, sandbox):
    """Point the `hubspot_default` connection at the sandbox; returns a setter for extras."""
    import json

    def connect(token="sandbox-token", **extras):
        extras.setdefault("max_attempts", 3)
        extras.setdefault("rate_limit_per_10s", 5000)  # pacing has its own tests
        monkeypatch.setenv(
            "AIRFLOW_CONN_HUBSPOT_DEFAULT",
            json.dumps(
                {"conn_type": "http", "host": sandbox.url, "password": token, "extra": extras}
            ),
        )

    connect()
    return connect


@pytest.fixture
def no_backoff(monkeypatch):
    """Retries without the real backoff sleeps (the backoff itself is unit-tested)."""
    from hubspot_provider.hooks.hubspot import HubSpotHook

    monkeypatch.setattr(HubSpotHook, "_backoff_s", staticmethod(lambda attempt: 0.01))


# -- real local receivers for alerts -----------------------------------------------------------


@pytest.fixture
def smtp_server():
    """A local SMTP server (aiosmtpd); ``.messages``: the envelopes it received."""
    import socket

    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # a free port: the controller cannot report one it chose
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    inbox.port = port
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
def webhook_server():
    """A local HTTP server that takes Slack webhook POSTs; ``.received``: path and JSON of each."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "json": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received = received
    yield server
    server.shutdown()


def alert_env(smtp_server, webhook_server) -> dict[str, str]:
    """Environment giving Airflow the `smtp_alerts` and `slack_alerts` connections to the local
    receivers, and the Variable consent_sync_alerts that picks both."""
    import json

    return {
        "AIRFLOW_CONN_SMTP_ALERTS": json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_server.port,
                "extra": {"disable_tls": True, "disable_ssl": True},
            }
        ),
        "AIRFLOW_CONN_SLACK_ALERTS": json.dumps(
            {
                "conn_type": "slackwebhook",
                "host": f"http://127.0.0.1:{webhook_server.server_port}",
                "password": "T000/B000/XXXX",
            }
        ),
        "AIRFLOW_VAR_CONSENT_SYNC_ALERTS": json.dumps(
            {
                "smtp_conn_id": "smtp_alerts",
                "email_to": ["dpo@example.org"],
                "email_from": "sync@example.org",
                "slack_webhook_conn_id": "slack_alerts",
            }
        ),
    }
