"""A run's record (table ``hubspot_consent_sync_run_records``, view ``hubspot_consent_sync_runs``).

Every DAG run gets one, whatever happened to it. ``load_results`` records the counts as it loads;
the run's last task, ``report``, records everything else (state, params, the task that stopped
the run and why, a link to the run). Counts come from the run's own ledger rows only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from include.consent_sync.contract import Outcome

COLUMNS = (
    "dag_run_id",
    "interval_start",
    "interval_end",
    "changes",
    *(outcome.value.lower() for outcome in Outcome),
    "started_at",
    "finished_at",
    "run_type",
    "state",
    "dry_run_param",
    "resync",
    "emails_count",
    "failed_task",
    "failure_reason",
    "ui_url",
    "daily_limit_reached",
)
FAILURE_REASON_MAX_CHARS = 2000


def count_columns(outcomes: Mapping[str, int]) -> dict[str, int]:
    """``changes`` and one count per outcome (column named like the outcome, lowercase)."""
    unknown = set(outcomes) - {str(o) for o in Outcome}
    if unknown:
        raise ValueError(f"run record: unknown outcomes {sorted(unknown)}")
    counts = {o.value.lower(): int(outcomes.get(str(o), 0)) for o in Outcome}
    return {"changes": sum(counts.values()), **counts}


def record_values(dag_run_id: str, outcomes: Mapping[str, int], **facts: Any) -> dict[str, Any]:
    """Every column of a record: the counts from ``outcomes``, ``facts`` for the rest (None else)."""
    unknown = set(facts) - set(COLUMNS)
    if unknown:
        raise ValueError(f"run record: unknown columns {sorted(unknown)}")
    values = dict.fromkeys(COLUMNS)
    values.update(facts, dag_run_id=dag_run_id, **count_columns(outcomes))
    return values


def run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow UI."""
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"


@dataclass(frozen=True)
class Stop:
    """The task that stopped a run, and why (from its failure note, when it left one)."""

    task: str
    reason: str


def first_stop(
    states: Mapping[str, str | None], notes: Mapping[str, str], order: list[str]
) -> Stop | None:
    """The first failed task in DAG order, with its reason; None when no task failed.

    :param states: task key → state, as ``get_task_states`` names them (a mapped instance is
        ``push_3``); :param notes: task key → the failure note the task left;
    :param order: task ids in the DAG's order (upstream first).
    """

    def position(key: str) -> int:
        base = key if key in order else key.rpartition("_")[0]
        return order.index(base) if base in order else len(order)

    failed = sorted((key for key, state in states.items() if state == "failed"), key=position)
    if not failed:
        return None
    task = failed[0]
    reason = notes.get(task) or "no reason recorded (see the task's log)"
    return Stop(task, reason[:FAILURE_REASON_MAX_CHARS])
