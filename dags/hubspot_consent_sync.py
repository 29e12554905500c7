"""hubspot_consent_sync: warehouse consent changes → validated → HubSpot → ledger.

The DAG only wires the steps: each task reads its run's values through
``include/consent_sync/runtime.py`` and runs one step of ``include/consent_sync/pipeline.py``
(the design: docs/ARCHITECTURE.md). Heavy imports happen inside the tasks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, TriggerRule, dag, task

from include.consent_sync import runtime, turns
from include.consent_sync.contract import (
    DAG_ID,
    HUBSPOT_CONN_ID,
    HUBSPOT_POOL,
    HUBSPOT_POOL_SLOTS,
    LEDGER_TABLE,
)
from include.consent_sync.push_operator import PushBatchOperator

LEDGER = Asset(f"consent_warehouse://{LEDGER_TABLE}", group="hubspot_consent_sync")

DOC = """
### HubSpot consent sync

Every night at 02:00 UTC this DAG takes the consent changes of the last day (and any earlier ones
not yet final) from the warehouse table `consent_changes`, validates them, sends the latest change
per contact and subscription to HubSpot's Communication Preferences API, and writes one row per
change to `hubspot_consent_sync_results`.

**Tasks**: wait_for_turn → extract → validate → plan → push (one mapped task per batch, pool
`hubspot_api`) → load_results → report. `wait_for_turn` holds a run until no other run is
between its extract and its load_results and no earlier run is still running, so runs
(backfills included) take turns in date order. `load_results` and `report` run even when an earlier task failed, so
every extracted change gets its ledger row; `report` fails the run if anything stopped early.

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
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
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
        """Hold this run until no other run is between its extract and its load_results and no
        earlier run is still running, so runs (backfills included) take turns in date order."""
        return runtime.is_our_turn(context)

    @task
    def extract(**context) -> dict:
        """Check `consent_changes` against the contract, select the run's candidate changes
        (the interval, plus unfinished ones within `lookback_days`) and stage them as Parquet."""
        from include.consent_sync import pipeline

        folder = runtime.run_folder(context)
        with runtime.open_warehouse() as warehouse, runtime.gates_fail_fast():
            facts = pipeline.extract(warehouse, folder, runtime.window(context))
        return {"folder": str(folder), **facts}

    @task
    def validate(extracted: dict, **context) -> dict:
        """Run the validation suite on the candidates: valid rows go on, INVALID rows are staged
        with their reasons; the run stops if the invalid share exceeds `max_invalid_share`."""
        from airflow.sdk import ObjectStoragePath

        from include.consent_sync import pipeline

        with runtime.gates_fail_fast():
            facts = pipeline.validate(
                ObjectStoragePath(extracted["folder"]),
                now=datetime.now(UTC),
                max_invalid_share=float(context["params"]["max_invalid_share"]),
            )
        return {"folder": extracted["folder"], **facts}

    @task
    def plan(validated: dict, **context) -> list[dict]:
        """Keep the latest change per key, decide the skips, check `max_rows` and cut the changes
        to send into batch files, one per mapped push task."""
        from airflow.sdk import ObjectStoragePath

        from include.consent_sync import pipeline

        capacity = runtime.push_capacity(HUBSPOT_POOL_SLOTS)
        with runtime.gates_fail_fast():
            batches = pipeline.plan(
                ObjectStoragePath(validated["folder"]),
                dry_run=bool(context["params"]["dry_run"]),
                max_rows=int(context["params"]["max_rows"]),
                capacity=capacity,
            )
        return runtime.with_guard_choice(context, batches)

    @task(trigger_rule=TriggerRule.ALL_DONE, outlets=[LEDGER])
    def load_results(**context) -> dict:
        """Write one ledger row per considered change, whatever stage the run reached (runs even
        when an earlier task failed); emits the ledger Asset with the run's counts."""
        from include.consent_sync import pipeline

        facts = runtime.run_facts(context)
        with runtime.open_warehouse() as warehouse:
            counts = pipeline.load_results(warehouse, runtime.run_folder(context), facts)
        context["outlet_events"][LEDGER].extra = {"dag_run_id": facts.dag_run_id, **counts}
        return counts

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def report(counts: dict | None, **context) -> None:
        """Log the run's counts per outcome; fail the run, naming the task, if a step stopped."""
        runtime.summarise_run(context, counts)

    extracted = extract()
    wait_for_turn() >> extracted
    batches = plan(validate(extracted))
    push = PushBatchOperator.partial(
        task_id="push",
        hubspot_conn_id=HUBSPOT_CONN_ID,
        pool=HUBSPOT_POOL,
        parallel_tasks=HUBSPOT_POOL_SLOTS,
        max_active_tis_per_dagrun=HUBSPOT_POOL_SLOTS,
        map_index_template="batch {{ task.batch['index'] }} ({{ task.batch['rows'] }} rows)",
        doc_md="Send one batch's changes to HubSpot (pool `hubspot_api`, at its share of the "
        "rate limit), staging one result per row as it goes: a retry sends only what is not done.",
    ).expand(batch=batches)
    counts = load_results()
    push >> counts
    report(counts)


hubspot_consent_sync()
