"""hubspot_consent_sync: warehouse consent changes → validated → HubSpot → ledger.

The DAG only wires the steps; what each step does lives in ``include/consent_sync/pipeline.py``
(see ARCHITECTURE.md for the data flow). Heavy imports happen inside the tasks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, TriggerRule, dag, task

from hubspot_provider.operators.subscription_status import HubSpotSubscriptionStatusOperator
from include.consent_sync import runtime, turns
from include.consent_sync.contract import DAG_ID, HUBSPOT_CONN_ID, HUBSPOT_POOL, LEDGER_TABLE

# Push tasks that may run at once; each paces at its share of HubSpot's limit. Keep it equal to
# the `hubspot_api` pool's slots (airflow_settings.yaml).
PUSH_PARALLELISM = 4
LEDGER = Asset(f"consent_warehouse://{LEDGER_TABLE}", group="hubspot_consent_sync")

DOC = """
### HubSpot consent sync

Every night at 02:00 UTC this DAG takes the consent changes of the last day (and any earlier ones
not yet final) from the warehouse table `consent_changes`, validates them, sends the latest change
per contact and subscription to HubSpot's Communication Preferences API, and writes one row per
change to `hubspot_consent_sync_results`.

**Tasks**: wait_for_turn → extract → validate → plan → push (one mapped task per batch, pool
`hubspot_api`) → load_results → announce_ledger → report. `wait_for_turn` holds a run until no other run is
between its extract and its load_results and no earlier run is still running, so runs
(backfills included) take turns in date order. `load_results` and `report` run even when an earlier task failed, so
every extracted change gets its ledger row. `announce_ledger` emits the ledger Asset's event only
when the run wrote rows and nothing stopped it. `report` records the run in
`hubspot_consent_sync_runs`, sends alerts, and fails the run if anything stopped early.

**Params** (Trigger → trigger form): `dry_run` plans without sending; `emails` restricts the run
to some contacts; `resync` sends the latest state again for keys changed in the interval;
`max_rows` and `max_invalid_share` are guards checked before anything is sent.

**Backfill**: Trigger → Backfill, pick the date range, "Run backwards" off. Whatever the
backfill's max active runs, its runs and the nightly one push one at a time, in date order
among the runs that are running. A backfill never writes an older consent over a newer one
(only the latest change per key is ever sent), and re-running an interval adds no duplicate
ledger rows. CLI: `airflow backfill create --dag-id hubspot_consent_sync --from-date 2026-11-01
--to-date 2026-11-07`.

**Audit**: views `hubspot_consent_sync_runs` and `hubspot_consent_sync_latest`; see the README.
"""


@dag(
    dag_id=DAG_ID,
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    # A nightly run still going CONSENT_SYNC_DEADLINE_MINUTES after it was queued alerts.
    deadline=runtime.nightly_deadline(),
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        # Why a task failed, kept for the run record that `report` writes.
        "on_failure_callback": runtime.note_failure,
    },
    tags=["hubspot", "consent", "warehouse"],
    doc_md=DOC,
    params={
        "dry_run": Param(
            False, type="boolean", description="Plan and record DRY_RUN rows; send nothing."
        ),
        "emails": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Only these contacts (emails). Empty: everyone.",
        ),
        "resync": Param(
            False,
            type="boolean",
            description="Send the latest state again for keys changed in the interval, even if already SYNCED.",
        ),
        "lookback_days": Param(
            30,
            type="integer",
            minimum=1,
            description="How far back unfinished changes are retried.",
        ),
        "max_attempts": Param(
            5,
            type="integer",
            minimum=1,
            description="Runs a change may FAIL in before it becomes REJECTED.",
        ),
        "max_rows": Param(
            200_000, type="integer", minimum=1, description="Guard: most changes one run may send."
        ),
        "max_invalid_share": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=1,
            description="Guard: largest share of INVALID rows before the run stops.",
        ),
        "resubscribe_guard": Param(
            None,
            type=["null", "boolean"],
            description="Read HubSpot before resubscribing (default: the connection's resubscribe_guard extra, on).",
        ),
    },
)
def hubspot_consent_sync():
    # Backfills keep their own max_active_runs: this gate makes every run take its turn.
    @task.sensor(
        task_id=turns.GATE_TASK,
        mode="reschedule",
        poke_interval=15,
        timeout=timedelta(hours=24),
        max_active_tis_per_dag=1,
    )
    def wait_for_turn(**context) -> bool:
        return runtime.wait_for_turn(context)

    @task
    def extract(**context) -> dict:
        return runtime.extract(context)

    @task
    def validate(extracted: dict, **context) -> dict:
        return runtime.validate(context)

    @task
    def plan(validated: dict, **context) -> list[dict]:
        return runtime.plan(context, parallel_tasks=PUSH_PARALLELISM)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def load_results(**context) -> dict:
        return runtime.load_results(context)

    @task(outlets=[LEDGER])
    def announce_ledger(counts: dict, **context) -> None:
        runtime.announce_ledger(context, counts, LEDGER)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def report(counts: dict | None, **context) -> None:
        runtime.report(context, counts)

    extracted = extract()
    wait_for_turn() >> extracted
    batches = plan(validate(extracted))
    push = HubSpotSubscriptionStatusOperator.partial(
        task_id="push",
        hubspot_conn_id=HUBSPOT_CONN_ID,
        pool=HUBSPOT_POOL,
        parallel_tasks=PUSH_PARALLELISM,
        max_active_tis_per_dagrun=PUSH_PARALLELISM,
        map_index_template="batch {{ task.batch['index'] }} ({{ task.batch['rows'] }} rows)",
    ).expand(batch=batches)
    counts = load_results()
    push >> counts
    announce_ledger(counts) >> report(counts)


hubspot_consent_sync()
