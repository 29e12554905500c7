"""End-to-end fixtures: a migrated Airflow home (once per session) and real DAG runs."""

from __future__ import annotations

import pytest

from dev.local_airflow import LocalAirflow


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    LocalAirflow(home, {}, "http://127.0.0.1:9", home / "staging").prepare()
    return home


@pytest.fixture
def airflow(airflow_home, warehouse, sandbox, tmp_path):
    """Run hubspot_consent_sync against this test's warehouse file and sandbox."""
    return LocalAirflow(
        airflow_home,
        warehouse.connection(),
        sandbox.url,
        tmp_path / "staging",
        hubspot_extras={"rate_limit_per_10s": 5000},
    )
