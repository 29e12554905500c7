"""The bridge between the reconcile DAG's task context and its steps (steps.py, reads.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from include.consent_reconcile import steps
from include.consent_reconcile.contract import RECONCILE_DAG_ID, Classification
from include.consent_sync import staging
from include.consent_sync.runtime import DEFAULT_STAGING_ROOT, STAGING_VARIABLE, open_warehouse

log = logging.getLogger(__name__)


def run_folder(context: dict[str, Any]):
    from airflow.sdk import ObjectStoragePath, Variable

    root = Variable.get(STAGING_VARIABLE, default=DEFAULT_STAGING_ROOT)
    return staging.run_folder(ObjectStoragePath(root), RECONCILE_DAG_ID, context["run_id"])


def sync_run_ids(context: dict[str, Any]) -> list[str] | None:
    """The sync runs whose keys to check; None: every key ever sent.

    A run the ledger Asset triggered checks the runs its events name (the sync's load_results
    puts its dag_run_id in the event's extra); the weekly run, a manual one and ``full`` check
    every key; the ``sync_run_id`` param picks one sync run by hand.
    """
    params = context["params"]
    if params["full"]:
        return None
    if params.get("sync_run_id"):
        return [params["sync_run_id"]]
    events = context.get("triggering_asset_events") or {}
    run_ids = {(event.extra or {}).get("dag_run_id") for asset in events for event in events[asset]}
    run_ids.discard(None)
    return sorted(run_ids) or None


def select_keys(context: dict[str, Any], parallel_tasks: int) -> list[dict[str, Any]]:
    folder = run_folder(context)
    with open_warehouse() as warehouse:
        return steps.select_keys(
            warehouse,
            folder,
            sync_run_ids=sync_run_ids(context),
            emails=tuple(context["params"]["emails"] or ()),
            parallel_tasks=parallel_tasks,
        )


def read(context: dict[str, Any], batch: dict[str, Any], parallel_tasks: int) -> dict[str, int]:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.exceptions import AirflowFailException

    from hubspot_provider.exceptions import HubSpotAuthError
    from hubspot_provider.hooks.hubspot import HubSpotHook
    from include.consent_reconcile.reads import read_batch
    from include.consent_sync.contract import HUBSPOT_CONN_ID

    hook = HubSpotHook(HUBSPOT_CONN_ID, parallel_tasks=parallel_tasks)
    try:
        return read_batch(
            hook,
            contacts_path=ObjectStoragePath(batch["contacts_path"]),
            results_path=ObjectStoragePath(batch["results_path"]),
            label=f"read batch {batch['index']}",
            log=log,
        )
    except HubSpotAuthError as exc:
        # Every read would get the same answer: fail now, without Airflow retries.
        raise AirflowFailException(str(exc)) from exc
    finally:
        hook.close()


def compare(context: dict[str, Any]) -> dict[str, Any]:
    with open_warehouse() as warehouse:
        verdict = steps.compare(
            warehouse,
            run_folder(context),
            reconcile_run_id=context["run_id"],
            checked_at=datetime.now(UTC),
        )
    return {"counts": verdict.counts, "keys": verdict.keys}


def repair_requests(context: dict[str, Any], verdict: dict[str, Any]) -> list[dict[str, Any]]:
    """The sync run to trigger: none unless ``repair`` is on and some keys are DRIFT or MISSING."""
    repairable = steps.Verdict(verdict["counts"], verdict["keys"]).repairable
    if not context["params"]["repair"]:
        if repairable:
            log.info("repair is off: %d DRIFT or MISSING keys are left as they are", repairable)
        return []
    if not repairable:
        log.info("repair: no DRIFT or MISSING keys, nothing to send again")
        return []
    log.info(
        "repair: triggering hubspot_consent_sync for the %d DRIFT and MISSING keys of run %s "
        "(HUBSPOT_NEWER keys are left alone)",
        repairable,
        context["run_id"],
    )
    return [{"repair_run_id": context["run_id"]}]


def report(context: dict[str, Any], verdict: dict[str, Any] | None) -> None:
    """Log the run's summary and alert; fail the run if a task failed or keys stayed UNREAD."""
    from airflow.sdk.exceptions import AirflowFailException

    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    problems = [
        f"task {task} did not succeed (see its log)"
        for task, state in sorted(states.items())
        if state in ("failed", "upstream_failed")
    ]
    if verdict is None:
        problems.append("compare did not record the run's classifications")
    else:
        result = steps.Verdict(verdict["counts"], verdict["keys"])
        log.info(
            "reconcile %s: %d keys checked: %s",
            ti.run_id,
            result.keys,
            ", ".join(f"{c} {result.counts.get(c, 0)}" for c in Classification),
        )
        params = context["params"]
        alert = steps.alert_text(
            result,
            max_share=float(params["alert_max_share"]),
            max_count=int(params["alert_max_count"]),
        )
        if alert:
            # The sync's notifiers (Variable consent_sync_alerts); the task log gets it in any case.
            from include.consent_sync import runtime as sync_runtime
            from include.consent_sync.alerts import Alert

            subject = f"HubSpot consent reconcile {ti.run_id}: HubSpot differs from the warehouse"
            sync_runtime.send_alert(
                Alert(subject=subject, body=alert), sync_runtime.alert_settings(), context
            )
        unread = result.counts.get(Classification.UNREAD, 0)
        if unread:
            problems.append(
                f"{unread} keys could not be read from HubSpot (UNREAD); the next reconcile "
                "checks them again"
            )
    if problems:
        raise AirflowFailException("; ".join(problems))
