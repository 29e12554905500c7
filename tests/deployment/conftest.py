"""Deployment fixtures: the whole distributed Airflow (dev/local_deployment.py) per test,
on this machine's Redis and PostgreSQL, stopped and dropped afterwards whatever happens."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest

from dev.local_airflow import free_port
from dev.local_deployment import REDIS_HOST, REDIS_PORT, LocalDeployment
from tests.conftest import skip_or_fail

# Another number than `make deploy-local`'s; each test deployment also has its own queue.
REDIS_DB = 14
# The sandbox's (and the hubspot_default connection's) limit: below a run's sends, so a run's
# pushes span several seconds and the four push tasks on two workers have to share one budget.
RATE_LIMIT_PER_10S = 40


def _require_redis() -> None:
    """Skip (or, with CI=true, fail) when no Redis answers on 127.0.0.1:6379."""
    import redis

    client = redis.Redis(
        host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2, socket_connect_timeout=2
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        skip_or_fail(f"Redis not reachable on {REDIS_HOST}:{REDIS_PORT}: {detail}")
    finally:
        client.close()


@contextmanager
def deployment_on(postgres_warehouse, tmp_path, **options):
    """A started deployment on this test's warehouse, with its own metadata database, queue and
    sandbox (``options``: more LocalDeployment settings); stopped and dropped afterwards."""
    _require_redis()
    deployment = LocalDeployment(
        tmp_path / "airflow",
        database=f"airflow_test_{uuid.uuid4().hex[:12]}",
        redis_db=REDIS_DB,
        port=free_port(),
        warehouse=postgres_warehouse.connection(),
        sandbox_flags=("--rate-limit-per-10s", str(RATE_LIMIT_PER_10S)),
        **{"hubspot_extras": {"rate_limit_per_10s": RATE_LIMIT_PER_10S}, **options},
    )
    try:
        with deployment:
            yield deployment
    finally:
        deployment.drop()


@pytest.fixture
def deployment(postgres_warehouse, tmp_path):
    """The nightly schedule off: only the runs the test creates touch its data."""
    with deployment_on(postgres_warehouse, tmp_path, schedule=False) as deployment:
        yield deployment


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed deployment test shows the tail of every component's log (secrets masked)."""
    report = yield
    deployment = item.funcargs.get("deployment") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and deployment is not None:
        report.sections.append(("Airflow component logs (last lines)", deployment.log_tails()))
    return report
