"""What a task reads from Airflow: the run's folder, interval, window and facts, its warehouse.

The DAG's task bodies call :mod:`include.consent_sync.pipeline` with these plain values; this
module holds no step of its own, so each name means one thing: the DAG task ``extract`` runs the
step ``pipeline.extract`` on the ``runtime.window`` of its run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from include.consent_sync import pipeline, staging
from include.consent_sync.contract import DAG_ID, HUBSPOT_CONN_ID, WAREHOUSE_CONN_ID

log = logging.getLogger(__name__)

STAGING_VARIABLE = "consent_sync_staging_root"
DEFAULT_STAGING_ROOT = "file:///tmp/hubspot_consent_sync/staging"


def run_folder(context: dict[str, Any]):
    from airflow.sdk import ObjectStoragePath, Variable

    root = Variable.get(STAGING_VARIABLE, default=DEFAULT_STAGING_ROOT)
    return staging.run_folder(ObjectStoragePath(root), DAG_ID, context["run_id"])


def interval(context: dict[str, Any]) -> tuple[datetime, datetime]:
    """The run's data interval; a manual run without one covers the day before it was triggered."""
    end = context.get("data_interval_end") or context["dag_run"].run_after or datetime.now(UTC)
    start = context.get("data_interval_start") or end - timedelta(days=1)
    return start, end


def open_warehouse():
    from include.consent_sync.warehouse import open_warehouse as open_connection

    return open_connection(WAREHOUSE_CONN_ID)


def push_capacity(parallel_tasks: int):
    """How fast the push tasks can send, from the HubSpot connection's settings."""
    from airflow.sdk import BaseHook

    from hubspot_provider.hooks.hubspot import HubSpotSettings
    from include.consent_sync.planning import PushCapacity

    settings = HubSpotSettings.from_extras(BaseHook.get_connection(HUBSPOT_CONN_ID).extra_dejson)
    return PushCapacity(
        rate_limit_per_10s=settings.rate_limit_per_10s,
        rows_per_request=settings.rows_per_request,
        parallel_tasks=parallel_tasks,
    )


@contextmanager
def gates_fail_fast() -> Iterator[None]:
    """A tripped gate (schema, invalid share, max_rows) fails the task without Airflow retries.

    The same data would trip it again; the message says what to fix or which param to raise.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from include.consent_sync.validation import InvalidShareExceeded, SchemaContractError

    try:
        yield
    except (SchemaContractError, InvalidShareExceeded, pipeline.TooManyRows) as exc:
        raise AirflowFailException(str(exc)) from exc


def is_our_turn(context: dict[str, Any]) -> bool:
    """True when this run may start extracting (see :mod:`include.consent_sync.turns`)."""
    from include.consent_sync import turns

    ti = context["ti"]
    earlier = ti.get_previous_dagrun(state="running")
    reason = turns.reason_to_wait(
        ti.run_id,
        earlier.run_id if earlier else None,
        ti.get_task_states(dag_id=ti.dag_id, task_ids=[turns.GATE_TASK, turns.RELEASE_TASK]),
        lambda run_id: ti.get_dagrun_state(dag_id=ti.dag_id, run_id=run_id),
    )
    if reason:
        log.info("Waiting for our turn: %s", reason)
        return False
    log.info("Our turn: no other run of %s is extracting, pushing or loading", ti.dag_id)
    return True


def window(context: dict[str, Any]) -> pipeline.Window:
    """Which changes the run considers: its interval and the params that widen or narrow it."""
    params = context["params"]
    start, end = interval(context)
    return pipeline.Window(
        dag_run_id=context["run_id"],
        interval_start=start,
        interval_end=end,
        lookback_days=int(params["lookback_days"]),
        resync=bool(params["resync"]),
        emails=tuple(params["emails"] or ()),
    )


def run_facts(context: dict[str, Any]):
    """What every ledger row of the run records about the run itself."""
    from include.consent_sync.ledger import RunFacts

    start, end = interval(context)
    return RunFacts(
        dag_run_id=context["run_id"],
        interval_start=start,
        interval_end=end,
        recorded_at=datetime.now(UTC),
        max_attempts=int(context["params"]["max_attempts"]),
    )


def with_guard_choice(context: dict[str, Any], batches: list[dict[str, Any]]) -> list[dict]:
    """Carry the run's resubscribe_guard param in each batch, for the mapped push tasks."""
    guard = context["params"].get("resubscribe_guard")
    return [{**batch, "resubscribe_guard": guard} for batch in batches]


def summarise_run(context: dict[str, Any], counts: dict[str, int] | None) -> None:
    """Log the run's summary; fail the run if a step stopped early, naming it."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.consent_sync.report import run_summary

    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    stopped = sorted(
        task for task, state in states.items() if state in ("failed", "upstream_failed")
    )
    problems = [f"task {task} did not succeed (see its log)" for task in stopped]
    if counts is None:
        problems.append("load_results did not record the run's outcomes")
    start, end = interval(context)
    summary = run_summary(
        context["run_id"], f"{start.isoformat()} → {end.isoformat()}", counts or {}, problems
    )
    for line in summary.splitlines():
        log.info("%s", line)
    if problems:
        raise AirflowFailException("; ".join(problems))
