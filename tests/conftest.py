"""Shared fixtures: a real DuckDB warehouse file, and the HubSpot sandbox on 127.0.0.1."""

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


@pytest.fixture
def warehouse(tmp_path):
    """A real warehouse with an empty consent_changes table."""
    from include.demo_data import create_source_table
    from tests.warehouses import DuckDBTestWarehouse

    test_warehouse = DuckDBTestWarehouse(tmp_path / "warehouse.duckdb")
    with test_warehouse.open() as connection:
        create_source_table(connection)
    yield test_warehouse
    test_warehouse.drop()


def insert_changes(warehouse, rows):
    from include.demo_data import insert_changes as insert

    with warehouse.open() as connection:
        insert(connection, rows)


@pytest.fixture
def sandbox():
    """The HubSpot sandbox in this process, on a free loopback port."""
    from include.hubspot_sandbox import SandboxServer

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
