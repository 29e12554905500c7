"""airflow_settings.yaml is the one source of the local connections, pool and Variables."""

import pytest

from dev import airflow_settings
from dev.local_airflow import LocalAirflow
from include.consent_sync.contract import HUBSPOT_POOL_SLOTS


def test_the_project_file_parses_into_connections_pool_and_disarmed_switch():
    settings = airflow_settings.load()
    assert settings.connections["hubspot_default"]["extra"]["rate_limit_per_10s"] == 190
    assert settings.connections["consent_warehouse"]["conn_type"] == "duckdb"
    assert settings.pools["hubspot_api"].slots == HUBSPOT_POOL_SLOTS
    assert settings.variables["consent_sync_live"] == "false"


def test_a_missing_section_is_an_error_naming_it(tmp_path):
    path = tmp_path / "airflow_settings.yaml"
    path.write_text("airflow:\n  connections: []\n  variables: []\n")
    with pytest.raises(
        ValueError, match="airflow_settings.yaml: missing or malformed entry 'pools'"
    ):
        airflow_settings.load(path)


def _local(tmp_path, ui):
    warehouse = {"conn_type": "duckdb", "host": str(tmp_path / "w.duckdb")}
    return LocalAirflow(tmp_path / "home", warehouse, "http://127.0.0.1:9", tmp_path / "s", ui=ui)


def test_runs_and_tests_get_the_file_as_environment_variables_with_the_switch_on(tmp_path):
    env = _local(tmp_path, ui=False).env()
    assert env["AIRFLOW_VAR_CONSENT_SYNC_LIVE"] == "true"
    assert '"host": "http://127.0.0.1:9"' in env["AIRFLOW_CONN_HUBSPOT_DEFAULT"]
    assert '"write_mode": "single"' in env["AIRFLOW_CONN_HUBSPOT_DEFAULT"]
    assert env["AIRFLOW_VAR_CONSENT_SYNC_STAGING_ROOT"] == (tmp_path / "s").resolve().as_uri()


def test_the_ui_profile_keeps_them_out_of_the_environment_and_starts_disarmed(tmp_path):
    local = _local(tmp_path, ui=True)
    assert not [key for key in local.env() if key.startswith(("AIRFLOW_CONN_H", "AIRFLOW_VAR_C"))]
    assert local.variables()["consent_sync_live"] == "false"
    assert local.connections()["consent_warehouse"]["host"] == str(tmp_path / "w.duckdb")
