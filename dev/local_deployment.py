"""A distributed Airflow on this one machine: CeleryExecutor, Redis broker, PostgreSQL metadata DB.

``make deploy-local`` (scripts/deploy_local.py) and tests/deployment run the project the way a
real deployment does: api-server, scheduler, dag-processor, triggerer and two Celery workers, each
in its own process group with its output in AIRFLOW_HOME/logs-processes/<component>.log. All of
it is configured by environment variables, built once by :meth:`LocalDeployment.env` on top of
:class:`LocalAirflow`'s (connections, staging root, DAG and plugin folders).

The REST API's admin user is ``admin``; its generated password stays in AIRFLOW_HOME
(:attr:`LocalDeployment.password_file`) and is never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

from dev import local_postgres
from dev.local_airflow import PROJECT, LocalAirflow, SandboxProcess
from include.consent_sync.contract import DAG_ID, HUBSPOT_POOL_SLOTS

WORKERS = ("worker-1", "worker-2")
# Two workers of two task slots each: as many push tasks at once as the hubspot_api pool allows.
WORKER_CONCURRENCY = HUBSPOT_POOL_SLOTS // len(WORKERS)
# Set per worker process; read by worker_hostname() in that worker's tasks.
WORKER_NAME_VAR = "LOCAL_DEPLOYMENT_WORKER"
ADMIN_USER = "admin"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# The checks of /api/v2/monitor/health start() waits for, and the component each one is about.
HEALTH_CHECKS = {
    "metadatabase": "api-server",
    "scheduler": "scheduler",
    "dag_processor": "dag-processor",
    "triggerer": "triggerer",
}


def worker_hostname() -> str:
    """``[core] hostname_callable``: a worker's name (``worker-1``, ``worker-2``) as the hostname
    of the task instances it runs, so the UI and the REST API show which of the two workers on
    this one machine ran a task. Every other process keeps Airflow's default, the FQDN.
    """
    return os.environ.get(WORKER_NAME_VAR) or socket.getfqdn()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Component:
    """One long-running ``airflow`` command, in its own process group."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    log: IO | None = None

    def start(self) -> None:
        self.log = self.log_path.open("w")
        # Its own session: Ctrl-C in a terminal does not reach it, and stop() can end the whole
        # group (a worker's pool processes, the tasks' supervisors) with one signal.
        self.process = subprocess.Popen(
            LocalAirflow.command(*self.args),
            env=self.env,
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:  # the whole group has already exited
            pass


class LocalDeployment:
    """Airflow with two Celery workers on this machine, for ``hubspot_consent_sync``.

    :param home: AIRFLOW_HOME; also holds the staging root, the admin password file, the sandbox's
        URL file and the components' logs.
    :param database: the PostgreSQL database (127.0.0.1:5432) for Airflow's metadata and Celery's
        results, created if missing. It also names the Celery queue and worker hostnames, so a
        deployment never takes the tasks of another one sharing the Redis server.
    :param redis_db: the Redis database number of the Celery broker.
    :param port: the api-server's port on 127.0.0.1 (UI, REST API, execution API).
    :param warehouse: the ``consent_warehouse`` connection's fields (a PostgreSQL database: the
        workers are separate processes, and a DuckDB file takes one writer process at a time).
    :param sandbox_flags: options of ``python -m dev.hubspot_sandbox`` (limits, latency).
    :param hubspot_extras: extras of the ``hubspot_default`` connection (e.g. its rate limit).
    :param schedule: False stops the scheduler from creating the nightly runs
        (``[scheduler] use_job_schedule``); backfills and triggered runs still run. Tests use it
        so that only the runs they create touch their data.
    """

    def __init__(
        self,
        home: Path,
        *,
        database: str,
        redis_db: int,
        port: int,
        warehouse: dict,
        sandbox_flags: tuple[str, ...] = (),
        hubspot_extras: dict | None = None,
        schedule: bool = True,
    ) -> None:
        self.home = Path(home).resolve()
        self.database = database
        self.queue = database
        self.broker_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.warehouse = warehouse
        self.sandbox_flags = sandbox_flags
        self.hubspot_extras = hubspot_extras or {}
        self.schedule = schedule
        self.password_file = self.home / "simple_auth_manager_passwords.json"
        self.logs = self.home / "logs-processes"
        self.sandbox: SandboxProcess | None = None
        self.airflow: LocalAirflow | None = None
        self.components: list[Component] = []
        self._session = requests.Session()
        self._token: str | None = None

    # --- configuration -------------------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        """What makes this a distributed deployment, on top of :meth:`LocalAirflow.env`."""
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": local_postgres.sqlalchemy_url(self.database),
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+"
            + local_postgres.sqlalchemy_url(self.database, driver="postgresql"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            # Every task goes to this deployment's queue, and only its workers consume it.
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.{worker_hostname.__name__}",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.schedule),
            # Components report healthy within seconds of starting, and DAG file edits show up
            # soon (Airflow's defaults suit a server that runs for weeks: 5 s and 5 min).
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
        }

    def env(self) -> dict[str, str]:
        """The environment of every component (a worker adds its name)."""
        if self.airflow is None:
            raise RuntimeError("the deployment is not started")
        return self.airflow.env()

    def _write_password(self) -> None:
        """Give ``admin`` a generated password before the api-server starts: SimpleAuthManager
        then finds the user in the file and does not print a password of its own."""
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(json.dumps({ADMIN_USER: secrets.token_urlsafe(18)}))

    def _password(self) -> str:
        return json.loads(self.password_file.read_text())[ADMIN_USER]

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 180) -> LocalDeployment:
        """Start everything and wait until it is ready (see :meth:`wait_until_ready`)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        local_postgres.create_database(self.database, if_missing=True)
        self.sandbox = SandboxProcess(self.home, *self.sandbox_flags)
        self.airflow = LocalAirflow(
            self.home,
            self.warehouse,
            self.sandbox.url,
            self.home / "staging",
            hubspot_extras=self.hubspot_extras,
            extra_env=self.settings(),
        )
        self.airflow.prepare()  # migrates the metadata DB, creates the hubspot_api pool
        self._write_password()
        env = self.env()
        # No log servers (--skip-serve-logs): every component writes task logs to the same
        # AIRFLOW_HOME/logs on this machine, where the api-server reads them. Airflow's log
        # server listens on every interface (airflow/utils/serve_logs/core.py), and the
        # api-server would look for it at the task's hostname (worker-1), not a real host.
        commands = {
            "scheduler": ("scheduler",),
            "dag-processor": ("dag-processor",),
            "triggerer": ("triggerer", "--skip-serve-logs"),
            "api-server": ("api-server",),
        }
        for name, args in commands.items():
            self.components.append(Component(name, args, env, self.logs / f"{name}.log"))
        for name in WORKERS:
            args = ("celery", "worker", "--queues", self.queue, "--skip-serve-logs")
            args += ("--celery-hostname", self.celery_hostname(name))
            worker_env = {**env, WORKER_NAME_VAR: name}
            self.components.append(Component(name, args, worker_env, self.logs / f"{name}.log"))
        for component in self.components:
            component.start()
        self.wait_until_ready(timeout)
        return self

    def celery_hostname(self, worker: str) -> str:
        return f"{worker}@{self.database}"

    def wait_until_ready(self, timeout: float) -> None:
        """Wait until the health endpoint reports the metadatabase, scheduler, dag-processor and
        triggerer healthy, both workers answer a Celery ping, and the DAG is parsed.

        Raises at once if a component exits, and after ``timeout`` seconds naming what is still
        missing, with the tail of its log.
        """
        from celery import Celery

        broker = Celery(broker=self.broker_url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                exited = [c.name for c in self.components if c.exited]
                if exited:
                    raise RuntimeError(self._report(f"{', '.join(exited)} exited", exited))
                missing = self._not_ready(broker)
                if not missing:
                    return
                if time.monotonic() > deadline:
                    reasons = "; ".join(f"{name}: {reason}" for name, reason in missing.items())
                    raise TimeoutError(
                        self._report(f"not ready after {timeout:.0f} s: {reasons}", list(missing))
                    )
                time.sleep(1)
        finally:
            broker.close()

    def _not_ready(self, broker) -> dict[str, str]:
        """Component → why it is not ready yet (empty when everything is)."""
        try:
            health = self._session.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError) as exc:
            return {"api-server": f"no answer on {self.url} ({type(exc).__name__})"}
        missing = {
            component: f"{check} is {(health.get(check) or {}).get('status') or 'unknown'}"
            for check, component in HEALTH_CHECKS.items()
            if (health.get(check) or {}).get("status") != "healthy"
        }
        workers = [self.celery_hostname(name) for name in WORKERS]
        replies = broker.control.ping(destination=workers, timeout=1.0) or []
        answered = {hostname for reply in replies for hostname in reply}
        for name, hostname in zip(WORKERS, workers, strict=True):
            if hostname not in answered:
                missing[name] = "no answer to a Celery ping"
        if "dag-processor" not in missing and (problem := self._dag_problem()):
            missing["dag-processor"] = problem
        return missing

    def _dag_problem(self) -> str | None:
        """Why the REST API does not know the DAG yet (None once it does)."""
        try:
            if self.api("GET", f"/api/v2/dags/{DAG_ID}", missing_ok=True) is not None:
                return None
            errors = self.api("GET", "/api/v2/importErrors")["import_errors"]
        except (requests.RequestException, RuntimeError) as exc:
            return f"REST API not answering yet: {exc}"
        # The dag-processor logs parse errors per file, not in its own output: name them here.
        return f"DAG {DAG_ID} not parsed yet" + "".join(
            f"; import error in {e['filename']}: {e['stack_trace']}" for e in errors
        )

    def wait(self) -> str:
        """Block until a component exits; return its name."""
        while True:
            for component in self.components:
                if component.exited:
                    return component.name
            time.sleep(1)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM every component's process group, SIGKILL what is left after ``timeout``
        seconds, then stop the sandbox. Safe to call twice, and after a failed start."""
        started = [c for c in self.components if c.process is not None]
        for component in started:
            component.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for component in started:
            try:
                component.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for component in started:
            # Also the group's stragglers whose leader has exited (e.g. a task's process).
            component.signal_group(signal.SIGKILL)
            component.process.wait()
            component.log.close()
        self.components.clear()
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        self._session.close()

    def drop(self) -> None:
        """Delete the state stop() keeps: the metadata database and the queue's keys in Redis.
        For tests; `make deploy-local` keeps both for its next start."""
        import redis

        local_postgres.drop_database(self.database)
        client = redis.Redis.from_url(self.broker_url)
        try:
            # The queue and its binding (and its priority lists): every key naming the queue.
            keys = list(client.scan_iter(match=f"*{self.queue}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    def __enter__(self) -> LocalDeployment:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- REST API ------------------------------------------------------------------------------

    def api(self, method: str, path: str, json: Any = None, missing_ok: bool = False, **params):
        """Call the REST API as ``admin``; return the JSON answer (None for 404 if
        ``missing_ok``). Raises with the answer's body on any other error."""
        for attempt in (1, 2):
            if self._token is None:
                self._token = self._login()
            response = self._session.request(
                method,
                self.url + path,
                json=json,
                params=params or None,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=30,
            )
            if response.status_code == 401 and attempt == 1:  # the token expired: log in again
                self._token = None
                continue
            if response.status_code == 404 and missing_ok:
                return None
            if not response.ok:
                raise RuntimeError(
                    f"{method} {path}: HTTP {response.status_code}: {response.text[:2000]}"
                )
            return response.json() if response.content else None

    def _login(self) -> str:
        """A JWT for ``admin`` from SimpleAuthManager's ``POST /auth/token``."""
        response = self._session.post(
            f"{self.url}/auth/token",
            json={"username": ADMIN_USER, "password": self._password()},
            timeout=30,
        )
        if response.status_code != 201:
            raise RuntimeError(f"login as {ADMIN_USER}: HTTP {response.status_code}")
        return response.json()["access_token"]

    # --- logs ----------------------------------------------------------------------------------

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The last ``lines`` lines of a component's log, with the admin password and the API
        token masked."""
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        secrets_known = [self._token]
        if self.password_file.exists():
            secrets_known.append(self._password())
        for secret in filter(None, secrets_known):
            text = text.replace(secret, "***")
        return "\n".join(text.splitlines()[-lines:])

    def log_tails(self, names: list[str] | None = None, lines: int = 40) -> str:
        names = names or [c.name for c in self.components]
        return "\n".join(
            f"--- {name} ({self.logs / f'{name}.log'}) ---\n{self.log_tail(name, lines)}"
            for name in names
        )

    def _report(self, problem: str, names: list[str]) -> str:
        return f"local deployment {problem}\n{self.log_tails(names)}"
