"""What a task reads from Airflow: the run's folder, interval, window and facts, its warehouse.

The DAG's task bodies call :mod:`include.consent_sync.pipeline` with these plain values; this
module holds no step of its own, so each name means one thing: the DAG task ``extract`` runs the
step ``pipeline.extract`` on the ``runtime.window`` of its run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from include.consent_sync import pipeline, resubscribe_guard, staging
from include.consent_sync.contract import DAG_ID, HUBSPOT_CONN_ID, WAREHOUSE_CONN_ID

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
    log.info(
        "Our turn: no other run of %s is preparing the ledger, extracting, pushing or loading",
        ti.dag_id,
    )
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
        repair_run_id=params.get("repair_run_id") or None,
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


def decide_sending(context: dict[str, Any]):
    """The live switch's decision for this run (see :mod:`include.consent_sync.live_switch`),
    logged and kept in XCom for load_results and report: a disarmed sync is visible wherever a
    user looks, never a silent 0 sent."""
    from airflow.sdk import Variable

    from include.consent_sync import live_switch

    params = context["params"]
    decision = live_switch.decide(
        Variable.get(live_switch.VARIABLE, default=None),
        dry_run=bool(params["dry_run"]),
        emails=tuple(params["emails"] or ()),
    )
    (log.info if decision.send else log.warning)("%s", decision.message)
    context["ti"].xcom_push(LIVE_XCOM, {"mode": decision.mode, "message": decision.message})
    return decision


def run_mode(context: dict[str, Any]) -> dict[str, str]:
    """The plan task's decision (mode, message); empty when the run stopped before planning."""
    return context["ti"].xcom_pull(task_ids="plan", key=LIVE_XCOM) or {}


def with_guard_choice(context: dict[str, Any], batches: list[dict[str, Any]]) -> list[dict]:
    """Carry the run's resubscribe_guard param in each batch, for the mapped push tasks."""
    guard = resubscribe_guard.param_choice(context["params"].get("resubscribe_guard"))
    return [{**batch, "resubscribe_guard": guard} for batch in batches]


def task_states(ti) -> tuple[dict[str, str], list[str]]:
    """This run's task states (``push_3`` for a mapped instance), and the tasks that stopped."""
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    stopped = sorted(
        task for task, state in states.items() if state in ("failed", "upstream_failed")
    )
    return states, stopped


def announce_ledger(context: dict[str, Any], counts: dict[str, int], ledger_asset) -> None:
    """Emit the ledger Asset's event only when this run wrote rows and no step stopped it.

    Skipping the task is how it emits nothing: downstream DAGs (reconciliation) wake for real
    changes only, never for a night of 0 rows or a run stopped by a gate.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    ti = context["ti"]
    _, stopped = task_states(ti)
    if stopped:
        raise AirflowSkipException(f"no ledger event: the run stopped early ({', '.join(stopped)})")
    if not sum(counts.values()):
        raise AirflowSkipException("no ledger event: the run recorded no ledger rows")
    mode = run_mode(context).get("mode", "not planned")
    context["outlet_events"][ledger_asset].extra = {"dag_run_id": ti.run_id, "mode": mode, **counts}


def task_key(ti) -> str:
    """A task instance as ``get_task_states`` names it (``push_3`` for a mapped instance)."""
    map_index = getattr(ti, "map_index", None)
    return ti.task_id if map_index is None or map_index < 0 else f"{ti.task_id}_{map_index}"


def note_failure(context: dict[str, Any]) -> None:
    """``on_failure_callback``: leave why the task failed in the run's folder, for its record."""
    from include.consent_sync.masking import mask_emails_in

    error = context.get("exception")
    reason = f"{type(error).__name__}: {error}" if error else "failed (no exception recorded)"
    path = run_folder(context) / staging.FAILURES / f"{task_key(context['ti'])}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(mask_emails_in(reason))


def _failure_notes(folder) -> dict[str, str]:
    notes = folder / staging.FAILURES
    if not notes.exists():
        return {}
    return {p.name.removesuffix(".txt"): p.read_text() for p in notes.iterdir()}


ALERTS_VARIABLE = "consent_sync_alerts"


def alert_settings():
    """The alert settings from the Variable ``consent_sync_alerts`` (absent: defaults, log only)."""
    import json

    from airflow.sdk import Variable

    from include.consent_sync.alerts import AlertSettings

    raw = Variable.get(ALERTS_VARIABLE, default=None)
    try:
        values = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise ValueError(f"Variable {ALERTS_VARIABLE} is not valid JSON: {exc}") from exc
    return AlertSettings.from_mapping(values)


