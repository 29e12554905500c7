"""Run the project on this machine: Airflow's environment, the sandbox process, real DAG runs.

Used by ``make run`` (scripts/run_demo.py), ``make airflow``, the end-to-end tests and the
multi-process deployment (dev/local_deployment.py), so all configure Airflow the same way:
connections and the staging root from environment variables, a SQLite metadata database under the
given AIRFLOW_HOME unless ``extra_env`` names another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from include.consent_sync.contract import DAG_ID, HUBSPOT_POOL, HUBSPOT_POOL_SLOTS

PROJECT = Path(__file__).resolve().parent.parent
SANDBOX_TOKEN = "sandbox-token"


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
                "AIRFLOW_CONN_HUBSPOT_DEFAULT": json.dumps(
                    {
                        "conn_type": "http",
                        "host": self.hubspot_url,
                        "password": SANDBOX_TOKEN,
                        "extra": {"rate_limit_per_10s": 190, **self.hubspot_extras},
                    }
                ),
                "AIRFLOW_CONN_CONSENT_WAREHOUSE": json.dumps(self.warehouse),
                "AIRFLOW_VAR_CONSENT_SYNC_STAGING_ROOT": self.staging.resolve().as_uri(),
                **self.extra_env,
            }
        )
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
        """Create the metadata database (once) and the `hubspot_api` pool."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate", capture=True)
        self.airflow(
            "pools",
            "set",
            HUBSPOT_POOL,
            str(HUBSPOT_POOL_SLOTS),
            "HubSpot API: shares one rate limit",
            capture=True,
        )

    def run_dag(self, logical_date: str, conf: dict | None = None, check: bool = True):
        """One real DAG run of hubspot_consent_sync (``airflow dags test``), output captured."""
        args = ["dags", "test", DAG_ID, logical_date]
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
