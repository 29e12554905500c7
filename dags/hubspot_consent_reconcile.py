"""hubspot_consent_reconcile: read HubSpot back and record, per key, where it differs.

The DAG only wires the steps; what each does lives in ``include/consent_reconcile/``.
Heavy imports happen inside the tasks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    TriggerRule,
    dag,
    task,
)

from include.consent_reconcile import runtime
from include.consent_reconcile.contract import RECONCILE_DAG_ID
from include.consent_sync.contract import DAG_ID, HUBSPOT_POOL, LEDGER_TABLE

# Read tasks that may run at once, each pacing at its share of HubSpot's limit: the `hubspot_api`
# pool's slots, which the sync's push tasks share, so the two together never exceed the limit.
READ_PARALLELISM = 4
# The ledger Asset the sync's load_results updates (dags/hubspot_consent_sync.py).
LEDGER = Asset(f"consent_warehouse://{LEDGER_TABLE}", group="hubspot_consent_sync")

DOC = """
### HubSpot consent reconciliation

Reads HubSpot's current statuses back and records, per key (contact, subscription, channel),
whether HubSpot holds what the warehouse intends, in `hubspot_consent_reconciliation`; the view
`hubspot_consent_drift` lists the keys whose latest check is not MATCH.

**When**: after every sync run that changed the ledger (it checks the keys that run sent), and
every Sunday at 04:00 UTC over every key the pipeline ever sent.

**Tasks**: select_keys → read (one mapped task per batch of contacts, pool `hubspot_api`: batch
reads of statuses and of opt-outs of all email) → compare (one row per key) → repair_request →
trigger_repair (only with `repair`) → report (alerts on DRIFT and MISSING; fails the run if a
task failed or keys stayed UNREAD).

**Classifications**: MATCH (HubSpot holds the intent), HUBSPOT_NEWER (HubSpot differs and changed
after our write), DRIFT (differs, not changed since our write), MISSING (we wrote a status,
HubSpot holds none or does not know the contact), PENDING (the intent is not synced yet), UNREAD
(HubSpot could not be read: never MATCH).

**Params**: `full` checks every key ever sent; `emails` only these contacts; `repair` triggers
`hubspot_consent_sync` for exactly the DRIFT and MISSING keys (HUBSPOT_NEWER is never
overwritten); `sync_run_id` checks the keys of one sync run; `alert_max_share` and
`alert_max_count` decide when DRIFT plus MISSING alert.
"""


@dag(
    dag_id=RECONCILE_DAG_ID,
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 4 * * 0", timezone="UTC"), assets=[LEDGER]
    ),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    tags=["hubspot", "consent", "warehouse", "reconciliation"],
    doc_md=DOC,
    params={
        "full": Param(False, type="boolean", description="Check every key the pipeline ever sent."),
        "emails": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Only these contacts (emails). Empty: everyone.",
        ),
        "repair": Param(
            False,
            type="boolean",
            description="Trigger hubspot_consent_sync to send the intent again for DRIFT and MISSING keys.",
        ),
        "sync_run_id": Param(
            None,
            type=["null", "string"],
            description="Check the keys this hubspot_consent_sync run sent (default: the "
            "triggering run's, or every key).",
        ),
        "alert_max_share": Param(
            0.01,
            type="number",
            minimum=0,
            maximum=1,
            description="Alert when DRIFT plus MISSING exceed this share of the keys checked.",
        ),
        "alert_max_count": Param(
            100,
            type="integer",
            minimum=0,
            description="Alert when DRIFT plus MISSING exceed this many keys.",
        ),
    },
)
def hubspot_consent_reconcile():
    @task
    def select_keys(**context) -> list[dict]:
        return runtime.select_keys(context, parallel_tasks=READ_PARALLELISM)

    @task(
        pool=HUBSPOT_POOL,
        max_active_tis_per_dagrun=READ_PARALLELISM,
        map_index_template="batch {{ task.op_kwargs['batch']['index'] }}",
    )
    def read(batch: dict, **context) -> dict:
        return runtime.read(context, batch, parallel_tasks=READ_PARALLELISM)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def compare(**context) -> dict:
        return runtime.compare(context)

    @task
    def repair_request(verdict: dict, **context) -> list[dict]:
        return runtime.repair_requests(context, verdict)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def report(verdict: dict | None, **context) -> None:
        runtime.report(context, verdict)

    reads = read.expand(batch=select_keys())
    verdict = compare()
    reads >> verdict
    # One writer: a repair is a sync run, with the sync's rules, guards and ledger.
    repair = TriggerDagRunOperator.partial(task_id="trigger_repair", trigger_dag_id=DAG_ID).expand(
        conf=repair_request(verdict)
    )
    repair >> report(verdict)


hubspot_consent_reconcile()
