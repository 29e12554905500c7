"""Runs take turns: from prepare_ledger to load_results, one run of the DAG at a time, oldest
first.

The DAG's ``max_active_runs=1`` covers scheduled and manual runs, but a backfill has its own
``max_active_runs``, so a backfill run could otherwise push beside the nightly run (or beside its
own siblings). Each run therefore starts with a gate, ``wait_for_turn``, that passes only when

- no running run with an earlier logical date exists (it goes first: date order), and
- no other running run *holds* the turn: its gate passed and its load_results has not finished
  (its results must be in the ledger before the next run reads the ledger).

The gate task allows one instance at a time across all runs (``max_active_tis_per_dag=1``), so
two gates never decide at once: when one passes, the next one to look already sees it holding.
Holders never wait, and waiters are ordered by logical date, so the line always moves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

GATE_TASK = "wait_for_turn"
RELEASE_TASK = "load_results"

# Task states after which a task instance will not run again unless someone clears it.
FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def holders(task_states: Mapping[str, Mapping[str, str | None]], me: str) -> list[str]:
    """Runs other than ``me`` whose gate passed and whose load_results has not finished.

    ``task_states`` is ``{run_id: {task_id: state}}`` as Airflow's ``get_task_states`` gives it.
    """
    return sorted(
        run_id
        for run_id, states in task_states.items()
        if run_id != me
        and states.get(GATE_TASK) == "success"
        and states.get(RELEASE_TASK) not in FINISHED
    )


def reason_to_wait(
    me: str,
    earlier_running_run: str | None,
    task_states: Mapping[str, Mapping[str, str | None]],
    run_state: Callable[[str], str],
) -> str | None:
    """Why run ``me`` may not start yet, or None when it is its turn.

    ``run_state`` looks up a run's state; a holder whose run is no longer running (marked failed
    by hand, say) holds nothing.
    """
    if earlier_running_run:
        return f"run {earlier_running_run} has an earlier logical date and is still running"
    for run_id in holders(task_states, me):
        if run_state(run_id) == "running":
            return f"run {run_id} is between its prepare_ledger and its load_results"
    return None
