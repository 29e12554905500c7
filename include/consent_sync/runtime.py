"""The bridge between Airflow's task context and the pipeline's steps.

It reads what only Airflow knows (connections, the staging Variable, params, the run's interval)
and hands plain values to :mod:`include.consent_sync.pipeline`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from include.consent_sync import pipeline, resubscribe_guard, staging
from include.consent_sync.contract import DAG_ID, WAREHOUSE_CONN_ID

log = logging.getLogger(__name__)

STAGING_VARIABLE = "consent_sync_staging_root"
DEFAULT_STAGING_ROOT = "file:///tmp/hubspot_consent_sync/staging"
LIVE_XCOM = "live_switch"  # the plan task's XCom key for the live switch's decision


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
    from airflow.sdk import BaseHook

    from include.consent_sync.warehouse import open_warehouse as open_from_connection

    return open_from_connection(BaseHook.get_connection(WAREHOUSE_CONN_ID))


@contextmanager
def gates_fail_fast() -> Iterator[None]:
    """A tripped gate (schema, invalid share, max_rows, an unclear live switch) fails the task
    without Airflow retries.

    The same data would trip it again; the message says what to fix or which param to raise.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from include.consent_sync.live_switch import UnclearSwitch
    from include.consent_sync.validation import InvalidShareExceeded, SchemaContractError

    try:
        yield
    except (SchemaContractError, InvalidShareExceeded, pipeline.TooManyRows, UnclearSwitch) as exc:
        raise AirflowFailException(str(exc)) from exc


def wait_for_turn(context: dict[str, Any]) -> bool:
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


def extract(context: dict[str, Any]) -> dict[str, Any]:
    params = context["params"]
    start, end = interval(context)
    folder = run_folder(context)
    staging.clear_derived(folder)
    window = pipeline.Window(
        dag_run_id=context["run_id"],
        interval_start=start,
        interval_end=end,
        lookback_days=int(params["lookback_days"]),
        resync=bool(params["resync"]),
        emails=tuple(params["emails"] or ()),
    )
    with open_warehouse() as warehouse, gates_fail_fast():
        return pipeline.extract(warehouse, folder, window)


def validate(context: dict[str, Any]) -> dict[str, Any]:
    with gates_fail_fast():
        return pipeline.validate(
            run_folder(context),
            now=datetime.now(UTC),
            max_invalid_share=float(context["params"]["max_invalid_share"]),
        )


def live_decision(context: dict[str, Any]):
    """The live switch's decision for this run (see :mod:`include.consent_sync.live_switch`)."""
    from airflow.sdk import Variable

    from include.consent_sync import live_switch

    params = context["params"]
    return live_switch.decide(
        Variable.get(live_switch.VARIABLE, default=None),
        dry_run=bool(params["dry_run"]),
        emails=tuple(params["emails"] or ()),
    )


def plan(context: dict[str, Any], parallel_tasks: int) -> list[dict[str, Any]]:
    params = context["params"]
    with gates_fail_fast():
        decision = live_decision(context)
        # First line of the plan log, and the report's and the ledger event's: a disarmed sync
        # is visible wherever a user looks, never a silent 0 sent.
        (log.info if decision.send else log.warning)("%s", decision.message)
        context["ti"].xcom_push(LIVE_XCOM, {"mode": decision.mode, "message": decision.message})
        batches = pipeline.plan(
            run_folder(context),
            dry_run=not decision.send,
            disarmed=decision.disarmed,
            max_rows=int(params["max_rows"]),
            parallel_tasks=parallel_tasks,
        )
    guard = resubscribe_guard.param_choice(params.get("resubscribe_guard"))
    return [{**batch, "resubscribe_guard": guard} for batch in batches]


def load_results(context: dict[str, Any], ledger_asset) -> dict[str, int]:
    from include.consent_sync.ledger import RunFacts

    start, end = interval(context)
    facts = RunFacts(
        dag_run_id=context["run_id"],
        interval_start=start,
        interval_end=end,
        recorded_at=datetime.now(UTC),
        max_attempts=int(context["params"]["max_attempts"]),
    )
    with open_warehouse() as warehouse:
        counts = pipeline.load_results(warehouse, run_folder(context), facts)
    live = context["ti"].xcom_pull(task_ids="plan", key=LIVE_XCOM) or {}
    context["outlet_events"][ledger_asset].extra = {
        "dag_run_id": facts.dag_run_id,
        "mode": live.get("mode", "not planned"),
        **counts,
    }
    return counts


def report(context: dict[str, Any], counts: dict[str, int] | None) -> None:
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
    live = ti.xcom_pull(task_ids="plan", key=LIVE_XCOM) or {}
    summary = run_summary(
        context["run_id"],
        f"{start.isoformat()} → {end.isoformat()}",
        counts or {},
        problems,
        mode=live.get("message"),
    )
    for line in summary.splitlines():
        log.info("%s", line)
    if problems:
        raise AirflowFailException("; ".join(problems))
