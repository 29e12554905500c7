"""Run the project on this machine: Airflow's environment, the sandbox process, real DAG runs.

Used by ``make run`` (scripts/run_demo.py), ``make airflow``, the end-to-end and browser tests and
the multi-process deployment (dev/local_deployment.py), so all configure Airflow the same way:
connections, pool and Variables from airflow_settings.yaml (dev/airflow_settings.py) with this
machine's sandbox, warehouse and staging folder, a SQLite metadata database under the given
AIRFLOW_HOME unless ``extra_env`` names another.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from dev import airflow_settings
from include.consent_sync import live_switch
from include.consent_sync.contract import DAG_ID, HUBSPOT_CONN_ID, HUBSPOT_POOL, WAREHOUSE_CONN_ID
from include.consent_sync.runtime import STAGING_VARIABLE

PROJECT = Path(__file__).resolve().parent.parent
SANDBOX_TOKEN = "sandbox-token"
SETTINGS = airflow_settings.load()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalAirflow:
    """An Airflow home for local runs, wired to a warehouse connection and a HubSpot base URL."""

    home: Path
    warehouse: dict  # the consent_warehouse connection's fields (conn_type, host, ...)
    hubspot_url: str
    staging: Path
    hubspot_extras: dict = field(default_factory=dict)
    # More AIRFLOW__SECTION__KEY settings, e.g. a deployment's executor and metadata database.
    extra_env: dict[str, str] = field(default_factory=dict)
    # False (`make run`, the tests, the benches): connections and Variables are environment
    # variables, and the live switch is on, so runs send. True (`make airflow`, `make
    # deploy-local`): prepare() imports them into the metadata database, where the UI shows and
    # edits them, and the live switch is as airflow_settings.yaml says: disarmed.
    ui: bool = False

    def connections(self) -> dict[str, dict]:
        """airflow_settings.yaml's connections, pointed at this machine's sandbox and warehouse."""
        hubspot = SETTINGS.connections[HUBSPOT_CONN_ID]
        return {
            **SETTINGS.connections,
            HUBSPOT_CONN_ID: {
                **hubspot,
                "host": self.hubspot_url,
                "password": SANDBOX_TOKEN,
                "extra": {**hubspot.get("extra", {}), **self.hubspot_extras},
            },
            WAREHOUSE_CONN_ID: self.warehouse,
        }

    def variables(self) -> dict[str, str]:
        """airflow_settings.yaml's Variables, with this home's staging folder (and, unless
        :attr:`ui`, the live switch on)."""
        variables = {**SETTINGS.variables, STAGING_VARIABLE: self.staging.resolve().as_uri()}
        if not self.ui:
            variables[live_switch.VARIABLE] = "true"
        return variables

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONPATH": os.pathsep.join([str(PROJECT), str(PROJECT / "plugins")]),
                # `airflow standalone` starts its components as `airflow ...` from PATH.
                "PATH": os.pathsep.join(
                    [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
                ),
                "GX_ANALYTICS_ENABLED": "False",
                **self.extra_env,
            }
        )
        if not self.ui:
            for conn_id, fields in self.connections().items():
                env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(fields)
            for key, value in self.variables().items():
                env[f"AIRFLOW_VAR_{key.upper()}"] = value
        return env

    @staticmethod
    def command(*args: str) -> list[str]:
        """The ``airflow`` CLI of this interpreter's environment, with ``args``."""
        return [str(Path(sys.executable).with_name("airflow")), *args]

    def airflow(self, *args: str, check: bool = True, capture: bool = False, timeout: float = 900):
        """Run the ``airflow`` CLI of this interpreter's environment."""
        return subprocess.run(
            self.command(*args),
            env=self.env(),
            cwd=PROJECT,
            check=check,
            text=True,
            capture_output=capture,
            timeout=timeout,
        )

    def prepare(self) -> None:
        """Create the metadata database (once) and the pool; with :attr:`ui`, also the
        connections (replaced: the sandbox's port changes) and the Variables (only those
        missing: a user's consent_sync_live=true stays)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate", capture=True)
        pool = SETTINGS.pools[HUBSPOT_POOL]
        self.airflow("pools", "set", HUBSPOT_POOL, str(pool.slots), pool.description, capture=True)
        if self.ui:
            connections = self.home / "settings-connections.json"
            variables = self.home / "settings-variables.json"
            connections.touch(mode=0o600)
            connections.write_text(json.dumps(self.connections()))
            described = {live_switch.VARIABLE: live_switch.DESCRIPTION}
            variables.write_text(
                json.dumps(
                    {
                        key: {"value": value, "description": described.get(key)}
                        for key, value in self.variables().items()
                    }
                )
            )
            try:
                self.airflow("connections", "import", "--overwrite", str(connections), capture=True)
                self.airflow("variables", "import", "-a", "skip", str(variables), capture=True)
            finally:
                connections.unlink()
                variables.unlink()

    def run_dag(
        self, logical_date: str, conf: dict | None = None, check: bool = True, dag_id: str = DAG_ID
    ):
        """One real DAG run of ``dag_id`` (``airflow dags test``), output captured."""
        args = ["dags", "test", dag_id, logical_date]
        if conf:
            args += ["--conf", json.dumps(conf)]
        return self.airflow(*args, check=check, capture=True)


class SandboxProcess:
    """The HubSpot sandbox in its own process, on a free loopback port."""

    def __init__(self, workdir: Path, *flags: str) -> None:
        self.url_file = workdir / "sandbox.url"
        self.url_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dev.hubspot_sandbox",
                "--port",
                "0",
                "--token",
                SANDBOX_TOKEN,
                "--url-file",
                str(self.url_file),
                *flags,
            ],
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            # Its own session: a Ctrl-C meant for its owner does not stop it mid-run; stop() does.
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        try:
            while not self.url_file.exists() or not self.url_file.read_text().strip():
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the HubSpot sandbox did not start")
                time.sleep(0.05)
        except BaseException:  # Ctrl-C too: nobody else stops it
            self.stop()
            raise
        self.url = self.url_file.read_text().strip()

    def control(self, route: str):
        """GET a ``/_sandbox/`` control route: what HubSpot holds, the requests it answered."""
        with urllib.request.urlopen(f"{self.url}/_sandbox/{route}", timeout=10) as response:
            return json.load(response)

    def statuses(self) -> dict[tuple[str, int, str], dict]:
        """As :meth:`SandboxServer.statuses`: (email, subscription id, channel) → record."""
        return {
            (s["email"], s["subscriptionId"], s["channel"]): s for s in self.control("statuses")
        }

    def requests(self) -> list[dict]:
        """As :meth:`SandboxServer.requests`: every request answered, in order."""
        return self.control("requests")["requests"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