def send_alert(alert, settings, context: dict[str, Any]) -> None:
    """Send ``alert`` through the configured notifiers; the task log always gets the text.

    Any notifier may fail (mail server down): the others still send, and the task then fails,
    naming which did not.
    """
    notifiers = {}
    if settings.smtp_conn_id:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        html = "<pre>" + alert.body.replace("&", "&amp;").replace("<", "&lt;") + "</pre>"
        notifiers["email"] = SmtpNotifier(
            to=list(settings.email_to),
            from_email=settings.email_from,
            subject=alert.subject,
            html_content=html,
            smtp_conn_id=settings.smtp_conn_id,
        )
    if settings.slack_webhook_conn_id:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        notifiers["slack"] = SlackWebhookNotifier(
            slack_webhook_conn_id=settings.slack_webhook_conn_id,
            text=f"*{alert.subject}*\n{alert.body}",
        )
    log.warning("ALERT %s\n%s", alert.subject, alert.body)
    if not notifiers:
        log.warning(
            "(no notifier configured in Variable %s: the alert is in this log only)",
            ALERTS_VARIABLE,
        )
    undelivered = []
    for name, notifier in notifiers.items():
        try:
            # notify(), not the callback protocol: the text is final, never a Jinja template.
            notifier.notify(context)
            log.info("alert sent by %s", name)
        except Exception as exc:  # noqa: BLE001 - one notifier down must not silence the others
            log.error("alert not sent by %s: %s", name, exc)
            undelivered.append(f"{name} ({type(exc).__name__}: {exc})")
    if undelivered:
        raise RuntimeError(f"alert not delivered by {', '.join(undelivered)}")


DEADLINE_ENV = "CONSENT_SYNC_DEADLINE_MINUTES"


def nightly_deadline():
    """The DAG's Deadline Alert: a run still going CONSENT_SYNC_DEADLINE_MINUTES after it was
    queued alerts (see :func:`deadline_missed`). None when the variable is not set.

    An environment variable, read when the DAG is parsed: an Airflow Variable would be read when
    each run is created, and a missing one would stop the scheduler from creating the run. Off by
    default because ``airflow dags test`` (3.3.2) fails on a DAG with a deadline.
    """
    import os

    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    raw = os.environ.get(DEADLINE_ENV)
    if not raw:
        return None
    try:
        minutes = float(raw)
    except ValueError:
        minutes = 0
    if minutes <= 0:
        raise ValueError(f"{DEADLINE_ENV}={raw!r}: expected a positive number of minutes")
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(deadline_missed),
    )


async def deadline_missed(context: dict[str, Any], **_: Any) -> None:
    """The Deadline Alert's callback (runs in the triggerer): alert for a late nightly run.

    Only scheduled runs alert: backfills and manual runs may wait their turn for hours.
    """
    import asyncio

    from airflow.configuration import conf

    from include.consent_sync.alerts import compose_deadline
    from include.consent_sync.run_record import run_url

    dag_run = context.get("dag_run") or {}
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or ""
    if dag_run.get("run_type") != "scheduled":
        log.info("deadline passed for %s run %s: no alert", dag_run.get("run_type"), run_id)
        return
    url = run_url(conf.get("api", "base_url", fallback="http://localhost:8080/"), DAG_ID, run_id)
    alert = compose_deadline(dag_run, (context.get("deadline") or {}).get("deadline_time"), url)
    # Variables, connections and the notifiers' sends block: keep them off the event loop.
    settings = await asyncio.to_thread(alert_settings)
    await asyncio.to_thread(send_alert, alert, settings, context)


def summarise_run(context: dict[str, Any], counts: dict[str, int] | None) -> None:
    """Record the run, log its summary, alert if it needs a person; fail the run if a step
    stopped early, naming it."""
    from airflow.configuration import conf
    from airflow.sdk.exceptions import AirflowFailException

    from include.consent_sync import alerts, run_record
    from include.consent_sync.report import run_summary

    ti = context["ti"]
    dag_run = context["dag_run"]
    params = context["params"]
    states, stopped = task_states(ti)
    problems = [f"task {task} did not succeed (see its log)" for task in stopped]
    if counts is None:
        problems.append("load_results did not record the run's outcomes")
    folder = run_folder(context)
    stop = run_record.first_stop(states, _failure_notes(folder), list(context["dag"].task_dict))
    start, end = interval(context)
    run_type = getattr(dag_run.run_type, "value", dag_run.run_type)
    with open_warehouse() as warehouse:
        warehouse.ensure_ledger()
        # The run's own rows, through the ledger's primary key: right even if load_results failed.
        outcomes = Counter(warehouse.run_outcomes(ti.run_id)["outcome"].to_pylist())
        record = run_record.record_values(
            ti.run_id,
            outcomes,
            interval_start=start,
            interval_end=end,
            started_at=dag_run.start_date,
            finished_at=datetime.now(UTC),
            run_type=str(run_type),
            state="failed" if problems else "success",
            dry_run_param=bool(params["dry_run"]),
            resync=bool(params["resync"]),
            emails_count=len(params["emails"] or ()),
            failed_task=stop.task if stop else None,
            failure_reason=stop.reason if stop else None,
            ui_url=run_record.run_url(
                conf.get("api", "base_url", fallback="http://localhost:8080/"),
                ti.dag_id,
                ti.run_id,
            ),
            daily_limit_reached=(folder / staging.DAILY_LIMIT).exists(),
        )
        warehouse.record_run(record)
        settings = alert_settings()  # after recording: a bad Variable never costs the record
        alert = alerts.compose(
            record,
            warehouse.earlier_run_records(end, settings.idle_nights),
            warehouse.top_reasons(ti.run_id),
            settings,
        )
    if stop:
        problems.insert(0, f"{stop.task} failed: {stop.reason}")
    summary = run_summary(
        context["run_id"],
        f"{start.isoformat()} → {end.isoformat()}",
        outcomes,
        problems,
        mode=run_mode(context).get("message"),
    )
    for line in summary.splitlines():
        log.info("%s", line)
    if alert:
        send_alert(alert, settings, context)
    if problems:
        raise AirflowFailException("; ".join(problems))
