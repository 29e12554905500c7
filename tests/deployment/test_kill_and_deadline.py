"""The nightly run on the distributed deployment, under a real scheduler, triggerer and Celery
workers: a push task killed with SIGKILL mid-batch re-sends at most its requests in flight, and
the run, still going past its deadline, raises a Deadline Alert delivered to a webhook."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta

import pytest

from dev.demo_data import create_source_table, latest_night
from include.consent_sync.contract import DAG_ID
from tests.conftest import change, insert_changes
from tests.deployment.conftest import RATE_LIMIT_PER_10S, deployment_on
from tests.deployment.test_celery_backfill import summary, task_instances

pytestmark = pytest.mark.deployment

ROWS = 160  # four batches of 40: each push paces for about 10 s at the sandbox's 40 per 10 s
MAX_IN_FLIGHT = 4
DEADLINE_MINUTES = 0.25  # 15 s after the run is queued: the run takes far longer
RUN_TIMEOUT_S = 420


@pytest.fixture
def nightly_deployment(postgres_warehouse, tmp_path, webhook_server):
    """The deployment with the nightly schedule on: it creates the latest night's run at once."""
    with postgres_warehouse.open() as connection:
        create_source_table(connection)
    night_end = latest_night()
    insert_changes(
        postgres_warehouse,
        [
            change(f"k{i:03d}", f"kill{i}@example.com", changed_at=night_end - timedelta(hours=5))
            for i in range(ROWS)
        ],
    )
    with deployment_on(
        postgres_warehouse,
        tmp_path,
        hubspot_extras={
            "rate_limit_per_10s": RATE_LIMIT_PER_10S,
            "max_in_flight": MAX_IN_FLIGHT,
            "resubscribe_guard": False,
        },
        schedule=True,
        extra_env={
            "CONSENT_SYNC_DEADLINE_MINUTES": str(DEADLINE_MINUTES),
            "AIRFLOW_VAR_CONSENT_SYNC_ALERTS": json.dumps(
                {"slack_webhook_conn_id": "slack_alerts"}
            ),
            "AIRFLOW_CONN_SLACK_ALERTS": json.dumps(
                {
                    "conn_type": "slackwebhook",
                    "host": f"http://127.0.0.1:{webhook_server.server_port}",
                    "password": "T000/B000/XXXX",
                }
            ),
        },
    ) as deployment:
        yield deployment


def test_a_killed_push_resends_at_most_its_requests_in_flight_and_a_late_run_alerts(
    nightly_deployment, postgres_warehouse, webhook_server
):
    deployment = nightly_deployment
    run = wait_for(lambda: scheduled_run(deployment), "the scheduled nightly run", 120)
    run_id = run["dag_run_id"]

    # Kill the first push task that has written some of its batch: SIGKILL to its task process
    # (titled "airflow worker -- <task instance id>" on the Celery worker).
    def running_push():
        for ti in task_instances(deployment, run_id):
            if ti["task_id"] == "push" and ti["state"] == "running":
                writes = [r for r in deployment.sandbox.requests() if r.get("email")]
                if len(writes) >= 8:
                    return ti
        return None

    victim = wait_for(running_push, "a push task mid-batch", 240)
    pid = wait_for(lambda: task_process(victim["id"]), "the push task's process", 30)
    os.kill(pid, signal.SIGKILL)
    killed_at = len([r for r in deployment.sandbox.requests() if r.get("email")])

    final = wait_for(
        lambda: finished(deployment, run_id), "the run to finish", RUN_TIMEOUT_S, every=3
    )
    assert final["state"] == "success", summary(deployment, [final])
    (retried,) = [
        ti
        for ti in task_instances(deployment, run_id)
        if ti["task_id"] == "push" and ti["map_index"] == victim["map_index"]
    ]
    assert retried["try_number"] == 2 and retried["state"] == "success"

    # Every contact written, and at most max_in_flight written twice (the killed requests).
    writes = Counter(r["email"] for r in deployment.sandbox.requests() if r.get("email"))
    assert len(writes) == ROWS and killed_at < ROWS
    assert sum(writes.values()) - ROWS <= MAX_IN_FLIGHT, writes.most_common(6)
    ledger = postgres_warehouse.rows(
        "SELECT outcome, COUNT(*) AS n FROM hubspot_consent_sync_results GROUP BY outcome"
    )
    assert ledger == [{"outcome": "SYNCED", "n": ROWS}]
    (record,) = postgres_warehouse.rows("SELECT * FROM hubspot_consent_sync_runs")
    assert (record["run_type"], record["state"], record["synced"]) == ("scheduled", "success", ROWS)

    # The run passed its deadline (15 s after it was queued): the triggerer sent the alert.
    alerts = [post["json"]["text"] for post in webhook_server.received]
    assert any(f"run not finished by its deadline: {run_id}" in text for text in alerts), alerts


def scheduled_run(deployment) -> dict | None:
    runs = deployment.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", limit=10)["dag_runs"]
    return next((r for r in runs if r["run_type"] == "scheduled"), None)


def finished(deployment, run_id: str) -> dict | None:
    run = deployment.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
    return run if run["state"] in ("success", "failed") else None


def task_process(ti_id: str) -> int | None:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if args.strip() == f"airflow worker -- {ti_id}":
            return int(pid)
    return None


def wait_for(probe, what: str, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while (found := probe()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout:.0f} s")
        time.sleep(every)
    return found
