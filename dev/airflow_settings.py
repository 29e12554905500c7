"""airflow_settings.yaml, the one source of the local connections, pool and Variables.

Astro CLI's ``astro dev start`` loads that file itself; :class:`dev.local_airflow.LocalAirflow`
reads it here, overrides what is local to this machine (the sandbox's URL, the warehouse, the
staging folder) and either passes the result as AIRFLOW_CONN_*/AIRFLOW_VAR_* environment variables
(``make run``, the tests) or imports it into Airflow's metadata database (``make airflow``,
``make deploy-local``), where the UI's Connections, Pools and Variables pages show and edit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = PROJECT / "airflow_settings.yaml"
# Astro's keys → Airflow's connection fields.
CONNECTION_FIELDS = {
    "conn_type": "conn_type",
    "conn_host": "host",
    "conn_login": "login",
    "conn_password": "password",
    "conn_schema": "schema",
    "conn_port": "port",
    "conn_extra": "extra",
}


@dataclass(frozen=True)
class Pool:
    slots: int
    description: str


@dataclass(frozen=True)
class Settings:
    connections: dict[str, dict]  # conn_id → Airflow's fields (conn_type, host, extra as a dict)
    pools: dict[str, Pool]
    variables: dict[str, str]


def load(path: Path = SETTINGS_FILE) -> Settings:
    """Parse the file; a missing section or key is an error naming it."""
    import yaml

    try:
        section = yaml.safe_load(path.read_text())["airflow"]
        connections = {
            entry["conn_id"]: {
                field: entry[key] for key, field in CONNECTION_FIELDS.items() if key in entry
            }
            for entry in section["connections"]
        }
        pools = {
            entry["pool_name"]: Pool(int(entry["pool_slot"]), entry.get("pool_description", ""))
            for entry in section["pools"]
        }
        variables = {
            entry["variable_name"]: str(entry["variable_value"]) for entry in section["variables"]
        }
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: missing or malformed entry {exc}") from exc
    return Settings(connections, pools, variables)
