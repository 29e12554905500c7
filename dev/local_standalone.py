"""`make airflow` and the browser test: ``airflow standalone`` on the project, with the sandbox.

Airflow's UI, REST API, scheduler, dag-processor and triggerer (LocalExecutor, SQLite metadata
database) on 127.0.0.1:<port>, the connections, pool and Variables of airflow_settings.yaml in the
metadata database (so the UI shows and edits them; the live switch starts disarmed), the demo
warehouse (DuckDB) dated to the latest night, and the HubSpot sandbox.

``airflow standalone`` runs in its own process group, so :meth:`LocalStandalone.stop` ends it and
everything it started (its components, their task processes) with one signal, then the sandbox.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

import requests

from dev.local_airflow import PROJECT, LocalAirflow, SandboxProcess, free_port
from include.consent_sync.contract import DAG_ID

ADMIN_USER = "admin"


def admin_password(password_file: Path) -> str:
    """The ``admin`` user's password in SimpleAuthManager's file, generated on first use.

    Written before the api-server starts, so Airflow finds the user there and keeps it.
    """
    if not password_file.exists():
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.touch(mode=0o600)
        password_file.write_text(json.dumps({ADMIN_USER: secrets.token_urlsafe(18)}))
    return json.loads(password_file.read_text())[ADMIN_USER]


class LocalStandalone:
    """``airflow standalone`` on ``port`` with a DuckDB warehouse file and a fresh sandbox.

    :param home: holds the Airflow home (``airflow/``), staging, the sandbox's URL file.
    :param output: where Airflow's own output goes (None: this process's stdout).
    """

    def __init__(
        self,
        home: Path,
        *,
        warehouse: Path,
        port: int,
        sandbox_flags: tuple[str, ...] = (),
        output: IO | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.warehouse = Path(warehouse).resolve()
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.sandbox_flags = sandbox_flags
        self.output = output
        self.password_file = self.home / "airflow" / "simple_auth_manager_passwords.json"
        self.sandbox: SandboxProcess | None = None
        self.airflow: LocalAirflow | None = None
        self.process: subprocess.Popen | None = None

    @property
    def password(self) -> str:
        return admin_password(self.password_file)

    def start(self, timeout: float = 240) -> LocalStandalone:
        self.home.mkdir(parents=True, exist_ok=True)
        self.sandbox = SandboxProcess(self.home, *self.sandbox_flags)
        self.airflow = LocalAirflow(
            self.home / "airflow",
            {"conn_type": "duckdb", "host": str(self.warehouse)},
            self.sandbox.url,
            self.home / "staging",
            ui=True,
            extra_env={
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
                # The scheduler's and triggerer's log servers (fixed 8793/8794 by default) on free
                # ports, so two of these, or a deployment, can run side by side.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                # Enough task processes for one run's 4 push tasks; Airflow's 32 cost memory.
                "AIRFLOW__CORE__PARALLELISM": "8",
                # Runs and DAG edits show up within seconds (defaults suit a long-lived server).
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            },
        )
        self.airflow.prepare()
        admin_password(self.password_file)
        self.process = subprocess.Popen(
            LocalAirflow.command("standalone"),
            env=self.airflow.env(),
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            stdout=self.output,
            stderr=subprocess.STDOUT if self.output else None,
            # Its own group: stop() ends it and all it started with one signal; a Ctrl-C in the
            # terminal reaches our handler, which calls stop(), not standalone half-way.
            start_new_session=True,
        )
        self.wait_until_ready(timeout)
        return self

    def wait_until_ready(self, timeout: float) -> None:
        """Until the health endpoint reports every component healthy and the DAG is parsed."""
        deadline = time.monotonic() + timeout
        problem = "not started"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited ({self.process.returncode})")
            problem = self._not_ready()
            if problem is None:
                return
            time.sleep(1)
        raise TimeoutError(f"Airflow not ready on {self.url} after {timeout:.0f} s: {problem}")

    def _not_ready(self) -> str | None:
        try:
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
            unhealthy = [
                name
                for name in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                if (health.get(name) or {}).get("status") != "healthy"
            ]
            if unhealthy:
                return f"not healthy yet: {', '.join(unhealthy)}"
            token = self.token()
            answer = requests.get(
                f"{self.url}/api/v2/dags/{DAG_ID}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            return None if answer.ok else f"DAG {DAG_ID} not parsed yet"
        except (requests.RequestException, ValueError) as exc:
            return f"no answer ({type(exc).__name__})"

    def token(self) -> str:
        """A REST API token for ``admin``."""
        answer = requests.post(
            f"{self.url}/auth/token",
            json={"username": ADMIN_USER, "password": self.password},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM standalone's process group, SIGKILL what is left after ``timeout`` seconds,
        then stop the sandbox. Safe to call twice and after a failed start."""
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            # Also stragglers whose parent has exited (a task's process).
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None

    def __enter__(self) -> LocalStandalone:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:  # the whole group has exited
        pass
